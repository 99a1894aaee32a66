"""VideoPrism's stage-1 model: a video tower and a text tower meeting in one embedding space (arXiv 2402.13217,
§2.3.1; official code ``videoprism/encoders.py``, ``FactorizedVideoCLIP``).

    video → FactorizedVideoViT → auxiliary layers (over all T·N tokens) → MAP pooler (width 4·D) → L2-normalise
    text  → TextEncoder (causal, class token last, logits capped as the video's)              → L2-normalise

trained with the symmetric InfoNCE of ``contrastive.py``. The auxiliary layers and the pooler are what the
"LvT" checkpoints add on top of the video encoder; their sizes here follow the official configs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..engine.config import finite, require, whole
from ..nn.attention import Transformer
from ..nn.map_pooler import MAPPooler
from ..nn.text import placeholder_text
from ..nn.video_vit import HasVideoEncoder, VideoViTConfig
from .text_encoder import TextEncoder

MAX_LOG_SCALE = math.log(100.0)


@dataclass
class VideoTextConfig(HasVideoEncoder):
    video: VideoViTConfig = field(default_factory=VideoViTConfig)
    aux_layers: int = 1  # LvT: 2
    pooler_hidden_mult: int = 4  # the contrastive MAP pooler attends at width 4·D
    text_layers: int = 2  # LvT B and L: 12
    vocab_size: int = 512  # the course tokenizer has fewer tokens; LvT: 32,000 (SentencePiece c4_en)
    text_length: int = 16  # LvT: 64
    init_temperature: float = 0.07  # not stated by the paper; CLIP's starting value (see notebook 02)

    def __post_init__(self):
        require(self, {
            "aux_layers": (whole(self.aux_layers, 0), "a whole number >= 0"),
            "pooler_hidden_mult": (whole(self.pooler_hidden_mult), "a whole number >= 1"),
            "text_layers": (whole(self.text_layers), "a whole number >= 1"),
            "vocab_size": (whole(self.vocab_size, 2), "a whole number >= 2"),
            "text_length": (whole(self.text_length), "a whole number >= 1"),
            "init_temperature": (finite(self.init_temperature) and self.init_temperature > 0, "a number > 0")})

    def build(self) -> "VideoTextModel":
        return VideoTextModel(self)

    def example_inputs(self, frames: int | None = None, device="meta"):
        """(clip, text ids, text keep-mask) for one pair: a clip of zeros and a full-length text."""
        return (self.video.example_inputs(frames, device)[0], *placeholder_text(self.text_length, device))


class VideoTextModel(nn.Module):
    def __init__(self, cfg: VideoTextConfig):
        super().__init__()
        self.cfg = cfg
        v = cfg.video
        self.encoder = v.build()
        self.aux = Transformer(cfg.aux_layers, v.width, v.heads, v.mlp_dim, v.logit_cap, v.attn_impl, v.ln_eps)
        self.pooler = MAPPooler(v.width, v.heads, hidden=cfg.pooler_hidden_mult * v.width, eps=v.ln_eps)
        self.text = TextEncoder(cfg.vocab_size, v.width, cfg.text_layers, v.heads, cfg.text_length, v.ln_eps,
                                v.attn_impl, logit_cap=v.logit_cap)  # the official text layers cap logits too
        self.log_scale = nn.Parameter(torch.tensor(math.log(1 / cfg.init_temperature)))  # 1/τ = exp(log_scale)

    def video_tokens(self, video, visible=None):
        """(B, T, H, W, C) -> (B, T·M, D) after the auxiliary layers."""
        return self.aux(self.encoder(video, visible=visible))

    def encode_video(self, video, visible=None):  # -> (B, D), unit norm
        return self.pool_tokens(self.encoder(video, visible=visible))

    def pool_tokens(self, tokens):
        """The encoder's (B, T·M, D) tokens -> (B, D), unit norm: auxiliary layers, then the MAP pooler. Stage 2 reads
        the teacher's tokens and its pooled embedding from one pass of the encoder."""
        return F.normalize(self.pooler(self.aux(tokens)), dim=-1)

    def encode_text(self, ids, keep):  # (B, L) -> (B, D), unit norm
        return self.text(ids, keep)

    def clamped_log_scale(self) -> torch.Tensor:
        """log(1/τ), at most log 100: CLIP's guard, so the temperature never falls below 0.01."""
        return self.log_scale.clamp(max=MAX_LOG_SCALE)

    def forward(self, video, ids, keep, visible=None):
        return self.encode_video(video, visible), self.encode_text(ids, keep)
