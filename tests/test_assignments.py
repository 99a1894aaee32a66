"""The notebooks as nbgrader assignments (issues 18 and 33): every notebook has at least three pointed exercises, the
student versions hold no solution and no hidden test, and grading can be trusted: a bank of submissions
(``submission_bank.py``) holds for every exercise a correct answer written from its text, wrong ones, a shortcut
through the library and an attempt at fooling the checks, and each scores what it should.

Grading runs on the Exercises sections alone (``--exercises-only``), which stand alone by design: the suite never
reruns a notebook's training to test its grading (nbval already runs every notebook, hidden tests included). The
whole bank is scored in-process, as the autograder scores a notebook: the set-up, then each answer and each grade
cell in order, in one namespace. The real command grades a class end to end in one run (tests/test_grading.py).
"""

import ast
import json
import re
import shutil
from pathlib import Path

import pytest
from submission_bank import BANK  # tests/ is on sys.path (rootdir-relative import)

from minimodels import assignments
from minimodels.assignments import NOTEBOOKS, exercise_section, exercises
from minimodels.cli import main
from minimodels.exercise_checks import Referee

COURSE = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
SECRET = re.compile(r"### (?:BEGIN|END) (?:SOLUTION|HIDDEN TESTS)")


def test_every_notebook_has_three_pointed_exercises_with_hidden_tests_and_a_bank():
    ids = []
    for notebook in COURSE:
        _, found = exercises(notebook)
        assert len(found) >= 3, f"{notebook.name}: {len(found)} exercises"
        for exercise in found:
            assert exercise.points > 0 and exercise.grade_id.startswith(notebook.name[:2])
            assert "### BEGIN SOLUTION" in exercise.answer and "### END SOLUTION" in exercise.answer
            assert "### BEGIN HIDDEN TESTS" in exercise.check, f"{exercise.grade_id}: no hidden tests"
        ids += [e.grade_id for e in found]
    assert len(ids) == len(set(ids)), "grade ids must be unique across the course"
    assert set(BANK) == set(ids), "every exercise needs its submissions in the bank"
    for grade_id, variants in BANK.items():
        assert len(variants["wrong"]) >= 3, f"{grade_id}: the obvious mistake and two subtler ones"


@pytest.mark.parametrize("notebook", COURSE, ids=lambda p: p.stem)
def test_the_exercises_come_last_and_markdown_never_holds_a_marker(notebook):
    import nbformat

    cells = nbformat.read(notebook, as_version=4).cells
    section = exercise_section(notebook).cells
    before = cells[: len(cells) - len(section)]
    assert not any("nbgrader" in c.metadata for c in before), "nbgrader cells outside the Exercises section"
    for cell in cells:
        if cell.cell_type == "markdown":
            assert not any(marker in cell.source for marker in MARKERS), cell.source[:80]
    meta = [c.metadata["nbgrader"] for c in section if "nbgrader" in c.metadata]
    assert all(m["locked"] != m["solution"] for m in meta), "answers unlocked, everything else locked"


_setups = {}


def _setup(notebook) -> tuple[dict, Referee]:
    """The section's set-up, executed once per notebook in this process; each use gets a copy of its namespace and
    a referee of its own, as the set-up's last line makes one."""
    if notebook not in _setups:
        namespace = {}
        for source in exercises(notebook)[0]:
            exec(compile(source, f"{notebook.name}:setup", "exec"), namespace)
        _setups[notebook] = namespace
    namespace = dict(_setups[notebook])
    namespace["_check"] = referee = Referee(namespace)
    return namespace, referee


def _defined(source: str) -> set[str]:
    """The names a cell assigns at its top level (functions, classes, imports and plain assignments)."""
    names = set()
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        for target in ast.walk(node) if isinstance(node, (ast.Assign, ast.For, ast.AugAssign, ast.With)) else ():
            if isinstance(target, ast.Name) and isinstance(target.ctx, ast.Store):
                names.add(target.id)
    return names


def _imports(source: str) -> set[str]:
    """The names a cell's import statements bind (a cell with IPython magics has none worth reading)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    return {(a.asname or a.name).split(".")[0] for node in ast.walk(tree)
            if isinstance(node, (ast.Import, ast.ImportFrom)) for a in node.names}


@pytest.mark.parametrize("notebook", COURSE, ids=lambda p: p.stem)
def test_the_set_up_hands_out_no_answer_and_no_grade_cell_clobbers_it(notebook):
    """The set-up imports none of the functions the hidden tests forbid, ends by making the referee, defines no name
    an answer defines (the referee would put it back), and no grade cell reassigns a name the set-up made (the next
    visible check would read it). In the whole notebook the walk-through's imports are the referee's too: none may
    bear an answer's name."""
    import nbformat

    setup, found = exercises(notebook)
    cells = nbformat.read(notebook, as_version=4).cells
    walk_through = cells[: len(cells) - len(exercise_section(notebook).cells)]
    imported = {n for c in walk_through if c.cell_type == "code" for n in _imports(c.source)}
    namespace, _ = _setup(notebook)
    forbidden = {name for e in found for name in re.findall(r'"((?:minimodels|torch)\.[\w.]+)"', e.check)}
    for dotted in forbidden:
        module, _, name = dotted.rpartition(".")
        handed = [k for k, v in namespace.items() if getattr(v, "__module__", None) == module and
                  getattr(v, "__name__", None) == name]
        assert not handed, f"the set-up hands out {dotted} as {handed}, which a hidden test forbids"
    assert setup[-1].rstrip().splitlines()[-1].startswith("_check = Referee(globals())")
    made = {n for n in set().union(*map(_defined, setup)) if not n.startswith("_")}  # "_": a throwaway
    for e in found:
        answer_names = {n for n in _defined(SECRET.sub("", e.answer))}
        assert not answer_names & made, f"{e.grade_id}: the answer's {answer_names & made} is a set-up name"
        assert not answer_names & imported, f"{e.grade_id}: the walk-through imports {answer_names & imported}"
        assert not _defined(e.check) & made, f"{e.grade_id}: the grade cell reassigns {_defined(e.check) & made}"


def _score(notebook, answers: dict[str, str]) -> dict[str, str]:
    """What the autograder does to a submission, in-process: the set-up, then each exercise's answer (``answers``,
    else the bank's correct one) and its grade cell, in order. Returns {grade id: why it failed}. Whatever an
    answer reassigned is put back afterwards, as a fresh kernel would start."""
    (namespace, referee), failed = _setup(notebook), {}
    try:
        for exercise in exercises(notebook)[1]:
            answer = answers.get(exercise.grade_id, BANK[exercise.grade_id]["correct"])
            try:
                exec(compile(answer, f"{exercise.grade_id}:answer", "exec"), namespace)
                exec(compile(exercise.check, exercise.grade_id, "exec"), namespace)
            except Exception as err:  # noqa: BLE001 - any failure of a check costs its points, as in the autograder
                failed[exercise.grade_id] = f"{type(err).__name__}: {err}"
    finally:
        referee.restore()  # torch, numpy and the library as they were: the next submission's kernel is a fresh one
    return failed


@pytest.mark.parametrize("notebook", COURSE, ids=lambda p: p.stem)
def test_the_bank_scores_what_it_should(notebook):
    """Right answers score every point; each wrong answer and each shortcut costs its exercise's points (all of an
    exercise's k-th wrong answers in one submission); each tampering answer costs its own exercise's points and no
    other's, whatever it reassigned."""
    own = [e.grade_id for e in exercises(notebook)[1]]
    assert _score(notebook, {}) == {}, "the bank's correct answers lose points"
    assert _score(notebook, {g: e.answer for g in own for e in exercises(notebook)[1] if e.grade_id == g}) == {}
    most = max(len(BANK[g]["wrong"]) for g in own)
    for k in range(most):
        wrong = {g: list(BANK[g]["wrong"].values())[k] for g in own if k < len(BANK[g]["wrong"])}
        assert set(_score(notebook, wrong)) == set(wrong), f"wrong answers #{k + 1} that scored: " \
            f"{[list(BANK[g]['wrong'])[k] for g in set(wrong) - set(_score(notebook, wrong))]}"
    assert set(_score(notebook, {g: BANK[g]["shortcut"] for g in own})) == set(own), "a shortcut scored"
    for grade_id in own:
        assert set(_score(notebook, {grade_id: BANK[grade_id]["tamper"]})) == {grade_id}, f"{grade_id}: tampering"


def test_the_issues_examples_cost_their_points():
    """The answers issue 33 found wrongly graded, by name: a vertical move read by its x step, a (1,)-shaped loss, the
    library called where the text forbids it, einops where the text forbids it, a tensor where a float is asked; and
    overriding torch.equal in an answer cell scores nothing."""
    def reason(notebook_prefix, answers):
        return _score(next(p for p in COURSE if p.name.startswith(notebook_prefix)), answers)

    assert "the larger step decides" in reason("00", {"00b-direction": BANK["00b-direction"]["wrong"][
        "x decides whenever it moved at all"]})["00b-direction"]
    assert "a scalar tensor" in reason("02", {"02a-infonce": BANK["02a-infonce"]["wrong"][
        "shape (1,), not a scalar"]})["02a-infonce"]
    assert "calls torch.nn.functional.cross_entropy" in reason("02", {"02a-infonce": BANK["02a-infonce"]["shortcut"]})[
        "02a-infonce"]
    assert "calls einops" in reason("01", {"01b-temporal-view": BANK["01b-temporal-view"]["shortcut"]})[
        "01b-temporal-view"]
    assert "calls minimodels.nn.video_vit.patchify" in reason("01", {"01a-unpatchify": BANK["01a-unpatchify"][
        "shortcut"]})["01a-unpatchify"]
    assert "a float" in reason("02", {"02c-v2t-recall": BANK["02c-v2t-recall"]["wrong"]["a tensor, not a float"]})[
        "02c-v2t-recall"]
    tampered = "torch.equal = lambda *a, **k: True\n" + BANK["01b-temporal-view"]["wrong"][
        "the batch read as (t b): frames of different clips mixed up"]
    assert set(reason("01", {"01b-temporal-view": tampered})) == {"01b-temporal-view"}


def test_a_correct_prompt_reader_needs_no_rule_the_text_does_not_state():
    """Issue 33's 05b lost a correct answer's points on an empty subtitle, a case its text never named. Its
    successor, reading a prompt back, is graded on prompts the text describes; and a subtitle never reads back as
    an empty string: the library writes no <Cap> for one."""
    assert _score(COURSE[5], {}) == {}
    check = next(e.check for e in exercises(COURSE[5])[1] if e.grade_id == "05b-read-prompt")
    assert '""' not in check


# ---- the handouts -----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The full notebooks' versions, built twice: once from the command line, once through the function."""
    out = tmp_path_factory.mktemp("assignments")
    assert main(["assignments", "build", "--out", str(out / "full")]) == 0
    first = {kind: sorted((out / "full" / kind).glob("*.ipynb")) for kind in ("student", "instructor")}
    return first, assignments.build(out / "again"), out


def test_student_versions_hold_no_solution_no_hidden_test_and_no_output(built):
    import nbformat

    first, _, _ = built
    assert [p.name for p in first["student"]] == [p.name for p in COURSE]
    for student, notebook in zip(first["student"], COURSE):
        text = student.read_text()
        for marker in MARKERS:
            assert marker not in text, f"{student.name}: {marker}"
        # what the notebook shows anyway (its walk-through, visible checks) is no secret where a hidden part repeats it
        public = "\n".join(part for c in nbformat.read(notebook, as_version=4).cells
                           for part in SECRET.split(c.source)[::2])
        for exercise in exercises(notebook)[1]:
            secret = SECRET.split(exercise.answer)[1::2] + SECRET.split(exercise.check)[1::2]
            for line in "\n".join(secret).splitlines():
                if len(line.strip()) > 12 and line.strip() not in public:  # short lines may well appear elsewhere
                    assert json.dumps(line.strip())[1:-1] not in text, f"{student.name} gives away: {line.strip()}"
        cells = nbformat.read(student, as_version=4).cells
        assert not any(c.get("outputs") for c in cells if c.cell_type == "code")
        assert "raise NotImplementedError()" in text


def test_every_student_version_scores_nothing_once_its_grade_cells_are_put_back(built):
    """What the autograder does to a student version handed back untouched, in-process for every notebook: its
    answer cells (nbgrader's stubs) run, then each grade cell as the source has it; every check must fail."""
    import nbformat

    first, _, _ = built
    for student, notebook in zip(first["student"], COURSE):
        stubs = {c.metadata["nbgrader"]["grade_id"]: c.source for c in nbformat.read(student, as_version=4).cells
                 if c.metadata.get("nbgrader", {}).get("solution")}
        answers = {e.grade_id: stubs[e.grade_id[:3] + "-answer"] for e in exercises(notebook)[1]}
        assert all("raise NotImplementedError()" in a for a in answers.values()), student.name
        assert set(_score(notebook, answers)) == set(answers), f"{student.name}: points for untouched answers"


def test_building_twice_gives_the_same_bytes(built):
    first, again, _ = built
    for kind in ("student", "instructor"):
        assert [p.read_bytes() for p in first[kind]] == [p.read_bytes() for p in again[kind]]


def test_building_into_a_used_folder_needs_force(built, capsys):
    """Issue 35: build replaced what --out's student/ and instructor/ held without a word; now it refuses."""
    _, _, out = built
    mine = out / "full" / "student" / "my-notes.txt"
    mine.write_text("mine")
    assert main(["assignments", "build", "--out", str(out / "full")]) == 2
    assert "already holds student, instructor; give a new folder, or --force" in capsys.readouterr().err
    assert mine.read_text() == "mine"
    shutil.rmtree(out / "full" / "student")
    (out / "full" / "student").mkdir()
    mine.write_text("mine")


def test_a_new_gradebook_is_stamped_with_nbgrader_s_newest_schema_without_a_subprocess(tmp_path, monkeypatch):
    """nbgrader stamps a new gradebook by running the `alembic` program (3 s: it imports nbgrader again); the course
    reads the same head in-process. It must be the newest of nbgrader's migration scripts, read here from their
    text: the one revision that no other script names as its parent."""
    import sqlite3

    import nbgrader.api
    from nbgrader.dbutil import ALEMBIC_DIR

    def refuse(*args, **kwargs):
        raise AssertionError(f"nbgrader ran a subprocess: {args}")

    monkeypatch.setattr(nbgrader.api.sp, "check_output", refuse)
    monkeypatch.setattr(nbgrader.api, "get_alembic_version", nbgrader.api.get_alembic_version)  # undone after
    assignments._course(tmp_path).gradebook.close()
    with sqlite3.connect(tmp_path / "gradebook.db") as db:
        stamped = db.execute("SELECT version_num FROM alembic_version").fetchall()
    scripts = [p.read_text() for p in (Path(ALEMBIC_DIR) / "versions").glob("*.py")]
    revision = {re.search(r"^revision = '(\w+)'", s, re.M)[1]: re.search(r"^down_revision = '?(\w+)'?", s, re.M)[1]
                for s in scripts}
    (newest,) = set(revision) - set(revision.values())
    assert len(revision) >= 6 and stamped == [(newest,)]


def test_grade_names_a_submission_it_cannot_match(tmp_path, capsys):
    stray = tmp_path / "alice" / "homework.ipynb"
    stray.parent.mkdir()
    shutil.copy(COURSE[0], stray)
    assert main(["assignments", "grade", str(stray), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert "homework.ipynb: no course notebook of that name (keep the student version's: 00_video_world.ipynb" in err
    assert len(err.splitlines()) == 1 and not (tmp_path / "out").exists()


def test_an_answer_that_reaches_for_the_referee_is_flagged_for_a_human_look():
    """The referee cannot stop an answer cell that replaces it; the grader points the teacher at such a cell, full
    marks or not, and names the check a failing one failed."""
    from nbformat.v4 import new_code_cell, new_output

    reaching = new_code_cell("_check.same = lambda *a: True\ndef f(x):\n    return x")
    traceback = ["\x1b[0;31m----> 1\x1b[0m assert f(1) == 2"]  # IPython marks the failing line
    check = new_code_cell("assert f(1) == 2", outputs=[new_output("error", ename="AssertionError", evalue="",
                                                                  traceback=traceback)])
    limits = assignments.Limits()
    assert assignments._why(2, 2, reaching, new_code_cell("pass"), limits) == \
        "check by hand: the answer cell reaches for the grader (_check)"
    assert assignments._why(0, 2, new_code_cell("def f(x):\n    return x"), check, limits) == \
        "wrong answer: failed assert f(1) == 2"


def test_the_json_report_holds_every_grading_and_skip(tmp_path):
    report = assignments.Report([assignments.Grading("ann", "00_video_world.ipynb", [
        assignments.ExerciseScore("00a-cue-at", 2, 2), assignments.ExerciseScore("00b-direction", None, 2,
                                                                                 "grade cell missing")])],
        [assignments.Skipped("ann", "x/homework.ipynb", "no course notebook")], str(tmp_path))
    parsed = json.loads(assignments.report_json(report))
    assert parsed["students"] == ["ann"] and parsed["skipped"][0]["why"] == "no course notebook"
    assert [s["points"] for s in parsed["gradings"][0]["scores"]] == [2, None]
    assignments.write_gradebook(report, tmp_path)
    assert (tmp_path / "gradebook.csv").read_text().splitlines() == [
        "student,00a-cue-at,00b-direction,total,max_points", "ann,2,,2,4"]


def test_grade_without_submissions_says_what_to_name(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["assignments", "grade", "--exercises-only"])
    assert stop.value.code == 2
    assert "the following arguments are required: SUBMISSIONS" in capsys.readouterr().err


def test_a_failing_set_up_is_named_with_the_exercises_it_took_down(tmp_path):
    """The set-up is a locked nbgrader cell, not an exercise: when it fails (here, past its time limit), the report
    names it, and the exercises say what they met."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    setup = new_code_cell("import time; time.sleep(999)", outputs=[new_output("error", ename="CellTimeoutError",
                                                                             evalue="", traceback=[])])
    setup.metadata["nbgrader"] = {"grade_id": "00-setup", "locked": True, "grade": False, "solution": False}
    check = new_code_cell("_check.answer(f)", outputs=[new_output("error", ename="NameError",
                                                                  evalue="name '_check' is not defined", traceback=[])])
    check.metadata["nbgrader"] = {"grade_id": "00a-cue-at", "grade": True, "solution": False, "locked": True}
    nbformat.write(new_notebook(cells=[setup, check]), tmp_path / "00_video_world.ipynb")
    grading = assignments._read_grading("ann", tmp_path / "00_video_world.ipynb", {"00a-cue-at": (0, 2)},
                                        assignments.Limits(other_seconds=120), "")
    assert grading.other_errors == ["cell 0 (00-setup): ran past 120 s"]
    assert grading.scores[0].why == "error: NameError: name '_check' is not defined"
