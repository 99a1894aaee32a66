"""Multi-head attention (self- and cross-), the feed-forward block and the pre-LN transformer block of every model.

VideoPrism's layers (arXiv 2402.13217, App. B; official code ``videoprism/layers.py``) are standard pre-LN blocks
with one twist: attention logits are soft-capped,

    logits = c · tanh( (q kᵀ / √d) / c ),   c = 50,

applied before masking, with the softmax in fp32. The cap is the identity for small logits and bounds the large
ones, which keeps long trainings from blowing up.

Two paths compute the same thing:
- ``manual``: the readable one, every step written out (logits, cap, mask, softmax, weighted sum);
- ``fused``: ``F.scaled_dot_product_attention`` when there is no cap; with a cap, PyTorch's FlexAttention with the
  cap as a ``score_mod``, compiled into one fused kernel on CUDA (on CPU it runs an unfused reference for inference
  and, having no CPU backward, hands training steps to the manual path).
``auto`` (the full presets) takes the fastest of them where the tensors are: ``fused`` on CUDA, ``manual`` on CPU,
where the uncompiled FlexAttention is slower than the manual path. The tiny configs keep ``manual``, the path the
notebooks read. Tests check that the paths agree. Key masks are boolean, True = this key may be attended to.
Query rows that have no visible key at all get a zero output on every path.
"""

from __future__ import annotations

import functools
import math
import warnings

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

ATTENTION_IMPLS = ("manual", "fused", "auto")


def manual_attention(q, k, v, key_mask=None, logit_cap=None, causal=False):
    """q, k, v: (B, H, L, hd); key_mask: (B, L_k) bool, True = keep. Returns (B, H, L, hd)."""
    logits = torch.einsum("bhqd,bhkd->bhqk", q, k).float() / math.sqrt(q.shape[-1])  # (B, H, Lq, Lk)
    if logit_cap is not None:
        logits = logit_cap * torch.tanh(logits / logit_cap)
    allowed = _allowed(key_mask, causal, q.shape[-2], k.shape[-2], q.device)  # (B|1, 1, Lq, Lk)
    if allowed is not None:  # the lowest float, not -inf: a row without keys gets uniform weights, not NaN ...
        logits = logits.masked_fill(~allowed, torch.finfo(logits.dtype).min)
    weights = torch.softmax(logits, dim=-1)  # (B, H, Lq, Lk)
    out = torch.einsum("bhqk,bhkd->bhqd", weights.to(v.dtype), v)
    return out if allowed is None else out * allowed.any(-1, keepdim=True)  # ... and a zero output


def fused_attention(q, k, v, key_mask=None, logit_cap=None, causal=False):
    """Same contract as ``manual_attention``, on PyTorch's fused kernels."""
    allowed = _allowed(key_mask, causal, q.shape[-2], k.shape[-2], q.device)
    if logit_cap is None:
        if allowed is None:
            return F.scaled_dot_product_attention(q, k, v)
        # A row with no allowed key would give NaN; let it attend everywhere, then zero it.
        has_key = allowed.any(-1, keepdim=True)  # (B|1, 1, Lq, 1)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed | ~has_key)
        return out * has_key
    if q.device.type == "cpu" and torch.is_grad_enabled() and q.requires_grad:
        # FlexAttention has no CPU backward; the readable path computes the same function.
        return manual_attention(q, k, v, key_mask=key_mask, logit_cap=logit_cap, causal=causal)
    flex = _flex_attention(q.is_cuda)
    # The CUDA kernel puts batch × heads on one grid axis: past its limit, a few calls over slices of the batch.
    step = max(1, MAX_GRID_Y // q.shape[1])
    outs = []
    with warnings.catch_warnings():  # eager flex attention warns that it is unfused; that is expected on CPU
        warnings.simplefilter("ignore")
        for i in range(0, q.shape[0], step):
            part = None if allowed is None else allowed[i:i + step] if allowed.shape[0] > 1 else allowed
            cut = slice(i, i + step)
            outs.append(flex(q[cut], k[cut], v[cut], score_mod=_cap_and_mask(logit_cap, part)))
    out = torch.cat(outs) if len(outs) > 1 else outs[0]
    if allowed is not None:
        out = out * allowed.any(-1, keepdim=True)
    return out


# A CUDA grid's second axis holds at most 65,535 blocks. The temporal stage of a factorized encoder attends over
# B·N short sequences (32 clips × 256 positions × 12 heads = 98,304 at VideoPrism-B), past that limit.
MAX_GRID_Y = 65_535


def _cap_and_mask(logit_cap: float, allowed):
    """FlexAttention's ``score_mod``: the soft cap, then -inf where ``allowed`` (B|1, 1, Lq, Lk) says no."""

    def score_mod(score, b, h, qi, ki):
        score = logit_cap * torch.tanh(score / logit_cap)
        if allowed is not None:
            score = torch.where(allowed[b if allowed.shape[0] > 1 else 0, 0, qi, ki], score, float("-inf"))
        return score

    return score_mod


@functools.cache
def _flex_attention(compiled: bool):
    """FlexAttention, compiled once per process where it runs on CUDA (its fused kernel comes from compiling it).

    Each new shape compiles a new kernel, and dynamo stops compiling a function after ``recompile_limit`` (8)
    versions: past that, flex attention would run unfused, and under activation recomputation not at all. One
    process meets more shapes than that (every preset of a sweep, a spatial and a temporal stage each), so the
    limit is raised for this function's sake."""
    from torch.nn.attention.flex_attention import flex_attention

    if not compiled:
        return flex_attention
    import torch._dynamo

    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 64)
    return torch.compile(flex_attention, dynamic=False)


def _allowed(key_mask, causal, len_q, len_k, device):
    """Combine a key-padding mask and a causal mask into one (B|1, 1, Lq, Lk) boolean, or None."""
    allowed = None
    if key_mask is not None:
        allowed = key_mask[:, None, None, :].expand(-1, 1, len_q, -1)
    if causal:
        tri = torch.ones(len_q, len_k, dtype=torch.bool, device=device).tril()[None, None]
        allowed = tri if allowed is None else allowed & tri
    return allowed


class MultiHeadAttention(nn.Module):
    """Self-attention with biases on q/k/v/out and head_dim = width / heads (as VideoPrism's ``layers.py``)."""

    def __init__(self, width: int, heads: int, logit_cap: float | None = 50.0, impl: str = "manual"):
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} is not divisible by heads {heads}")
        if impl not in ATTENTION_IMPLS:
            raise ValueError(f"attention impl {impl!r} unknown; choose one of {ATTENTION_IMPLS}")
        self.heads, self.logit_cap, self.impl = heads, logit_cap, impl
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)

    def forward(self, x, key_mask=None, causal=False, context=None):
        """x: (B, L, D). With ``context`` (B, L_c, D) it is cross-attention: queries from x, keys and values from
        the context (the same projections), and ``key_mask`` (B, L_c) masks the context."""
        B, L, D = x.shape
        H, hd = self.heads, D // self.heads
        if context is None:
            q, k, v = self.qkv(x).view(B, L, 3, H, hd).permute(2, 0, 3, 1, 4)  # 3 × (B, H, L, hd)
        else:
            (w_q, w_kv), (b_q, b_kv) = self.qkv.weight.split([D, 2 * D]), self.qkv.bias.split([D, 2 * D])
            q = F.linear(x, w_q, b_q).view(B, L, H, hd).transpose(1, 2)  # (B, H, L, hd)
            k, v = F.linear(context, w_kv, b_kv).view(B, -1, 2, H, hd).permute(2, 0, 3, 1, 4)  # 2 × (B, H, L_c, hd)
        fused = self.impl == "fused" or (self.impl == "auto" and x.is_cuda)
        attend = fused_attention if fused else manual_attention
        y = attend(q, k, v, key_mask=key_mask, logit_cap=self.logit_cap, causal=causal)  # (B, H, L, hd)
        return self.out(y.transpose(1, 2).reshape(B, L, D))


class FeedForward(nn.Sequential):
    """FFN(x) = W_2 · act(W_1 x + b_1) + b_2, (..., D) -> (..., D) through a hidden width ``mlp_dim``.

    The activation is the exact GELU (not its tanh approximation) everywhere but VideoPrism's text tower, which uses
    ReLU. A ``Sequential``, so its weights are named ``0.*`` and ``2.*`` in every checkpoint.
    """

    ACTIVATIONS = {"gelu": lambda: nn.GELU(approximate="none"), "relu": nn.ReLU}

    def __init__(self, width: int, mlp_dim: int, activation: str = "gelu"):
        if activation not in self.ACTIVATIONS:
            raise ValueError(f"activation {activation!r} unknown; choose one of {', '.join(self.ACTIVATIONS)}")
        super().__init__(nn.Linear(width, mlp_dim), self.ACTIVATIONS[activation](), nn.Linear(mlp_dim, width))


class TransformerBlock(nn.Module):
    """Pre-LN block: x + Attn(LN(x)), then x + FFN(LN(x))."""

    def __init__(self, width, heads, mlp_dim, logit_cap=50.0, impl="manual", eps=1e-6, activation="gelu"):
        super().__init__()
        self.ln1 = nn.LayerNorm(width, eps=eps)
        self.attn = MultiHeadAttention(width, heads, logit_cap, impl)
        self.ln2 = nn.LayerNorm(width, eps=eps)
        self.mlp = FeedForward(width, mlp_dim, activation)

    def forward(self, x, key_mask=None, causal=False):  # x: (B, L, D)
        x = x + self.attn(self.ln1(x), key_mask=key_mask, causal=causal)
        return x + self.mlp(self.ln2(x))


class Transformer(nn.Module):
    """A stack of ``depth`` pre-LN blocks sharing one key mask.

    The stack offers the training loop two trades (``engine.train.ask_model`` finds them by name):
    ``recompute_activations(True)`` keeps only each block's input for the backward pass and computes the rest again
    there (the memory of one block's activations instead of ``depth`` blocks', for one more forward pass), and
    ``compile_layers()`` compiles each block with ``torch.compile`` (where nearly all of the FLOPs are)."""

    def __init__(self, depth, width, heads, mlp_dim, logit_cap=50.0, impl="manual", eps=1e-6, activation="gelu"):
        super().__init__()
        self.blocks = nn.ModuleList(
            TransformerBlock(width, heads, mlp_dim, logit_cap, impl, eps, activation) for _ in range(depth)
        )
        self.recompute = False

    def recompute_activations(self, on: bool) -> None:
        self.recompute = on

    def compile_layers(self) -> None:
        for block in self.blocks:
            block.compile()

    def forward(self, x, key_mask=None, causal=False):  # (B, L, D) -> (B, L, D)
        for block in self.blocks:
            if self.recompute and torch.is_grad_enabled():
                x = checkpoint(block, x, key_mask, causal, use_reentrant=False)
            else:
                x = block(x, key_mask=key_mask, causal=causal)
        return x
