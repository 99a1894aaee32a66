"""Stage 2's premise check: the guesses at masked targets, and the premise itself on the shipped world and teacher."""

import pytest
import torch

from minimodels.data.dataset import as_float, clip_tensors, load_table
from minimodels.data.world import render_clip
from minimodels.engine.rng import rng
from minimodels.videoprism.distill import teacher_targets
from minimodels.videoprism.masked_targets import (held_at_start, masked_target_guesses, nearest_visible, object_cover,
                                                  straight_from_start)
from minimodels.videoprism.stage2 import Stage2Config, load_teacher, make_mask, teacher_folder


@pytest.fixture(scope="module")
def scenes():
    return load_table("clips", "test").select(range(64)).to_list()


@pytest.fixture(scope="module")
def video():  # the same 64 clips, rendered
    return clip_tensors("test", 32, limit=64)["video"]


@pytest.fixture(scope="module")
def shipped_teacher():
    return load_teacher(teacher_folder(Stage2Config(), 0))


def stage2_masks(b, grid, gen):
    return make_mask(Stage2Config(), b, grid, gen)


def test_nearest_visible_is_a_kept_position_at_the_smallest_distance():
    grid = 4
    keep = stage2_masks(8, grid, torch.Generator().manual_seed(0))
    near = nearest_visible(keep, grid)  # (8, 16)
    for row, kept in zip(near, keep):
        kept = set(kept.tolist())
        for p, q in enumerate(row.tolist()):
            assert q in kept
            dist = lambda a: ((a // grid - p // grid) ** 2 + (a % grid - p % grid) ** 2) ** 0.5  # noqa: E731
            assert dist(q) == min(dist(k) for k in kept)
            if p in kept:
                assert q == p


def test_the_re_rendered_scenes_keep_appearance_and_change_only_the_path(scenes):
    straight = next(s for s in scenes if not s["bounced"])
    moved = straight_from_start(straight)
    assert moved["xs"] == pytest.approx(straight["xs"], abs=1e-3)
    assert moved["ys"] == pytest.approx(straight["ys"], abs=1e-3)
    still = held_at_start(scenes[0])
    assert set(still["xs"]) == {scenes[0]["xs"][0]} and set(still["ys"]) == {scenes[0]["ys"][0]}
    assert {k: v for k, v in still.items() if k not in ("xs", "ys")} == {
        k: v for k, v in scenes[0].items() if k not in ("xs", "ys")}


def test_object_cover_marks_the_patches_under_the_object():
    scene = {"shape": "square", "colour": "red", "size": "small", "background": 0.1, "xs": [0.2], "ys": [0.2]}
    clip = as_float(torch.from_numpy(render_clip(scene, 32))[None])  # (1, 1, 32, 32, 3)
    cover = object_cover(clip, [scene["background"]], patch=8).reshape(4, 4)  # one frame, 4 × 4 patches
    assert cover[0, 0] and not cover[3, 3] and not cover[:, 3].any()


def test_a_perfect_guess_scores_zero_and_the_guesses_are_scored_on_masked_positions(shipped_teacher, scenes, video):
    def oracle(video, keep):
        return teacher_targets(shipped_teacher, video, "instance")

    out = masked_target_guesses(shipped_teacher, scenes[:16], video[:16], stage2_masks, "instance",
                                rng(0, 0, "stage2-premise"), student=oracle)
    assert out["student"] == pytest.approx(0.0, abs=1e-4)
    assert set(out) == {"clip_mean", "nearest_visible", "held_at_start", "start_plus_motion", "student", "object_share"}


def test_the_premise_holds_on_the_shipped_world(shipped_teacher, scenes, video):
    """Masked targets are far better filled by knowing the motion than by what is shown: the ladder of guesses goes
    down as they learn more, and the motion-informed guess is far below the best appearance-only one."""
    out = masked_target_guesses(shipped_teacher, scenes, video, stage2_masks, "instance", rng(0, 0, "stage2-premise"))
    assert out["clip_mean"] > out["nearest_visible"] > out["held_at_start"] > out["start_plus_motion"]
    assert out["start_plus_motion"] < 0.3 * out["nearest_visible"]
    assert out["start_plus_motion"] < 0.75 * out["held_at_start"]  # motion itself is worth a clear part of it
    assert out["object_share"] > 0.25  # the object is under a good share of the masked positions
