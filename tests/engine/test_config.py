"""``override`` / ``from_dict`` / presets: the one path the notebooks' config cells and ``--set`` share."""

import dataclasses
import json
import re

import pytest

from minimodels.catalog import EXPERIMENTS, PRESETS, get_preset, make_config
from minimodels.engine.config import from_dict, override, parse_assignments, to_dict, to_json
from minimodels.engine.errors import ConfigError
from minimodels.engine.experiment import Experiment
from minimodels.engine.train import TrainConfig
from minimodels.nn.video_vit import VideoViTConfig
from minimodels.videoprism.vit_probe import VitProbeConfig


def test_override_from_strings_parses_each_type():
    cfg = override(VitProbeConfig(), {"frames": "3", "train.lr": "0.5", "train.progress": "false",
                                      "eval_split": "val", "model.logit_cap": "30"})
    assert cfg.frames == 3 and type(cfg.frames) is int
    assert cfg.train.lr == 0.5 and type(cfg.train.lr) is float
    assert cfg.train.progress is False
    assert cfg.eval_split == "val"
    assert cfg.model.logit_cap == 30.0 and type(cfg.model.logit_cap) is float


def test_override_from_python_values_and_kwargs():
    cfg = override(VitProbeConfig(), {"train.steps": 7}, frames=2)
    assert cfg.train.steps == 7 and cfg.frames == 2
    cfg = override(cfg, {"train.lr": 1})  # an int is a fine float
    assert cfg.train.lr == 1.0 and type(cfg.train.lr) is float


def test_override_nested_dotted_keys_leave_the_rest_alone():
    base = VitProbeConfig()
    cfg = override(base, {"train.steps": "5", "model.width": "32", "model.heads": "2"})
    assert (cfg.train.steps, cfg.model.width, cfg.model.heads) == (5, 32, 2)
    # Everything else is the default, and the original is not modified (a copy is returned).
    assert cfg.train.batch_size == base.train.batch_size and cfg.model.mlp_dim == base.model.mlp_dim
    assert base.train.steps == VitProbeConfig().train.steps and base.model.width == VitProbeConfig().model.width
    assert cfg.model is not base.model and cfg.train is not base.train


def test_override_can_replace_a_whole_nested_config():
    model = VideoViTConfig(width=8, heads=2, mlp_dim=16)
    cfg = override(VitProbeConfig(), model=model)
    assert cfg.model == model


@pytest.mark.parametrize("key, cls", [("nope", VitProbeConfig), ("train.nope", TrainConfig),
                                      ("model.depth", VideoViTConfig)])
def test_unknown_key_error_lists_the_valid_keys(key, cls):
    with pytest.raises(ConfigError) as err:
        override(VitProbeConfig(), {key: "1"})
    message = str(err.value)
    assert key.split(".")[-1] in message
    for field in dataclasses.fields(cls):
        assert field.name in message


@pytest.mark.parametrize("key, value", [
    ("train.steps", "abc"),      # not an int
    ("train.steps", "2.5"),      # not an int either
    ("train.lr", "fast"),        # not a float
    ("train.steps", 2.5),        # Python float for an int field
    ("train.steps", True),       # a bool is not an int here
    ("train.lr", "1e-3x"),
    ("train.progress", "maybe"),  # not a boolean
    ("train.progress", 1),       # Python int for a bool field
    ("frames", [1, 2]),
    ("model", "videoprism-b"),   # a nested config cannot be set from a string
    ("model", {"width": 8}),
])
def test_wrong_type_raises_config_error_naming_the_key(key, value):
    with pytest.raises(ConfigError) as err:
        override(VitProbeConfig(), {key: value})
    assert key in str(err.value) or key.split(".")[-1] in str(err.value)


@pytest.mark.parametrize("key, value", [("model.width", "wide"), ("train.nope", "1")])
def test_nested_errors_name_the_full_dotted_key(key, value):
    with pytest.raises(ConfigError, match=re.escape(key)):
        override(VitProbeConfig(), {key: value})


@pytest.mark.parametrize("text, expected", [("true", True), ("True", True), ("1", True), ("yes", True), ("on", True),
                                            ("false", False), ("FALSE", False), ("0", False), ("no", False),
                                            ("off", False)])
def test_bool_parsing(text, expected):
    start = TrainConfig(progress=not expected)
    assert override(start, {"progress": text}).progress is expected


def test_optional_float_accepts_none_and_numbers():
    cfg = VideoViTConfig()
    assert cfg.logit_cap is not None
    for text in ("none", "None", "null"):
        assert override(cfg, {"logit_cap": text}).logit_cap is None
    assert override(cfg, {"logit_cap": None}).logit_cap is None
    assert override(override(cfg, logit_cap=None), {"logit_cap": "12.5"}).logit_cap == 12.5
    with pytest.raises(ConfigError):
        override(cfg, {"logit_cap": "huge"})


def test_model_validation_runs_after_override():
    with pytest.raises(ConfigError, match="attn_impl"):
        override(VitProbeConfig(), {"model.attn_impl": "flash"})


def test_parse_assignments():
    assert parse_assignments(["a=1", " model.width = 64 ", "x=a=b"]) == {"a": "1", "model.width": "64", "x": "a=b"}
    assert parse_assignments(None) == {}
    for bad in (["novalue"], ["=3"]):
        with pytest.raises(ConfigError):
            parse_assignments(bad)


def test_to_dict_from_dict_roundtrip():
    cfg = override(VitProbeConfig(), {"train.steps": 11, "model.logit_cap": None, "model.width": 48, "frames": 1})
    data = to_dict(cfg)
    assert data["train"]["steps"] == 11 and data["model"]["logit_cap"] is None
    assert from_dict(VitProbeConfig, data) == cfg
    # Through JSON too (what a checkpoint's config.json holds), with the "class" key to_json adds.
    parsed = json.loads(to_json(cfg))
    assert parsed["class"] == "VitProbeConfig"
    back = from_dict(VitProbeConfig, parsed)
    assert back == cfg and isinstance(back.model, VideoViTConfig) and isinstance(back.train, TrainConfig)


def test_from_dict_rejects_unknown_keys_and_wrong_types():
    data = to_dict(VitProbeConfig())
    data["train"]["stepz"] = 3
    with pytest.raises(ConfigError, match="stepz"):
        from_dict(VitProbeConfig, data)
    data = to_dict(VitProbeConfig())
    data["frames"] = "eight"
    with pytest.raises(ConfigError, match="frames"):
        from_dict(VitProbeConfig, data)


def test_get_preset_returns_fresh_copies():
    a = get_preset("videoprism-tiny")
    a.width = 999
    assert get_preset("videoprism-tiny").width != 999
    assert PRESETS["videoprism-tiny"].width != 999


def test_get_preset_unknown_name_lists_the_choices():
    with pytest.raises(ConfigError) as err:
        get_preset("videoprism-xxl")
    assert "videoprism-xxl" in str(err.value)
    for name in PRESETS:
        assert name in str(err.value)


def test_make_config_applies_preset_then_sets():
    cfg = make_config("videoprism-vit-probe", "videoprism-b", {"model.num_frames": "4", "train.steps": "2"})
    assert cfg.model.width == get_preset("videoprism-b").width
    assert cfg.model.num_frames == 4 and cfg.train.steps == 2


def test_make_config_unknown_experiment_lists_choices():
    with pytest.raises(ConfigError) as err:
        make_config("no-such-experiment")
    for name in EXPERIMENTS:
        assert name in str(err.value)


@dataclasses.dataclass
class _TextModelConfig:
    vocab: int = 10


@dataclasses.dataclass
class _TextExperimentConfig:
    model: _TextModelConfig = dataclasses.field(default_factory=_TextModelConfig)


def test_make_config_with_a_preset_of_the_wrong_family(monkeypatch):
    monkeypatch.setitem(EXPERIMENTS, "text-only", Experiment(_TextExperimentConfig, lambda *a, **k: {}, "test"))
    with pytest.raises(ConfigError) as err:
        make_config("text-only", "videoprism-b")
    message = str(err.value)
    assert "videoprism-b" in message and "VideoViTConfig" in message and "_TextModelConfig" in message
    assert make_config("text-only").model == _TextModelConfig()  # without a preset it is fine


def test_renamed_keys_are_refused_with_their_new_name():
    """"checkpoint" means saved state only: activation recomputation has its own name, and the old keys say it."""
    from minimodels.catalog import make_config

    renamed = "'train.activation_checkpointing' is now called 'train.recompute_activations'"
    with pytest.raises(ConfigError, match=renamed):
        make_config("videoprism-stage1", sets={"train.activation_checkpointing": "true"})
    with pytest.raises(ConfigError, match="'gradient_checkpointing' is now called 'recompute_activations'"):
        make_config("minigpt4video-qa", sets={"gradient_checkpointing": "true"})
    assert make_config("videoprism-stage1", sets={"train.recompute_activations": "true"}).train.recompute_activations
