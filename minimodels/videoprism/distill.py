"""VideoPrism stage 2's two decoders and their losses: global–local distillation with token shuffling (arXiv
2402.13217, §2.3.2, App. C.2, Alg. 1, Table 11).

A frozen stage-1 teacher sees the whole clip and gives token embeddings y_1..y_n (n = T·N, time-major) and a global
embedding g (its stage-1 MAP head). The student encoder sees only the visible tokens (a (B, n) boolean ``seen``;
BEVT's masks differ from frame to frame) and feeds two decoders, each an MLP projector in, four pre-LN transformer
layers and an MLP projector out (Table 11, at every model size):

    local:   x   = [ P_in(student token) where seen | [MASK] elsewhere ]     (B, n, d), canonical order
             x'  = x[π] + E            π a random permutation per clip; slot i gets position i's embedding E_i
             ŷ   = P_out(LN(Transformer(x')))                               slot i is compared with the teacher's y_i
             L_local  = mean_i (1 - cos(ŷ_i, ȳ_i))                          over ALL slots, visible and masked
    global:  ĝ   = P_out(MAP(Transformer(P_in(visible tokens))))            no positional embedding, no shuffle
             L_global = 1 - cos(ĝ, g)

Shuffling blocks the copy shortcut: without it, slot i of a visible position holds that position's own student
token, which already encodes the answer. With it, slot i holds some other position's content, so the decoder must
find where position i went (or predict it, if masked). The targets are *not* permuted with the inputs.

Where the paper is silent we take the works it builds on: E is a fixed sinusoidal table over the n canonical slots
(VideoMAE's and MVD's decoders; MAE's is fixed sin-cos too), [MASK] starts as N(0, 0.02²) (MAE, VideoMAE), each MLP
projector is two linear layers with a GELU, its hidden width its output width, and the global decoder's MAP attends
at 4·d as the teacher's own head does at 4·D. The decoders have no logit cap (they are not VideoPrism's encoder
layers), so they run PyTorch's fused attention everywhere, which computes what the readable path does. ȳ is the
teacher's token as it is ("none", the paper's cosine to the first-stage embeddings), or normalised per token
("layer", data2vec's choice for vision) or per channel over the clip ("instance", data2vec's for speech):
``teacher_targets``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..nn.attention import Transformer
from ..nn.map_pooler import MAPPooler
from .text_encoder import sinusoidal_positions

TARGET_NORMS = ("none", "layer", "instance")


def cosine_distance(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - cos(pred, target) along the last axis: (..., D), (..., D) -> (...)."""
    return 1.0 - F.cosine_similarity(pred, target, dim=-1)


def standardise_tokens(tokens: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """(B, L, D) -> (B, L, D): every channel centred and scaled over the clip's L tokens (instance norm)."""
    mean = tokens.mean(dim=1, keepdim=True)
    return (tokens - mean) / (tokens.var(dim=1, keepdim=True, unbiased=False) + eps).sqrt()


def normalise_targets(tokens: torch.Tensor, target_norm: str) -> torch.Tensor:
    """(B, L, D) teacher tokens -> the local loss's targets: as they are, per-token layer norm, or per-clip."""
    if target_norm == "layer":
        return F.layer_norm(tokens, tokens.shape[-1:], eps=1e-6)  # no scale or bias: data2vec's target for vision
    if target_norm == "instance":
        return standardise_tokens(tokens)
    return tokens


def teacher_targets(teacher, video: torch.Tensor, target_norm: str) -> torch.Tensor:
    """(B, T, H, W, C) float clips -> (B, T·N, D): the teacher's tokens as the local loss compares with them."""
    return normalise_targets(teacher.encoder(video), target_norm)


class MLPProjector(nn.Sequential):
    """Table 11's "MLP projector" between the encoder's width and the decoder's: Linear, GELU, Linear."""

    def __init__(self, in_width: int, out_width: int):
        super().__init__(nn.Linear(in_width, out_width), nn.GELU(), nn.Linear(out_width, out_width))


def fill_masked(tokens: torch.Tensor, seen: torch.Tensor, mask_token: torch.Tensor) -> torch.Tensor:
    """(B, n, d) tokens + (B, n) seen -> (B, n, d): the token where seen, [MASK] elsewhere (canonical order)."""
    # [MASK] in the tokens' dtype: under CUDA autocast the projected tokens are bf16, the parameter fp32
    return torch.where(seen[..., None], tokens, mask_token.to(tokens.dtype))


class LocalDecoder(nn.Module):
    """Token-wise decoder: projector, [MASK] fill, shuffle, canonical positions, transformer, projector."""

    def __init__(self, in_width: int, width: int, layers: int, heads: int, mlp_dim: int, out_width: int,
                 num_tokens: int, eps: float = 1e-6):
        super().__init__()
        self.proj_in = MLPProjector(in_width, width)
        self.mask_token = nn.Parameter(torch.zeros(width))
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        self.register_buffer("pos", sinusoidal_positions(num_tokens, width))  # (n, d): fixed, one per slot
        self.blocks = Transformer(layers, width, heads, mlp_dim, logit_cap=None, impl="fused", eps=eps)
        self.norm = nn.LayerNorm(width, eps=eps)
        self.proj_out = MLPProjector(width, out_width)

    def forward(self, tokens, seen, permutation=None):
        """tokens: (B, n, D) student tokens (rows where ``seen`` is False are never read); seen: (B, n) bool;
        permutation: (B, n), slot i receives the content of position permutation[:, i]. Returns (B, n,
        out_width): slot i predicts the teacher's token at canonical position i."""
        x = fill_masked(self.proj_in(tokens), seen, self.mask_token)  # (B, n, d)
        if permutation is not None:
            x = x.gather(1, permutation[..., None].expand_as(x))
        x = x + self.pos  # after the shuffle: slot i always gets position i's embedding
        return self.proj_out(self.norm(self.blocks(x)))


class GlobalDecoder(nn.Module):
    """Global decoder: a transformer over the visible tokens only (no positions, no shuffle), then a new MAP pooler."""

    def __init__(self, in_width: int, width: int, layers: int, heads: int, mlp_dim: int, out_width: int,
                 eps: float = 1e-6):
        super().__init__()
        self.proj_in = MLPProjector(in_width, width)
        self.blocks = Transformer(layers, width, heads, mlp_dim, logit_cap=None, impl="fused", eps=eps)
        self.pooler = MAPPooler(width, heads, hidden=4 * width, eps=eps)  # 4·d, as the teacher's head at 4·D
        self.proj_out = MLPProjector(width, out_width)

    def forward(self, tokens, seen):  # (B, n, D), (B, n) bool -> (B, out_width); unseen tokens are never attended
        x = self.blocks(self.proj_in(tokens), key_mask=seen)
        return self.proj_out(self.pooler(x, key_mask=seen))


def random_permutations(batch: int, length: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """(batch, length): an independent random permutation of 0..length-1 for every clip."""
    return torch.rand(batch, length, generator=generator).argsort(dim=1)
