"""Seed sweeps (the results files behind the notebooks' ablation tables) and the course's results table."""

import json

import pytest

from minimodels import results, sweep


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    monkeypatch.setattr(sweep, "RESULTS_DIR", tmp_path / "results")
    monkeypatch.setattr(results, "LATEST", tmp_path / "runs")
    return tmp_path


def test_sweep_summarises_every_setting_over_seeds(scratch):
    sets = {"train.steps": "2", "train.batch_size": "4", "train.progress": "false"}
    out = sweep.sweep("vit-probe", "frames", ["1", "8"], seeds=[0, 1], sets=sets)
    assert [(r["frames"], r["seed"]) for r in out["runs"]] == [("1", 0), ("1", 1), ("8", 0), ("8", 1)]
    motion = [r["motion_acc"] for r in out["runs"] if r["frames"] == "8"]
    summary = out["summary"]["8"]["motion_acc"]
    assert summary["mean"] == pytest.approx(sum(motion) / 2, abs=1e-4)
    assert summary["std"] == pytest.approx(abs(motion[0] - motion[1]) / 2**0.5, abs=1e-4)
    saved = json.loads(sweep.sweep_path("vit-probe", "frames").read_text())
    assert saved == json.loads(json.dumps(out)) and "--vary frames=1,8" in saved["command"]
    assert sweep.load_sweep("vit-probe", "frames")["values"] == ["1", "8"]


def test_load_sweep_names_the_command_when_missing(scratch):
    with pytest.raises(FileNotFoundError, match="python -m minimodels sweep vit-probe --vary nope"):
        sweep.load_sweep("vit-probe", "nope")


def test_results_table_lists_headline_metrics_beside_chance(scratch):
    assert "no results yet" in results.table()
    results.record({"experiment": "demo", "seed": 3, "acc": 0.75, "acc_chance": 0.25, "history": [1, 2],
                    "headline": [("acc", "acc_chance")]})
    lines = results.table().splitlines()
    assert len(lines) == 2 and lines[1].split() == ["demo", "3", "acc", "0.750", "0.250"]


def test_committed_results_files_are_consistent():
    """Every shipped sweep names its command, and its means are the means of its runs."""
    from minimodels.paths import RESULTS_DIR

    files = sorted(RESULTS_DIR.glob("*--*.json"))
    assert files, "the notebooks' ablation tables need their results files"
    for path in files:
        data = json.loads(path.read_text())
        assert path.name == f"{data['experiment']}--{data['key']}.json"
        assert data["command"].startswith(f"python -m minimodels sweep {data['experiment']}")
        for value in data["values"]:
            rows = [r for r in data["runs"] if r[data["key"]] == value]
            assert sorted(r["seed"] for r in rows) == sorted(data["seeds"])
            for metric, stats in data["summary"][value].items():
                assert stats["mean"] == pytest.approx(sum(r[metric] for r in rows) / len(rows), abs=1e-3)
