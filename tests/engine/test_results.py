"""Experiment results, seed sweeps (the files behind the notebooks' ablation tables) and the results table."""

import json
import random

import pytest

from minimodels.engine import results
from minimodels.engine.errors import DataError
from minimodels.engine.history import History
from minimodels.engine.results import ExperimentResult
from minimodels.engine.sweep import sweep


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "RESULTS_DIR", tmp_path / "results")
    monkeypatch.setattr(results, "RUNS_DIR", tmp_path / "runs")
    return tmp_path


def fake_run(preset, seed, sets):
    """Stands in for run_experiment: an accuracy that depends on the seed and the varied setting."""
    acc = random.Random(seed).random() / 10 + (0.5 if sets["frames"] == "8" else 0.2)
    return ExperimentResult({"motion_acc": acc, "note": None}, {"motion_acc": 0.4}, headline=["motion_acc"])


def test_sweep_summarises_every_setting_over_seeds(scratch):
    out = sweep(fake_run, "demo", "frames", ["1", "8"], seeds=[0, 1], sets={"train.steps": "2"}, write_results=True)
    assert [(r["value"], r["seed"]) for r in out["runs"]] == [("1", 0), ("1", 1), ("8", 0), ("8", 1)]
    motion = [r["metrics"]["motion_acc"] for r in out["runs"] if r["value"] == "8"]
    summary = out["summary"]["8"]["metrics"]
    assert summary["motion_acc"]["mean"] == pytest.approx(sum(motion) / 2, abs=1e-4)
    assert summary["motion_acc"]["std"] == pytest.approx(abs(motion[0] - motion[1]) / 2**0.5, abs=1e-4)
    assert "note" not in summary  # only numbers are averaged
    assert out["summary"]["1"]["chance"]["motion_acc"] == {"mean": 0.4, "std": 0.0}
    saved = json.loads(results.sweep_path("demo", "frames", {"train.steps": "2"}).read_text())
    assert saved == json.loads(json.dumps(out)) and "--vary frames=1,8 --set train.steps=2" in saved["command"]
    assert results.load_sweep("demo", "frames", {"train.steps": "2"})["values"] == ["1", "8"]


def test_a_sweep_under_fixed_settings_does_not_overwrite_the_plain_one(scratch):
    sweep(fake_run, "demo", "frames", ["8"], seeds=[0], write_results=True)
    sweep(fake_run, "demo", "frames", ["1"], seeds=[0], sets={"train.steps": "2"}, write_results=True)
    assert results.load_sweep("demo", "frames")["values"] == ["8"]
    assert results.load_sweep("demo", "frames", {"train.steps": "2"})["values"] == ["1"]
    assert results.sweep_path("demo", "frames", {"train.steps": "2"}).name == "demo--frames--train.steps=2.json"
    with pytest.raises(DataError, match="--vary frames=... --set train.steps=3"):
        results.load_sweep("demo", "frames", {"train.steps": "3"})


def test_a_sweep_under_a_preset_is_saved_apart_and_says_so(scratch):
    presets = []
    sweep(lambda preset, seed, sets: presets.append(preset) or fake_run(preset, seed, sets), "demo", "frames", ["8"],
          seeds=[0, 1], preset="big", write_results=True)
    assert presets == ["big", "big"]
    saved = json.loads(results.sweep_path("demo", "frames", {"preset": "big"}).read_text())
    assert saved["preset"] == "big" and saved["command"].startswith("python -m minimodels sweep demo --preset big ")
    assert not results.sweep_path("demo", "frames").exists()  # the tiny table stays the experiment's own


def test_a_sweep_writes_the_committed_results_only_when_asked(scratch):
    (scratch / "results").mkdir()
    committed = scratch / "results" / "demo--frames.json"
    committed.write_text("the three-seed table")
    out = sweep(fake_run, "demo", "frames", ["8"], seeds=[0])  # a quick trial
    assert committed.read_text() == "the three-seed table"
    trial = json.loads((scratch / "runs" / "sweeps" / "demo--frames.json").read_text())
    assert trial["runs"] == out["runs"] and "--write-results" not in trial["command"]
    sweep(fake_run, "demo", "frames", ["8"], seeds=[0], write_results=True)
    assert json.loads(committed.read_text())["command"].endswith("--vary frames=8 --write-results")


def test_a_stopped_sweep_started_again_runs_only_what_its_journal_lacks(scratch, monkeypatch):
    calls = []

    def stopped_after(n):
        def run(preset, seed, sets):
            if len(calls) == n:
                raise KeyboardInterrupt
            calls.append((sets["frames"], seed))
            return fake_run(preset, seed, sets)
        return run

    with pytest.raises(KeyboardInterrupt):
        sweep(stopped_after(3), "demo", "frames", ["1", "8"], seeds=[0, 1], write_results=True)
    journal = scratch / "runs" / "sweeps" / "demo--frames.results.journal.json"
    assert [(r["value"], r["seed"]) for r in json.loads(journal.read_text())["runs"]] == calls == [
        ("1", 0), ("1", 1), ("8", 0)]
    assert not results.sweep_path("demo", "frames").exists()  # no table from part of the runs

    calls.clear()
    resumed = sweep(stopped_after(99), "demo", "frames", ["1", "8"], seeds=[0, 1], write_results=True)
    assert calls == [("8", 1)]  # only the run the journal lacked
    whole = sweep(fake_run, "demo", "frames", ["1", "8"], seeds=[0, 1])  # the same sweep in one go
    assert resumed["runs"] == whole["runs"] and resumed["summary"] == whole["summary"]
    assert not journal.exists()  # gone once the file is written

    # a journal of another command, or of other code, is not taken
    with pytest.raises(KeyboardInterrupt):
        sweep(stopped_after(1), "demo", "frames", ["1", "8"], seeds=[0, 1], write_results=True)
    calls.clear()
    sweep(stopped_after(99), "demo", "frames", ["1", "8"], seeds=[0, 1, 2], write_results=True)
    assert len(calls) == 6
    calls.clear()
    with pytest.raises(KeyboardInterrupt):
        sweep(stopped_after(1), "demo", "frames", ["1", "8"], seeds=[0, 1], write_results=True)
    monkeypatch.setattr("minimodels.engine.sweep.code_and_data_digest", lambda experiment: "changed")
    calls.clear()
    sweep(stopped_after(99), "demo", "frames", ["1", "8"], seeds=[0, 1], write_results=True)
    assert len(calls) == 4


def test_the_journal_ignores_the_other_papers_code_only(tmp_path, monkeypatch):
    from minimodels.engine import sweep as sweeps

    package = tmp_path / "minimodels"
    for file in ("engine/train.py", "videoprism/experiments.py", "mvgpt/experiments.py"):
        (package / file).parent.mkdir(parents=True)
        (package / file).write_text("x = 1\n")
    monkeypatch.setattr(sweeps, "__file__", str(package / "engine" / "sweep.py"))
    monkeypatch.setattr(sweeps, "DATA_DIR", tmp_path / "data")
    before = sweeps.code_and_data_digest("videoprism-stage2")
    (package / "mvgpt" / "experiments.py").write_text("x = 2\n")
    assert sweeps.code_and_data_digest("videoprism-stage2") == before
    (package / "engine" / "train.py").write_text("x = 2\n")
    assert sweeps.code_and_data_digest("videoprism-stage2") != before


def test_load_sweep_names_the_command_when_missing(scratch):
    with pytest.raises(DataError, match="python -m minimodels sweep videoprism-vit-probe --vary nope"):
        results.load_sweep("videoprism-vit-probe", "nope")


def test_a_result_keys_chance_and_headline_by_its_metrics():
    with pytest.raises(ValueError, match="headline metrics \\['acc'\\]"):
        ExperimentResult({"loss": 1.0}, headline=["acc"])
    with pytest.raises(ValueError, match="chance levels \\['acc_chance'\\] name no metric"):
        ExperimentResult({"acc": 0.5}, {"acc_chance": 0.2})
    history = History(steps=[{"step": 1, "loss": 2.0}], evals=[{"step": 1, "acc": 0.5}])
    result = ExperimentResult({"acc": 0.5}, {"acc": 0.2}, ["acc"], {"train": history}, {"out_dir": "x"}, "demo", 3)
    assert "history" not in result.summary() and json.loads(json.dumps(result.summary()))["info"] == {"out_dir": "x"}
    assert history.final_loss == 2.0 and history.final_eval == {"acc": 0.5}


def test_results_table_shows_each_notebooks_live_run_beside_its_3_seed_means(scratch):
    notebooks = {"00": results.NotebookRun("world"),
                 "01": results.NotebookRun("probe", "videoprism-vit-probe", "frames", "8"),
                 "02": results.NotebookRun("stage 1", "videoprism-stage1", "token_drop", "0.5")}
    before = results.table(notebooks)
    assert "no training run" in before and before.count("not run yet") == 2
    sweep(fake_run, "videoprism-vit-probe", "frames", ["1", "8"], seeds=[0, 1, 2], write_results=True)
    live = ExperimentResult({"motion_acc": 0.75}, {"motion_acc": 0.4}, ["motion_acc"],
                            experiment="videoprism-vit-probe", seed=0)
    results.record(live, {"notebook": "01", "preset": None, "sets": {"train.steps": 300}})
    results.record(ExperimentResult({"t2v_r1": 5.0}, {}, ["t2v_r1"], experiment="videoprism-stage1"))  # no notebook's
    text = results.table(notebooks)
    row = next(line for line in text.splitlines() if line.startswith("01"))
    means = results.load_sweep("videoprism-vit-probe", "frames")["summary"]["8"]["metrics"]["motion_acc"]
    assert row.split()[2:4] == ["motion_acc", "0.750"] and f"{means['mean']:.3f} ± {means['std']:.3f}" in row
    assert "live settings train.steps=300 (the means: frames=8)" in text
    assert text.count("not run yet") == 1  # notebook 02's entry waits for notebook 02's own run


def test_committed_results_files_are_consistent():
    """Every shipped sweep names its command and the experiment it ran, and its means are the means of its runs."""
    from minimodels.catalog import EXPERIMENTS, make_config

    files = sorted(results.RESULTS_DIR.glob("*--*.json"))
    assert files, "the notebooks' ablation tables need their results files"
    for path in files:
        data = json.loads(path.read_text())
        assert path == results.sweep_path(data["experiment"], data["key"], data["sets"])
        assert data["experiment"] in EXPERIMENTS
        assert data["command"].startswith(f"python -m minimodels sweep {data['experiment']}")
        assert data["command"].endswith(" --write-results")  # the command that makes this very file
        for value in data["values"]:
            make_config(data["experiment"], None, {**data["sets"], data["key"]: value})  # today's code takes it
            rows = [r for r in data["runs"] if r["value"] == value]
            assert sorted(r["seed"] for r in rows) == sorted(data["seeds"])
            for part in ("metrics", "chance"):
                for name, stats in data["summary"][value][part].items():
                    mean = sum(r[part][name] for r in rows) / len(rows)
                    assert stats["mean"] == pytest.approx(mean, abs=1e-3), (path.name, value, name)
