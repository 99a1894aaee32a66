"""Every config checks its own fields when it is made, so that the next setting cannot be forgotten: for every
numeric field of every config an experiment or a preset uses, a zero and a negative value are refused by name (a
``ConfigError`` naming the field), unless the field takes them on purpose (``ACCEPTED``, with the reason), and a value
of the wrong type is refused too."""

import dataclasses
import typing

import pytest

from minimodels.catalog import EXPERIMENTS, PRESETS
from minimodels.engine.config import override
from minimodels.engine.errors import ConfigError

# (config, field, value) -> why the value is a setting and not a mistake
ACCEPTED = {
    ("TrainConfig", "steps", 0): "no training: a run that only evaluates (e.g. a released checkpoint)",
    ("TrainConfig", "warmup", 0): "no warm-up",
    ("TrainConfig", "warmup_share", 0): "no warm-up",
    ("TrainConfig", "min_lr", 0): "a cosine that decays to zero",
    ("TrainConfig", "weight_decay", 0): "no weight decay",
    ("TrainConfig", "grad_clip", 0): "no clipping",
    ("TrainConfig", "eval_every", 0): "evaluate at the end only",
    ("TrainConfig", "checkpoint_every", 0): "checkpoint by time only",
    ("TrainConfig", "checkpoint_seconds", 0): "checkpoint at the end only",
    ("VideoViTConfig", "temporal_layers", 0): "no temporal stage: a per-frame encoder",
    ("VideoTextConfig", "aux_layers", 0): "the pooler straight on the encoder's tokens",
    ("Stage1Config", "token_drop", 0): "every token seen (notebook 02's comparison)",
    ("MiniGPT4VideoConfig", "max_subtitle_words", 0): "no subtitles reach the prompt",
    ("MiniGPT4VideoConfig", "lora_dropout", 0): "no dropout in the adapters",
    ("TinyLLMConfig", "max_subtitle_words", 0): "no subtitles in the generated texts",
    ("QAConfig", "caption_subtitle_share", 0): "stage 2 reads the frames alone, as WebVid (the default)",
    ("QAConfig", "qa_subtitle_share", 0): "no subtitles in stage 3's prompts",
    ("LoaderConfig", "num_workers", 0): "a folder decoded in the process that trains (a notebook, a small folder)",
}


def configs() -> dict[str, object]:
    """A default instance of every config class the experiments and presets reach, nested ones included."""
    found = {}

    def walk(cfg):
        if type(cfg).__name__ in found:
            return
        found[type(cfg).__name__] = cfg
        for f in dataclasses.fields(cfg):
            value = getattr(cfg, f.name)
            if dataclasses.is_dataclass(value):
                walk(value)

    for experiment in EXPERIMENTS.values():
        walk(experiment.config())
    for preset in PRESETS.values():
        walk(preset)
    return found


def numeric_fields(cfg) -> list[str]:
    hints = typing.get_type_hints(type(cfg))
    numeric = {int, float, int | None, float | None}
    return [f.name for f in dataclasses.fields(cfg) if hints[f.name] in numeric]


CASES = [(name, field) for name, cfg in configs().items() for field in numeric_fields(cfg)]


def test_every_config_with_numbers_is_walked():
    assert {"TrainConfig", "VideoViTConfig", "Stage2Config", "CaptioningConfig", "QAConfig", "LLMConfig",
            "MVGPTConfig", "DecoderConfig", "FrameViTConfig", "VitProbeConfig"} <= {name for name, _ in CASES}
    assert len(CASES) > 60


@pytest.mark.parametrize("name, field", CASES, ids=[f"{n}.{f}" for n, f in CASES])
def test_zero_negative_and_wrong_types_are_refused_by_name(name, field):
    cfg = configs()[name]
    for value in (0, -1):
        if (name, field, value) in ACCEPTED:
            dataclasses.replace(cfg, **{field: value})  # a setting, and it is accepted
            continue
        with pytest.raises(ConfigError, match=f"{field}="):
            dataclasses.replace(cfg, **{field: value})
    with pytest.raises(ConfigError, match=field):
        override(cfg, {field: "twelve"})
    with pytest.raises(ConfigError, match=field):
        override(cfg, {field: [1, 2]})
