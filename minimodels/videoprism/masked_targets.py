"""What stage 2's masked targets depend on: the premise of masked video modelling, measured on the data.

VideoPrism's stage 2 (arXiv 2402.13217, §2.3.2) rests on a property of natural video: a masked token cannot be
filled in from the clip's colours and the tokens beside it; it takes where things were and how they move. If that
holds, predicting the teacher's masked tokens forces the student to model motion, which stage 1's appearance-heavy
text never asked of it. This module measures the property on the course's world, before any student is trained.

For clips under stage 2's own masks, each guess below fills every masked position (t, p) and is scored with the
local loss, cos distance to the teacher's target ȳ(t, p) (normalised as stage 2 normalises it):

    clip mean          the mean of the clip's visible targets                       what is shown, nowhere in particular
    nearest visible    ȳ(t, q), q the visible position nearest to p, same frame     what is shown, and where, nearby
    nearest frame      ȳ(s, p), s the nearest frame where p is visible (the clip    what p shows at another time
                       mean where p is never visible, as under tube masks)
    held at start      the teacher's target for the clip re-rendered with the       appearance and start, no motion
                       object kept at its first-frame position
    start + motion     ... re-rendered with the object moved from its start by      appearance, start and the true
                       the true velocity in a straight line (walls ignored)         motion (off only after a bounce)

The gap between "held at start" and "start + motion" is what knowing the motion is worth to the masked loss; a
trained student, passed as ``student``, is scored on the same clips and masks and can be read against these levels.
``object_share`` is the fraction of masked positions whose patch the object covers in that frame.
"""

from __future__ import annotations

import numpy as np
import torch

from ..data.dataset import as_float
from ..data.world import DIRECTIONS, SPEEDS, render_clip
from ..eval.loop import batched, evaluating
from .distill import cosine_distance, teacher_targets

GUESSES = ("clip_mean", "nearest_visible", "nearest_frame", "held_at_start", "start_plus_motion")


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
    """(B, T, N) visible tokens -> (B, T, N): for every position, the visible position of the same frame nearest to
    it (itself if visible; any position of a frame with nothing visible)."""
    rows, cols = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    coords = torch.stack([rows.flatten(), cols.flatten()], dim=1).float()  # (N, 2)
    distance = torch.cdist(coords, coords)  # (N, N): position -> candidate
    blocked = (~keep[:, :, None, :]).float() * 1e6  # (B, T, 1, N): hidden candidates are far away
    return (distance + blocked).argmin(dim=-1)  # (B, T, N)


def nearest_frame(keep: torch.Tensor) -> torch.Tensor:
    """(B, T, N) visible tokens -> (B, T, N): for every token, the nearest frame where its position is visible
    (its own frame if visible; -1 where the position is never visible)."""
    T = keep.shape[1]
    frames = torch.arange(T)
    gap = (frames[:, None] - frames[None, :]).abs().float()  # (T, T): frame -> candidate frame
    blocked = (~keep.transpose(1, 2)[:, :, None, :]).float() * 1e6  # (B, N, 1, T)
    best = (gap + blocked).argmin(dim=-1).transpose(1, 2)  # (B, T, N)
    return torch.where(keep.any(dim=1, keepdim=True), best, -1)


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
    the re-drawn versions of the guesses are rendered here. ``make_mask(batch, generator)`` draws stage 2's (B, T, N)
    visible tokens. ``student(video, keep)``, if given, is one more guess: a trained stage-2 model's (B, T·N, D)
    predictions, scored on the same clips and masks.
    """
    v = teacher.cfg.video
    T, N, size = v.num_frames, v.tokens_per_frame, v.image_size
    device = next(teacher.parameters()).device

    def encode(chunk: list[dict]) -> torch.Tensor:  # re-drawn scenes -> the teacher's targets (B, T·N, D)
        redrawn = torch.from_numpy(np.stack([render_clip(s, size, frames=T) for s in chunk]))
        return teacher_targets(teacher, as_float(redrawn).to(device), target_norm)

    def score(rows: slice) -> dict[str, torch.Tensor]:  # every masked position's distance under every guess
        chunk = scenes[rows]
        B = len(chunk)
        clips = as_float(video[rows]).to(device)  # (B, T, H, W, C)
        target = teacher_targets(teacher, clips, target_norm)  # (B, T·N, D)
        keep = make_mask(B, generator)  # (B, T, N)
        seen = keep.flatten(1).to(device)  # (B, T·N)
        visible_mean = (target * seen[..., None]).sum(1, keepdim=True) / seen.sum(1)[:, None, None]  # (B, 1, D)
        same_frame = nearest_visible(keep, v.grid) + torch.arange(T)[None, :, None] * N  # (B, T, N) slots
        other_frame = nearest_frame(keep)  # (B, T, N) frames, -1: never visible
        same_position = other_frame.clamp(min=0) * N + torch.arange(N)  # (B, T, N) slots
        pick = lambda slots: target.gather(1, slots.flatten(1).to(device)[..., None].expand_as(target))
        never = (other_frame < 0).flatten(1).to(device)[..., None]  # (B, T·N, 1)
        guesses = {
            "clip_mean": visible_mean.expand_as(target),
            "nearest_visible": pick(same_frame),
            "nearest_frame": torch.where(never, visible_mean, pick(same_position)),
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
