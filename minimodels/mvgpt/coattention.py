"""MV-GPT's co-attentional fusion encoder (ViLBERT-style two streams; arXiv 2201.08264, method).

Cross-attention (``nn.attention.MultiHeadAttention`` given a context): queries from one sequence, keys and values
from another,

    CrossAttn(x, c) = softmax( (x W_q)(c W_k)ᵀ / √d ) (c W_v) W_o        x: (B, Lx, D), c: (B, Lc, D)

A co-attention layer exchanges keys and values between the video stream v and the text stream t, then lets each
stream attend to itself:

    v' = v + CrossAttn(LN v, LN t),   t' = t + CrossAttn(LN t, LN v)      both from the *input* v, t
    v'' = v' + FFN(LN v'),            t'' = t' + FFN(LN t')
    v''' = SelfBlock_v(v''),          t''' = SelfBlock_t(t'')

The number of such layers and their exact order are not verified for MV-GPT (no public code); ViLBERT's order is
used, and the layer count is a config field.
"""

from __future__ import annotations

import torch
from torch import nn

from ..nn.attention import FeedForward, MultiHeadAttention, TransformerBlock


class CrossBlock(nn.Module):
    """Pre-LN: x + CrossAttn(LN x, LN c), then x + FFN(LN x)."""

    def __init__(self, width: int, heads: int, mlp_dim: int, eps: float = 1e-6):
        super().__init__()
        self.ln_x, self.ln_c, self.ln_mlp = (nn.LayerNorm(width, eps=eps) for _ in range(3))
        self.attn = MultiHeadAttention(width, heads, logit_cap=None)
        self.mlp = FeedForward(width, mlp_dim)

    def forward(self, x, context, context_mask=None):
        x = x + self.attn(self.ln_x(x), key_mask=context_mask, context=self.ln_c(context))
        return x + self.mlp(self.ln_mlp(x))


class CoAttentionLayer(nn.Module):
    def __init__(self, width: int, heads: int, mlp_dim: int, eps: float = 1e-6):
        super().__init__()
        self.video_cross = CrossBlock(width, heads, mlp_dim, eps)
        self.text_cross = CrossBlock(width, heads, mlp_dim, eps)
        self.video_self = TransformerBlock(width, heads, mlp_dim, logit_cap=None, eps=eps)
        self.text_self = TransformerBlock(width, heads, mlp_dim, logit_cap=None, eps=eps)

    def forward(self, video, text, text_mask=None):
        """video: (B, Lv, D) all valid; text: (B, Lt, D) with text_mask (B, Lt). Returns both streams, same shapes."""
        video, text = (self.video_cross(video, text, text_mask),  # each stream reads the other's input
                       self.text_cross(text, video))
        return self.video_self(video), self.text_self(text, key_mask=text_mask)


class CoAttentionEncoder(nn.Module):
    """A stack of co-attention layers; returns the two streams concatenated (B, Lv + Lt, D) for the decoder."""

    def __init__(self, layers: int, width: int, heads: int, mlp_dim: int, eps: float = 1e-6):
        super().__init__()
        self.layers = nn.ModuleList(CoAttentionLayer(width, heads, mlp_dim, eps) for _ in range(layers))
        self.norm = nn.LayerNorm(width, eps=eps)

    def forward(self, video, text, text_mask):
        for layer in self.layers:
            video, text = layer(video, text, text_mask)
        memory = self.norm(torch.cat([video, text], dim=1))  # (B, Lv + Lt, D)
        memory_mask = torch.cat([text_mask.new_ones(video.shape[:2]), text_mask], dim=1)  # (B, Lv + Lt)
        return memory, memory_mask
