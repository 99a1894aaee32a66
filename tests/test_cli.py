"""The command line, run as a user would: ``python -m minimodels ...`` in a subprocess."""

import json
import os
import subprocess
import sys

import pytest

from minimodels.paths import REPO_ROOT
from minimodels.presets import PRESETS


def cli(*args, runs_dir=None, timeout=120):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    if runs_dir is not None:
        env["MINIMODELS_RUNS"] = str(runs_dir)  # keep runs/results/ of the repository untouched
    return subprocess.run([sys.executable, "-m", "minimodels", *args], capture_output=True, text=True,
                          cwd=REPO_ROOT, env=env, timeout=timeout)


def last_json(stdout):
    return json.loads(stdout.strip().splitlines()[-1])


def test_info_json():
    result = cli("info", "videoprism-b", "--json")
    assert result.returncode == 0, result.stderr
    info = last_json(result.stdout)
    assert info["preset"] == "videoprism-b"
    assert abs(info["params"]["total"] / 114e6 - 1) < 0.01
    assert info["tokens_per_clip"] == 16 * 256 and info["gflops_per_clip"] > 0


def test_info_frames_and_text_output():
    result = cli("info", "videoprism-b", "--frames", "4")
    assert result.returncode == 0, result.stderr
    assert "videoprism-b" in result.stdout and "4 frames" in result.stdout


def test_info_unknown_preset_exits_2_and_lists_the_presets():
    result = cli("info", "videoprism-xl")
    assert result.returncode == 2
    assert "videoprism-xl" in result.stderr
    for name in PRESETS:
        assert name in result.stderr
    assert "Traceback" not in result.stderr


def test_list():
    result = cli("list")
    assert result.returncode == 0
    assert all(name in result.stdout for name in PRESETS) and "vit-probe" in result.stdout


TINY = ["--set", "train.steps=3", "--set", "train.progress=false", "--set", "train.batch_size=4",
        "--set", "model.width=16", "--set", "model.heads=2", "--set", "model.mlp_dim=32",
        "--set", "model.image_size=16", "--set", "frames=2"]


def test_run_vit_probe_json(tmp_path):
    result = cli("run", "vit-probe", *TINY, "--out", str(tmp_path / "ckpt"), "--json", runs_dir=tmp_path / "runs")
    assert result.returncode == 0, result.stderr
    metrics = last_json(result.stdout)
    assert metrics["experiment"] == "vit-probe" and metrics["seed"] == 0
    acc = {k: v for k, v in metrics.items() if k.startswith("acc_")}
    assert set(acc) == {"acc_shape", "acc_colour", "acc_size", "acc_direction", "acc_speed"}
    assert all(0 <= v <= 1 for v in acc.values())
    assert "history" not in metrics
    # The checkpoint holds the config that ran; the result was recorded outside the repository.
    config = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert config["config"]["train"]["steps"] == 3 and config["config"]["model"]["width"] == 16
    assert (tmp_path / "ckpt" / "model.safetensors").is_file()
    recorded = json.loads((tmp_path / "runs" / "results" / "vit-probe.json").read_text())
    assert recorded["acc_shape"] == metrics["acc_shape"]


@pytest.mark.parametrize("setting, words", [("train.nope=1", "nope"), ("model.width=wide", "width"),
                                            ("nokey", "key=value")])
def test_run_with_a_bad_set_exits_2(tmp_path, setting, words):
    result = cli("run", "vit-probe", "--set", setting, runs_dir=tmp_path / "runs")
    assert result.returncode == 2
    assert words in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()  # nothing ran


def test_run_unknown_experiment_or_preset_exits_2(tmp_path):
    result = cli("run", "no-such-experiment", runs_dir=tmp_path / "runs")
    assert result.returncode == 2 and "vit-probe" in result.stderr
    result = cli("run", "vit-probe", "--preset", "videoprism-xl", runs_dir=tmp_path / "runs")
    assert result.returncode == 2 and all(name in result.stderr for name in PRESETS)
