"""The one-stage baseline of VideoPrism's Fig. 4: contrastive and masked modelling together, in one stage.

The paper's argument for two stages (arXiv 2402.13217, §2.3 and Fig. 4: SSv2 55.9 for "contrastive + MAE in one
stage" against 60.9 for "two-stage training") is that a masked-modelling loss beside the contrastive loss, on the
same encoder from the start, does not give what a second stage of distillation from the first does. The baseline
trains a fresh stage-1 model on both losses at once, for as many steps as the two stages take together:

    L = InfoNCE(MAP(aux(E(x_visible))), text) + mean_{masked i} ‖ D(E(x_visible))_i − norm(patch_i) ‖²

E sees the visible tokens only (the same masks as stage 2), so its clip embedding is FLIP-style; D is a token-wise
decoder of stage 2's size (no shuffle: MAE's), predicting the pixels of every masked patch, each patch standardised
over its own values (MAE's normalised-pixel target). Texts alternate between the sources batch by batch (AGD), as in
stage 1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..engine.distributed import gather_batch
from ..nn.video_vit import patchify
from .contrastive import symmetric_infonce
from .distill import LocalDecoder, seen_slots
from .video_text import VideoTextConfig


class OneStageModel(nn.Module):
    """A stage-1 model (video and text towers) and a pixel decoder for the masked patches."""

    def __init__(self, model: VideoTextConfig, width: int, layers: int, heads: int, mlp_dim: int):
        super().__init__()
        v = model.video
        self.video_text = model.build()
        self.decoder = LocalDecoder(v.width, width, layers, heads, mlp_dim, v.patch_size**2 * v.channels,
                                    v.num_frames * v.tokens_per_frame, v.ln_eps)


def pixel_targets(video: torch.Tensor, patch: int, eps: float = 1e-6) -> torch.Tensor:
    """(B, T, H, W, C) -> (B, T·N, p·p·C): every patch's pixels, standardised over the patch (MAE's target)."""
    patches = patchify(video, patch).flatten(1, 2)  # (B, T·N, p·p·C), time-major as the encoder's tokens
    mean, var = patches.mean(-1, keepdim=True), patches.var(-1, keepdim=True, unbiased=False)
    return (patches - mean) / (var + eps).sqrt()


def one_stage_loss(model: OneStageModel, video: torch.Tensor, ids: torch.Tensor, text_keep: torch.Tensor,
                   keep: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """Float clips (B, T, H, W, C), texts (B, L) and kept positions (B, M) -> (InfoNCE + masked MSE, logs)."""
    vt, v = model.video_text, model.video_text.cfg.video
    T, N = video.shape[1], v.tokens_per_frame
    tokens = vt.encoder(video, visible=keep)  # (B, T·M, D)
    clip = F.normalize(vt.pooler(vt.aux(tokens)), dim=-1)  # (B, D)
    text = vt.encode_text(ids, text_keep)
    contrastive = symmetric_infonce(gather_batch(clip), gather_batch(text), vt.clamped_log_scale())  # whole batch
    pred = model.decoder(tokens, keep, T, N)  # (B, T·N, p·p·C), canonical order
    masked = ~seen_slots(keep, T, N)  # (B, T·N)
    mae = (pred - pixel_targets(video, v.patch_size)).square().mean(-1)[masked].mean()
    return contrastive + mae, {"loss_contrastive": contrastive.item(), "loss_masked": mae.item()}
