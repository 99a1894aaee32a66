"""Many seeds of one experiment, and the mean ± std that a notebook's ablation table shows.

    python -m minimodels sweep videoprism-stage1 --seeds 0 1 2 --vary token_drop=0,0.5

runs every (setting, seed) pair headless and writes ``results/<experiment>--<key>.json``: each run's metrics and, per setting, their mean and standard deviation. Notebooks run one seed live and read this file for
the rest, so every number of their tables comes from this committed command.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from .experiments import run_experiment
from .paths import RESULTS_DIR


def sweep_path(experiment: str, key: str) -> Path:
    return RESULTS_DIR / f"{experiment}--{key}.json"


def sweep(experiment: str, key: str, values: list[str], seeds: list[int], sets: dict | None = None) -> dict:
    """Run ``experiment`` for every value of ``key`` and every seed; return (and save) the summary."""
    runs = []
    for value in values:
        for seed in seeds:
            m = run_experiment(experiment, seed=seed, sets={**(sets or {}), key: value})
            numbers = {k: v for k, v in m.items() if isinstance(v, (int, float)) and k != "seed"}
            runs.append({key: value, "seed": seed, **numbers})
    summary = {}
    for value in values:
        rows = [r for r in runs if r[key] == value]
        names = [k for k in rows[0] if k not in (key, "seed")]
        summary[value] = {k: {"mean": round(statistics.mean(r[k] for r in rows), 4),
                              "std": round(statistics.stdev(r[k] for r in rows), 4) if len(rows) > 1 else 0.0}
                          for k in names}
    out = {"experiment": experiment, "key": key, "values": values, "seeds": seeds, "sets": sets or {},
           "command": f"python -m minimodels sweep {experiment} --seeds {' '.join(map(str, seeds))} "
                      f"--vary {key}={','.join(values)}"
                      + "".join(f" --set {k}={v}" for k, v in (sets or {}).items()),
           "runs": runs, "summary": summary}
    path = sweep_path(experiment, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    return out


def load_sweep(experiment: str, key: str) -> dict:
    path = sweep_path(experiment, key)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; make it with `python -m minimodels sweep {experiment} "
                                f"--vary {key}=...`")
    return json.loads(path.read_text())
