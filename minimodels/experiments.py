"""The experiments the command line and the notebooks run: ``run_experiment("vit-probe", seed=1)``.

Each experiment is a config dataclass (with a ``model`` field that ``--preset`` replaces) and a function
``run(cfg, seed, out_dir, config_json) -> metrics``. ``--set key=value`` reaches any field, nested ones by dots
(``train.steps=200``, ``model.width=32``). Later notebooks add their experiments to ``EXPERIMENTS``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

from .config import ConfigError, override, to_dict
from .frame_encoder import FrameEncoderExperimentConfig, run_frame_encoder
from .llm_pretraining import TinyLLMExperimentConfig, run_tiny_llm
from .minigpt4video_training import MiniGPT4VideoExperimentConfig, run_minigpt4video
from .presets import PRESETS, get_preset
from .mvgpt_pretraining import MVGPTExperimentConfig, run_mvgpt
from .probe import VitProbeConfig, run_vit_probe
from .results import record
from .stage1 import Stage1Config, run_stage1
from .stage2 import Stage2Config, run_stage2


@dataclass(frozen=True)
class Experiment:
    config: type
    run: Callable
    summary: str


EXPERIMENTS = {
    "vit-probe": Experiment(VitProbeConfig, run_vit_probe,
                            "train the tiny factorized ViT on appearance and motion probes (notebook 01)"),
    "videoprism-stage1": Experiment(Stage1Config, run_stage1,
                                    "VideoPrism stage 1: video–text contrastive pretraining (notebook 02)"),
    "videoprism-stage2": Experiment(Stage2Config, run_stage2,
                                    "VideoPrism stage 2: masked distillation with token shuffling (notebook 03)"),
    "mvgpt": Experiment(MVGPTExperimentConfig, run_mvgpt,
                        "MV-GPT: pretrain on narration (none/encoder/forward/bidirectional), fine-tune captions"),
    "frame-encoder": Experiment(FrameEncoderExperimentConfig, run_frame_encoder,
                                "the frozen per-frame ViT MiniGPT4-Video reads (the tiny stand-in for EVA-CLIP)"),
    "tiny-llm": Experiment(TinyLLMExperimentConfig, run_tiny_llm,
                           "the tiny Llama learns the world's text before MiniGPT4-Video freezes it"),
    "minigpt4video": Experiment(MiniGPT4VideoExperimentConfig, run_minigpt4video,
                                "MiniGPT4-Video: three stages on frames + subtitles, then video QA per question kind"),
}


def get_experiment(name: str) -> Experiment:
    if name not in EXPERIMENTS:
        raise ConfigError(f"unknown experiment {name!r}; choose one of: {', '.join(EXPERIMENTS)}")
    return EXPERIMENTS[name]


def make_config(name: str, preset: str | None = None, sets: dict[str, Any] | None = None):
    """The experiment's config with a preset model and overrides applied (the notebook's `parameters` cell)."""
    cfg = get_experiment(name).config()
    if preset is not None:
        model = get_preset(preset)
        if type(model) is not type(cfg.model):
            fitting = [p for p, c in PRESETS.items() if type(c) is type(cfg.model)]
            raise ConfigError(f"preset {preset!r} is a {type(model).__name__}; experiment {name!r} needs a "
                              f"{type(cfg.model).__name__}: choose one of {', '.join(fitting)}")
        # a config may size its other parts to the preset (stage 2's decoders)
        cfg = cfg.for_preset(preset, model) if hasattr(cfg, "for_preset") else override(cfg, model=model)
    return override(cfg, sets or {})


def run_experiment(name: str, preset: str | None = None, seed: int = 0, sets: dict[str, Any] | None = None,
                   out_dir=None, cfg=None) -> dict:
    """Run one experiment headless; returns its metrics (the training history under "history")."""
    cfg = cfg if cfg is not None else make_config(name, preset, sets)
    config_json = json.dumps({"experiment": name, "seed": seed, "config": to_dict(cfg)}, indent=2, sort_keys=True)
    metrics = {"experiment": name, "seed": seed,
               **get_experiment(name).run(cfg, seed=seed, out_dir=out_dir, config_json=config_json)}
    record(metrics)
    return metrics
