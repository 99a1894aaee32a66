"""What an experiment returns, and where results are kept.

Every experiment returns an ``ExperimentResult``:

    metrics   {name: number}     what was measured (accuracies, retrieval in %, caption scores, final losses)
    chance    {name: number}     the score of a guess that ignores the input, under the *same name* as the metric it
                                 belongs to: chance["motion_acc"] is the chance level of metrics["motion_acc"]
                                 (the most frequent class, a random ranking, the most frequent caption)
    headline  [name, ...]        the metrics the course's results table shows, each beside its chance
    history   {stage: History}   the training logs of each stage ("train" when there is one)
    info      {name: value}      facts about the run that are not scores (checkpoint folder, example outputs, sizes)

``record`` keeps the latest result of each experiment in ``runs/results/<experiment>.json``, and a notebook's live
run also in ``runs/results/notebooks/<NN>.json``; ``python -m minimodels results`` prints one entry per notebook:
its live run's headline metrics beside the committed 3-seed means of the same experiment (``table``).
Seed sweeps (``engine.sweep``) with ``--write-results`` are the only thing written to the repository's ``results/``;
``load_sweep`` reads them for the notebooks' tables.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import DataError
from .history import History
from .paths import RESULTS_DIR, RUNS_DIR


@dataclass
class ExperimentResult:
    metrics: dict[str, float | None]
    chance: dict[str, float] = field(default_factory=dict)
    headline: list[str] = field(default_factory=list)
    history: dict[str, History] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    experiment: str = ""  # filled in by run_experiment, with the seed and the wall time
    seed: int = 0
    seconds: float = 0.0

    def __post_init__(self):
        missing = [name for name in self.headline if name not in self.metrics]
        if missing:
            raise ValueError(f"headline metrics {missing} are not among the metrics {sorted(self.metrics)}")
        stray = sorted(set(self.chance) - set(self.metrics))
        if stray:
            raise ValueError(f"chance levels {stray} name no metric; chance is keyed by the metric it belongs to")

    def summary(self) -> dict:
        """Everything but the training logs, as plain JSON (what `run --json` prints and `record` keeps)."""
        return {"experiment": self.experiment, "seed": self.seed, "seconds": self.seconds, "metrics": self.metrics,
                "chance": self.chance, "headline": self.headline, "info": self.info}


def rounded(value: float | None, digits: int = 4) -> float | None:
    """A metric rounded for the results files; None (e.g. the final loss of a zero-step run) stays None."""
    return None if value is None else round(value, digits)


def result_json(result: ExperimentResult) -> str:
    """The result as strict JSON: a NaN or infinite metric is an error naming it, never a file no parser reads."""
    bad = [name for part in (result.metrics, result.chance) for name, v in part.items()
           if isinstance(v, float) and not math.isfinite(v)]
    if bad:
        raise DataError(f"{result.experiment}: metrics {bad} are not finite numbers; nothing was recorded")
    return json.dumps(result.summary(), indent=2, sort_keys=True, allow_nan=False) + "\n"


def latest_dir() -> Path:
    """Where the latest result of each experiment is kept (not results/, which holds the committed sweeps)."""
    return RUNS_DIR / "results"


def record(result: ExperimentResult, notebook: dict | None = None) -> None:
    """Keep ``result`` as its experiment's latest; ``notebook`` ({"notebook": "02", "preset", "sets"}) marks it as a
    notebook's live run, which the results table shows under that notebook."""
    folder = latest_dir()
    folder.mkdir(parents=True, exist_ok=True)
    text = result_json(result)
    (folder / f"{result.experiment}.json").write_text(text)
    if notebook is not None:
        live = {**json.loads(text), "notebook": notebook["notebook"], "preset": notebook.get("preset"),
                "sets": {k: str(v) for k, v in (notebook.get("sets") or {}).items()}}
        (folder / "notebooks").mkdir(exist_ok=True)
        (folder / "notebooks" / f"{notebook['notebook']}.json").write_text(json.dumps(live, indent=2) + "\n")


@dataclass(frozen=True)
class NotebookRun:
    """What a notebook runs live (``experiment``, or None for a notebook without a training run) and the committed
    sweep holding the 3-seed means of the same setting: ``results/<experiment>--<key>[--sets].json``, row ``value``."""
    title: str
    experiment: str | None = None
    key: str = ""
    value: str = ""
    sets: dict = field(default_factory=dict)


def table(notebooks: dict[str, NotebookRun]) -> str:
    """One entry per notebook: its live run's headline metrics (seed, value) beside the committed 3-seed mean ± std
    and chance; a live run with other settings than the sweep's says which."""
    folder = latest_dir() / "notebooks"
    lines = [f"{'notebook':<10}{'experiment':<22}{'metric':<24}{'live run':>10}{'3 seeds, results/':>20}{'chance':>9}"]
    for nb, run in notebooks.items():
        if run.experiment is None:
            lines.append(f"{nb:<10}{run.title}: no training run")
            continue
        live_path = folder / f"{nb}.json"
        live = json.loads(live_path.read_text()) if live_path.is_file() else None
        try:
            sweep = load_sweep(run.experiment, run.key, run.sets)
            means = sweep["summary"][run.value]
        except (DataError, KeyError):
            sweep, means = None, None
        if live is None:
            lines.append(f"{nb:<10}{run.experiment:<22}not run yet: execute notebooks/{nb}_*.ipynb "
                         f"(scripts/course.sh runs them all)")
            continue
        for i, name in enumerate(live["headline"]):
            mean = means["metrics"].get(name) if means else None
            shown = f"{mean['mean']:.3f} ± {mean['std']:.3f}" if mean else "–"
            lines.append(f"{nb if i == 0 else '':<10}{run.experiment if i == 0 else '':<22}{name:<24}"
                         f"{_number(live['metrics'][name]):>10}{shown:>20}{_number(live['chance'].get(name)):>9}")
        swept = {**(sweep or {}).get("sets", {}), run.key: run.value}
        other = {k: v for k, v in live["sets"].items() if swept.get(k) != v}
        notes = [f"seed {live['seed']}"] + ([f"preset {live['preset']}"] if live.get("preset") else [])
        if other:
            notes.append("live settings " + " ".join(f"{k}={v}" for k, v in other.items()) + " (the means: "
                         + (" ".join(f"{k}={v}" for k, v in swept.items()) or "the defaults") + ")")
        lines.append(f"{'':<10}({', '.join(notes)})")
    return "\n".join(lines)


def _number(value) -> str:
    return f"{'–':>8}" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:>8.3f}"


def sweep_path(experiment: str, key: str, sets: dict | None = None, folder: Path | None = None) -> Path:
    """``results/<experiment>--<key>.json`` (or in ``folder``); a sweep under fixed settings (``--set k=v``) is
    another table, so its file name carries them (``...--<key>--k=v.json``) and never overwrites the plain sweep of
    the same key."""
    fixed = "".join(f"--{k}={v}" for k, v in sorted((sets or {}).items()))
    return (folder or RESULTS_DIR) / file_safe(f"{experiment}--{key}{fixed}.json")


def file_safe(name: str) -> str:
    """A file name built from settings, kept inside its folder: a path separator or any other character outside
    letters, digits and ``._,=+-`` becomes ``_`` (``--set manifest=/data/x.jsonl`` -> ``manifest=_data_x.jsonl``)."""
    return re.sub(r"[^\w.,=+-]", "_", name)


def trial_sweep_dir() -> Path:
    """Where a sweep goes without ``--write-results``: the runs folder, never the committed ``results/``."""
    return RUNS_DIR / "sweeps"


def load_sweep(experiment: str, key: str, sets: dict | None = None) -> dict:
    """A committed sweep: {"command", "runs": [{"value", "seed", "metrics", "chance"}], "summary": {value:
    {"metrics": {name: {"mean", "std"}}, "chance": {name: {"mean", "std"}}}}, ...} (see ``engine.sweep``)."""
    path = sweep_path(experiment, key, sets)
    if not path.is_file():
        fixed = "".join(f" --set {k}={v}" for k, v in sorted((sets or {}).items()))
        raise DataError(f"{path} is missing; make it with `python -m minimodels sweep {experiment} "
                        f"--vary {key}=...{fixed} --write-results`")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: not valid JSON ({err}); restore it with `git checkout -- results/{path.name}` or "
                        f"make it again with its command") from None
    missing = [k for k in ("command", "runs", "summary", "seeds", "values") if k not in data]
    if missing:
        raise DataError(f"{path}: not a sweep file (missing {', '.join(missing)}); make it again with its command")
    return data
