"""``python -m minimodels assignments build|grade``: the notebooks as classroom assignments, through nbgrader.

The committed notebooks are nbgrader *source* notebooks. Each exercise is two cells with nbgrader metadata: a solution
cell (the answer between nbgrader's solution markers) and a locked, pointed grade cell (visible checks, then hidden
tests between nbgrader's hidden-test markers). The Exercises section of every notebook is its last code and stands
alone: its first cell imports and loads what the exercises use, and ends by making the grade cells' referee
(``exercise_checks.py``: the checks' references, kept out of the answers' reach).

- ``build`` runs ``nbgrader generate_assignment`` on each notebook in a scratch course folder: the student version
  has every solution replaced by nbgrader's stub, outputs cleared and hidden tests removed. The instructor version is
  the source notebook as committed (solutions, hidden tests and outputs).
- ``grade`` grades a class: one folder per student (as nbgrader's ``submitted/``), each holding notebooks under the
  names the student versions had. Every file is first matched to its source notebook (by name, then by its exercises:
  notebook 00 saved as 01 is refused); a file that does not match is reported and skipped. ``nbgrader autograde``
  then runs each notebook (the locked cells and hidden tests put back, every cell under a time limit, optionally a
  memory limit) and ``nbgrader generate_feedback`` writes its feedback page. Each exercise gets its points and, when
  it lost them, why: the failing check's message, the error, the time limit, or a deleted grade cell (nbgrader then
  leaves it to manual grading). Students are graded in parallel worker processes, each in its own scratch course.
- ``--exercises-only`` (both): the Exercises section alone, a short homework sheet that runs in seconds instead of
  the notebook's minutes of training. The suite grades these, so testing the grading never reruns a notebook.

Grading runs the students' code with the grader's own permissions (README: how to grade in a sandbox). A teacher with
a full nbgrader course copies ``notebooks/*.ipynb`` into ``source/<assignment>/`` and uses nbgrader's own commands.
"""

from __future__ import annotations

import csv
import functools
import json
import os
import re
import shutil
import sys
import tempfile
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .engine.errors import ConfigError, DataError
from .engine.paths import REPO_ROOT

NOTEBOOKS = REPO_ROOT / "notebooks"
NOTEBOOK_NAME = re.compile(r"\d\d_\w+\.ipynb")
# Seconds a cell may run. An answer or a grade cell runs in seconds; the other cells are the teacher's: a set-up
# cell, or in a whole notebook its training (nbgrader's default of 30 s a cell would stop those).
EXERCISE_SECONDS = 30
OTHER_SECONDS = {"whole": 600, "exercises-only": 120}
TIMEOUTS = ("CellTimeoutError", "KeyboardInterrupt", "TimeoutError")  # what a cell stopped at its limit shows
# An answer cell that names these is reaching for the grade cells' referee: the grader flags it for a human look.
GRADER_PARTS = re.compile(r"\b_check\b|exercise_checks|Referee|setprofile|settrace|__code__")


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


# ---- the scratch nbgrader course --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Limits:
    """What ``grade`` bounds each notebook's kernel by."""
    exercise_seconds: int = EXERCISE_SECONDS  # an answer or a grade cell
    other_seconds: int = OTHER_SECONDS["whole"]  # any other cell
    memory_gb: float | None = None  # the kernel's address space (Linux), None: no limit

    def seconds(self, cell) -> int:
        meta = cell.metadata.get("nbgrader", {})
        return self.exercise_seconds if meta.get("solution") or meta.get("grade") else self.other_seconds


def _course(root: Path, limits: Limits = Limits()):
    """nbgrader's API on a course folder ``root`` (source/, submitted/, release/ and a gradebook inside it)."""
    import nbgrader.api
    from nbgrader.apps import NbGraderAPI
    from traitlets.config import Config

    nbgrader.api.get_alembic_version = _schema_head  # in-process, not the `alembic` program (_schema_head says why)
    config = Config()
    config.CourseDirectory.root = str(root)
    config.CourseDirectory.course_id = "minimodels"
    config.Execute.timeout_func = limits.seconds  # nbgrader runs on past a failing cell: it costs its points only
    # the kernel's own warnings (about its local TCP sockets) are no news to a teacher
    config.Execute.extra_arguments = ["--HistoryManager.hist_file=:memory:", "--IPKernelApp.log_level=ERROR"]
    if limits.memory_gb is not None:  # set in the kernel before any cell runs; a cell cannot raise it again
        size = int(limits.memory_gb * 2**30)
        limit = f"__import__('resource').setrlimit(__import__('resource').RLIMIT_AS, ({size}, {size}))"
        config.Execute.extra_arguments.append(f"--IPKernelApp.exec_lines={limit}")
    return NbGraderAPI(config=config)


@functools.cache
def _schema_head() -> str:
    """The revision nbgrader stamps a new gradebook with: the head of its alembic migration scripts. nbgrader asks the
    ``alembic`` program for it in a subprocess that imports nbgrader again (3 s for each new gradebook: every build
    and every grading worker); alembic's ``ScriptDirectory`` reads the same scripts in-process (0.1 s)."""
    from alembic.script import ScriptDirectory
    from nbgrader.dbutil import ALEMBIC_DIR

    (head,) = ScriptDirectory(ALEMBIC_DIR).get_heads()
    return head


def _checked(result: dict, what: str) -> None:
    if not result["success"]:
        raise DataError(f"nbgrader could not {what}: {_last_error(result)}")


def _last_error(result: dict) -> str:
    """nbgrader's 50-line log in one line: the last exception it names other than its own summary."""
    text = "\n".join(filter(None, [result.get("log"), result.get("error")]))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    named = [line for line in lines if re.match(r"[\w.]*(Error|Exception)\b", line) and "NbGraderException" not in line]
    return (named or lines or ["no log"])[-1][:300]


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


def output_folder(out: Path, force: bool, parts: tuple[str, ...] = ()) -> Path:
    """Make ``out`` ready to write into before any work: refuse a file, a place that cannot be written, and (unless
    ``force``) one that already holds something: its ``parts`` that are not empty, or with no parts named, anything."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: is a file, not a folder; give a folder path")
    if out.is_dir() and not force:
        entries = [out / p for p in parts] if parts else sorted(out.iterdir())
        held = [e.name for e in entries if e.is_file() or (e.is_dir() and any(e.iterdir()))]
        if held:
            raise ConfigError(f"--out {out}: already holds {', '.join(held[:3])}{', ...' if len(held) > 3 else ''}; "
                              f"give a new folder, or --force to replace it")
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / ".write-test").write_text("")
        (out / ".write-test").unlink()
    except OSError as err:
        raise ConfigError(f"--out {out}: cannot write there ({err.strerror}); give a folder you can write to") from None
    return out


def build(out: Path, source_dir: Path = NOTEBOOKS, exercises: bool = False,
          force: bool = False) -> dict[str, list[Path]]:
    """Write ``out/student/*.ipynb`` (nbgrader's release versions) and ``out/instructor/*.ipynb`` (the sources)."""
    written: dict[str, list[Path]] = {"student": [], "instructor": []}
    out = output_folder(out, force, tuple(written))
    notebooks = _sources(source_dir)
    for kind in written:
        shutil.rmtree(out / kind, ignore_errors=True)
        (out / kind).mkdir()
    with tempfile.TemporaryDirectory(prefix="minimodels-course-") as tmp:
        root = Path(tmp)
        for notebook in notebooks:
            name = _add_source(notebook, root, exercises)
            _checked(_course(root).generate_assignment(name), f"build the student version of {notebook}")
            for kind, folder in (("student", "release"), ("instructor", "source")):
                written[kind].append(Path(shutil.copy(root / folder / name / notebook.name, out / kind)))
    return written


# ---- what was handed in -----------------------------------------------------------------------------------------

@dataclass
class Submission:
    student: str
    path: Path


@dataclass
class Skipped:
    student: str
    path: str
    why: str


def submissions(paths: list[Path]) -> tuple[list[Submission], list[Skipped]]:
    """Files named on the command line, or folders: a folder of student folders is a class, a folder of files one
    student's. A student is named by their folder. Hidden files and folders (.ipynb_checkpoints) are left out."""
    found, skipped = [], []
    for path in map(Path, paths):
        if path.is_file():
            found.append(Submission(path.resolve().parent.name, path))
        elif not path.is_dir():
            skipped.append(Skipped("", str(path), "no such file or folder"))
        elif any(p.is_dir() for p in _visible(path)):
            for item in _visible(path):
                if item.is_dir():
                    found += [Submission(item.name, f) for f in _visible(item) if f.is_file()]
                else:
                    skipped.append(Skipped("", str(item), "a file beside the students' folders: put it in one"))
        else:
            found += [Submission(path.resolve().name, f) for f in _visible(path) if f.is_file()]
    return found, skipped


def _visible(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def mismatch(path: Path, source_dir: Path, exercises: bool) -> str | None:
    """Why ``path`` cannot be graded as the notebook of its name (None: it can): a name that is no course notebook's,
    a file that is no notebook, another notebook's exercises, or the whole notebook where the sheet was asked (or
    the other way round)."""
    import nbformat

    source = Path(source_dir) / path.name
    if not NOTEBOOK_NAME.fullmatch(path.name) or not source.is_file():
        names = [p.name for p in _sources(source_dir)]
        return f"no course notebook of that name (keep the student version's: {names[0]} to {names[-1]})"
    try:
        submitted = nbformat.read(path, as_version=4)
    except Exception as err:  # noqa: BLE001 - whatever nbformat says, the file is no notebook
        return f"this is not notebook {path.name[:2]}: not a readable notebook ({str(err).splitlines()[0][:120]})"
    ids = {c.metadata.get("nbgrader", {}).get("grade_id") for c in submitted.cells
           if c.metadata.get("nbgrader", {}).get("grade")} - {None}
    own = _grade_ids(source)
    if not ids & own:
        theirs = sorted(i for i in ids if i[:2].isdigit())
        held = f"it holds the exercises {', '.join(theirs[:3])}" if theirs else "it holds no exercise of the course"
        return f"this is not notebook {path.name[:2]} ({held})"
    starts_with_exercises = bool(submitted.cells) and submitted.cells[0].get("source", "").startswith("## Exercises")
    if exercises and not starts_with_exercises:
        return "the whole notebook, where the exercises-only sheet was asked: grade it without --exercises-only"
    if not exercises and starts_with_exercises:
        return "an exercises-only sheet: grade it with --exercises-only"
    return None


def exercises_of(notebook: Path) -> list[Exercise]:
    return exercises(notebook)[1]


@functools.lru_cache(maxsize=None)
def _grade_ids(source: Path) -> frozenset[str]:
    return frozenset(e.grade_id for e in exercises_of(source))


# ---- grading ----------------------------------------------------------------------------------------------------

@dataclass
class ExerciseScore:
    exercise: str  # the grade cell's nbgrader grade_id
    points: float | None  # None: left to manual grading (its grade cell was deleted)
    max_points: float
    why: str = ""  # why it lost points, or what to look at by hand


@dataclass
class Grading:
    student: str
    notebook: str
    scores: list[ExerciseScore]
    other_errors: list[str] = field(default_factory=list)  # cells outside the exercises that raised
    autograded: str = ""  # the graded notebook, tracebacks included
    feedback: str = ""  # nbgrader's feedback page (HTML) for the student

    @property
    def points(self) -> float:
        return sum(s.points or 0 for s in self.scores)

    @property
    def max_points(self) -> float:
        return sum(s.max_points for s in self.scores)


@dataclass
class Report:
    gradings: list[Grading]
    skipped: list[Skipped]
    out: str

    def students(self) -> list[str]:
        return sorted({g.student for g in self.gradings} | {s.student for s in self.skipped if s.student})


def grade(paths: list[Path], out: Path, source_dir: Path = NOTEBOOKS, exercises: bool = False, workers: int = 1,
          limits: Limits | None = None, force: bool = False) -> Report:
    """Grade every submission under ``paths`` (files, a student's folder, or a class's folder); write the autograded
    notebooks, the feedback pages, ``gradebook.csv`` and ``reasons.csv`` under ``out``."""
    limits = limits or Limits(other_seconds=OTHER_SECONDS["exercises-only" if exercises else "whole"])
    if limits.memory_gb is not None and not sys.platform.startswith("linux"):
        raise ConfigError(f"--memory-gb works on Linux only (this is {sys.platform}); grade in a container to bound "
                          f"memory here (README)")
    found, skipped = submissions(paths)
    ready = []
    for sub in found:
        why = mismatch(sub.path, source_dir, exercises)
        if why:
            skipped.append(Skipped(sub.student, str(sub.path), why))
        else:
            ready.append(sub)
    if not ready:
        why = "; ".join(f"{s.path}: {s.why}" for s in skipped) or f"no files in {', '.join(map(str, paths))}"
        raise DataError(f"nothing to grade: {why}")
    out = output_folder(out, force)
    by_student: dict[str, list[Path]] = {}
    for sub in ready:
        by_student.setdefault(sub.student, []).append(sub.path)
    jobs = [(student, files, Path(source_dir), exercises, limits, out) for student, files in by_student.items()]
    with tempfile.TemporaryDirectory(prefix="minimodels-grading-") as scratch:
        jobs = [(*job, Path(scratch)) for job in jobs]
        if workers <= 1 or len(jobs) == 1:
            graded = [_grade_student(*job) for job in jobs]
        else:
            threads = str(max(1, (os.cpu_count() or 1) // workers))  # each kernel's share of the cores
            with ProcessPoolExecutor(min(workers, len(jobs)), initializer=_share_cores, initargs=(threads,)) as pool:
                graded = list(pool.map(_grade_student, *zip(*jobs)))
    report = Report([g for gradings in graded for g in gradings], skipped, str(out))
    write_gradebook(report, out)
    return report


def _share_cores(threads: str) -> None:
    """In a worker: its kernels' torch threads, unless the teacher chose them (OMP_NUM_THREADS)."""
    os.environ.setdefault("OMP_NUM_THREADS", threads)


_GENERATED: set[tuple[Path, str]] = set()  # (course, assignment) pairs this process has generated


def _grade_student(student: str, files: list[Path], source_dir: Path, exercises: bool, limits: Limits, out: Path,
                   scratch: Path) -> list[Grading]:
    """Autograde one student's notebooks in this process's scratch course; copy the autograded notebooks and the
    feedback pages to ``out/<student>/``."""
    from nbgrader.api import Gradebook
    from sqlalchemy.exc import SAWarning

    root = scratch / f"course-{os.getpid()}"
    gradings = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SAWarning)  # nbgrader's own gradebook bookkeeping, nothing to act on
        api = _course(root, limits)
        for path in files:
            name = path.stem
            if (root, name) not in _GENERATED:
                _add_source(source_dir / path.name, root, exercises)
                _checked(api.generate_assignment(name), f"read the exercises of {source_dir / path.name}")
                _GENERATED.add((root, name))
            (root / "submitted" / student / name).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, root / "submitted" / student / name / path.name)
            result = api.autograde(name, student)
            if not result["success"]:
                gradings.append(_not_graded(student, source_dir / path.name, _last_error(result)))
                continue
            with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
                found = gradebook.find_submission_notebook(name, name, student)
                grades = {g.cell.name: (None if g.needs_manual_grade and g.auto_score is None else g.score,
                                        g.max_score) for g in found.grades}
            graded = root / "autograded" / student / name / path.name
            own = out / student
            own.mkdir(exist_ok=True)
            kept = Path(shutil.copyfile(graded, own / path.name))  # nbgrader's copy is read-only
            feedback = ""
            if api.generate_feedback(name, student)["success"]:
                page = root / "feedback" / student / name / path.with_suffix(".html").name
                feedback = str(shutil.copyfile(page, own / page.name))
            gradings.append(_read_grading(student, kept, grades, limits, feedback))
    return gradings


def _not_graded(student: str, source: Path, why: str) -> Grading:
    scores = [ExerciseScore(e.grade_id, 0, e.points, f"not graded: nbgrader could not run it ({why})")
              for e in exercises_of(source)]
    return Grading(student, source.name, scores)


def _read_grading(student: str, graded: Path, grades: dict, limits: Limits, feedback: str) -> Grading:
    """Each exercise's points from nbgrader's gradebook, and from the autograded notebook why it lost them."""
    import nbformat

    cells = nbformat.read(graded, as_version=4).cells
    scores, answer = [], None
    for cell in cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution") and not meta.get("grade"):
            answer = cell
        if meta.get("grade") and meta.get("grade_id") in grades:
            points, most = grades[meta["grade_id"]]
            scores.append(ExerciseScore(meta["grade_id"], points, most, _why(points, most, answer, cell, limits)))
            answer = None
    missing = sorted(set(grades) - {s.exercise for s in scores})  # a grade cell the student deleted
    scores += [ExerciseScore(g, None, grades[g][1], "grade cell missing: needs manual grading") for g in missing]
    scores.sort(key=lambda s: s.exercise)
    other_errors = [_other_error(i, cell, error, limits) for i, cell in enumerate(cells) if cell.cell_type == "code"
                    and not {"solution", "grade"} & {k for k, v in cell.metadata.get("nbgrader", {}).items() if v}
                    for error in _errors(cell)]
    return Grading(student, graded.name, scores, other_errors, str(graded), feedback)


def _other_error(index: int, cell, error: dict, limits: Limits) -> str:
    """An error in a cell outside the exercises (a set-up cell, or a whole notebook's walk-through), by number."""
    name = cell.metadata.get("nbgrader", {}).get("grade_id")
    where = f"cell {index}" + (f" ({name})" if name else "")
    if error["ename"] in TIMEOUTS:
        return f"{where}: ran past {limits.seconds(cell)} s"
    return f"{where}: {error['ename']}: {error['evalue']}"[:200]


def _why(points, most, answer, check, limits: Limits) -> str:
    """Why an exercise lost points (the answer cell's error first: it explains the check's), and whether a human
    should look at its answer."""
    flagged = answer is not None and GRADER_PARTS.search(answer.source)
    look = f"check by hand: the answer cell reaches for the grader ({flagged.group(0)})" if flagged else ""
    if points is None or points >= most:
        return look
    for cell, what in ((answer, "the answer cell"), (check, "the check")):
        for error in _errors(cell) if cell is not None else []:
            if error["ename"] in TIMEOUTS:
                why = f"timeout: {what} ran past {limits.seconds(cell)} s (an answer that never returns?)"
            elif error["ename"] == "NotImplementedError" and not error["evalue"]:
                why = "not answered: the answer is still the stub that raises NotImplementedError"
            elif cell is answer:
                why = f"error in the answer cell: {error['ename']}: {error['evalue']}"
            elif error["ename"] == "NotAllowed":
                why = f"not allowed: {error['evalue']}"
            elif error["ename"] == "AssertionError":
                why = f"wrong answer: {error['evalue'] or _failing_line(error)}"
            else:
                why = f"error: {error['ename']}: {error['evalue']}"
            return "; ".join(filter(None, [why[:300], look]))
    return "; ".join(filter(None, ["no points, and no error in its cells", look]))


def _errors(cell) -> list[dict]:
    return [out for out in cell.get("outputs", []) if out.get("output_type") == "error"]


def _failing_line(error: dict) -> str:
    """The line IPython's traceback marks (``---->``) for an assertion without a message."""
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line) for entry in error.get("traceback", []) for line in entry.splitlines()]
    marked = [line.split("---->", 1)[1].strip() for line in lines if "---->" in line]
    return f"failed {marked[-1].lstrip('0123456789 ')}" if marked else "a check failed"


# ---- what the teacher reads -------------------------------------------------------------------------------------

def write_gradebook(report: Report, out: Path) -> None:
    """``gradebook.csv``: a row per student, a column per exercise (blank: not graded or left to manual grading);
    ``reasons.csv``: a row per student and exercise, with why it lost points, then the errors outside the exercises
    and the files skipped."""
    columns = sorted({s.exercise: s.max_points for g in report.gradings for s in g.scores}.items())
    rows = {student: {} for student in report.students()}
    for g in report.gradings:
        rows[g.student].update({s.exercise: s.points for s in g.scores})
    with open(out / "gradebook.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["student", *(name for name, _ in columns), "total", "max_points"])
        for student, points in rows.items():
            cells = ["" if points.get(name) is None else f"{points[name]:g}" for name, _ in columns]
            writer.writerow([student, *cells, f"{sum(v or 0 for v in points.values()):g}",
                             f"{sum(most for _, most in columns):g}"])
    with open(out / "reasons.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["student", "notebook", "exercise", "points", "max_points", "why"])
        for g in report.gradings:
            for s in g.scores:
                writer.writerow([g.student, g.notebook, s.exercise, "" if s.points is None else f"{s.points:g}",
                                 f"{s.max_points:g}", s.why])
            writer.writerows([g.student, g.notebook, "", "", "", f"error outside the exercises, {err}"]
                             for err in g.other_errors)
        for s in report.skipped:
            writer.writerow([s.student, Path(s.path).name, "", "", "", f"skipped: {s.why}"])


def points_table(report: Report) -> str:
    """A table per student: each exercise's points and why it lost them, the total; then what was skipped."""
    lines = []
    for student in report.students():
        own = [g for g in report.gradings if g.student == student]
        lines.append(student)
        for g in own:
            lines += [f"  {g.notebook:<50}{s.exercise:<24}{_points(s):>9}  {s.why}".rstrip() for s in g.scores]
            lines += [f"  {g.notebook:<50}error outside the exercises, {err}" for err in g.other_errors]
        lines += [f"  skipped {Path(s.path).name}: {s.why}" for s in report.skipped if s.student == student]
        manual = sum(s.max_points for g in own for s in g.scores if s.points is None)
        total = f"{sum(g.points for g in own):g} / {sum(g.max_points for g in own):g}" if own else "nothing graded"
        lines.append(f"  {'total':<74}{total:>9}" + (f"  ({manual:g} to grade by hand)" if manual else ""))
    lines += [f"skipped {s.path}: {s.why}" for s in report.skipped if not s.student]
    lines.append(f"gradebook.csv, reasons.csv, and per student the autograded notebooks and their feedback pages "
                 f"(.html) are in {report.out}")
    return "\n".join(lines)


def _points(score: ExerciseScore) -> str:
    return f"{'-' if score.points is None else f'{score.points:g}'} / {score.max_points:g}"


def report_json(report: Report) -> str:
    return json.dumps({"students": report.students(), "gradings": [asdict(g) for g in report.gradings],
                       "skipped": [asdict(s) for s in report.skipped], "out": report.out}, allow_nan=False)
