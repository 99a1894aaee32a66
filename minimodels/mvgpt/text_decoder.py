"""MV-GPT's text decoder: a GPT-2-style causal transformer that reads the fused encoder outputs (arXiv 2201.08264,
method).

For target tokens w_1..w_L (w_1 a start token, [BOS-F] or [BOS-B]) and the encoder memory m (B, L_m, D):

    x_i = E[w_i] + P_i                              learned positions, as GPT-2
    h   = x + CausalSelfAttn(LN x)                  token i sees tokens ≤ i
    h   = h + CrossAttn(LN h, m)                    every token sees all of the memory (its padding masked)
    h   = h + FFN(LN h)                             × layers
    p(w_{i+1} | w_≤i, m) = softmax( LN(h_i) Eᵀ )     output projection tied to the embedding, as GPT-2

How MV-GPT conditions its decoder is not verified (prefix or cross-attention); cross-attention is our choice, so the
decoder's own sequence stays short and causal masking stays simple.
"""

from __future__ import annotations

import torch
from torch import nn

from ..nn.attention import FeedForward, MultiHeadAttention


class DecoderBlock(nn.Module):
    def __init__(self, width: int, heads: int, mlp_dim: int, eps: float = 1e-6):
        super().__init__()
        self.ln_self, self.ln_cross, self.ln_memory, self.ln_mlp = (nn.LayerNorm(width, eps=eps) for _ in range(4))
        self.self_attn = MultiHeadAttention(width, heads, logit_cap=None)
        self.cross_attn = MultiHeadAttention(width, heads, logit_cap=None)
        self.mlp = FeedForward(width, mlp_dim)

    def forward(self, x, keep, memory, memory_mask):
        x = x + self.self_attn(self.ln_self(x), key_mask=keep, causal=True)
        x = x + self.cross_attn(self.ln_cross(x), key_mask=memory_mask, context=self.ln_memory(memory))
        return x + self.mlp(self.ln_mlp(x))


class TextDecoder(nn.Module):
    def __init__(self, vocab_size: int, width: int, layers: int, heads: int, mlp_dim: int, max_length: int,
                 eps: float = 1e-6):
        super().__init__()
        self.max_length = max_length
        self.embed = nn.Embedding(vocab_size, width)
        nn.init.normal_(self.embed.weight, std=0.02)  # GPT-2's initialisation
        self.pos = nn.Parameter(torch.randn(max_length, width) * 0.01)  # (L_max, D)
        self.blocks = nn.ModuleList(DecoderBlock(width, heads, mlp_dim, eps) for _ in range(layers))
        self.norm = nn.LayerNorm(width, eps=eps)

    def forward(self, ids, keep, memory, memory_mask):
        """ids, keep: (B, L) decoder inputs; memory (B, L_m, D), memory_mask (B, L_m). Returns logits (B, L, V)."""
        L = ids.shape[1]
        if L > self.max_length:
            raise ValueError(f"decoder input of {L} tokens exceeds max_length {self.max_length}")
        x = self.embed(ids) + self.pos[:L]  # (B, L, D)
        for block in self.blocks:
            x = block(x, keep, memory, memory_mask)
        return self.norm(x) @ self.embed.weight.T  # (B, L, V), tied output projection
