"""Many seeds of one experiment, and the mean ± std that a notebook's ablation table shows.

    python -m minimodels sweep videoprism-stage1 --seeds 0 1 2 --vary token_drop=0,0.5 --write-results

runs every (setting, seed) pair headless and writes ``runs/sweeps/<experiment>--<key>.json``, or with
``--write-results`` the course's ``results/<experiment>--<key>.json`` (with ``--set k=v``: ``...--<key>--k=v.json``;
with ``--preset P``: ``...--<key>--preset=P.json``):
each run's metrics and chance levels, and per setting their mean and standard deviation over the seeds. Notebooks
run one seed live and read this file for the rest, so every number of their tables comes from this committed command.
Under ``torchrun`` the processes run the sweep together: each run data parallel over all of them (as ``run`` is),
and rank 0 alone writes each run's folder and the sweep's file.

A long sweep can be stopped and started again: after every run its metrics go into a journal beside the trial sweeps
(``runs/sweeps/<name>.journal.json``), and the same command, started again on the same code and data, takes the runs
the journal holds and runs only the others (a run is deterministic given its seed, so a journalled run is the run the
command would make). A journal of another command, or of code or data that have changed since (another paper's folder
aside), is set aside and the sweep starts over. The journal goes once the sweep's file is written.
"""

from __future__ import annotations

import hashlib
import json
import statistics
from pathlib import Path
from typing import Callable

from . import distributed
from .config import whole
from .errors import ConfigError
from .paths import DATA_DIR, write_atomically
from .results import ExperimentResult, sweep_path, trial_sweep_dir


def _stats(values: list[float]) -> dict[str, float]:
    return {"mean": round(statistics.mean(values), 4),
            "std": round(statistics.stdev(values), 4) if len(values) > 1 else 0.0}


def _summarise(rows: list[dict], part: str) -> dict[str, dict[str, float]]:
    """Mean ± std over seeds of every number in ``part`` ("metrics" or "chance") that all runs report."""
    names = [k for k, v in rows[0][part].items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return {name: _stats([r[part][name] for r in rows]) for name in names}


def sweep_file(experiment: str, key: str, sets: dict | None, write_results: bool, preset: str | None = None):
    """Where a sweep is saved: the course's ``results/`` when asked to, else the runs folder; named by the key, the
    preset (when one was given) and the fixed settings."""
    named_by = {**({"preset": preset} if preset else {}), **(sets or {})}
    return sweep_path(experiment, key, named_by, folder=None if write_results else trial_sweep_dir())


def check_sweep(values: list[str], seeds: list[int]) -> None:
    """Refuse a sweep whose mean ± std would not be what it says: a value or a seed twice (std 0 "over 2 seeds"
    of one run), or a seed that is not a whole number >= 0."""
    for what, items in (("--vary value", values), ("--seeds seed", seeds)):
        twice = sorted({str(x) for x in items if items.count(x) > 1})
        if twice:
            raise ConfigError(f"{what} {', '.join(twice)} given twice; list each once")
    bad = [s for s in seeds if not whole(s, 0)]
    if bad:
        raise ConfigError(f"--seeds {bad[0]!r}: a seed is a whole number >= 0")


def code_and_data_digest(experiment: str) -> str:
    """What a journalled run depends on besides its command (sha256): the package's source, less the folders of the
    papers the experiment is not from (no paper imports another), and the data manifests."""
    package = Path(__file__).resolve().parents[1]
    papers = {p.name for p in package.iterdir() if (p / "experiments.py").is_file()}  # videoprism, mvgpt, ...
    other_papers = papers - {experiment.split("-")[0]}
    files = sorted(p for p in package.rglob("*.py") if p.relative_to(package).parts[0] not in other_papers)
    files += sorted(DATA_DIR.rglob("*.jsonl"))
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


def journal_path(out_file: Path, write_results: bool) -> Path:
    """Where a sweep journals its finished runs: always the runs folder, never ``results/``; a ``--write-results``
    sweep and the trial sweep of the same setting keep separate journals."""
    return trial_sweep_dir() / f"{out_file.stem}{'.results' if write_results else ''}.journal.json"


def _journalled_runs(path: Path, command: str, digest: str) -> list[dict]:
    """The runs a journal of this very command on this code and data holds; none (and a note) otherwise."""
    if not path.is_file():
        return []
    try:
        journal = json.loads(path.read_text())
    except json.JSONDecodeError:
        journal = {}
    if journal.get("command") == command and journal.get("code_and_data") == digest:
        return journal.get("runs", [])
    if distributed.is_main():
        print(f"sweep: {path} was left by another command or other code or data; starting over", flush=True)
    return []


def sweep(run: Callable[..., ExperimentResult], experiment: str, key: str, values: list[str], seeds: list[int],
          sets: dict | None = None, write_results: bool = False, preset: str | None = None) -> dict:
    """Call ``run(preset=preset, seed=s, sets={**sets, key: v})`` for every value and seed; save and return the
    summary: into the runs folder (``runs/sweeps/``), or with ``write_results`` into the course's ``results/``, which
    the notebooks read (so a quick trial sweep never replaces a committed table). A sweep under a preset is saved
    apart from the experiment's own (``...--preset=<name>.json``)."""
    check_sweep(values, seeds)
    command = (f"python -m minimodels sweep {experiment}" + (f" --preset {preset}" if preset else "")
               + f" --seeds {' '.join(map(str, seeds))} --vary {key}={','.join(values)}"
               + "".join(f" --set {k}={v}" for k, v in (sets or {}).items())
               + (" --write-results" if write_results else ""))
    out_file = sweep_file(experiment, key, sets, write_results, preset)
    journal, digest = journal_path(out_file, write_results), code_and_data_digest(experiment)
    done = {(r["value"], r["seed"]): r for r in _journalled_runs(journal, command, digest)}
    if done and distributed.is_main():
        print(f"sweep: {len(done)} of {len(values) * len(seeds)} runs taken from {journal} (same command, code and "
              f"data); running the others", flush=True)
    runs = []
    for value in values:
        for seed in seeds:
            if (value, seed) not in done:
                result = run(preset=preset, seed=seed, sets={**(sets or {}), key: value})
                done[value, seed] = {"value": value, "seed": seed, "metrics": result.metrics,
                                     "chance": result.chance}
                if distributed.is_main():
                    journal.parent.mkdir(parents=True, exist_ok=True)
                    text = json.dumps({"command": command, "code_and_data": digest, "runs": list(done.values())},
                                      indent=1) + "\n"
                    write_atomically(journal, lambda name: Path(name).write_text(text))  # stopped mid-write: whole
            runs.append(done[value, seed])
    summary = {}
    for value in values:
        rows = [r for r in runs if r["value"] == value]
        summary[value] = {"metrics": _summarise(rows, "metrics"), "chance": _summarise(rows, "chance")}
    out = {"experiment": experiment, "key": key, "values": values, "seeds": seeds, "sets": sets or {},
           "command": command, "runs": runs, "summary": summary}
    if preset:
        out["preset"] = preset
    if distributed.is_main():  # under torchrun every process takes part in every run; one writes the summary
        out_file.parent.mkdir(parents=True, exist_ok=True)
        out_file.write_text(json.dumps(out, indent=2) + "\n")
        journal.unlink(missing_ok=True)
    return out
