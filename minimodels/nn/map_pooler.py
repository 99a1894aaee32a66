"""Multi-head attention pooling (MAP, Lee et al. 2019), VideoPrism's pooler (arXiv 2402.13217, §2.3.1; official
code ``videoprism/layers.py``, ``AttenTokenPoolingLayer``).

One learned query q ∈ R^D attends over all L tokens h of a clip:

    Q = q W_q,  K = h W_k,  V = h W_v                   (projections to the attention width, split into heads)
    s = softplus(σ) / softplus(0)                          (d_head,) learned query scale, 1 at the start
    z = W_o · concat_heads softmax((Q ⊙ s) Kᵀ / √d_head) V (1, D)
    pooled = LN(z)                                         (B, D)

The per-dimension scale σ is the official layer's ``PerDimScale``: with one query, how sharply the pooler attends is
all it can tune besides the projections, and σ lets each dimension of a head do so on its own.

The attention width is a parameter: 4·D in the contrastive vision pooler (head_dim 256 for B), D in a probe.
Padded tokens (``key_mask`` False) get no weight. Mean pooling averages the few tokens an object covers with the
many background ones; the learned query instead puts its weight where the evidence is.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .attention import manual_attention

INV_SOFTPLUS_0 = 1.442695041  # 1 / softplus(0): a scale σ of zeros multiplies the query by exactly 1


class MAPPooler(nn.Module):
    def __init__(self, width: int, heads: int, hidden: int | None = None, eps: float = 1e-6):
        super().__init__()
        hidden = hidden or width
        if hidden % heads:
            raise ValueError(f"MAP hidden width {hidden} is not divisible by heads {heads}")
        self.heads = heads
        self.query = nn.Parameter(torch.randn(1, 1, width) * width**-0.5)  # (1, 1, D), lecun-normal scale
        self.query_scale = nn.Parameter(torch.zeros(hidden // heads))  # σ: (d_head,), shared by the heads
        self.q_proj = nn.Linear(width, hidden)
        self.kv_proj = nn.Linear(width, 2 * hidden)
        self.out = nn.Linear(hidden, width)
        self.norm = nn.LayerNorm(width, eps=eps)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # A pooler saved before σ was learned (MiniGPT4-Video's shipped frame encoder) is this pooler at σ = 0: the
        # same function, so it loads as such.
        state_dict.setdefault(prefix + "query_scale", torch.zeros_like(self.query_scale))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, tokens: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        """tokens: (B, L, D); key_mask: (B, L) bool, True = real token. Returns (B, D)."""
        B, L, _ = tokens.shape
        q = self.q_proj(self.query).expand(B, -1, -1)  # (B, 1, hidden)
        k, v = self.kv_proj(tokens).chunk(2, dim=-1)  # (B, L, hidden) each

        def heads(x):  # (B, L, hidden) -> (B, H, L, hidden / H)
            return x.view(B, x.shape[1], self.heads, -1).transpose(1, 2)

        q = heads(q) * (INV_SOFTPLUS_0 * F.softplus(self.query_scale))  # (B, H, 1, hidden / H)
        z = manual_attention(q, heads(k), heads(v), key_mask=key_mask)  # (B, H, 1, hidden / H)
        z = self.out(z.transpose(1, 2).reshape(B, 1, -1))  # (B, 1, D)
        return self.norm(z[:, 0])
