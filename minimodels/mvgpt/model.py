"""MV-GPT's model: video and transcript encoders, a co-attentional fusion encoder and a causal text decoder.

    frames (B, T, H, W, C) ──FactorizedVideoViT──► (B, T·N, D) ─┐
                                                               ├─ CoAttentionEncoder ─► memory (B, T·N + L, D)
    utterance ids (B, L) ──BERT-style encoder──► (B, L, D) ────┘                          │
    [BOS-F|BOS-B] w_1 .. w_n ──────────────────── TextDecoder (causal, cross-attends) ◄──┘ ─► logits (B, n+1, V)

arXiv 2201.08264 (method): ViViT video encoder, BERT-Base text encoder, co-attentional fusion (ViLBERT-style), GPT-2
decoder, all trained end to end from random initialisation. The factorized ViViT variant, the number of fusion layers
(2) and a single vocabulary shared by encoder and decoder are our choices; the paper's exact sizes are unverified."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..engine.config import require, whole
from ..nn.attention import Transformer
from ..nn.text import placeholder_text
from ..nn.video_vit import HasVideoEncoder, VideoViTConfig
from .coattention import CoAttentionEncoder
from .text_decoder import TextDecoder


@dataclass
class MVGPTConfig(HasVideoEncoder):
    video: VideoViTConfig = field(default_factory=VideoViTConfig)
    vocab_size: int = 336  # the course tokenizer (325 tokens); full preset: BERT's WordPiece vocabulary (30,522)
    text_layers: int = 1  # BERT-Base: 12
    text_length: int = 24  # input utterance tokens; full preset: 512 positions as BERT
    fusion_layers: int = 1  # co-attention layers (unverified; our choice for the full preset: 2)
    decoder_layers: int = 2  # GPT-2 small: 12
    decoder_length: int = 24  # decoder positions; GPT-2: 1,024

    def __post_init__(self):
        require(self, {
            "vocab_size": (whole(self.vocab_size, 2), "a whole number >= 2"),
            "text_layers": (whole(self.text_layers), "a whole number >= 1"),
            "text_length": (whole(self.text_length), "a whole number >= 1"),
            "fusion_layers": (whole(self.fusion_layers), "a whole number >= 1"),
            "decoder_layers": (whole(self.decoder_layers), "a whole number >= 1"),
            "decoder_length": (whole(self.decoder_length, 2), "a whole number >= 2 (a start token and a word)")})

    def build(self) -> "MVGPTModel":
        return MVGPTModel(self)

    def example_inputs(self, frames: int | None = None, device="meta"):
        """(clip, utterance ids, keep, decoder ids, keep) for one example of full length."""
        return (self.video.example_inputs(frames, device)[0], *placeholder_text(self.text_length, device),
                *placeholder_text(self.decoder_length, device))


class BertTextEncoder(nn.Module):
    """Bidirectional: token + learned position embeddings, LayerNorm, a transformer with padding keys masked."""

    def __init__(self, vocab_size: int, width: int, layers: int, heads: int, mlp_dim: int, length: int, eps: float):
        super().__init__()
        self.length = length
        self.embed = nn.Embedding(vocab_size, width)
        self.pos = nn.Parameter(torch.randn(length, width) * 0.02)  # (L, D)
        self.norm = nn.LayerNorm(width, eps=eps)
        self.blocks = Transformer(layers, width, heads, mlp_dim, logit_cap=None, eps=eps)

    def forward(self, ids, keep):  # (B, L), (B, L) -> (B, L, D)
        if ids.shape[1] > self.length:
            raise ValueError(f"utterance of {ids.shape[1]} tokens exceeds text_length {self.length}")
        x = self.norm(self.embed(ids) + self.pos[: ids.shape[1]])
        return self.blocks(x, key_mask=keep)


class MVGPTModel(nn.Module):
    def __init__(self, cfg: MVGPTConfig):
        super().__init__()
        self.cfg = cfg
        v = cfg.video
        self.video = v.build()
        self.text = BertTextEncoder(cfg.vocab_size, v.width, cfg.text_layers, v.heads, v.mlp_dim, cfg.text_length,
                                    v.ln_eps)
        self.fusion = CoAttentionEncoder(cfg.fusion_layers, v.width, v.heads, v.mlp_dim, v.ln_eps)
        self.decoder = TextDecoder(cfg.vocab_size, v.width, cfg.decoder_layers, v.heads, v.mlp_dim,
                                   cfg.decoder_length, v.ln_eps)

    def encode(self, video, ids, keep):
        """Frames + utterance -> fused memory (B, T·N + L, D) and its key mask (B, T·N + L)."""
        return self.fuse(self.video(video), ids, keep)

    def fuse(self, video_tokens, ids, keep):
        """Encoded frames (B, T·N, D) + utterance -> fused memory. FG and BG share one clip's video tokens."""
        return self.fusion(video_tokens, self.text(ids, keep), keep)

    def forward(self, video, ids, keep, dec_ids, dec_keep):
        """-> next-token logits (B, L_dec, V) for the decoder inputs (teacher forcing)."""
        return self.decoder(dec_ids, dec_keep, *self.encode(video, ids, keep))
