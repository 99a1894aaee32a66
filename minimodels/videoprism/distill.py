"""VideoPrism stage 2's two decoders and their losses: global–local distillation with token shuffling (arXiv
2402.13217, §2.3.2, App. C.2, Alg. 1, Table 11).

A frozen stage-1 teacher sees the whole clip and gives token embeddings y_1..y_{T·N} and a global embedding g
(its stage-1 MAP pooler). The student encoder sees only the visible tokens (65 % are masked) and feeds two decoders:

    local:   x   = [visible content | [MASK] at masked positions]      (B, T·N, d), canonical order
             x'  = x[π] + P              π a random permutation per clip; slot i gets position i's embedding P_i
             ŷ   = W_out · Transformer(x')                              slot i is compared with the teacher's y_i
             L_local  = mean_i (1 - cos(ŷ_i, y_i))                       over ALL slots, visible and masked
    global:  ĝ   = MAP(Transformer(visible tokens))                      no positional embedding, no shuffle
             L_global = 1 - cos(ĝ, g)

Shuffling blocks the copy shortcut: without it, slot i of a visible position holds that position's own student
token, which already encodes the answer. With it, slot i holds some other position's content, so the decoder must
find where position i went (or predict it, if masked). The targets are *not* permuted with the inputs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..nn.attention import Transformer
from ..nn.map_pooler import MAPPooler


def cosine_distance(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - cos(pred, target) along the last axis: (..., D), (..., D) -> (...)."""
    return 1.0 - F.cosine_similarity(pred, target, dim=-1)


def standardise_tokens(tokens: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """(B, L, D) -> (B, L, D): every channel centred and scaled over the clip's L tokens (data2vec's instance norm).

    Our choice, not the paper's (which does not say how its token targets are normalised): in a 32-pixel world most
    tokens are background, so raw teacher tokens share one large clip-wide direction and predicting the clip's mean
    token already scores cos distance ≈ 0.07. Removing it leaves what differs between positions and frames: where
    the object is, when.
    """
    mean = tokens.mean(dim=1, keepdim=True)
    return (tokens - mean) / (tokens.var(dim=1, keepdim=True, unbiased=False) + eps).sqrt()


def teacher_targets(teacher, video: torch.Tensor, target_norm: str) -> torch.Tensor:
    """(B, T, H, W, C) float clips -> (B, T·N, D): the teacher's tokens as the local loss compares with them."""
    tokens = teacher.encoder(video)
    return standardise_tokens(tokens) if target_norm == "instance" else tokens


def fill_masked(visible_tokens: torch.Tensor, visible: torch.Tensor, mask_token: torch.Tensor, frames: int,
                tokens_per_frame: int) -> torch.Tensor:
    """(B, T·M, d) student tokens + (B, M) kept positions -> (B, T·N, d) in canonical order, [MASK] elsewhere."""
    B, _, d = visible_tokens.shape
    M = visible.shape[1]
    # [MASK] in the tokens' dtype: under CUDA autocast the projected tokens are bf16, the parameter fp32
    full = mask_token.to(visible_tokens.dtype).expand(B, frames, tokens_per_frame, d).clone()  # (B, T, N, d)
    content = visible_tokens.reshape(B, frames, M, d)  # time-major, as the encoder returns it
    full.scatter_(2, visible[:, None, :, None].expand(B, frames, M, d), content)
    return full.reshape(B, frames * tokens_per_frame, d)


class LocalDecoder(nn.Module):
    """Token-wise decoder: [MASK] fill, shuffle, canonical positional embedding, transformer, linear head."""

    def __init__(self, in_width: int, width: int, layers: int, heads: int, mlp_dim: int, out_width: int,
                 num_tokens: int, eps: float = 1e-6):
        super().__init__()
        self.proj_in = nn.Linear(in_width, width)
        self.mask_token = nn.Parameter(torch.zeros(width))
        self.pos = nn.Parameter(torch.randn(num_tokens, width) * num_tokens**-0.5)  # (T·N, d), one per slot
        self.blocks = Transformer(layers, width, heads, mlp_dim, logit_cap=None, eps=eps)
        self.norm = nn.LayerNorm(width, eps=eps)
        self.head = nn.Linear(width, out_width)

    def forward(self, visible_tokens, visible, frames, tokens_per_frame, permutation=None):
        """Returns (B, T·N, out_width): slot i predicts the teacher's token at canonical position i."""
        x = fill_masked(self.proj_in(visible_tokens), visible, self.mask_token, frames, tokens_per_frame)
        if permutation is not None:  # (B, T·N): slot i receives the content of position permutation[:, i]
            x = x.gather(1, permutation[..., None].expand_as(x))
        x = x + self.pos  # after the shuffle: slot i always gets position i's embedding
        return self.head(self.norm(self.blocks(x)))


class GlobalDecoder(nn.Module):
    """Global decoder: a transformer over the visible tokens only (no positions, no shuffle), then a new MAP pooler."""

    def __init__(self, in_width: int, width: int, layers: int, heads: int, mlp_dim: int, out_width: int,
                 eps: float = 1e-6):
        super().__init__()
        self.proj_in = nn.Linear(in_width, width)
        self.blocks = Transformer(layers, width, heads, mlp_dim, logit_cap=None, eps=eps)
        self.pooler = MAPPooler(width, heads, hidden=width, eps=eps)
        self.head = nn.Linear(width, out_width)

    def forward(self, visible_tokens):  # (B, T·M, D) -> (B, out_width)
        return self.head(self.pooler(self.blocks(self.proj_in(visible_tokens))))


def seen_slots(visible: torch.Tensor, frames: int, tokens_per_frame: int) -> torch.Tensor:
    """(B, M) kept positions -> (B, T·N) booleans in canonical (time-major) order: True where the student saw it."""
    seen = torch.zeros(len(visible), tokens_per_frame, dtype=torch.bool, device=visible.device)
    seen.scatter_(1, visible, True)  # (B, N)
    return seen[:, None, :].expand(-1, frames, -1).reshape(len(visible), frames * tokens_per_frame)


def random_permutations(batch: int, length: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """(batch, length): an independent random permutation of 0..length-1 for every clip."""
    return torch.rand(batch, length, generator=generator).argsort(dim=1)
