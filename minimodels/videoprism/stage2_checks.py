"""What stage 2 measures after training, besides the probes: on the test clips, under stage 2's own masks, how well
the token-wise decoder fills the slots the student saw and the masked ones (the jigsaw that token shuffling sets),
and where the student stands among the guesses of the premise check (``masked_targets.py``)."""

from __future__ import annotations

import torch

from ..data.dataset import as_float, load_table, take
from ..engine.rng import rng
from ..eval.loop import batched, evaluating
from .distill import cosine_distance, random_permutations, teacher_targets
from .masked_targets import masked_target_guesses
from .video_text import VideoTextModel


def jigsaw(model, teacher: VideoTextModel, cfg, draw_mask, seed: int, video: torch.Tensor) -> dict[str, float]:
    """The token-wise loss on the test clips as training computes it (masks, and shuffles when on), split into the
    slots the student saw and the masked ones: with shuffling, a decoder that has not solved the jigsaw scores the
    visible slots no better than the masked ones. ``model``: a ``Stage2Model``; ``cfg``: its ``Stage2Config``;
    ``draw_mask(batch, generator) -> (B, T, N)`` stage 2's masks. {"jigsaw_visible": ..., "jigsaw_masked": ...}."""
    v = teacher.cfg.video
    T, N, device = v.num_frames, v.tokens_per_frame, next(teacher.parameters()).device
    generator = rng(seed, 0, "stage2-jigsaw")

    def score(rows: slice) -> dict[str, torch.Tensor]:
        clips, decoded = take(video, rows)  # a folder's video that failed to decode: left out
        if not decoded.any():
            return {"jigsaw_visible": torch.empty(0), "jigsaw_masked": torch.empty(0)}
        clips = as_float(clips[decoded]).to(device)
        keep = draw_mask(len(clips), generator).to(device)
        perm = random_permutations(len(clips), T * N, generator).to(device) if cfg.shuffle else None
        seen = keep.flatten(1)
        local = cosine_distance(model.local(model.encode(clips, keep), seen, perm),
                                teacher_targets(teacher, clips, cfg.target_norm))
        return {"jigsaw_visible": local[seen].cpu(), "jigsaw_masked": local[~seen].cpu()}

    with evaluating(model), evaluating(teacher):
        parts = batched(score, len(video), 64)
    return {name: round(values.mean().item(), 4) for name, values in parts.items()}


def premise_check(model, teacher: VideoTextModel, cfg, draw_mask, seed: int, video: torch.Tensor) -> dict[str, float]:
    """The masked-target guesses of ``masked_targets.py`` on the eval clips (``video``, uint8 as ``clip_tensors``
    renders them), with the trained student among them:
    {"guess_<name>": cos distance, ..., "guess_student": ..., "masked_object_share": ...}."""

    def student(video, keep):  # the local decoder's predictions, unshuffled at evaluation (each slot its own)
        with evaluating(model):
            return model.local(model.encode(video, keep), keep.flatten(1))

    premise = masked_target_guesses(teacher, load_table("clips", cfg.eval_split).to_list(), video,
                                    draw_mask, cfg.target_norm,
                                    rng(seed, 0, "stage2-premise"), student=student if cfg.local_distill else None)
    return {f"masked_{k}" if k == "object_share" else f"guess_{k}": value for k, value in premise.items()}
