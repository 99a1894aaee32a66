"""What an experiment is, and what running one does around it.

A paper package declares each of its experiments as an ``Experiment``: a config dataclass (whose ``model`` field
``--preset`` replaces), a function ``run(cfg, seed, folder) -> ExperimentResult`` and a one-line summary.
``minimodels.catalog`` lists them by name; ``execute`` runs one:

1. the output folder is made *before* training (``runs/<experiment>/<time>-seed<N>/`` unless one is given), with the
   exact config in ``config.json``, so a run can always be traced to its settings; a folder that cannot be written
   stops the run before any work, and one that holds an earlier run is refused unless ``force`` is given (or
   ``resume``, which continues an interrupted run of the same settings from its checkpoint);
2. the experiment runs with its seed and a ``RunFolder``: the folder, whether to resume, and the metrics log, which
   it hands to each training stage (``train(..., checkpoints=folder.path, resume=folder.resume, log=folder.log)``);
3. the result, without its training logs, goes to ``result.json`` in that folder and to the latest-results table;
   the training logs go to ``metrics.jsonl`` there, line by line as the run trains.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from . import distributed
from .checkpoint import read_trainer_meta
from .config import RENAMED, from_dict, to_dict, whole
from .errors import CheckpointError, ConfigError
from .paths import RUNS_DIR, writable
from .results import ExperimentResult, latest_dir, record, result_json
from .run_log import RunLog

try:
    import fcntl  # POSIX: a run holds its folder's lock
except ImportError:  # Windows: no lock, one run a folder is up to the user
    fcntl = None


@dataclass(frozen=True)
class Experiment:
    config: type
    run: Callable[..., ExperimentResult]  # run(cfg, seed=..., folder=RunFolder(...))
    summary: str
    # How the config takes a model preset: for_preset(cfg, preset_name, model_cfg) -> cfg. None: cfg.model = preset.
    for_preset: Callable[[Any, str, Any], Any] | None = None


@dataclass(frozen=True)
class RunFolder:
    """Where a run writes and how: ``path`` (None: nowhere), whether the run continues an interrupted one there
    (``resume``: the stage that checkpoints into ``path`` starts from its checkpoint; stages before it keep none and
    run again, seeded, so they end the same), and the metrics log its stages append to (None: no log)."""

    path: Path | None = None
    resume: bool = False
    log: RunLog | None = None


NO_FOLDER = RunFolder()  # a run that keeps nothing: a notebook's short run, a test


def default_out_dir(name: str, seed: int) -> Path:
    """A fresh folder ``runs/<name>/<YYYYmmdd-HHMMSS>-seed<N>`` (suffixed -2, -3, ... if taken): never an old run's."""
    stem = RUNS_DIR / name / f"{datetime.now():%Y%m%d-%H%M%S}-seed{seed}"
    folder, n = stem, 1
    while folder.exists():
        n += 1
        folder = stem.with_name(f"{stem.name}-{n}")
    return folder


RUN_FILES = ("config.json", "result.json", "model.safetensors", "trainer.json", "metrics.jsonl")  # a run's files


def prepare_out_dir(out: Path, force: bool = False) -> None:
    """Make ``out`` ready before any work: refuse a file, an earlier run (unless ``force``) or a folder that cannot
    be written, naming the path and the fix."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: is a file, not a folder; give a folder path")
    earlier = [f for f in RUN_FILES if (out / f).exists()]
    if earlier and not force:
        raise ConfigError(f"--out {out}: holds an earlier run ({', '.join(earlier)}); give a new folder, or --force "
                          f"to replace it")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise ConfigError(f"--out {out}: cannot write there ({err.strerror}); give a folder you can write to") from None


def _renamed(config):
    """An old run's config as today's keys name it (``config.RENAMED``)."""
    if isinstance(config, dict):
        return {RENAMED.get(k, k): _renamed(v) for k, v in config.items()}
    return config


def check_resumable(out: Path, experiment: "Experiment", settings: dict) -> None:
    """``out`` holds an interrupted run of exactly these settings, with a whole checkpoint: checked before anything
    is written, so a refused --resume leaves the run's files as they were. A run saved by an earlier version of the
    course resumes if its settings, read with today's key names and defaults, are these."""
    if not (out / "trainer.json").is_file():
        raise ConfigError(f"--resume {out}: no interrupted run to continue there (trainer.json is missing)")
    try:
        saved = json.loads((out / "config.json").read_text())
        saved = {**saved, "config": to_dict(from_dict(experiment.config, _renamed(saved["config"])))}
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ConfigError(f"--resume {out}: its config.json cannot be read ({err}); run again without --resume "
                          f"(with --force) to start over") from None
    if json.loads(json.dumps(saved)) != json.loads(json.dumps(settings)):
        raise ConfigError(f"--resume {out}: the run there was made with other settings ({out / 'config.json'}); "
                          f"give the same experiment, seed and --set values, or a new --out")
    read_trainer_meta(out)


def execute(name: str, experiment: Experiment, cfg, seed: int = 0, out_dir: str | Path | None = None,
            force: bool = False, resume: bool = False, notebook: dict | None = None) -> ExperimentResult:
    """Run ``experiment`` (called ``name``) with ``cfg`` and ``seed``; returns its result (see module docstring).
    ``resume``: continue the interrupted run in ``out_dir`` from its checkpoint; ``notebook``: the run is that
    notebook's live run (``results.record``)."""
    if not whole(seed, 0):
        raise ConfigError(f"--seed {seed!r}: a seed is a whole number >= 0")
    if resume and out_dir is None:
        raise ConfigError("--resume needs --out: the folder of the run to continue")
    # Under torchrun every process runs this; rank 0 chooses and prepares the folder, and alone writes into it.
    out = distributed.from_main(Path(out_dir) if out_dir is not None else default_out_dir(name, seed))
    settings = {"experiment": name, "seed": seed, "config": to_dict(cfg)}
    with contextlib.ExitStack() as held:
        refused, made = None, False
        if distributed.is_main():
            try:
                writable(latest_dir(), "MINIMODELS_RUNS (where the latest result of each run is kept)")
                made = not out.exists()
                held.enter_context(run_lock(out))
                check_resumable(out, experiment, settings) if resume else prepare_out_dir(out, force)
            except (ConfigError, CheckpointError) as err:
                refused = str(err)
                if made and out.is_dir():  # leave no folder behind a refused run
                    held.close()
                    discard_unfinished(out, made)
        refused = distributed.from_main(refused)  # every rank stops, not only the one that found the problem
        if refused:
            raise ConfigError(refused)
        log = RunLog(out / "metrics.jsonl") if distributed.is_main() else None
        if log is not None:
            (out / "config.json").write_text(json.dumps(settings, indent=2, sort_keys=True))
            log.start()
        start = time.perf_counter()
        try:
            result = experiment.run(cfg, seed=seed, folder=RunFolder(out, resume, log))
        except BaseException:
            if log is not None and not resume:
                discard_unfinished(out, made)
            raise
        result = replace(result, experiment=name, seed=seed, seconds=round(time.perf_counter() - start, 1),
                         info={**result.info, "out_dir": str(out)})
        if distributed.is_main():
            (out / "result.json").write_text(result_json(result))
            record(result, notebook)
    return result


LOCK = ".minimodels-run.lock"  # held while a run writes its folder


@contextlib.contextmanager
def run_lock(out: Path):
    """Hold the run folder for this process, so that two runs (say two --force) cannot write it at once; the
    second is refused by name."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: is a file, not a folder; give a folder path")
    try:
        out.mkdir(parents=True, exist_ok=True)
        handle = open(out / LOCK, "a+")
    except OSError as err:
        raise ConfigError(f"--out {out}: cannot write there ({err.strerror}); give a folder you can write to") from None
    try:
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise ConfigError(f"--out {out}: another run is writing there right now; wait for it or give another "
                          f"folder") from None
    try:
        yield
    finally:
        handle.close()  # closing the file releases the lock


def discard_unfinished(out: Path, made: bool) -> None:
    """A run that failed before it kept a checkpoint leaves nothing to resume: its config.json and log go, so the
    same command can run again without --force (the folder too, when the run made it). One that kept a
    checkpoint stays, to be resumed."""
    if (out / "trainer.json").exists():
        return
    for name in ("config.json", "metrics.jsonl", LOCK):
        (out / name).unlink(missing_ok=True)
    shutil.rmtree(out / "tensorboard", ignore_errors=True)
    if made and not any(out.iterdir()):
        out.rmdir()

