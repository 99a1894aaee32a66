"""VideoPrism's text tower: a CoCa-style unimodal text decoder used as an encoder (arXiv 2402.13217, §2.3.1;
official code ``videoprism/encoders.py``, ``TextEncoder``; text prepared by ``videoprism/utils.py``,
``canonicalize_text``).

For token ids w_1..w_L (padded to a fixed length) and a learned class embedding c appended after the padding:

    x_i     = √D · E[w_i] + PE_sin(i)        i = 1..L
    x_{L+1} = √D · c                         no positional embedding: it is always the last token
    h       = LN( CausalTransformer(x) )     padding keys masked; attention logits soft-capped; ReLU FFN of width 4·D
    text    = h_{L+1} / ‖h_{L+1}‖            the class token's output, L2-normalised

Because attention is causal, the class token must come last to see the whole text; putting it after the padding
(rather than right after the last word) keeps its position the same for every text. Texts are canonicalised first
(lower case, punctuation to spaces, one space between words) and end with a period: ``tokenize_texts``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..engine.errors import ConfigError
from ..nn.attention import Transformer
from ..nn.text import load_tokenizer, tokenize


def text_tokenizer(folder: str, model) -> object:
    """The tokenizer a VideoPrism run reads text with (``tokenizer=``): the one saved in ``folder`` (LvT's
    SentencePiece tokenizer beside the public weights), or the course's; refused when its ids do not fit the text
    tower's vocabulary (``model``: the run's ``VideoTextConfig``)."""
    tokenizer = load_tokenizer(folder or None)
    if len(tokenizer) > model.vocab_size:
        raise ConfigError(f"tokenizer={folder or '<the course tokenizer>'}: {len(tokenizer):,} tokens, but the text "
                          f"tower has {model.vocab_size:,} (model.vocab_size); choose the preset the tokenizer "
                          f"belongs to (LvT's 32,000: videoprism-lvt-b)")
    return tokenizer


def tokenize_texts(tokenizer, texts: list[str], length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """VideoPrism's text input: canonicalised texts ending with "." -> ids and keep-mask (B, length).

    The course tokenizer was trained on the world's text, which has no period: "." is added to it here, as one more
    token (id 325), the first time (the other papers never see it, their ids and checkpoints stay as they are). A
    tokenizer that knows "." (the public SentencePiece one) is left as it is."""
    if "." not in tokenizer.get_vocab():
        tokenizer.add_tokens(["."])
    return tokenize(tokenizer, texts, length, period=True)


def sinusoidal_positions(length: int, width: int, max_timescale: float = 1e4) -> torch.Tensor:
    """(length, width) sin/cos embedding with timescales from 1 to ``max_timescale`` (the official
    ``PositionalEmbedding``: geometric steps over width / 2 - 1 intervals)."""
    half = width // 2
    timescales = max_timescale ** (torch.arange(half, dtype=torch.float32) / max(1, half - 1))
    angles = torch.arange(length, dtype=torch.float32)[:, None] / timescales[None, :]  # (length, half)
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


class TextEncoder(nn.Module):
    def __init__(self, vocab_size: int, width: int, layers: int, heads: int, length: int, eps: float = 1e-6,
                 impl: str = "manual", logit_cap: float | None = None):
        super().__init__()
        self.width, self.length = width, length
        self.embed = nn.Embedding(vocab_size, width)
        nn.init.normal_(self.embed.weight, std=width**-0.5)
        self.cls = nn.Parameter(torch.randn(width) * width**-0.5)  # (D,)
        # (L, D), saved with the weights: a checkpoint converted from transformers carries its own sinusoids
        self.register_buffer("positions", sinusoidal_positions(length, width))
        self.blocks = Transformer(layers, width, heads, 4 * width, logit_cap=logit_cap, impl=impl, eps=eps,
                                  activation="relu")
        self.norm = nn.LayerNorm(width, eps=eps)

    def forward(self, ids: torch.Tensor, keep: torch.Tensor, return_tokens: bool = False):
        """ids, keep: (B, L). Returns unit-norm text embeddings (B, D) (and all token states if asked)."""
        B, L = ids.shape
        if L != self.length:
            raise ValueError(f"expected {self.length} text tokens (pad or truncate to it), got {L}")
        scale = math.sqrt(self.width)
        words = self.embed(ids) * scale + self.positions.to(self.embed.weight.dtype)  # (B, L, D)
        x = torch.cat([words, (self.cls * scale).expand(B, 1, -1)], dim=1)  # (B, L+1, D)
        key_mask = torch.cat([keep, keep.new_ones(B, 1)], dim=1)  # the class token is always a key
        h = self.norm(self.blocks(x, key_mask=key_mask, causal=True))  # (B, L+1, D)
        text = F.normalize(h[:, -1], dim=-1)
        return (text, h) if return_tokens else text
