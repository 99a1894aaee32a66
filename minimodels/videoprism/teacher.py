"""Stage 2's teacher: a frozen stage-1 model, loaded from a run folder (model.safetensors + config.json), the one
``data_small/`` ships for seeds 0, 1 and 2 (made by ``python -m minimodels run videoprism-stage1 --seed N --out
data_small/checkpoints/videoprism-stage1/seedN``), or a public LvT saved with transformers' ``save_pretrained``
(``VideoPrismClipModel``: the paper's own stage-1 models, converted by ``transformers_weights.py``)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from ..engine.checkpoint import load_checkpoint
from ..engine.config import from_dict
from ..engine.errors import CheckpointError
from ..engine.paths import DATA_DIR
from .transformers_weights import is_transformers_videoprism, load_transformers_videoprism
from .video_text import VideoTextConfig, VideoTextModel


def teacher_folder(cfg, seed: int) -> Path:
    """The stage-1 checkpoint to distil from: ``cfg.teacher`` (a ``Stage2Config``'s), or the one ``data_small/``
    ships for ``seed``."""
    folder = Path(cfg.teacher) if cfg.teacher else DATA_DIR / "checkpoints" / "videoprism-stage1" / f"seed{seed}"
    if not (folder / "model.safetensors").is_file():
        raise CheckpointError(f"no stage-1 teacher in {folder}; train one with: python -m minimodels run "
                                f"videoprism-stage1 --seed {seed} --out {folder}  (or pass --set teacher=FOLDER)")
    return folder


def teacher_config(folder: Path) -> VideoTextConfig:
    """The architecture of the stage-1 run in ``folder``, from its config.json; anything else is refused by name."""
    path = folder / "config.json"
    make = ("a stage-2 teacher is a videoprism-stage1 run folder (run videoprism-stage1 --out FOLDER makes one) or "
            "a public LvT saved with save_pretrained")
    try:
        saved = json.loads(path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{folder}: no config.json beside the weights; {make}") from None
    except ValueError as err:
        raise CheckpointError(f"{path}: not readable JSON ({err}); {make}") from None
    if not isinstance(saved, dict) or saved.get("experiment") != "videoprism-stage1":
        found = saved.get("experiment", "no experiment") if isinstance(saved, dict) else "no experiment"
        raise CheckpointError(f"{folder} holds a {found} run, not a videoprism-stage1 one; {make}")
    return from_dict(VideoTextConfig, saved["config"]["model"])


def load_teacher(folder: Path, expected: VideoTextConfig | None = None) -> VideoTextModel:
    """A frozen stage-1 model from a checkpoint folder (model.safetensors + config.json). With ``expected`` (the
    experiment's model), a teacher of another architecture is refused: the student would silently be the teacher's
    size while the run's config.json claimed the preset's."""
    public = is_transformers_videoprism(folder)
    if public:
        teacher = load_transformers_videoprism(folder, expected.video.attn_impl if expected else "manual")
        if not isinstance(teacher, VideoTextModel):
            raise CheckpointError(f"{folder} holds a VideoPrism encoder alone; stage 2 distils from a video-text "
                                  f"(LvT) model, whose MAP head gives the global target: save a VideoPrismClipModel")
        saved = teacher.cfg
    else:
        saved = teacher_config(folder)
    if expected is not None:  # how attention is computed is the run's choice, not the teacher's architecture
        saved = replace(saved, video=replace(saved.video, attn_impl=expected.video.attn_impl))
    if expected is not None and saved != expected:
        raise CheckpointError(
            f"the teacher in {folder} is {describe(saved)}, this run's model {describe(expected)}; train one of this "
            f"preset (run videoprism-stage1 --preset PRESET --out FOLDER), or choose the preset of the public "
            f"weights, and pass --set teacher=FOLDER")
    if not public:
        teacher = saved.build()
        load_checkpoint(folder, teacher)
    return teacher.eval().requires_grad_(False)


def describe(model: VideoTextConfig) -> str:
    v = model.video
    return (f"width {v.width}, {v.spatial_layers}+{v.temporal_layers} layers, {v.image_size}² frames in "
            f"{v.patch_size}² patches, {v.num_frames} frames, {model.text_layers} text layers")
