"""Every paper's presets and experiments, by name: what the command line and the notebooks look up.

This module and ``cli.py`` are the only places that see all three papers; each paper package lists its own presets
(``<paper>/presets.py``) and experiments (``<paper>/experiments.py``), and no paper package imports another.

    make_config("videoprism-stage2", preset="videoprism-lvt-b", sets={"train.steps": "100"})
    run_experiment("videoprism-vit-probe", seed=1)          -> ExperimentResult
    info("videoprism-b")                                     -> sizes measured on the meta device
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from .engine.config import override
from .engine.errors import ConfigError
from .engine.experiment import Experiment, execute
from .engine.measure import measure
from .engine.results import ExperimentResult, NotebookRun
from .minigpt4video import experiments as minigpt4video_experiments
from .minigpt4video import presets as minigpt4video_presets
from .mvgpt import experiments as mvgpt_experiments
from .mvgpt import presets as mvgpt_presets
from .videoprism import experiments as videoprism_experiments
from .videoprism import presets as videoprism_presets

PAPERS = ("videoprism", "mvgpt", "minigpt4video")
_PRESET_MODULES = (videoprism_presets, mvgpt_presets, minigpt4video_presets)
PRESETS = {name: cfg for module in _PRESET_MODULES for name, cfg in module.PRESETS.items()}
PAPER_PARAMS = {name: p for module in _PRESET_MODULES for name, p in module.PAPER_PARAMS.items()}
EXPERIMENTS: dict[str, Experiment] = {
    **videoprism_experiments.EXPERIMENTS, **mvgpt_experiments.EXPERIMENTS, **minigpt4video_experiments.EXPERIMENTS}


def get_preset(name: str):
    """A fresh copy of the named preset's config; unknown names raise a ConfigError listing the choices."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    return copy.deepcopy(PRESETS[name])


def get_experiment(name: str) -> Experiment:
    if name not in EXPERIMENTS:
        raise ConfigError(f"unknown experiment {name!r}; choose one of: {', '.join(EXPERIMENTS)}")
    return EXPERIMENTS[name]


def make_config(name: str, preset: str | None = None, sets: dict[str, Any] | None = None):
    """The experiment's config with a preset model and overrides applied (the notebook's `parameters` cell)."""
    experiment = get_experiment(name)
    cfg = experiment.config()
    if preset is not None:
        model = get_preset(preset)
        if type(model) is not type(cfg.model):
            fitting = [p for p, c in PRESETS.items() if type(c) is type(cfg.model)]
            raise ConfigError(f"preset {preset!r} is a {type(model).__name__}; experiment {name!r} needs a "
                              f"{type(cfg.model).__name__}: choose one of {', '.join(fitting)}")
        cfg = experiment.for_preset(cfg, preset, model) if experiment.for_preset else override(cfg, model=model)
    return override(cfg, sets or {})


# What each notebook runs live, and the committed sweep row with the 3-seed means of the same setting: the entries
# of `python -m minimodels results`, the first table a newcomer sees after scripts/course.sh.
NOTEBOOKS = {
    "00": NotebookRun("the video world"),
    "01": NotebookRun("factorized ViT", "videoprism-vit-probe", "frames", "8"),
    "02": NotebookRun("VideoPrism stage 1", "videoprism-stage1", "token_drop", "0.5"),
    "03": NotebookRun("VideoPrism stage 2", "videoprism-stage2", "train.steps", "600"),
    "04": NotebookRun("MV-GPT", "mvgpt-captioning", "pretrain", "bidirectional"),
    "05": NotebookRun("MiniGPT4-Video", "minigpt4video-qa", "blank_frames", "false"),
    "06": NotebookRun("real videos, two processes", "videoprism-stage1"),
}


def run_experiment(name: str, preset: str | None = None, seed: int = 0, sets: dict[str, Any] | None = None,
                   out_dir: str | Path | None = None, cfg=None, force: bool = False,
                   resume: bool = False, notebook: str | None = None) -> ExperimentResult:
    """Run one experiment headless (``engine.experiment.execute``): its output folder, config.json, result.json.
    ``force``: replace what an earlier run left in ``out_dir`` (refused otherwise); ``resume``: continue it;
    ``notebook`` ("02"): this is that notebook's live run, listed under it by ``python -m minimodels results``."""
    if notebook is not None and notebook not in NOTEBOOKS:
        raise ConfigError(f"notebook={notebook!r}: not one of the course's notebooks ({', '.join(NOTEBOOKS)})")
    cfg = cfg if cfg is not None else make_config(name, preset, sets)
    label = None if notebook is None else {"notebook": notebook, "preset": preset, "sets": sets or {}}
    return execute(name, get_experiment(name), cfg, seed, out_dir, force, resume, label)


def info(name: str, frames: int | None = None) -> dict:
    """Parameter counts (total and by part), tokens per clip and forward GFLOPs per clip of preset ``name``."""
    return measure(name, get_preset(name), frames, PAPER_PARAMS.get(name))
