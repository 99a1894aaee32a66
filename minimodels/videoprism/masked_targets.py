"""What stage 2's masked targets depend on: the premise of masked video modelling, measured on the data.

VideoPrism's stage 2 (arXiv 2402.13217, §2.3.2) rests on a property of natural video: a masked token cannot be
filled in from the clip's colours and the tokens beside it; it takes where things were and how they move. If that
holds, predicting the teacher's masked tokens forces the student to model motion, which stage 1's appearance-heavy
text never asked of it. This module measures the property on the course's world, before any student is trained.

For clips under stage 2's own masks, each guess below fills every masked position (t, p) and is scored with the
local loss, cos distance to the teacher's target ȳ(t, p) (standardised as stage 2 standardises it):

    clip mean          the mean of the clip's visible targets                       what is shown, nowhere in particular
    nearest visible    ȳ(t, q), q the visible position nearest to p, same frame     what is shown, and where, nearby
    held at start      the teacher's target for the clip re-rendered with the       appearance and start, no motion
                       object kept at its first-frame position
    start + motion     ... re-rendered with the object moved from its start by      appearance, start and the true
                       the true velocity in a straight line (walls ignored)         motion (off only after a bounce)

The gap between "held at start" and "start + motion" is what knowing the motion is worth to the masked loss; a
trained student, passed as ``student``, is scored on the same clips and masks and can be read against these levels. ``object_share`` is the fraction of masked
positions whose patch the object covers in that frame.
"""

from __future__ import annotations

import numpy as np
import torch

from ..data.dataset import as_float
from ..data.world import DIRECTIONS, SPEEDS, render_clip
from ..eval.loop import batched, evaluating
from .distill import cosine_distance, seen_slots, teacher_targets

GUESSES = ("clip_mean", "nearest_visible", "held_at_start", "start_plus_motion")


def held_at_start(scene: dict) -> dict:
    """The same scene with the object kept where it starts."""
    frames = len(scene["xs"])
    return {**scene, "xs": [scene["xs"][0]] * frames, "ys": [scene["ys"][0]] * frames}


def straight_from_start(scene: dict) -> dict:
    """The same scene with the object moved by its true velocity from the start, through the walls."""
    vx, vy = (c * SPEEDS[scene["speed"]] for c in DIRECTIONS[scene["direction"]])
    steps = range(len(scene["xs"]))
    return {**scene, "xs": [scene["xs"][0] + vx * t for t in steps], "ys": [scene["ys"][0] + vy * t for t in steps]}


def nearest_visible(keep: torch.Tensor, grid: int) -> torch.Tensor:
    """(B, M) kept positions -> (B, N): for every position, the kept position nearest to it (itself if kept)."""
    rows, cols = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    coords = torch.stack([rows.flatten(), cols.flatten()], dim=1).float()  # (N, 2)
    distance = torch.cdist(coords, coords)  # (N, N)
    kept_distance = distance[:, keep].permute(1, 0, 2)  # (B, N, M)
    return keep.gather(1, kept_distance.argmin(dim=2))  # (B, N)


def object_cover(video: torch.Tensor, backgrounds: list[float], patch: int) -> torch.Tensor:
    """Float clips (B, T, H, W, C) and their background grey levels -> (B, T·N) booleans: does the object cover any
    pixel of patch n in frame t?"""
    B, T, H, W, _ = video.shape
    background = torch.tensor(backgrounds, device=video.device)[:, None, None, None, None]
    covered = (video - background).abs().amax(dim=-1) > 1 / 255  # (B, T, H, W)
    return covered.reshape(B, T, H // patch, patch, W // patch, patch).any(dim=(3, 5)).reshape(B, -1)


def masked_target_guesses(teacher, scenes: list[dict], video: torch.Tensor, make_mask, target_norm: str,
                          generator: torch.Generator, student=None, batch_size: int = 64) -> dict[str, float]:
    """Mean cos distance of every guess to the teacher's masked targets, and the object's share of masked positions.

    ``video`` holds the rendered ``scenes`` as ``clip_tensors`` gives them (uint8, (N, T, H, W, C), same order); only
    the re-drawn versions of the guesses are rendered here. ``make_mask(batch, grid, generator)`` draws stage 2's
    (B, M) kept positions. ``student(video, keep)``, if given, is one more guess: a trained stage-2 model's
    (B, T·N, D) predictions, scored on the same clips and masks.
    """
    v = teacher.cfg.video
    T, N, size = v.num_frames, v.tokens_per_frame, v.image_size
    device = next(teacher.parameters()).device

    def encode(chunk: list[dict]) -> torch.Tensor:  # re-drawn scenes -> the teacher's targets (B, T·N, D)
        redrawn = torch.from_numpy(np.stack([render_clip(s, size, frames=T) for s in chunk]))
        return teacher_targets(teacher, as_float(redrawn).to(device), target_norm)

    def score(rows: slice) -> dict[str, torch.Tensor]:  # every masked position's distance under every guess
        chunk = scenes[rows]
        clips = as_float(video[rows]).to(device)  # (B, T, H, W, C)
        target = teacher_targets(teacher, clips, target_norm)  # (B, T·N, D)
        keep = make_mask(len(chunk), v.grid, generator)  # (B, M)
        seen = seen_slots(keep, T, N).to(device)  # (B, T·N)
        visible_mean = (target * seen[..., None]).sum(1, keepdim=True) / seen.sum(1)[:, None, None]  # (B, 1, D)
        near = nearest_visible(keep, v.grid)  # (B, N)
        near_slots = (near[:, None, :] + torch.arange(T)[None, :, None] * N).reshape(len(chunk), T * N).to(device)
        guesses = {
            "clip_mean": visible_mean.expand_as(target),
            "nearest_visible": target.gather(1, near_slots[..., None].expand_as(target)),  # same frame
            "held_at_start": encode([held_at_start(s) for s in chunk]),
            "start_plus_motion": encode([straight_from_start(s) for s in chunk]),
        }
        if student is not None:
            guesses["student"] = student(clips, keep.to(device))
        out = {name: cosine_distance(guess, target)[~seen].cpu() for name, guess in guesses.items()}
        out["object_share"] = object_cover(clips, [s["background"] for s in chunk], v.patch_size)[~seen].float().cpu()
        return out

    with evaluating(teacher):
        distances = batched(score, len(scenes), batch_size)
    return {name: round(values.mean().item(), 4) for name, values in distances.items()}
