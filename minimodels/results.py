"""The course's results table: the latest headline metrics of every experiment, beside chance.

Each experiment lists its headline metrics in ``metrics["headline"]`` as (metric, its chance metric) pairs.
``run_experiment`` records each run's metrics in ``runs/results/<experiment>.json``; ``python -m minimodels results``
prints them as one table (the last step of the course's main job, after every notebook has run).
"""

from __future__ import annotations

import json

from .paths import RUNS_DIR

LATEST = RUNS_DIR / "results"  # the latest run of each experiment (not results/, which holds committed sweeps)


def record(metrics: dict) -> None:
    LATEST.mkdir(parents=True, exist_ok=True)
    clean = {k: v for k, v in metrics.items() if k != "history"}
    (LATEST / f"{metrics['experiment']}.json").write_text(json.dumps(clean, indent=2, sort_keys=True) + "\n")


def table() -> str:
    rows = [json.loads(p.read_text()) for p in sorted(LATEST.glob("*.json"))] if LATEST.is_dir() else []
    if not rows:
        return "no results yet: run the notebooks (scripts/course.sh) or `python -m minimodels run EXPERIMENT`"
    lines = [f"{'experiment':<20} {'seed':>4}  {'metric':<18} {'value':>7} {'chance':>7}"]
    for row in rows:
        for key, chance_key in row.get("headline", []):
            lines.append(f"{row['experiment']:<20} {row['seed']:>4}  {key:<18} {row[key]:>7.3f} {row[chance_key]:>7.3f}")
    return "\n".join(lines)
