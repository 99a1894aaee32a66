"""The one training loop every experiment uses: ``train(model, loss_fn, n_train, cfg)``.

An experiment hands in ``loss_fn(model, batch, step) -> (loss, logs)``, where ``batch`` is the ``Batch`` of examples
the call computes (``batches.py``), and optionally ``eval_fn(model) -> metrics``; the loop does the rest:

- seeded: the batch of step s is drawn from ``rng(seed, s, "batches")``, and the global RNG (dropout, token dropping
  without a generator) is saved in checkpoints, so a resumed run continues exactly as an uninterrupted one would;
- AdamW (weight decay on matrices only), linear warm-up then cosine decay, gradient clipping, tqdm progress,
  periodic evaluation; bf16 autocast on CUDA, fp32 on CPU (``device.py``);
- ``checkpoints``: a folder that gets a checkpoint (``checkpoint.py``) every ``checkpoint_seconds`` on long runs, at
  the end, and when Ctrl-C or SIGTERM asks the run to stop, which it does after the step it is in; ``resume``
  continues from the one there; ``log``: the run's metrics log (``run_log.py``), a line per step and evaluation;
- a non-finite loss stops training at its step (``TrainingError``) before it reaches the weights;
- under torchrun each process computes its share of every batch and DistributedDataParallel averages the gradients;
- ``prefetch``: the data the loss function indexes with ``batch.idx`` (a folder's streamed videos) is told, before
  the first step, which rows every call will ask for (``loss_calls``), so that its loader decodes them ahead.

Returns a ``History``: one row per training step and one per evaluation.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from . import distributed
from .batches import Batch, batch_indices
from .checkpoint import load_checkpoint, save_checkpoint
from .config import finite, require, whole
from .device import autocast
from .errors import ConfigError, Interrupted, TrainingError
from .history import History
from .run_log import RunLog, stage_writer
from .stop import stop_requests


@dataclass
class TrainConfig:
    steps: int = 300
    batch_size: int = 32
    lr: float = 1e-3
    min_lr: float = 1e-4  # cosine decay ends here
    warmup: int = 20
    warmup_share: float | None = None  # set: warm-up is this share of ``steps`` instead (``warmup`` is unused)
    weight_decay: float = 0.05
    grad_clip: float = 1.0
    eval_every: int = 0  # 0: evaluate only at the end
    checkpoint_every: int = 0  # steps between checkpoints; 0: by time alone (when an output folder is given)
    checkpoint_seconds: float = 60.0  # and at least this often on long runs; 0: only at the end
    # Memory for compute, same step: the batch in ``accumulate`` micro-batches whose gradients add up (a contrastive
    # loss then draws its negatives from the micro-batch), and the transformer blocks' activations recomputed in the
    # backward pass instead of kept.
    accumulate: int = 1
    recompute_activations: bool = False
    compile: bool = False  # torch.compile the transformer blocks (on CUDA; a CPU run warns and stays eager)
    progress: bool = True

    def __post_init__(self):
        """Refuse values no run can use, when the config is made (``override`` names the key as typed)."""
        require(self, {
            "steps": (whole(self.steps, 0), "a whole number >= 0 (0: no training)"),
            "batch_size": (whole(self.batch_size), "a whole number >= 1"),
            "lr": (finite(self.lr) and self.lr > 0, "a finite number > 0"),
            "min_lr": (finite(self.min_lr) and 0 <= self.min_lr <= self.lr,
                       f"a finite number from 0 to lr={self.lr} (the cosine decays from lr down to it)"),
            "warmup": (whole(self.warmup, 0), "a whole number >= 0"),
            "warmup_share": (self.warmup_share is None or (finite(self.warmup_share) and 0 <= self.warmup_share < 1),
                             "a share of the steps in [0, 1), or none"),
            "weight_decay": (finite(self.weight_decay) and self.weight_decay >= 0, "a finite number >= 0"),
            "grad_clip": (finite(self.grad_clip) and self.grad_clip >= 0, "a finite number >= 0 (0: off)"),
            "eval_every": (whole(self.eval_every, 0), "a whole number >= 0"),
            "checkpoint_every": (whole(self.checkpoint_every, 0), "a whole number >= 0"),
            "checkpoint_seconds": (finite(self.checkpoint_seconds) and self.checkpoint_seconds >= 0,
                                   "a number of seconds >= 0 (0: at the end)"),
            "accumulate": (whole(self.accumulate) and self.batch_size % self.accumulate == 0,
                           f"a whole number >= 1 that divides batch_size={self.batch_size}")})


def warmup_steps(cfg: TrainConfig) -> int:
    return cfg.warmup if cfg.warmup_share is None else round(cfg.warmup_share * cfg.steps)


def lr_at(step: int, cfg: TrainConfig) -> float:
    warmup = warmup_steps(cfg)
    if step < warmup:
        return cfg.lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, cfg.steps - warmup)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * min(1.0, progress)))


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]  # biases, LayerNorms
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.999))


def ask_model(model: torch.nn.Module, method: str, *args) -> int:
    """Call ``method`` on every part of ``model`` that offers it, and count them: the model, not the loop, knows how
    to recompute its activations (``recompute_activations``) and to compile its layers (``compile_layers``)."""
    parts = [m for m in model.modules() if callable(getattr(m, method, None))]
    for part in parts:
        getattr(part, method)(*args)
    return len(parts)


def loss_calls(n_train: int, cfg: TrainConfig, seed: int, step: int) -> list[Batch]:
    """The batches the loss function computes at ``step`` in this process: its share of the step's batch (torchrun),
    in ``accumulate`` micro-batches, each with its examples' positions in the whole batch."""
    idx = distributed.share(batch_indices(n_train, cfg.batch_size, seed, step))  # the whole batch in one process
    rows = distributed.share(torch.arange(cfg.batch_size)).chunk(cfg.accumulate)  # their positions in the batch
    return [Batch(part, part_rows, cfg.batch_size) for part, part_rows in zip(idx.chunk(cfg.accumulate), rows)]


def train(model: torch.nn.Module, loss_fn: Callable, n_train: int, cfg: TrainConfig, *, seed: int = 0,
          eval_fn: Callable | None = None, checkpoints: str | Path | None = None, resume: bool = False,
          log: RunLog | None = None, desc: str = "train", prefetch: tuple = ()) -> History:
    """Train ``model`` in place for ``cfg.steps`` steps (``desc`` names the stage in the progress bar and the log).
    ``prefetch``: data indexed with ``batch.idx`` that can decode ahead (``expect(requests)``); a kept tensor needs
    nothing and is skipped."""
    if cfg.steps and cfg.batch_size > n_train:  # a batch is drawn without replacement from the n_train examples
        raise ConfigError(f"batch_size={cfg.batch_size} ({desc}) is larger than the {n_train} training examples; "
                          f"use at most {n_train}")
    world = distributed.world_size()
    if cfg.batch_size % (world * cfg.accumulate):
        raise ConfigError(f"batch_size={cfg.batch_size} ({desc}) does not split into {world} processes × "
                          f"accumulate={cfg.accumulate} equal parts; use a multiple of {world * cfg.accumulate}")
    if resume and checkpoints is None:
        raise ValueError("resume=True needs the checkpoints folder of the run to continue")
    device = next(model.parameters()).device
    ask_model(model, "recompute_activations", cfg.recompute_activations)
    if cfg.compile and device.type == "cuda":
        ask_model(model, "compile_layers")
    elif cfg.compile:
        warnings.warn(f"{desc}: compile=true compiles for CUDA only; on {device.type} the run stays eager",
                      stacklevel=2)
    compute = _LossOf(model, loss_fn)  # compute(batch, step) -> (loss, logs)
    if world > 1:  # every use of the model inside loss_fn then goes through DDP's forward, which syncs the gradients
        compute = DistributedDataParallel(compute, find_unused_parameters=True)
    optimizer = make_optimizer(model, cfg)
    checkpoints = Path(checkpoints) if checkpoints else None
    start, history = load_checkpoint(checkpoints, model, optimizer) if resume else (0, History())
    writes = checkpoints if distributed.is_main() else None  # every rank trains, rank 0 alone writes
    for data in prefetch:
        if hasattr(data, "expect"):
            data.expect(b.idx for step in range(start, cfg.steps) for b in loss_calls(n_train, cfg, seed, step))

    with stage_writer(log if distributed.is_main() else None, desc) as write:
        for row in history.log_rows():  # a resumed stage: what its checkpoint logged, again
            write(row)

        def evaluate(step):
            model.eval()
            with torch.no_grad(), autocast(device):
                metrics = eval_fn(model)
            model.train()
            history.evals.append({"step": step, **metrics})
            write({"step": step, "eval": metrics})

        model.train()
        bar = tqdm(range(start, cfg.steps), desc=desc, disable=not (cfg.progress and distributed.is_main()),
                   initial=start, total=cfg.steps, mininterval=2.0, leave=False)
        saved_at = time.monotonic()
        with stop_requests() as asked:
            for step in bar:
                _step(compute, model, optimizer, history, cfg, n_train, seed, step, device, desc)
                write(history.steps[-1])
                bar.set_postfix(loss=f"{history.steps[-1]['loss']:.3f}", refresh=False)
                done = step + 1
                if eval_fn and cfg.eval_every and done % cfg.eval_every == 0 and done < cfg.steps:
                    evaluate(done)
                due = (cfg.checkpoint_every and done % cfg.checkpoint_every == 0) or (
                    cfg.checkpoint_seconds and time.monotonic() - saved_at >= cfg.checkpoint_seconds)
                stop = distributed.any_rank(bool(asked))  # all ranks stop after the same step
                if writes and done < cfg.steps and (due or stop):
                    save_checkpoint(writes, model, optimizer, done, history)
                    saved_at = time.monotonic()
                if stop:
                    bar.close()
                    kept = (f"a checkpoint of step {done} is in {checkpoints}; continue with the same command and "
                            f"--resume" if checkpoints else "no output folder was given, so nothing was kept")
                    raise Interrupted(f"{desc}: stopped by {asked[0] if asked else 'a signal to another process'} "
                                      f"after step {done} of {cfg.steps}; {kept}")
        bar.close()
        if eval_fn:
            evaluate(cfg.steps)
    if writes:
        save_checkpoint(writes, model, optimizer, cfg.steps, history)
    return history


class _LossOf(torch.nn.Module):
    """``loss_fn(model, idx, step)`` as a module's forward, for DistributedDataParallel to wrap: loss functions
    call the model's parts directly (an encoder here, a decoder there), and DDP syncs what its forward runs."""

    def __init__(self, model: torch.nn.Module, loss_fn: Callable):
        super().__init__()
        self.model, self.loss_fn = model, loss_fn

    def forward(self, batch, step):
        return self.loss_fn(self.model, batch, step)


def _step(compute, model, optimizer, history: History, cfg: TrainConfig, n_train: int, seed: int, step: int,
          device, desc: str) -> None:
    """One optimisation step (step is 0-based), logged into ``history``; a non-finite loss stops training.
    ``compute(idx, step) -> (loss, logs)``: the experiment's loss function on ``model`` (through DDP when several
    processes train)."""
    for group in optimizer.param_groups:
        group["lr"] = lr_at(step, cfg)
    optimizer.zero_grad(set_to_none=True)
    loss_sum, log_sums = 0.0, {}
    for batch in loss_calls(n_train, cfg, seed, step):  # (batch_size / processes / accumulate,) examples each
        with autocast(device):
            loss, logs = compute(batch, step)
        finite = bool(torch.isfinite(loss))
        if distributed.any_rank(not finite):  # stop (every process, together) before NaN reaches the weights
            last = history.steps[-1] if history.steps else None
            before = (f"the last finite loss was {last['loss']:.4g} at step {last['step']}" if last
                      else "at the first step")
            became = "non-finite in another process" if finite else loss.item()
            raise TrainingError(f"{desc}: the loss became {became} at step {step + 1} ({before}); lower the "
                                f"learning rate (lr={cfg.lr:g}) or check the inputs for NaN/inf")
        (loss / cfg.accumulate).backward()  # the parts' mean gradient: the whole batch's, for a per-example mean
        loss_sum += loss.item()
        for k, v in logs.items():
            log_sums[k] = log_sums.get(k, 0.0) + float(v)
    if cfg.grad_clip:
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
    optimizer.step()
    mean = distributed.mean_over_ranks  # each process saw its share: the whole batch's numbers are the means
    history.steps.append({"step": step + 1, "loss": mean(loss_sum / cfg.accumulate),
                          **{k: mean(v / cfg.accumulate) for k, v in log_sums.items()}})
