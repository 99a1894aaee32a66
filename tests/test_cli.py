"""The command line. Two runs go through ``python -m minimodels`` in a subprocess, exactly as a user types them; the
other cases call ``cli.main(argv)`` in this process (same parser, same error handling, no interpreter start-up)."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch

from minimodels import catalog, cli
from minimodels.catalog import EXPERIMENTS, PRESETS
from minimodels.engine import results
from minimodels.engine.errors import CheckpointError
from minimodels.engine.experiment import Experiment
from minimodels.engine.paths import REPO_ROOT


def cli_env(runs_dir):
    return {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1",
            "MINIMODELS_RUNS": str(runs_dir)}  # keep runs/ of the repository untouched


def run_cli(*args, runs_dir, timeout=120):
    return subprocess.run([sys.executable, "-m", "minimodels", *args], capture_output=True, text=True,
                          cwd=REPO_ROOT, env=cli_env(runs_dir), timeout=timeout)


def last_json(stdout):
    return json.loads(stdout.strip().splitlines()[-1])


@pytest.fixture
def runs(tmp_path, monkeypatch):
    """In-process runs write under tmp_path/runs."""
    from minimodels.engine import experiment

    monkeypatch.setattr(experiment, "RUNS_DIR", tmp_path / "runs")
    monkeypatch.setattr(results, "RUNS_DIR", tmp_path / "runs")
    return tmp_path / "runs"


TINY = ["--set", "train.steps=3", "--set", "train.progress=false", "--set", "train.batch_size=4",
        "--set", "model.width=16", "--set", "model.heads=2", "--set", "model.mlp_dim=32",
        "--set", "model.image_size=16", "--set", "frames=2"]


def test_run_json_writes_config_checkpoint_and_result_in_its_folder(tmp_path):
    result = run_cli("run", "videoprism-vit-probe", *TINY, "--out", str(tmp_path / "ckpt"), "--json",
                     runs_dir=tmp_path / "runs")
    assert result.returncode == 0, result.stderr
    summary = last_json(result.stdout)
    assert summary["experiment"] == "videoprism-vit-probe" and summary["seed"] == 0 and summary["seconds"] > 0
    acc = {k: v for k, v in summary["metrics"].items() if k.startswith("acc_")}
    assert set(acc) == {"acc_shape", "acc_colour", "acc_size", "acc_direction", "acc_speed"}
    assert set(acc) | {"appearance_acc", "motion_acc"} == set(summary["chance"])
    assert all(0 <= v <= 1 for v in acc.values()) and summary["headline"] == ["appearance_acc", "motion_acc"]
    assert "history" not in summary and summary["info"]["out_dir"] == str(tmp_path / "ckpt")
    # The folder holds the config that ran, the weights and the result; the latest-results table is outside the repo.
    config = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert config["config"]["train"]["steps"] == 3 and config["config"]["model"]["width"] == 16
    assert (tmp_path / "ckpt" / "model.safetensors").is_file()
    assert json.loads((tmp_path / "ckpt" / "result.json").read_text()) == summary
    recorded = json.loads((tmp_path / "runs" / "results" / "videoprism-vit-probe.json").read_text())
    assert recorded["metrics"] == summary["metrics"]


def test_sigterm_stops_a_run_after_its_step_with_a_checkpoint_and_no_traceback(tmp_path):
    """As a batch scheduler stops a job: the run keeps a checkpoint, says how to continue, and exits 2."""
    out = tmp_path / "run"
    endless = [*TINY, "--set", "train.steps=100000", "--set", "train.checkpoint_every=1"]
    with subprocess.Popen([sys.executable, "-m", "minimodels", "run", "videoprism-vit-probe", *endless, "--out",
                           str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT,
                          env=cli_env(tmp_path / "runs")) as proc:
        deadline = time.monotonic() + 90
        while not (out / "trainer.json").is_file() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)  # the first checkpoint: training is under way
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 2, stderr
    assert re.search(r"^error: videoprism-vit-probe: stopped by SIGTERM after step \d+ of 100000; a checkpoint of "
                     r"step \d+ is in .*--resume$", stderr, re.M), stderr
    assert "Traceback" not in stderr
    assert json.loads((out / "trainer.json").read_text())["step"] >= 1 and not (out / "result.json").exists()


def test_info_json(capsys):  # (the run test above checks --json through a real process)
    assert cli.main(["info", "videoprism-b", "--json"]) == 0
    info = last_json(capsys.readouterr().out)
    assert info["preset"] == "videoprism-b" and abs(info["params"]["total"] / 114e6 - 1) < 0.01
    assert info["tokens_per_clip"] == 16 * 256 and info["gflops_per_clip"] > 0


def test_info_frames_and_text_output(capsys):
    assert cli.main(["info", "videoprism-b", "--frames", "4"]) == 0
    out = capsys.readouterr().out
    assert "videoprism-b" in out and "4 frames" in out


def test_info_unknown_preset_exits_2_and_lists_the_presets(capsys):
    assert cli.main(["info", "videoprism-xl"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "videoprism-xl" in err and all(name in err for name in PRESETS)


def test_list(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in [*PRESETS, *EXPERIMENTS])


def test_a_run_without_out_gets_a_fresh_folder_of_its_own(runs, capsys):
    tiny = [arg.replace("train.steps=3", "train.steps=1") for arg in TINY]
    for _ in range(2):
        assert cli.main(["run", "videoprism-vit-probe", *tiny, "--json"]) == 0
    folders = sorted((runs / "videoprism-vit-probe").iterdir())
    assert len(folders) == 2 and all(f.name.endswith(("-seed0", "-seed0-2")) for f in folders)  # never reused
    for folder in folders:
        assert {"config.json", "model.safetensors", "trainer.json", "result.json"} <= {p.name for p in folder.iterdir()}


@pytest.mark.parametrize("experiment, setting, words", [
    ("videoprism-vit-probe", "train.nope=1", "nope"), ("videoprism-vit-probe", "model.width=wide", "width"),
    ("videoprism-vit-probe", "nokey", "key=value"),
    ("videoprism-vit-probe", "model.image_size=30", "divides image_size=30"),
    ("videoprism-stage2", "mask=cube", "bevt, block-tube, tube"),
    ("mvgpt-captioning", "pretrain=both", "bidirectional"),
    ("videoprism-stage1", "token_drop=1", "token_drop")])
def test_run_with_a_bad_set_exits_2_before_anything_runs(runs, capsys, experiment, setting, words):
    assert cli.main(["run", experiment, "--set", setting]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and words in err
    assert not runs.exists()  # nothing ran


def test_run_unknown_experiment_or_preset_exits_2(runs, capsys):
    assert cli.main(["run", "no-such-experiment"]) == 2
    err = capsys.readouterr().err
    assert all(name in err for name in EXPERIMENTS), err
    assert cli.main(["run", "videoprism-vit-probe", "--preset", "videoprism-xl"]) == 2
    err = capsys.readouterr().err
    assert all(name in err for name in PRESETS), err
    assert cli.main(["sweep", "no-such-experiment", "--vary", "a=1,2"]) == 2


def broken(error):
    def run(cfg, seed, folder):
        raise error

    return run


def test_the_projects_errors_are_printed_and_a_bug_keeps_its_traceback(runs, capsys, monkeypatch):
    name = "videoprism-vit-probe"
    experiment = EXPERIMENTS[name]
    missing = Experiment(experiment.config, broken(CheckpointError("no checkpoint in X; make it with Y")), "")
    monkeypatch.setitem(catalog.EXPERIMENTS, name, missing)
    assert cli.main(["run", name]) == 2
    assert capsys.readouterr().err == "error: no checkpoint in X; make it with Y\n"
    # A ValueError from inside a model is a bug, not the user's input: it must not be swallowed.
    monkeypatch.setitem(catalog.EXPERIMENTS, name, Experiment(experiment.config, broken(ValueError("boom")), ""))
    with pytest.raises(ValueError, match="boom"):
        cli.main(["run", name])


def test_each_process_takes_its_own_share_of_the_batch(monkeypatch):
    from minimodels.engine import distributed

    batch = torch.tensor([7, 3, 9, 0, 4, 1])
    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    shares = []
    for rank in (0, 1):
        monkeypatch.setattr(distributed, "rank", lambda rank=rank: rank)
        shares.append(distributed.share(batch).tolist())
    assert shares == [[7, 9, 4], [3, 0, 1]]  # disjoint, the same size, together the whole batch


def test_torchrun_two_processes_take_the_one_process_step(tmp_path):
    """Data parallel on CPU (gloo): 2 processes with 2 clips each take the step 1 process takes on the 4 clips. The
    hardest case the course has: a contrastive loss, whose negatives are gathered over the processes, with token
    dropping, whose masks are drawn for the whole batch (engine/distributed.py, engine/train.py)."""
    from minimodels.catalog import run_experiment

    experiment = "videoprism-stage1"
    args = ["--set", "train.steps=3", "--set", "train.warmup=1", "--set", "train.batch_size=4", "--set",
            "train.progress=false", "--set", "model.text_layers=1", "--set", "eval_split=val"]
    single = run_experiment(experiment, sets=dict(s.split("=", 1) for s in args[1::2]), out_dir=tmp_path / "one")
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                             "-m", "minimodels", "run", experiment, *args, "--out", str(tmp_path / "two"), "--json"],
                            capture_output=True, text=True, cwd=REPO_ROOT, env=cli_env(tmp_path / "runs"), timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(result.stdout.strip().splitlines()) == 1  # rank 0 alone prints (and writes)
    log = [json.loads(line) for line in (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()]
    losses = [row["loss"] for row in log if "loss" in row]
    assert losses == pytest.approx([row["loss"] for row in single.history["train"].steps], abs=1e-5)
    assert json.loads((tmp_path / "two" / "result.json").read_text())["metrics"]["final_loss"] == pytest.approx(
        single.metrics["final_loss"], abs=1e-4)


def test_a_sweep_under_torchrun_runs_every_run_on_every_process_and_rank_0_alone_writes(runs, monkeypatch, capsys):
    """Each process of ``torchrun ... -m minimodels sweep`` joins the process group and takes part in every run
    (data parallel, as ``run``); rank 0 alone prints the summary and writes the sweep's file."""
    import contextlib

    from minimodels.engine import distributed
    from minimodels.engine.results import ExperimentResult

    joined, ran = [], []
    monkeypatch.setattr(distributed, "launched", lambda: contextlib.nullcontext(joined.append(True)))
    monkeypatch.setattr(catalog, "run_experiment", lambda name, preset=None, seed=0, sets=None:
                        ran.append(seed) or ExperimentResult({"acc": 0.5 + seed / 10}))
    argv = ["sweep", "videoprism-vit-probe", "--vary", "frames=1", "--seeds", "0", "1"]
    monkeypatch.setattr(distributed, "is_main", lambda: False)
    assert cli.main(argv) == 0 and capsys.readouterr().out == "" and not list(runs.rglob("*.json"))
    monkeypatch.setattr(distributed, "is_main", lambda: True)
    assert cli.main(argv) == 0 and "wrote" in capsys.readouterr().out and len(list(runs.rglob("*.json"))) == 1
    assert joined == [True, True] and ran == [0, 1, 0, 1]


def test_an_evaluation_under_torchrun_is_shared_over_the_processes(monkeypatch):
    """``batched`` under 3 processes: each computes a contiguous block of the rows, in batches, and the blocks in
    rank order are the rows once (``gather_parts`` hands them to every rank)."""
    from minimodels.engine import distributed
    from minimodels.eval.loop import batched

    computed, blocks = {}, {}
    monkeypatch.setattr(distributed, "world_size", lambda: 3)
    for rank in range(3):
        monkeypatch.setattr(distributed, "rank", lambda rank=rank: rank)
        monkeypatch.setattr(distributed, "gather_parts", lambda parts: parts)  # this rank's own, here
        blocks[rank] = batched(lambda rows, rank=rank: computed.setdefault(rank, []).append((rows.start, rows.stop))
                               or torch.arange(rows.start, rows.stop), 10, 3)
    assert computed == {0: [(0, 3), (3, 4)], 1: [(4, 7), (7, 8)], 2: [(8, 10)]}
    assert torch.equal(torch.cat([blocks[rank] for rank in range(3)]), torch.arange(10))
