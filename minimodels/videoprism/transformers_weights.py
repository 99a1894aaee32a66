"""VideoPrism's public weights, through transformers: our encoder <-> ``VideoPrismVisionModel``, our LvT video–text
model <-> ``VideoPrismClipModel``.

transformers (>= 5) ships VideoPrism as ported from the official Flax code (``videoprism/encoders.py`` of
google-deepmind/videoprism; arXiv 2402.13217). Its models are ours tensor for tensor (ViT-B: 200 tensors,
114,365,184 parameters); a conversion is a plan, one line per tensor of ours: the name(s) it has there and how it is
laid out. Only four kinds of layout differ:

- ``patch_proj``, a Linear on (p, p, C)-flattened patches (D, p·p·C), is their ``patch_embeddings.projection``, a
  Conv3d (D, C, 1, p, p) over (1, p, p) tubelets: a 2-D convolution applied to each frame;
- a positional embedding (N, D) and the text's class embedding (D,) have leading 1s there;
- ``attn.qkv`` (3D, D) is their ``q_proj``, ``k_proj``, ``v_proj`` stacked, and the pooler's ``kv_proj`` their
  ``k_proj``, ``v_proj``;
- a LayerNorm's γ is their ``VideoPrismLayerNorm`` weight + 1 (Flax's ``scale``, stored as γ − 1).

The names, ours -> theirs (a block's own names: ``ln1``/``ln2`` -> ``layernorm_before``/``layernorm_after``,
``attn.out`` -> ``attention.o_proj``, ``mlp.0``/``mlp.2`` -> ``mlp.fc1``/``mlp.fc2``):

    spatial.blocks.i, temporal.blocks.i      spatial_layers.i, temporal_layers.i
    spatial_ln, temporal_ln                  layernorm1, layernorm2
    LvT: encoder.…                           video_model.vision_model.…
         aux.blocks.i                        video_model.auxiliary_layers.i
         pooler.query, pooler.query_scale    video_model.head.pooling_attention_query, video_model.head.per_dim_scale
         pooler.q_proj, .kv_proj, .out       video_model.head.q_proj, .k_proj + .v_proj, .o_proj
         pooler.norm                         video_model.head_layernorm
         text.embed, text.cls                text_model.embeddings.token_embedding, text_model.embeddings.cls_emb
         text.positions                      text_model.embeddings.position_embedding
         text.blocks.blocks.i, text.norm     text_model.layers.i, text_model.layernorm

Two things are not weights of one side. The text's sinusoids travel with the weights, because the two codes compute
them differently: timescales 10000^(i / (D/2 − 1)) officially (and in our ``sinusoidal_positions``),
10000^(2i / D) in transformers' port (its checkpoints store that table); a converted model keeps the table of its
source. And transformers keeps no temperature (``forward`` takes one); ours keeps its learned one, left at its
initial value by a conversion. Clips go in as (B, T, H, W, C) here and (B, T, C, H, W) there, both in [0, 1].

    load_transformers_videoprism("videoprism-lvt-base-f16r288/")  # a save_pretrained folder: ours, loaded
    to_transformers_videoprism(model)                              # -> their model with our weights
    --set init=videoprism-lvt-base-f16r288/                        # any VideoPrism run starts from it

Nothing is downloaded here: a folder comes from ``save_pretrained`` on a machine that has the weights (README).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Callable

import torch
from einops import rearrange

from ..engine.checkpoint import init_from
from ..engine.errors import CheckpointError
from ..nn.video_vit import FactorizedVideoViT, VideoViTConfig
from .video_text import VideoTextConfig, VideoTextModel

# One tensor of ours: (our name, their name or their names stacked along dim 0, theirs -> ours, ours -> theirs).
Entry = tuple[str, str | tuple[str, ...], Callable, Callable]


def _same(x):
    return x


def _linear(ours: str, theirs: str) -> list[Entry]:
    return [(f"{ours}.{k}", f"{theirs}.{k}", _same, _same) for k in ("weight", "bias")]


def _norm(ours: str, theirs: str) -> list[Entry]:
    return [(f"{ours}.weight", f"{theirs}.weight", lambda w: w + 1, lambda g: g - 1),
            (f"{ours}.bias", f"{theirs}.bias", _same, _same)]


def _stacked(ours: str, theirs: list[str]) -> list[Entry]:
    return [(f"{ours}.{k}", tuple(f"{t}.{k}" for t in theirs), _same, _same) for k in ("weight", "bias")]


def _leading_ones(ours: str, theirs: str, ones: int) -> list[Entry]:
    return [(ours, theirs, lambda t: t.reshape(t.shape[ones:]), lambda o: o.reshape((1,) * ones + o.shape))]


def _blocks(ours: str, theirs: str, depth: int) -> list[Entry]:
    """Every tensor of ``depth`` transformer blocks."""
    plan = []
    for i in range(depth):
        o, t = f"{ours}.{i}", f"{theirs}.{i}"
        plan += (_norm(f"{o}.ln1", f"{t}.layernorm_before") + _norm(f"{o}.ln2", f"{t}.layernorm_after")
                 + _stacked(f"{o}.attn.qkv", [f"{t}.attention.{x}_proj" for x in "qkv"])
                 + _linear(f"{o}.attn.out", f"{t}.attention.o_proj")
                 + _linear(f"{o}.mlp.0", f"{t}.mlp.fc1") + _linear(f"{o}.mlp.2", f"{t}.mlp.fc2"))
    return plan


def encoder_plan(cfg: VideoViTConfig, ours: str = "", theirs: str = "") -> list[Entry]:
    """Our ``FactorizedVideoViT`` <-> ``VideoPrismVisionModel`` (each name after its prefix)."""
    p, C = cfg.patch_size, cfg.channels
    patch = f"{theirs}spatial_embeddings.patch_embeddings.projection"
    return ([(f"{ours}patch_proj.weight", f"{patch}.weight", lambda w: rearrange(w, "d c 1 p q -> d (p q c)"),
              lambda w: rearrange(w, "d (p q c) -> d c 1 p q", p=p, q=p, c=C)),
             (f"{ours}patch_proj.bias", f"{patch}.bias", _same, _same)]
            + _leading_ones(f"{ours}spatial_pos", f"{theirs}spatial_embeddings.position_embeddings", 1)
            + _leading_ones(f"{ours}temporal_pos", f"{theirs}temporal_embeddings.position_embeddings", 1)
            + _blocks(f"{ours}spatial.blocks", f"{theirs}spatial_layers", cfg.spatial_layers)
            + _blocks(f"{ours}temporal.blocks", f"{theirs}temporal_layers", cfg.temporal_layers)
            + _norm(f"{ours}spatial_ln", f"{theirs}layernorm1") + _norm(f"{ours}temporal_ln", f"{theirs}layernorm2"))


def lvt_plan(cfg: VideoTextConfig) -> list[Entry]:
    """Our ``VideoTextModel`` <-> ``VideoPrismClipModel``."""
    head, text = "video_model.head", "text_model.embeddings"
    return (encoder_plan(cfg.video, "encoder.", "video_model.vision_model.")
            + _blocks("aux.blocks", "video_model.auxiliary_layers", cfg.aux_layers)
            + [("pooler.query", f"{head}.pooling_attention_query", _same, _same),
               ("pooler.query_scale", f"{head}.per_dim_scale", _same, _same)]
            + _linear("pooler.q_proj", f"{head}.q_proj")
            + _stacked("pooler.kv_proj", [f"{head}.k_proj", f"{head}.v_proj"])
            + _linear("pooler.out", f"{head}.o_proj") + _norm("pooler.norm", "video_model.head_layernorm")
            + [("text.embed.weight", f"{text}.token_embedding.weight", _same, _same),
               ("text.positions", f"{text}.position_embedding", _same, _same)]
            + _leading_ones("text.cls", f"{text}.cls_emb", 2)
            + _blocks("text.blocks.blocks", "text_model.layers", cfg.text_layers)
            + _norm("text.norm", "text_model.layernorm"))


def plan_for(cfg: VideoViTConfig | VideoTextConfig) -> list[Entry]:
    return lvt_plan(cfg) if isinstance(cfg, VideoTextConfig) else encoder_plan(cfg)


def state_from_transformers(theirs: dict[str, torch.Tensor], cfg) -> dict[str, torch.Tensor]:
    """Their state dict -> ours (a missing tensor raises KeyError)."""
    ours = {o: torch.cat([theirs[k] for k in t]) if isinstance(t, tuple) else to_ours(theirs[t])
            for o, t, to_ours, _ in plan_for(cfg)}
    if isinstance(cfg, VideoTextConfig):  # they keep no temperature: ours starts where training would
        ours["log_scale"] = torch.tensor(math.log(1 / cfg.init_temperature))
    return ours


def state_to_transformers(ours: dict[str, torch.Tensor], cfg) -> dict[str, torch.Tensor]:
    """Ours -> their state dict: the inverse of ``state_from_transformers``."""
    theirs = {}
    for o, t, _, to_theirs in plan_for(cfg):
        if isinstance(t, tuple):
            theirs.update(zip(t, ours[o].chunk(len(t))))
        else:
            theirs[t] = to_theirs(ours[o])
    if isinstance(cfg, VideoTextConfig):  # the index of their position table: a buffer, not a weight
        theirs["text_model.embeddings.position_ids"] = torch.arange(cfg.text_length)[None]
    return theirs


def config_from_transformers(hf, attn_impl: str = "manual") -> VideoViTConfig | VideoTextConfig:
    """A ``VideoPrismVisionConfig`` (or a ``VideoPrismConfig``: LvT) as our config; what ours cannot be is refused."""
    if hasattr(hf, "text_config"):
        return _lvt_config_from_transformers(hf, attn_impl)
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


def _lvt_config_from_transformers(hf, attn_impl: str) -> VideoTextConfig:
    vision, text = hf.vision_config, hf.text_config
    video = config_from_transformers(vision, attn_impl)
    ours = {"width": video.width, "heads": video.heads, "FFN width": 4 * video.width, "activation": "relu",
            "logit cap": video.logit_cap, "LayerNorm eps": video.ln_eps, "q, k, v biases": True}
    found = {"width": text.hidden_size, "heads": text.num_attention_heads, "FFN width": text.intermediate_size,
             "activation": text.hidden_act, "logit cap": text.attn_logit_softcapping,
             "LayerNorm eps": text.layer_norm_eps, "q, k, v biases": text.qkv_bias}
    differ = [f"{k} {found[k]} (ours: {v})" for k, v in ours.items() if found[k] != v]
    if differ:
        raise CheckpointError(f"the text tower differs from ours in {', '.join(differ)}: our LvT model shares width, "
                              f"heads, cap and eps between its towers, as the official one")
    if vision.intermediate_size % vision.hidden_size:
        raise CheckpointError(f"the pooler's width {vision.intermediate_size} is not a multiple of the width "
                              f"{vision.hidden_size}")
    return VideoTextConfig(video=video, aux_layers=vision.num_auxiliary_layers,
                           pooler_hidden_mult=vision.intermediate_size // vision.hidden_size,
                           text_layers=text.num_hidden_layers, vocab_size=text.vocab_size,
                           text_length=text.max_position_embeddings)


def config_to_transformers(cfg: VideoViTConfig | VideoTextConfig):
    from transformers import VideoPrismConfig, VideoPrismTextConfig, VideoPrismVisionConfig

    v = cfg.video if isinstance(cfg, VideoTextConfig) else cfg
    if v.space_time != "factorized":
        raise CheckpointError(f"space_time={v.space_time!r}: VideoPrism's encoder is the factorized one")
    vision = VideoPrismVisionConfig(image_size=v.image_size, tubelet_size=[1, v.patch_size, v.patch_size],
                                    num_frames=v.num_frames, num_channels=v.channels, hidden_size=v.width,
                                    num_spatial_layers=v.spatial_layers, num_temporal_layers=v.temporal_layers,
                                    num_attention_heads=v.heads, intermediate_size=v.mlp_dim,
                                    attn_logit_softcapping=v.logit_cap, layer_norm_eps=v.ln_eps,
                                    hidden_act="gelu_python")
    if not isinstance(cfg, VideoTextConfig):
        return vision
    if cfg.pooler_hidden_mult * v.width != v.mlp_dim:
        raise CheckpointError(f"pooler width {cfg.pooler_hidden_mult} x {v.width} != mlp_dim {v.mlp_dim}: "
                              f"transformers sizes the pooler by intermediate_size")
    vision.num_auxiliary_layers = cfg.aux_layers
    text = VideoPrismTextConfig(vocab_size=cfg.vocab_size, hidden_size=v.width, intermediate_size=4 * v.width,
                                num_hidden_layers=cfg.text_layers, num_attention_heads=v.heads,
                                max_position_embeddings=cfg.text_length, layer_norm_eps=v.ln_eps,
                                attn_logit_softcapping=v.logit_cap)
    return VideoPrismConfig(vision_config=vision.to_dict(), text_config=text.to_dict())


def load_transformers_videoprism(model_or_path, attn_impl: str = "manual") -> FactorizedVideoViT | VideoTextModel:
    """Ours holding a transformers VideoPrism's weights: a ``VideoPrismVisionModel`` gives our encoder, a
    ``VideoPrismClipModel`` our LvT model; the model object, or a local folder it was saved to with
    ``save_pretrained`` (never downloaded). ``attn_impl`` as in ``VideoViTConfig``."""
    hf = _transformers_model(model_or_path)
    cfg = config_from_transformers(hf.config, attn_impl)
    model = cfg.build()
    model.load_state_dict(state_from_transformers({k: v.detach() for k, v in hf.state_dict().items()}, cfg))
    return model.eval()


def is_transformers_videoprism(folder: Path) -> bool:
    """Whether ``folder`` holds a transformers VideoPrism model saved with ``save_pretrained``: its config.json."""
    try:
        config = json.loads((Path(folder) / "config.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and str(config.get("model_type", "")).startswith("videoprism")


def transformers_state(folder: Path) -> dict[str, torch.Tensor] | None:
    """Ours' state dict of the transformers VideoPrism model saved in ``folder`` (an encoder's, or an LvT's with its
    encoder under ``encoder.``), or None for a folder of anything else: what ``init=`` loads from such a folder."""
    if not is_transformers_videoprism(folder):
        return None
    return load_transformers_videoprism(folder).state_dict()


def init_videoprism(part: torch.nn.Module, path: str) -> str:
    """``init=PATH`` of a VideoPrism run: ``part`` (an encoder or an LvT model) starts from a run folder's weights or
    from a transformers ``save_pretrained`` folder's, converted. -> what was loaded, for the run's info."""
    return init_from(part, path, convert=transformers_state)


def to_transformers_videoprism(model: FactorizedVideoViT | VideoTextModel):
    """Their model with ours' weights: a ``VideoPrismVisionModel`` for our encoder, a ``VideoPrismClipModel`` for
    our LvT model (``save_pretrained`` it to share them)."""
    from transformers import VideoPrismClipModel, VideoPrismVisionModel

    kind = VideoPrismClipModel if isinstance(model, VideoTextModel) else VideoPrismVisionModel
    hf = kind(config_to_transformers(model.cfg))
    hf.load_state_dict(state_to_transformers(model.state_dict(), model.cfg), strict=True)
    return hf.eval()


def _transformers_model(model_or_path):
    """The ``VideoPrismVisionModel`` or ``VideoPrismClipModel`` in an object or a local folder, refused by name
    otherwise."""
    from transformers import AutoConfig, VideoPrismClipModel, VideoPrismVisionModel

    kinds = (VideoPrismVisionModel, VideoPrismClipModel)
    if isinstance(model_or_path, (str, Path)):
        folder = Path(model_or_path)
        if not (folder / "config.json").is_file():
            raise CheckpointError(f"{folder}: no config.json; save the model there with save_pretrained (README: "
                                  f"'The real VideoPrism')")
        lvt = hasattr(AutoConfig.from_pretrained(folder, local_files_only=True), "text_config")
        model_or_path = kinds[lvt].from_pretrained(folder, local_files_only=True)
    if not isinstance(model_or_path, kinds):
        raise CheckpointError(f"{type(model_or_path).__name__}: expected a transformers VideoPrismVisionModel or "
                              f"VideoPrismClipModel")
    return model_or_path
