"""VideoPrism's public weights, through transformers: our encoder <-> ``transformers.VideoPrismVisionModel``.

transformers (>= 5) ships VideoPrism as ported from the official Flax code (``videoprism/encoders.py`` of
google-deepmind/videoprism; arXiv 2402.13217). Its vision model is our ``FactorizedVideoViT`` tensor for tensor (200
tensors for ViT-B, 114,365,184 parameters); only the layout of four kinds of tensor differs:

- ``patch_proj``, a Linear on (p, p, C)-flattened patches (D, p·p·C), is their ``spatial_embeddings.patch_embeddings
  .projection``, a Conv3d (D, C, 1, p, p) over (1, p, p) tubelets: a 2-D convolution applied to each frame;
- ``spatial_pos`` (N, D) and ``temporal_pos`` (T, D) are their ``position_embeddings`` with a leading 1;
- ``attn.qkv`` (3D, D) is their ``q_proj``, ``k_proj``, ``v_proj`` (D, D) stacked;
- a LayerNorm's γ is their ``VideoPrismLayerNorm`` weight + 1 (Flax's ``scale``, stored as γ − 1);

and the names: ``spatial.blocks.i`` / ``temporal.blocks.i`` are ``spatial_layers.i`` / ``temporal_layers.i``,
``ln1``/``ln2`` are ``layernorm_before``/``layernorm_after``, ``mlp.0``/``mlp.2`` are ``mlp.fc1``/``mlp.fc2``,
``attn.out`` is ``attention.o_proj``, ``spatial_ln``/``temporal_ln`` are ``layernorm1``/``layernorm2``. Clips go in
as (B, T, H, W, C) here and (B, T, C, H, W) there, both in [0, 1]; the outputs are the same (B, T·N, D) tokens,
time-major.

    load_transformers_videoprism("videoprism-base-f16r288/")   # a folder saved with save_pretrained: ours, loaded
    to_transformers_videoprism(encoder)                         # -> a VideoPrismVisionModel with our weights

Nothing is downloaded here: a folder comes from ``save_pretrained`` on a machine that has the weights (README).
The LvT (video–text) model follows once our text tower matches the official one.
"""

from __future__ import annotations

from pathlib import Path

import torch
from einops import rearrange

from ..engine.errors import CheckpointError
from ..nn.video_vit import FactorizedVideoViT, VideoViTConfig


def config_from_transformers(hf, attn_impl: str = "manual") -> VideoViTConfig:
    """A ``VideoPrismVisionConfig`` as our config (with ``attn_impl``); what our encoder cannot be is refused."""
    if tuple(hf.tubelet_size)[0] != 1 or hf.tubelet_size[1] != hf.tubelet_size[2]:
        raise CheckpointError(f"tubelet_size {list(hf.tubelet_size)}: the encoder patches each frame alone, in "
                              f"square patches (VideoPrism's (1, 18, 18))")
    if hf.hidden_act not in ("gelu_python", "gelu") or not hf.qkv_bias:
        raise CheckpointError(f"hidden_act={hf.hidden_act!r}, qkv_bias={hf.qkv_bias}: the encoder has the exact "
                              f"GELU and biases on q, k, v")
    size = hf.image_size if isinstance(hf.image_size, int) else hf.image_size[0]
    return VideoViTConfig(image_size=size, patch_size=hf.tubelet_size[1], num_frames=hf.num_frames,
                          channels=hf.num_channels, width=hf.hidden_size, spatial_layers=hf.num_spatial_layers,
                          temporal_layers=hf.num_temporal_layers, heads=hf.num_attention_heads,
                          mlp_dim=hf.intermediate_size, logit_cap=hf.attn_logit_softcapping, ln_eps=hf.layer_norm_eps,
                          attn_impl=attn_impl)


def config_to_transformers(cfg: VideoViTConfig):
    from transformers import VideoPrismVisionConfig

    if cfg.space_time != "factorized":
        raise CheckpointError(f"space_time={cfg.space_time!r}: VideoPrism's encoder is the factorized one")
    return VideoPrismVisionConfig(image_size=cfg.image_size, tubelet_size=[1, cfg.patch_size, cfg.patch_size],
                                  num_frames=cfg.num_frames, num_channels=cfg.channels, hidden_size=cfg.width,
                                  num_spatial_layers=cfg.spatial_layers, num_temporal_layers=cfg.temporal_layers,
                                  num_attention_heads=cfg.heads, intermediate_size=cfg.mlp_dim,
                                  attn_logit_softcapping=cfg.logit_cap, layer_norm_eps=cfg.ln_eps,
                                  hidden_act="gelu_python")


def _block_names(cfg: VideoViTConfig) -> list[tuple[str, str]]:
    """(our prefix, theirs) of every transformer block."""
    return [(f"{stage}.blocks.{i}", f"{stage}_layers.{i}")
            for stage, depth in (("spatial", cfg.spatial_layers), ("temporal", cfg.temporal_layers))
            for i in range(depth)]


def _norms(cfg: VideoViTConfig) -> list[tuple[str, str]]:
    """(ours, theirs) of every LayerNorm: γ here is γ − 1 there."""
    pairs = [("spatial_ln", "layernorm1"), ("temporal_ln", "layernorm2")]
    return pairs + [(f"{o}.{a}", f"{t}.{b}") for o, t in _block_names(cfg)
                    for a, b in (("ln1", "layernorm_before"), ("ln2", "layernorm_after"))]


def _linears(cfg: VideoViTConfig) -> list[tuple[str, str]]:
    """(ours, theirs) of the linear layers copied as they are."""
    return [(f"{o}.{a}", f"{t}.{b}") for o, t in _block_names(cfg)
            for a, b in (("attn.out", "attention.o_proj"), ("mlp.0", "mlp.fc1"), ("mlp.2", "mlp.fc2"))]


def state_from_transformers(theirs: dict[str, torch.Tensor], cfg: VideoViTConfig) -> dict[str, torch.Tensor]:
    """A ``VideoPrismVisionModel`` state dict -> ours (every tensor used once; a missing one raises KeyError)."""
    patch = theirs["spatial_embeddings.patch_embeddings.projection.weight"]  # (D, C, 1, p, p)
    ours = {"patch_proj.weight": rearrange(patch, "d c 1 p q -> d (p q c)"),
            "patch_proj.bias": theirs["spatial_embeddings.patch_embeddings.projection.bias"],
            "spatial_pos": theirs["spatial_embeddings.position_embeddings"][0],
            "temporal_pos": theirs["temporal_embeddings.position_embeddings"][0]}
    for o, t in _norms(cfg):
        ours[f"{o}.weight"], ours[f"{o}.bias"] = theirs[f"{t}.weight"] + 1, theirs[f"{t}.bias"]
    for o, t in _linears(cfg):
        ours[f"{o}.weight"], ours[f"{o}.bias"] = theirs[f"{t}.weight"], theirs[f"{t}.bias"]
    for o, t in _block_names(cfg):
        for kind in ("weight", "bias"):
            ours[f"{o}.attn.qkv.{kind}"] = torch.cat([theirs[f"{t}.attention.{x}_proj.{kind}"] for x in "qkv"])
    return ours


def state_to_transformers(ours: dict[str, torch.Tensor], cfg: VideoViTConfig) -> dict[str, torch.Tensor]:
    """Ours -> a ``VideoPrismVisionModel`` state dict: the inverse of ``state_from_transformers``."""
    p, C = cfg.patch_size, cfg.channels
    theirs = {"spatial_embeddings.patch_embeddings.projection.weight":
              rearrange(ours["patch_proj.weight"], "d (p q c) -> d c 1 p q", p=p, q=p, c=C),
              "spatial_embeddings.patch_embeddings.projection.bias": ours["patch_proj.bias"],
              "spatial_embeddings.position_embeddings": ours["spatial_pos"][None],
              "temporal_embeddings.position_embeddings": ours["temporal_pos"][None]}
    for o, t in _norms(cfg):
        theirs[f"{t}.weight"], theirs[f"{t}.bias"] = ours[f"{o}.weight"] - 1, ours[f"{o}.bias"]
    for o, t in _linears(cfg):
        theirs[f"{t}.weight"], theirs[f"{t}.bias"] = ours[f"{o}.weight"], ours[f"{o}.bias"]
    for o, t in _block_names(cfg):
        for kind in ("weight", "bias"):
            for x, part in zip("qkv", ours[f"{o}.attn.qkv.{kind}"].chunk(3)):
                theirs[f"{t}.attention.{x}_proj.{kind}"] = part
    return theirs


def load_transformers_videoprism(model_or_path, attn_impl: str = "manual") -> FactorizedVideoViT:
    """Our encoder holding a transformers ``VideoPrismVisionModel``'s weights: the model object, or a local folder
    it was saved to with ``save_pretrained`` (never downloaded). ``attn_impl`` as in ``VideoViTConfig``."""
    hf = _vision_model(model_or_path)
    cfg = config_from_transformers(hf.config, attn_impl)
    encoder = cfg.build()
    state = state_from_transformers({k: v.detach() for k, v in hf.state_dict().items()}, cfg)
    encoder.load_state_dict(state, strict=True)
    return encoder.eval()


def to_transformers_videoprism(encoder: FactorizedVideoViT):
    """A transformers ``VideoPrismVisionModel`` with ``encoder``'s weights (``save_pretrained`` it to share them)."""
    from transformers import VideoPrismVisionModel

    hf = VideoPrismVisionModel(config_to_transformers(encoder.cfg))
    hf.load_state_dict(state_to_transformers(encoder.state_dict(), encoder.cfg), strict=True)
    return hf.eval()


def _vision_model(model_or_path):
    """The ``VideoPrismVisionModel`` in an object or a local folder, refused by name otherwise."""
    from transformers import VideoPrismVisionModel

    if isinstance(model_or_path, (str, Path)):
        folder = Path(model_or_path)
        if not (folder / "config.json").is_file():
            raise CheckpointError(f"{folder}: no config.json; save the model there with save_pretrained (README: "
                                  f"'The real VideoPrism')")
        model_or_path = VideoPrismVisionModel.from_pretrained(folder, local_files_only=True)
    if not isinstance(model_or_path, VideoPrismVisionModel):
        raise CheckpointError(f"{type(model_or_path).__name__}: expected a transformers VideoPrismVisionModel (the "
                              f"video-text VideoPrismClipModel is not converted yet)")
    return model_or_path
