"""The factorized video ViT of VideoPrism (ViViT "model 2" without the spatial pooling): arXiv 2402.13217, §2.2 and
App. B; official code ``videoprism/encoders.py``.

For a clip x of shape (B, T, H, W, 3) with values in [0, 1] and patch size p (N = HW/p² patches per frame):

    z⁰_{t,n} = W_patch · flatten(patch_{t,n}) + b + e^space_n                  (B, T, N, D)
    s_t      = LN_space( SpatialTransformer(z⁰_t) )          for each frame t   (B·T, N, D)
    h_n      = LN_time( TemporalTransformer(s_{·,n} + e^time) ) for each patch n (B·N, T, D)
    output   = h reshaped time-major                                            (B, T·N, D)

Unlike ViViT there is no pooling between the stages: every one of the N tokens of every frame reaches the temporal
transformer, which attends across the T frames at one patch position. Attention costs O(T·N²) spatially plus
O(N·T²) temporally instead of O((T·N)²) for joint space-time attention.

Two ways to hide tokens, both needed by the masked-modelling stage:
- ``visible``: (B, M) indices of the spatial positions kept in *every* frame (tube masking). The tensors shrink
  to (B·T, M, D) and (B·M, T, D), so both stages stay dense and cheap. Output (B, T·M, D).
- ``token_mask``: (B, T, N) booleans, True = visible, which may differ per frame (block masking). Hidden tokens
  stay in the tensors but are removed as keys from both attentions, so no visible output depends on them.
  Output (B, T·N, D); rows of hidden tokens carry no meaning.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from ..engine.config import finite, require, whole
from .attention import ATTENTION_IMPLS, Transformer


@dataclass
class VideoViTConfig:
    """Sizes of the factorized encoder. Defaults are the tiny CPU preset; ``videoprism/presets.py`` has the paper's."""

    image_size: int = 32  # frames are image_size × image_size (the paper: 288)
    patch_size: int = 8  # the paper: 18, giving a 16 × 16 grid
    num_frames: int = 8  # frames the temporal embedding is trained for (the paper: 16 for B, 8 for L and g)
    channels: int = 3
    width: int = 64  # D
    spatial_layers: int = 1  # tiny: one layer each; deeper stacks sit longer on the plateau before motion appears
    temporal_layers: int = 1  # the paper: always 4
    heads: int = 4
    mlp_dim: int = 256
    logit_cap: float | None = 50.0
    ln_eps: float = 1e-6
    # "manual" (readable), "fused" (scaled_dot_product_attention / FlexAttention) or "auto" (fused on CUDA, manual on
    # CPU: what the full presets use)
    attn_impl: str = "manual"
    space_time: str = "factorized"  # or "joint": the same layers, each attending over all T·N tokens (Table 24)

    def __post_init__(self):
        require(self, {
            "image_size": (whole(self.image_size), "a whole number of pixels >= 1"),
            "patch_size": (whole(self.patch_size) and self.image_size % self.patch_size == 0,
                           f"a whole number >= 1 that divides image_size={self.image_size}"),
            "num_frames": (whole(self.num_frames), "a whole number >= 1"),
            "channels": (whole(self.channels), "a whole number >= 1"),
            "width": (whole(self.width), "a whole number >= 1"),
            "heads": (whole(self.heads) and self.width % self.heads == 0,
                      f"a whole number >= 1 that divides width={self.width}"),
            "spatial_layers": (whole(self.spatial_layers), "a whole number >= 1"),
            "temporal_layers": (whole(self.temporal_layers, 0), "a whole number >= 0 (0: no temporal stage)"),
            "mlp_dim": (whole(self.mlp_dim), "a whole number >= 1"),
            "logit_cap": (self.logit_cap is None or (finite(self.logit_cap) and self.logit_cap > 0),
                          "a number > 0, or none for no cap"),
            "ln_eps": (finite(self.ln_eps) and self.ln_eps > 0, "a number > 0"),
            "attn_impl": (self.attn_impl in ATTENTION_IMPLS, f"one of {', '.join(ATTENTION_IMPLS)}"),
            "space_time": (self.space_time in ("factorized", "joint"), "'factorized' or 'joint'")})

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size

    @property
    def tokens_per_frame(self) -> int:
        return self.grid**2

    def example_inputs(self, frames: int | None = None, device="meta") -> tuple[torch.Tensor]:
        """The model's inputs for one clip of zeros (on ``meta`` by default, to count sizes and FLOPs for free)."""
        T = frames or self.num_frames
        return (torch.zeros(1, T, self.image_size, self.image_size, self.channels, device=device),)

    def build(self) -> "FactorizedVideoViT":
        return FactorizedVideoViT(self)


def patchify(video: torch.Tensor, patch: int) -> torch.Tensor:
    """(B, T, H, W, C) -> (B, T, N, p·p·C), patches in raster order, each flattened as (row, col, channel)."""
    return rearrange(video, "b t (h p) (w q) c -> b t (h w) (p q c)", p=patch, q=patch)


# The learned positional embeddings are resized as the official code resizes them (``jax.image.resize``, bilinear,
# which antialiases when it shrinks; transformers' port: ``F.interpolate(..., antialias=True)``): fewer frames, or a
# smaller grid, average the rows they cover instead of sampling two of them. Growing is plain interpolation.

def interpolate_spatial(pos: torch.Tensor, grid_h: int, grid_w: int) -> torch.Tensor:
    """Resize a learned (g·g, D) positional embedding to (grid_h·grid_w, D): bilinear, antialiased."""
    g = int(round(pos.shape[0] ** 0.5))
    if (g, g) == (grid_h, grid_w):
        return pos
    img = rearrange(pos, "(h w) d -> 1 d h w", h=g)  # a D-channel image of the grid
    img = F.interpolate(img, size=(grid_h, grid_w), mode="bilinear", align_corners=False, antialias=True)
    return rearrange(img, "1 d h w -> (h w) d")


def interpolate_temporal(pos: torch.Tensor, frames: int) -> torch.Tensor:
    """Resize a learned (T_train, D) temporal embedding to (frames, D): linear in time, antialiased (a bilinear
    resize of the (T, D) table that keeps D, as the official code does it)."""
    if pos.shape[0] == frames:
        return pos
    table = pos[None, None]  # (1, 1, T_train, D)
    return F.interpolate(table, size=(frames, pos.shape[1]), mode="bilinear", align_corners=False,
                         antialias=True)[0, 0]


class HasVideoEncoder:
    """For configs that hold a ``VideoViTConfig`` as ``.video``: frames and tokens as ``info`` reads them."""

    @property
    def num_frames(self) -> int:
        return self.video.num_frames

    @property
    def tokens_per_frame(self) -> int:
        return self.video.tokens_per_frame


class FactorizedVideoViT(nn.Module):
    def __init__(self, cfg: VideoViTConfig):
        super().__init__()
        self.cfg = cfg
        D = cfg.width
        self.patch_proj = nn.Linear(cfg.patch_size**2 * cfg.channels, D)
        self.spatial_pos = nn.Parameter(torch.empty(cfg.tokens_per_frame, D))  # (N, D)
        self.temporal_pos = nn.Parameter(torch.empty(cfg.num_frames, D))  # (T_train, D)
        for pos in (self.spatial_pos, self.temporal_pos):  # lecun_normal as the official code: std = 1/√rows
            nn.init.trunc_normal_(pos, std=pos.shape[0] ** -0.5)

        def stack(depth):
            return Transformer(depth, D, cfg.heads, cfg.mlp_dim, cfg.logit_cap, cfg.attn_impl, cfg.ln_eps)

        self.spatial = stack(cfg.spatial_layers)
        self.spatial_ln = nn.LayerNorm(D, eps=cfg.ln_eps)
        self.temporal = stack(cfg.temporal_layers)
        self.temporal_ln = nn.LayerNorm(D, eps=cfg.ln_eps)

    def check_video(self, video: torch.Tensor) -> None:
        """Raise a ValueError that says what was expected if ``video`` is not a (B, T, H, W, C) float clip."""
        c = self.cfg
        if not torch.is_tensor(video) or video.ndim != 5:
            shape = tuple(video.shape) if torch.is_tensor(video) else type(video).__name__
            raise ValueError(f"expected a video of shape (B, T, H, W, {c.channels}), got {shape}")
        if not video.is_floating_point():
            raise ValueError(f"expected a float video with values in [0, 1], got dtype {video.dtype}")
        B, T, H, W, C = video.shape
        if C != c.channels:
            raise ValueError(f"expected {c.channels} channels last, got shape {tuple(video.shape)} "
                             f"(channels-first clips need video.permute(0, 1, 3, 4, 2))")
        if H % c.patch_size or W % c.patch_size:
            raise ValueError(f"frame size {H}×{W} is not divisible by the patch size {c.patch_size}")

    def forward(self, video, visible=None, token_mask=None, return_spatial=False):
        """video: (B, T, H, W, C) in [0, 1]. Returns (B, T·M, D) tokens, time-major (see module docstring)."""
        self.check_video(video)
        if visible is not None and token_mask is not None:
            raise ValueError("pass either visible (tube indices) or token_mask (per-frame booleans), not both")
        B, T, H, W, _ = video.shape
        p = self.cfg.patch_size
        x = self.patch_proj(patchify(video, p))  # (B, T, N, D)
        x = x + interpolate_spatial(self.spatial_pos, H // p, W // p)
        N = x.shape[2]

        if visible is not None:  # tube: keep the same M positions in every frame
            idx = visible[:, None, :, None].expand(B, T, visible.shape[1], x.shape[-1])  # (B, T, M, D)
            x = x.gather(2, idx)  # (B, T, M, D)
            N = x.shape[2]
        spatial_keys = temporal_keys = None
        if token_mask is not None:
            if token_mask.shape != (B, T, N):
                raise ValueError(f"token_mask must have shape (B, T, N) = {(B, T, N)}, got {tuple(token_mask.shape)}")
            spatial_keys = rearrange(token_mask, "b t n -> (b t) n")
            temporal_keys = rearrange(token_mask, "b t n -> (b n) t")

        if self.cfg.space_time == "joint":
            return self._joint(x, token_mask, return_spatial)

        x = rearrange(x, "b t n d -> (b t) n d")
        x = self.spatial_ln(self.spatial(x, key_mask=spatial_keys))  # (B·T, N, D)
        spatial_features = rearrange(x, "(b t) n d -> b (t n) d", b=B)

        x = rearrange(x, "(b t) n d -> (b n) t d", b=B)
        x = x + interpolate_temporal(self.temporal_pos, T)  # (B·N, T, D)
        x = self.temporal_ln(self.temporal(x, key_mask=temporal_keys))
        x = rearrange(x, "(b n) t d -> b (t n) d", b=B)  # (B, T·N, D), time-major
        return (x, spatial_features) if return_spatial else x

    def _joint(self, x, token_mask, return_spatial):
        """Joint space-time attention for comparison: one sequence of T·N tokens through both stacks."""
        B, T = x.shape[:2]
        x = rearrange(x + interpolate_temporal(self.temporal_pos, T)[:, None], "b t n d -> b (t n) d")
        keys = None if token_mask is None else rearrange(token_mask, "b t n -> b (t n)")
        spatial_features = self.spatial_ln(self.spatial(x, key_mask=keys))
        x = self.temporal_ln(self.temporal(spatial_features, key_mask=keys))  # (B, T·N, D)
        return (x, spatial_features) if return_spatial else x
