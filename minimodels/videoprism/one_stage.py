"""The one-stage baseline of VideoPrism's Fig. 4: contrastive and masked modelling together, in one stage.

The paper's argument for two stages (arXiv 2402.13217, §2.3 and Fig. 4: SSv2 55.9 for "contrastive + MAE in one
stage" against 60.9 for "two-stage training") is that a masked-modelling loss beside the contrastive loss, on the
same encoder from the start, does not give what a second stage of distillation from the first does. The baseline
trains a fresh stage-1 model on both losses at once, for as many steps as the two stages take together:

    L = InfoNCE(MAP(aux(E(x_visible))), text) + mean_{masked i} ‖ D(E(x_visible))_i − norm(patch_i) ‖²

E sees the visible tokens only (stage 2's masks, which may differ from frame to frame), so its clip embedding is
FLIP-style; D is a token-wise decoder of stage 2's size (no shuffle: MAE's), predicting the pixels of every masked
patch, each patch standardised over its own values (MAE's normalised-pixel target). Texts alternate between the
sources batch by batch (AGD), as in stage 1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..data.dataset import as_float
from ..engine.batches import per_example
from ..engine.distributed import gather_batch
from ..engine.rng import rng
from ..engine.train import train
from ..nn.text import load_tokenizer
from ..nn.video_vit import patchify
from .contrastive import symmetric_infonce, warn_of_micro_batch_negatives
from .distill import LocalDecoder
from .stage1 import TEXT_SOURCES, text_tensors
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
    """Float clips (B, T, H, W, C), texts (B, L) and visible tokens (B, T, N) -> (InfoNCE + masked MSE, logs)."""
    vt, v = model.video_text, model.video_text.cfg.video
    seen = keep.flatten(1)  # (B, T·N), time-major as the tokens
    tokens = vt.encoder(video, token_mask=keep)  # (B, T·N, D); hidden rows are never read
    clip = F.normalize(vt.pooler(vt.aux(tokens, key_mask=seen), key_mask=seen), dim=-1)  # (B, D)
    text = vt.encode_text(ids, text_keep)
    contrastive = symmetric_infonce(gather_batch(clip), gather_batch(text), vt.clamped_log_scale())  # whole batch
    pred = model.decoder(tokens, seen)  # (B, T·N, p·p·C), canonical order
    mae = (pred - pixel_targets(video, v.patch_size)).square().mean(-1)[~seen].mean()
    return contrastive + mae, {"loss_contrastive": contrastive.item(), "loss_masked": mae.item()}


def train_one_stage(cfg, draw_mask, train_data: dict, seed: int, device, folder):
    """Fig. 4's baseline for a ``Stage2Config``: a fresh stage-1 model on InfoNCE + masked patches, trained as
    ``one_stage_train`` says (stage 1's schedule, both stages' steps), under stage 2's masks
    (``draw_mask(batch, generator) -> (B, T, N)``), checkpointing into and logging to the run's ``folder`` -> (its
    video encoder, History)."""
    warn_of_micro_batch_negatives(cfg.one_stage_train, "videoprism one-stage")
    d = cfg.decoder
    model = OneStageModel(cfg.model, d.width, d.layers, d.heads, d.mlp_dim).to(device)
    texts = text_tensors(load_tokenizer(), "train", TEXT_SOURCES, cfg.model.text_length)

    def loss_fn(model, batch, step):  # the stage-2 masks, and stage 1's alternation of text sources (AGD)
        ids, keep_text = (t[batch.idx].to(device) for t in texts[TEXT_SOURCES[step % len(TEXT_SOURCES)]])
        masks = rng(seed, step, "stage2-mask")
        keep = per_example(lambda n: draw_mask(n, masks), batch, len(batch)).to(device)
        return one_stage_loss(model, as_float(train_data["video"][batch.idx]).to(device), ids, keep_text, keep)

    history = train(model, loss_fn, len(train_data["video"]), cfg.one_stage_train, seed=seed,
                    checkpoints=folder.path, resume=folder.resume, log=folder.log, desc="videoprism one-stage")
    return model.video_text.encoder, history
