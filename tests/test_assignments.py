"""The notebooks as nbgrader assignments (issue 18): every notebook has at least three pointed exercises, the student
versions hold no solution and no hidden test, the autograder gives the instructor versions full marks and the
student versions none, and a typical wrong answer to each exercise loses that exercise's points and only those.

Grading runs on the Exercises sections alone (``--exercises-only``), which stand alone by design: the suite never
reruns a notebook's training to test its grading (nbval already runs every notebook, hidden tests included).
nbgrader's autograder runs end to end (a kernel per sheet) on two notebooks; for every notebook, the same scoring is
done here in-process: the student version's answers with the grade cells put back as nbgrader puts them back.
"""

import atexit
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from minimodels import assignments
from minimodels.assignments import NOTEBOOKS, exercise_section, exercises
from minimodels.cli import main

COURSE = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
AUTOGRADED = [p for p in COURSE if p.name[:2] in ("00", "06")]  # the autograder end to end: two sheets per kind
MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")

# One typical wrong answer per exercise, keyed by the exercise's grade cell: each must fail its own check and no other.
WRONG_ANSWERS = {
    "00a-cue-at": '''def cue_at(cues, t):  # the last cue that started, even after it ended
    shown = None
    for cue in cues:
        if cue["start"] <= t:
            shown = cue["text"]
    return shown''',
    "00b-direction": '''def direction_from_positions(xs, ys):  # y read as growing upwards
    dx, dy = xs[1] - xs[0], ys[1] - ys[0]
    if abs(dx) > abs(dy):
        return "right" if dx > 0 else "left"
    return "up" if dy > 0 else "down"''',
    "00c-pick-frames": '''def pick_frames(total, num_frames):  # rounded, not floored
    return np.round(np.arange(num_frames) * total / num_frames).astype(int)''',
    "01a-patchify": '''def patchify_channels_first(video, p):  # channels flattened first: (c p q) instead of (p q c)
    return rearrange(video, "b t c (gh p) (gw q) -> b t (gh gw) (c p q)", p=p, q=p)''',
    "01b-temporal-view": '''def temporal_view(x, B):  # the batch read as (t b): frames of different clips mixed up
    BT, N, D = x.shape
    return x.reshape(BT // B, B, N, D).permute(1, 2, 0, 3).reshape(B * N, BT // B, D)''',
    "01c-soft-cap": '''def capped_attention(q, k, v, cap):  # capped after the softmax: the weights, not the logits
    weights = (q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])).softmax(dim=-1)
    if cap is not None:
        weights = cap * torch.tanh(weights / cap)
    return weights @ v''',
    "02a-infonce": '''def infonce_from_logits(logits):  # log(sum(exp)) instead of logsumexp: overflows at low temperature
    diagonal = logits.diagonal()
    video_to_text = (logits.exp().sum(dim=1).log() - diagonal).mean()
    text_to_video = (logits.exp().sum(dim=0).log() - diagonal).mean()
    return (video_to_text + text_to_video) / 2''',
    "02b-tube-mask": '''def tube_mask(batch, frames, tokens_per_frame, drop_ratio, generator):  # True where dropped, not kept
    kept = tube_keep(batch, tokens_per_frame, drop_ratio, generator)
    mask = torch.ones(batch, tokens_per_frame, dtype=torch.bool)
    mask.scatter_(1, kept, False)
    return mask[:, None, :].expand(batch, frames, tokens_per_frame)''',
    "02c-v2t-recall": '''def video_to_text_recall(similarity, k):  # logits transposed: ranks the videos of each text (text -> video)
    best = similarity.T.topk(k, dim=1).indices
    found = (best == torch.arange(len(similarity))[:, None]).any(dim=1)
    return 100.0 * found.float().mean().item()''',
    "03a-shuffle-positions": '''def shuffle_then_position(x, perm, pos):  # positions added before the shuffle: they travel with the content
    with_positions = x + pos
    return torch.stack([row[order] for row, order in zip(with_positions, perm)])''',
    "03b-token-targets": '''def token_distances(decoder, student_tokens, seen, perm, teacher_tokens):  # targets permuted with the inputs
    predicted = decoder(student_tokens, seen, perm)
    targets = teacher_tokens.gather(1, perm[..., None].expand_as(teacher_tokens))  # shuffled like the inputs
    return cosine_distance(predicted, targets)''',
    "03c-bevt-span": '''def bevt_visible(hidden_2d, frames, start, length):  # the span cut at the clip's end instead of wrapping
    in_span = torch.zeros(frames, dtype=torch.bool)
    in_span[start:start + length] = True
    return ~(in_span[:, None] & hidden_2d[None, :])''',
    "03d-global-loss": '''def global_distillation_loss(model, teacher, video, keep):  # the student sees the whole clip, not the kept tokens
    clip_embedding = model.global_(model.student(video), torch.ones_like(keep.flatten(1)))
    return cosine_distance(clip_embedding, teacher.encode_video(video)).mean()''',
    "04a-teacher-forcing": '''def teacher_forcing(word_ids, start_id, end_id, pad_id, length):  # labels not shifted: the decoder is asked for the token it reads
    inputs, targets = [], []
    for words in word_ids:
        words = list(words)[: length - 1]
        padding = length - 1 - len(words)
        inputs.append([start_id, *words] + [pad_id] * padding)
        targets.append([start_id, *words] + [IGNORE] * padding)
    return torch.tensor(inputs), torch.tensor(targets)''',
    "04b-pairs": '''def bidirectional_pairs(tokenizer, present, future, text_length, decoder_length):  # [BOS-F] where [BOS-B] belongs
    out = {}
    for direction, read, write in (("forward", present, future), ("backward", future, present)):
        enc_ids, enc_keep = tokenize(tokenizer, read, text_length)
        dec_in, dec_mask, dec_labels = decoder_tensors(tokenizer, write, "[BOS-F]", decoder_length)
        out[direction] = {"ids": enc_ids, "keep": enc_keep, "dec_ids": dec_in, "dec_keep": dec_mask,
                          "labels": dec_labels}
    return out''',
    "04c-generation-loss": '''def bidirectional_loss(model, video, pairs):  # shifted twice: the labels are already the input shifted by one
    frame_tokens = model.video(video)
    losses = []
    for direction in ("forward", "backward"):
        p = pairs[direction]
        scores = model.decoder(p["dec_ids"], p["dec_keep"], *model.fuse(frame_tokens, p["ids"], p["keep"]))
        losses.append(F.cross_entropy(scores[:, :-1].flatten(0, 1), p["labels"][:, 1:].flatten(),
                                      ignore_index=IGNORE))
    return losses[0], losses[1]''',
    "04d-mlm-d": '''def mlm_d_loss(model, video_tokens, ids, keep, mask_id, generator, prob=0.15):  # the encoder reads the unmasked utterance: the hidden words leak through the memory
    hide = (torch.rand(ids.shape, generator=generator) < prob) & keep
    shown = torch.where(hide, torch.full_like(ids, mask_id), ids)
    answers = torch.where(hide, ids, torch.full_like(ids, IGNORE))
    scores = model.decoder(shown, keep, *model.fuse(video_tokens, ids, keep))
    return F.cross_entropy(scores.flatten(0, 1), answers.flatten(), ignore_index=IGNORE)''',
    "05a-merge-four": '''def merge_four(tokens):  # 2x2 blocks of the grid, where the code merges 1x4 strips of a row
    B, N, L, D = tokens.shape
    side = int(round(L ** 0.5))
    blocks = tokens.view(B, N, side // 2, 2, side // 2, 2, D).permute(0, 1, 2, 4, 3, 5, 6)
    return blocks.reshape(B, N, L // 4, 4 * D)''',
    "05b-video-prompt": r'''def video_prompt(subtitles, instruction, inference=False):  # <Cap> after every frame, even without subtitles
    message = "".join("<Img>" + IMAGE + "<Cap>" + (said or "") for said in subtitles) + "\n" + instruction
    if inference:
        return "<s>[INST]  " + message + " [/INST]"
    return "[INST] " + message + "[/INST]"''',
    "05c-assemble-labels": '''def assemble_inputs(tokenizer, embed, prompt, frames, answer):  # labels not masked on the prompt text
    bos = tokenizer.bos_token_id
    parts, labels = [embed(torch.tensor([bos]))], [IGNORE]
    for i, piece in enumerate(prompt.split(IMAGE)):
        ids = tokenizer(piece, add_special_tokens=False)["input_ids"]
        parts.append(embed(torch.tensor(ids, dtype=torch.long)))
        labels += ids  # the prompt's own tokens become targets too
        if i < len(frames):
            parts.append(frames[i])
            labels += [IGNORE] * len(frames[i])
    target = tokenizer(answer, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    parts.append(embed(torch.tensor(target, dtype=torch.long)))
    return torch.cat(parts), torch.tensor(labels + target)''',
    "06a-training-state": '''def training_state_bytes(n_params):  # weights and gradients only: AdamW's two moments forgotten
    return n_params * (4 + 4)''',
    "06b-step-time": '''def step_seconds(gflops_per_clip, batch, peak_tflops, mfu):  # the forward pass alone, no backward
    return gflops_per_clip * 1e9 * batch / (mfu * peak_tflops * 1e12)''',
    "06c-spread-positions": '''def spread_positions(xs, frames):  # the nearest stored frame instead of interpolating
    stored = np.asarray(xs, dtype=float)
    return stored[np.round(np.linspace(0, len(stored) - 1, frames)).astype(int)]''',
}


def test_every_notebook_has_three_pointed_exercises_with_hidden_tests():
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
    assert set(WRONG_ANSWERS) == set(ids), "every exercise needs a typical wrong answer here"


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


def _run_setup(notebook):
    """The section's set-up cells, executed once per notebook in this process (a fresh copy per use)."""
    if notebook not in _setups:
        namespace = {}
        for source in exercises(notebook)[0]:
            exec(compile(source, f"{notebook.name}:setup", "exec"), namespace)
        _setups[notebook] = namespace
    return dict(_setups[notebook])


@pytest.mark.parametrize("grade_id", sorted(WRONG_ANSWERS))
def test_a_typical_wrong_answer_loses_its_points_and_only_those(grade_id):
    notebook = next(p for p in COURSE if p.name.startswith(grade_id[:2]))
    namespace, failed = _run_setup(notebook), set()
    for exercise in exercises(notebook)[1]:
        answer = WRONG_ANSWERS[grade_id] if exercise.grade_id == grade_id else exercise.answer
        try:
            exec(compile(answer, exercise.grade_id, "exec"), namespace)
            exec(compile(exercise.check, exercise.grade_id, "exec"), namespace)
        except Exception:  # noqa: BLE001 - any failure of a check costs its points, as in the autograder
            failed.add(exercise.grade_id)
    assert failed == {grade_id}


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
        for exercise in exercises(notebook)[1]:
            secret = re.split(r"### (?:BEGIN|END) (?:SOLUTION|HIDDEN TESTS)", exercise.answer)[1::2]
            secret += re.split(r"### (?:BEGIN|END) HIDDEN TESTS", exercise.check)[1::2]
            for line in "\n".join(secret).splitlines():
                if len(line.strip()) > 12:  # short lines ("return None") may well appear elsewhere
                    assert json.dumps(line.strip())[1:-1] not in text, f"{student.name} gives away: {line.strip()}"
        cells = nbformat.read(student, as_version=4).cells
        assert not any(c.get("outputs") for c in cells if c.cell_type == "code")
        assert "raise NotImplementedError()" in text


def test_every_student_version_scores_nothing_once_its_grade_cells_are_put_back(built):
    """What the autograder does to a student version that was handed back untouched, in-process for every notebook:
    its answer cells (nbgrader's stubs) run, then each grade cell as the source has it (hidden tests included); every
    check must fail. (The instructor versions' full marks: every exercise passes in the wrong-answer test above.)"""
    import nbformat

    first, _, _ = built
    for student, notebook in zip(first["student"], COURSE):
        stubs = {c.metadata["nbgrader"]["grade_id"]: c.source for c in nbformat.read(student, as_version=4).cells
                 if c.metadata.get("nbgrader", {}).get("solution")}
        namespace, scored = _run_setup(notebook), []
        for exercise in exercises(notebook)[1]:
            answer_id = exercise.grade_id[:3] + "-answer"
            assert "raise NotImplementedError()" in stubs[answer_id], f"{student.name}: {answer_id}"
            try:
                exec(compile(stubs[answer_id], answer_id, "exec"), namespace)
                exec(compile(exercise.check, exercise.grade_id, "exec"), namespace)
                scored.append(exercise.grade_id)
            except Exception:  # noqa: BLE001 - any failure of a check costs its points, as in the autograder
                pass
        assert scored == [], f"{student.name}: points for untouched answers {scored}"


def test_building_twice_gives_the_same_bytes(built):
    first, again, _ = built
    for kind in ("student", "instructor"):
        assert [p.read_bytes() for p in first[kind]] == [p.read_bytes() for p in again[kind]]


def start_grading() -> dict[str, tuple[subprocess.Popen, Path]]:
    """Build the exercises-only sheets, then grade every instructor version and every student version in two
    `assignments grade --json` processes (each grading runs notebook kernels, on one thread: they run beside the
    other worker's tests). Returns kind -> (the grading process, the file of its report)."""
    out = Path(tempfile.mkdtemp(prefix="minimodels-test-sheets-"))
    atexit.register(shutil.rmtree, out, ignore_errors=True)
    assignments.build(out, exercises=True)
    grading = {}
    for kind in ("instructor", "student"):
        sheets = [str(out / kind / p.name) for p in AUTOGRADED]
        with open(out / f"{kind}.json", "w") as report:
            job = subprocess.Popen([sys.executable, "-m", "minimodels", "assignments", "grade", *sheets,
                                    "--exercises-only", "--json"], stdout=report, stderr=subprocess.PIPE,
                                   text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        grading[kind] = job, out / f"{kind}.json"
    return grading


@pytest.fixture(scope="module")
def graded():
    reports = {}
    for kind, (job, report) in start_grading().items():
        _, stderr = job.communicate(timeout=600)
        assert job.returncode == 0, stderr
        reports[kind] = {g["notebook"]: g for g in json.loads(report.read_text().splitlines()[-1])["notebooks"]}
    return reports


@pytest.mark.parametrize("notebook", AUTOGRADED, ids=lambda p: p.stem)
def test_the_autograder_gives_instructors_full_marks_and_unsolved_exercises_none(notebook, graded):
    points = {e.grade_id: e.points for e in exercises(notebook)[1]}
    for kind, expected in (("instructor", {k: (v, v) for k, v in points.items()}),
                           ("student", {k: (0, v) for k, v in points.items()})):
        report = graded[kind][notebook.name]
        assert {s["exercise"]: (s["points"], s["max_points"]) for s in report["scores"]} == expected, kind
        assert report["other_errors"] == [], kind  # the set-up never fails, solved or not


def test_grade_without_notebooks_says_what_to_name(capsys):
    assert main(["assignments", "grade"]) == 2
    assert "name the submitted notebooks" in capsys.readouterr().err


def test_grade_names_a_submission_it_cannot_match(tmp_path):
    from minimodels.engine.errors import DataError

    stray = tmp_path / "homework.ipynb"
    shutil.copy(COURSE[0], stray)
    with pytest.raises(DataError, match="homework.ipynb: no source notebook of that name .*00_video_world.ipynb"):
        assignments.grade(stray)
