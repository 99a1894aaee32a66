"""``python -m minimodels assignments build|grade``: the notebooks as classroom assignments, through nbgrader.

The committed notebooks are nbgrader *source* notebooks. Each exercise is two cells with nbgrader metadata: a solution
cell (the answer between nbgrader's solution markers) and a locked, pointed grade cell (visible checks, then hidden
tests between nbgrader's hidden-test markers that catch the exercise's typical wrong answers). The Exercises section
of every notebook is its last code and stands alone: its first cell imports and loads what the exercises use.

- ``build`` runs ``nbgrader generate_assignment`` on each notebook in a scratch course folder: the student version
  has every solution replaced by nbgrader's stub, outputs cleared and hidden tests removed. The instructor version is
  the source notebook as committed (solutions, hidden tests and outputs).
- ``grade`` runs ``nbgrader autograde`` on each submitted notebook against its source notebook (found by file name):
  nbgrader restores the locked cells and the hidden tests, executes the notebook top to bottom and scores each grade
  cell. One scratch course per submission, so two students' copies of one notebook never meet.
- ``--exercises-only`` (both): the Exercises section alone, a short homework sheet that runs in seconds instead of
  the notebook's minutes of training. The suite grades these, so testing the grading never reruns a notebook.

A teacher with a full nbgrader course copies ``notebooks/*.ipynb`` into ``source/<assignment>/`` and uses nbgrader's
own commands; nothing here is needed for that.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

from .engine.errors import DataError
from .engine.paths import REPO_ROOT

NOTEBOOKS = REPO_ROOT / "notebooks"
CELL_SECONDS = 600  # nbgrader's default (30 s a cell) would stop the notebooks' training cells


@dataclass
class Exercise:
    grade_id: str  # the grade cell's: what the points table names
    points: float
    answer: str  # the solution cell's source (solution markers included)
    check: str  # the grade cell's source (hidden tests included)


def exercise_section(notebook: Path):
    """The notebook cut to its Exercises section (from the "## Exercises" heading to the end)."""
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    starts = [i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and c.source.startswith("## Exercises")]
    if not starts:
        raise DataError(f"{notebook}: no '## Exercises' section")
    nb.cells = nb.cells[starts[0]:]
    return nb


def exercises(notebook: Path) -> tuple[list[str], list[Exercise]]:
    """The Exercises section's set-up code (cells that are neither answer nor grade) and its exercises, in order:
    each solution cell with the grade cell after it."""
    setup, found, answer = [], [], None
    for cell in exercise_section(notebook).cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code":
            continue
        if meta.get("solution"):
            answer = cell.source
        elif meta.get("grade"):
            if answer is None:
                raise DataError(f"{notebook}: grade cell {meta['grade_id']} has no solution cell before it")
            found.append(Exercise(meta["grade_id"], meta["points"], answer, cell.source))
            answer = None
        else:
            setup.append(cell.source)
    return setup, found


@dataclass
class ExerciseScore:
    exercise: str  # the grade cell's nbgrader grade_id
    points: float
    max_points: float


@dataclass
class Grading:
    notebook: str
    scores: list[ExerciseScore]
    other_errors: list[str]  # cells outside the exercises that raised (a student may edit unlocked cells)

    @property
    def points(self) -> float:
        return sum(s.points for s in self.scores)

    @property
    def max_points(self) -> float:
        return sum(s.max_points for s in self.scores)


def _course(root: Path):
    """nbgrader's API on a course folder ``root`` (source/, submitted/, release/ and a gradebook inside it)."""
    from nbgrader.apps import NbGraderAPI
    from traitlets.config import Config

    # nbgrader runs the `alembic` program to check its gradebook's schema; it sits beside this Python, which is not on
    # PATH when the course's Python is called by its full path (.venv/bin/python -m minimodels ...)
    here = str(Path(sys.executable).parent)
    if here not in os.environ["PATH"].split(os.pathsep):
        os.environ["PATH"] = here + os.pathsep + os.environ["PATH"]
    config = Config()
    config.CourseDirectory.root = str(root)
    config.CourseDirectory.course_id = "minimodels"
    config.Execute.timeout = CELL_SECONDS  # nbgrader runs on past a failing cell: a wrong answer costs its points
    return NbGraderAPI(config=config)


def _checked(result: dict, what: str) -> None:
    if not result["success"]:
        raise DataError(f"nbgrader could not {what}; its log:\n{result.get('log') or result.get('error')}")


def _sources(source_dir: Path) -> list[Path]:
    notebooks = sorted(Path(source_dir).glob("[0-9][0-9]_*.ipynb"))
    if not notebooks:
        raise DataError(f"{source_dir}: no course notebooks (NN_name.ipynb) to build assignments from")
    return notebooks


def _add_source(notebook: Path, root: Path, exercises: bool) -> str:
    """Put ``notebook`` (or its Exercises section) into the course at ``root`` as an assignment of its own name."""
    import nbformat

    folder = root / "source" / notebook.stem
    folder.mkdir(parents=True)
    if exercises:
        nbformat.write(exercise_section(notebook), folder / notebook.name)
    else:
        shutil.copy(notebook, folder / notebook.name)
    return notebook.stem


def build(out: Path, source_dir: Path = NOTEBOOKS, exercises: bool = False) -> dict[str, list[Path]]:
    """Write ``out/student/*.ipynb`` (nbgrader's release versions) and ``out/instructor/*.ipynb`` (the sources)."""
    out = Path(out)
    written: dict[str, list[Path]] = {"student": [], "instructor": []}
    for kind in written:
        shutil.rmtree(out / kind, ignore_errors=True)
        (out / kind).mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix="minimodels-course-") as tmp:
        root = Path(tmp)
        for notebook in _sources(source_dir):
            name = _add_source(notebook, root, exercises)
            _checked(_course(root).generate_assignment(name), f"build the student version of {notebook}")
            for kind, folder in (("student", "release"), ("instructor", "source")):
                written[kind].append(Path(shutil.copy(root / folder / name / notebook.name, out / kind)))
    return written


def grade(submitted: Path, source_dir: Path = NOTEBOOKS, exercises: bool = False) -> Grading:
    """Autograde one submitted notebook against the source notebook of the same file name."""
    import nbformat
    from nbgrader.api import Gradebook
    from sqlalchemy.exc import SAWarning

    submitted = Path(submitted)
    if not submitted.is_file():
        raise DataError(f"{submitted}: no such notebook to grade")
    source = Path(source_dir) / submitted.name
    if not source.is_file():
        names = ", ".join(p.name for p in _sources(source_dir))
        raise DataError(f"{submitted}: no source notebook of that name in {source_dir} (keep the file name the "
                        f"student version had: {names})")
    with tempfile.TemporaryDirectory(prefix="minimodels-grading-") as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", SAWarning)  # nbgrader's own gradebook bookkeeping, nothing to act on
        root = Path(tmp)
        name = _add_source(source, root, exercises)
        api = _course(root)
        _checked(api.generate_assignment(name), f"read the exercises of {source}")
        (root / "submitted" / "student" / name).mkdir(parents=True)
        shutil.copy(submitted, root / "submitted" / "student" / name / source.name)
        _checked(api.autograde(name, "student"), f"grade {submitted}")
        with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
            notebook = gradebook.find_submission_notebook(name, name, "student")
            scores = sorted((ExerciseScore(g.cell.name, g.score, g.max_score) for g in notebook.grades),
                            key=lambda s: s.exercise)
        graded = nbformat.read(root / "autograded" / "student" / name / source.name, as_version=4)
    other_errors = [f"cell {i}: {out['ename']}: {out['evalue']}"[:200] for i, cell in enumerate(graded.cells)
                    if cell.cell_type == "code" and "nbgrader" not in cell.metadata
                    for out in cell.get("outputs", []) if out["output_type"] == "error"]
    return Grading(source.name, scores, other_errors)


def points_table(gradings: list[Grading]) -> str:
    lines = [f"{'notebook':<52}{'exercise':<26}{'points':>9}"]
    for g in gradings:
        lines += [f"{g.notebook:<52}{s.exercise:<26}{s.points:>5g} / {s.max_points:g}" for s in g.scores]
        lines += [f"{g.notebook:<52}error outside the exercises, {err}" for err in g.other_errors]
    total, most = sum(g.points for g in gradings), sum(g.max_points for g in gradings)
    lines.append(f"{'total':<78}{total:>5g} / {most:g}")
    return "\n".join(lines)


def gradings_json(gradings: list[Grading]) -> str:
    return json.dumps({"notebooks": [asdict(g) for g in gradings], "points": sum(g.points for g in gradings),
                       "max_points": sum(g.max_points for g in gradings)}, allow_nan=False)
