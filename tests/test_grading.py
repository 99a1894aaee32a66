"""Grading a class end to end (issue 33): one real `assignments grade CLASS --exercises-only` run over a folder of
students, as nbgrader's submitted/ holds them, on the sheets of notebooks 00 and 01.

The class holds a representative part of the submission bank (tests/submission_bank.py; test_assignments.py scores
all of it in-process, as the autograder does): the correct answers, the obvious mistakes, the shortcuts and the
tampering of notebook 01's exercises and tampering of notebook 00's (with a syntax error), beside an untouched
student version, a notebook broken three ways (an answer that takes more memory than --memory-gb allows, a deleted
grade cell, an answer that never returns) and a student who handed in a misnamed file, a file that is no notebook
and notebook 00 under 01's name beside the instructor's version of 00.
Each student gets their points and why they lost them, in the table, the gradebook and the feedback; a bad file is
skipped without costing the others their grades. A kernel per sheet per student is the expensive part (seconds
each): the run grades eight sheets, two students at a time.
"""

import csv
import os
import shutil
import subprocess
import sys

import pytest
from submission_bank import BANK, write_submission  # tests/ is on sys.path (rootdir-relative import)

from minimodels import assignments
from minimodels.assignments import NOTEBOOKS

SHEETS = ("00_video_world", "01_factorized_video_vit")
LOOP = "def middle_frames(total, num_frames):\n    while True:  # never returns\n        pass"
HOG = "everything = np.ones(8 * 2**30, dtype=np.uint8)  # past --memory-gb\n" + BANK["00a-cue-at"]["correct"]


def _bank_class(sheets, students):
    """students/<name>/<sheet>.ipynb from the bank: every exercise of sheet 01 answered as ``kind`` says."""
    ids = [e.grade_id for e in assignments.exercises_of(NOTEBOOKS / "01_factorized_video_vit.ipynb")]
    pick = {"bank-correct": lambda g: BANK[g]["correct"], "shortcut": lambda g: BANK[g]["shortcut"],
            "obvious-mistakes": lambda g: next(iter(BANK[g]["wrong"].values()))}
    for name, answer in pick.items():
        (students / name).mkdir()
        write_submission(sheets / "01_factorized_video_vit.ipynb", {g: answer(g) for g in ids},
                         students / name / "01_factorized_video_vit.ipynb")


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("class")
    (root / "source").mkdir()
    for sheet in SHEETS:
        shutil.copy(NOTEBOOKS / f"{sheet}.ipynb", root / "source")
    assignments.build(root / "sheets", source_dir=root / "source", exercises=True)
    student, instructor, students = root / "sheets" / "student", root / "sheets" / "instructor", root / "submissions"
    for name in ("untouched", "mallory", "carol", "erin"):
        (students / name).mkdir(parents=True)
    shutil.copy(student / "00_video_world.ipynb", students / "untouched")
    _bank_class(student, students)
    write_submission(student / "00_video_world.ipynb", {"00a-cue-at": BANK["00a-cue-at"]["tamper"],
                                                        "00b-direction": "def direction_from_positions(xs, ys)\n",
                                                        "00c-middle-frames": BANK["00c-middle-frames"]["tamper"]},
                     students / "mallory" / "00_video_world.ipynb")
    issue_example = "torch.equal = lambda *a, **k: True\n" + BANK["01b-temporal-view"]["wrong"][
        "the batch read as (t b): frames of different clips mixed up"]
    write_submission(student / "01_factorized_video_vit.ipynb",
                     {"01a-unpatchify": BANK["01a-unpatchify"]["correct"], "01b-temporal-view": issue_example,
                      "01c-soft-cap-mask": BANK["01c-soft-cap-mask"]["correct"]},
                     students / "mallory" / "01_factorized_video_vit.ipynb")
    write_submission(student / "00_video_world.ipynb", {"00a-cue-at": HOG, "00c-middle-frames": LOOP},
                     students / "carol" / "00_video_world.ipynb", drop=("00b-direction",))
    shutil.copy(instructor / "00_video_world.ipynb", students / "erin")
    shutil.copy(student / "00_video_world.ipynb", students / "erin" / "01_factorized_video_vit.ipynb")
    (students / "erin" / "02_videoprism_contrastive.ipynb").write_text("my answers are in the email\n")
    shutil.copy(instructor / "00_video_world.ipynb", students / "erin" / "homework.ipynb")
    out = root / "graded"
    run = subprocess.run([sys.executable, "-m", "minimodels", "assignments", "grade", "--exercises-only",
                          str(students), "--out", str(out), "--workers", "2", "--timeout", "5", "--memory-gb", "6"],
                         capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert run.returncode == 0, run.stderr
    with open(out / "reasons.csv") as f:
        reasons = {(r["student"], r["exercise"] or r["notebook"]): r for r in csv.DictReader(f)}
    with open(out / "gradebook.csv") as f:
        gradebook = {r["student"]: r for r in csv.DictReader(f)}
    return run.stdout, reasons, gradebook, out


EXPECTED = {  # (student, exercise): points, what the reason says
    **{("untouched", g): ("0", "not answered") for g in ("00a-cue-at", "00b-direction", "00c-middle-frames")},
    **{("bank-correct", g): (p, "") for g, p in (("01a-unpatchify", "2"), ("01b-temporal-view", "2"),
                                                ("01c-soft-cap-mask", "3"))},
    **{("obvious-mistakes", g): ("0", "wrong answer") for g in ("01a-unpatchify", "01b-temporal-view",
                                                                 "01c-soft-cap-mask")},
    ("shortcut", "01a-unpatchify"): ("0", "not allowed: unpatchify calls minimodels.nn.video_vit.patchify"),
    ("shortcut", "01b-temporal-view"): ("0", "not allowed: temporal_view calls einops"),
    ("shortcut", "01c-soft-cap-mask"): ("0", "not allowed: capped_attention calls minimodels.nn.attention."),
    ("mallory", "00a-cue-at"): ("0", "wrong answer"),
    ("mallory", "00b-direction"): ("0", "error in the answer cell: SyntaxError"),
    ("mallory", "00c-middle-frames"): ("0", "wrong answer"), ("mallory", "01a-unpatchify"): ("2", ""),
    ("mallory", "01b-temporal-view"): ("0", "wrong answer"), ("mallory", "01c-soft-cap-mask"): ("3", ""),
    ("carol", "00a-cue-at"): ("0", "error in the answer cell: MemoryError"),
    ("carol", "00b-direction"): ("", "grade cell missing: needs manual grading"),
    ("carol", "00c-middle-frames"): ("0", "timeout: the check ran past 5 s"),
    ("erin", "00a-cue-at"): ("2", ""), ("erin", "00b-direction"): ("2", ""), ("erin", "00c-middle-frames"): ("3", ""),
}
SKIPPED = {
    ("erin", "01_factorized_video_vit.ipynb"): "skipped: this is not notebook 01 (it holds the exercises 00a-cue-at",
    ("erin", "02_videoprism_contrastive.ipynb"): "skipped: this is not notebook 02: not a readable notebook",
    ("erin", "homework.ipynb"): "skipped: no course notebook of that name",
}


def test_every_exercise_of_every_student_gets_its_points_and_every_zero_a_reason(graded):
    _, reasons, _, _ = graded
    got = {key: (row["points"], row["why"]) for key, row in reasons.items() if key not in SKIPPED}
    assert set(got) == set(EXPECTED)
    for key, (points, why) in EXPECTED.items():
        assert got[key][0] == points, f"{key}: {got[key]}"
        assert why in got[key][1], f"{key}: {got[key][1]!r} does not say {why!r}"
        if points in ("0", ""):
            assert got[key][1], f"{key}: a zero without a reason"
    for key, why in SKIPPED.items():
        assert reasons[key]["why"].startswith(why), reasons[key]["why"]


def test_the_gradebook_has_a_row_per_student_and_a_column_per_exercise(graded):
    _, _, gradebook, _ = graded
    assert set(gradebook) == {s for s, _ in EXPECTED}
    assert list(gradebook["carol"])[1:-2] == sorted({g for _, g in EXPECTED})  # exercise columns, then the totals
    assert gradebook["carol"]["00b-direction"] == "" and gradebook["carol"]["total"] == "0"
    assert gradebook["mallory"]["total"] == "5" and gradebook["erin"]["total"] == "7"
    assert gradebook["erin"]["01a-unpatchify"] == ""  # not handed in (under that name): not graded


def test_each_student_gets_the_autograded_notebook_and_a_feedback_page(graded):
    import nbformat

    _, _, _, out = graded
    for student, exercise in EXPECTED:
        sheet = next(s for s in SHEETS if s.startswith(exercise[:2]))
        assert (out / student / f"{sheet}.ipynb").is_file() and (out / student / f"{sheet}.html").is_file()
    carol = nbformat.read(out / "carol" / "00_video_world.ipynb", as_version=4)
    errors = [o["ename"] for c in carol.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert "MemoryError" in errors and "CellTimeoutError" in errors, "the tracebacks stay in the autograded notebook"
    assert "wrong answer" in (out / "mallory" / "01_factorized_video_vit.html").read_text() or \
        "AssertionError" in (out / "mallory" / "01_factorized_video_vit.html").read_text()
    assert not (out / "erin" / "homework.ipynb").exists()


def test_the_table_tells_students_apart_and_names_what_was_skipped(graded):
    table, _, _, out = graded
    blocks = {line.strip() for line in table.splitlines() if line and not line.startswith(" ")}
    assert {s for s, _ in EXPECTED} <= blocks
    assert "  skipped homework.ipynb: no course notebook of that name" in table
    assert "(2 to grade by hand)" in table and str(out) in table
