"""The one training loop every experiment uses.

- Seeded: the batch of step s is drawn from ``rng(seed, s, "batches")``, and the global RNG (dropout, token dropping
  without a generator) is saved in checkpoints, so a resumed run continues exactly as an uninterrupted one would.
- Device and dtype chosen automatically: fp32 on CPU, bf16 autocast on CUDA (``compile`` then compiles the
  transformer blocks, and the full presets' attention takes its fused kernels: ``nn/attention.py``).
- AdamW (weight decay on matrices only), linear warm-up then cosine decay, gradient clipping, tqdm progress,
  periodic evaluation, checkpoints in safetensors (the run's config.json beside them is written by the caller):
  written atomically, every ``checkpoint_seconds`` (a minute) on long runs, and when SIGINT or SIGTERM asks the run
  to stop, which it does after the step it is in (``Interrupted`` says where the checkpoint is).
- A non-finite loss stops training at its step (``TrainingError``) before it reaches the weights.
- Inside a run (``execute``), every step and evaluation is appended to the run's ``metrics.jsonl`` as it happens.

An experiment hands in ``loss_fn(model, batch_index, step) -> (loss, logs)`` and optionally
``eval_fn(model) -> metrics``; the loop does the rest and returns a ``History``: one row per training step and one
per evaluation, kept apart so that "the last loss" and "the last evaluation" are never confused.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import math
import os
import signal
import threading
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch
from safetensors.torch import load_file, load_model, save_file, save_model
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from ..nn.attention import Transformer, compile_blocks
from . import distributed
from .errors import CheckpointError, ConfigError, Interrupted, TrainingError
from .rng import rng


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
    # backward pass instead of kept (torch.utils.checkpoint).
    accumulate: int = 1
    activation_checkpointing: bool = False
    compile: bool = False  # torch.compile the transformer blocks (on CUDA; a CPU run warns and stays eager)
    progress: bool = True

    def __post_init__(self):
        """Refuse values no run can use, when the config is made (``override`` names the key as typed)."""
        checks = {"steps": (self.steps >= 0, "a whole number >= 0 (0: no training)"),
                  "batch_size": (self.batch_size >= 1, "a whole number >= 1"),
                  "lr": (math.isfinite(self.lr) and self.lr > 0, "a finite number > 0"),
                  "min_lr": (math.isfinite(self.min_lr) and 0 <= self.min_lr, "a finite number >= 0"),
                  "warmup": (self.warmup >= 0, "a whole number >= 0"),
                  "warmup_share": (self.warmup_share is None or 0 <= self.warmup_share < 1,
                                   "a share of the steps in [0, 1), or none"),
                  "weight_decay": (math.isfinite(self.weight_decay) and self.weight_decay >= 0, "a finite number >= 0"),
                  "grad_clip": (math.isfinite(self.grad_clip) and self.grad_clip >= 0, "a finite number >= 0 (0: off)"),
                  "eval_every": (self.eval_every >= 0, "a whole number >= 0"),
                  "checkpoint_every": (self.checkpoint_every >= 0, "a whole number >= 0"),
                  "checkpoint_seconds": (self.checkpoint_seconds >= 0, "a number of seconds >= 0 (0: at the end)"),
                  "accumulate": (self.accumulate >= 1 and self.batch_size % self.accumulate == 0,
                                 f"a whole number >= 1 that divides batch_size={self.batch_size}")}
        for name, (ok, want) in checks.items():
            if not ok:
                raise ConfigError(f"{name}={getattr(self, name)!r}: must be {want}")


@dataclass
class History:
    """What a training run logged: one row per training step and one row per evaluation."""

    steps: list[dict] = field(default_factory=list)  # {"step": s, "loss": ..., **logs}, s = 1 .. steps
    evals: list[dict] = field(default_factory=list)  # {"step": s, **metrics}

    @property
    def final_loss(self) -> float | None:
        """The loss of the last step (None after zero steps: nothing was trained)."""
        return self.steps[-1]["loss"] if self.steps else None

    @property
    def final_eval(self) -> dict:
        """The metrics of the last evaluation (without its step)."""
        return {k: v for k, v in self.evals[-1].items() if k != "step"}

    def log_rows(self) -> list[dict]:
        """Steps and evaluations in order, as the metrics log writes them (an evaluation after its step)."""
        evals = [{"step": e["step"], "eval": {k: v for k, v in e.items() if k != "step"}} for e in self.evals]
        return sorted(self.steps + evals, key=lambda row: (row["step"], "eval" in row))

    def series(self, key: str) -> tuple[list[int], list[float]]:
        """(steps, values) of one logged quantity, for plots."""
        rows = [r for r in self.steps if key in r]
        return [r["step"] for r in rows], [r[key] for r in rows]

    def to_dict(self) -> dict:
        return asdict(self)


def rounded(value: float | None, digits: int = 4) -> float | None:
    """A metric rounded for the results files; None (e.g. the final loss of a zero-step run) stays None."""
    return None if value is None else round(value, digits)


def pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def autocast(device: torch.device):
    """bf16 autocast on CUDA; plain fp32 elsewhere (CPU bf16 is slow and changes results)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def hardware_line() -> str:
    """One line naming the hardware a result was measured on (printed at the top of every notebook). On CPU it names
    what changes the rounding, and so a run's numbers, between machines: the vector kernels torch picked (AVX-512,
    AVX2, ...) and whether one thread or several run them (``scripts/numeric_band.py`` measures how far they move)."""
    import os
    import platform

    if torch.cuda.is_available():
        where = f"CUDA {torch.cuda.get_device_name(0)}"
    else:
        kernels = torch.backends.cpu.get_cpu_capability()
        where = (f"CPU ({platform.processor() or platform.machine()}, {kernels} kernels), {os.cpu_count()} cores, "
                 f"{torch.get_num_threads()} torch threads")
    return f"torch {torch.__version__} on {where}"


def batch_indices(n: int, batch_size: int, seed: int, step: int) -> torch.Tensor:
    """The examples of one step: a function of (seed, step) alone, so resuming replays the same batches."""
    return torch.randperm(n, generator=rng(seed, step, "batches"))[:batch_size]


# The examples of the step's whole batch that the running loss_fn call computes, as positions in that batch: all of
# them in one process without accumulation; this process's share, one micro-batch of it, otherwise. Set by the loop.
_PART: contextvars.ContextVar[tuple[int, torch.Tensor] | None] = contextvars.ContextVar("part", default=None)


def per_example(draw: Callable[[int], torch.Tensor], n: int) -> torch.Tensor:
    """Random draws with one row for each of the ``n`` examples a loss function computes (masks, permutations, coin
    flips), the same whatever splits the step's batch: ``draw(size) -> (size, ...)`` is called for the step's whole
    batch and cut to this call's rows, so that N processes, or K micro-batches, draw for each example what one
    process draws for it. Outside the training loop: ``draw(n)``."""
    part = _PART.get()
    if part is None:
        return draw(n)
    whole, rows = part
    if len(rows) != n:
        raise ValueError(f"per_example: {n} examples, but the training loop is computing {len(rows)} of its batch")
    return draw(whole)[rows]


def warmup_steps(cfg: TrainConfig) -> int:
    return cfg.warmup if cfg.warmup_share is None else round(cfg.warmup_share * cfg.steps)


def lr_at(step: int, cfg: TrainConfig) -> float:
    warmup = warmup_steps(cfg)
    if step < warmup:
        return cfg.lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, cfg.steps - warmup)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * min(1.0, progress)))


def set_activation_checkpointing(model: torch.nn.Module, on: bool) -> None:
    """Switch recomputation on or off in every transformer stack of ``model`` (see ``nn.attention.Transformer``)."""
    for module in model.modules():
        if isinstance(module, Transformer):
            module.checkpointing = on


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]  # biases, LayerNorms
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.999))


# ---- checkpoints -----------------------------------------------------------------------------------------------

def read_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """A safetensors file's tensors; a missing, unreadable or non-finite file is refused by name."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    try:
        tensors = load_file(str(path))
    except Exception as err:  # safetensors raises its own SafetensorError (and OSError) on a damaged file
        raise CheckpointError(f"{path}: not a readable safetensors file ({err}); make it again with the command "
                              f"that wrote it") from None
    bad = [name for name, t in tensors.items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if bad:
        raise CheckpointError(f"{path}: {len(bad)} tensors hold NaN or inf (first: {bad[0]}); the file is damaged, "
                              f"make it again with the command that wrote it")
    return tensors


def left_out_of_checkpoints(model: torch.nn.Module) -> set[str]:
    """The frozen parameters a checkpoint of ``model`` leaves out: those under the prefixes ``model.reloaded_parts``
    names, parts that come from files of their own whenever the model is built (MiniGPT4-Video's image encoder and
    LLM: a 7B LLM copied into every checkpoint would be 27 GB). Most models name none: their checkpoint is whole."""
    parts = getattr(model, "reloaded_parts", ())
    return {n for n, p in model.named_parameters() if parts and n.startswith(parts) and not p.requires_grad}


def load_weights(model: torch.nn.Module, path: str | Path) -> None:
    """Load a safetensors file into ``model`` after ``read_weights`` has checked it; a file whose tensors are not
    the model's (another architecture, or a model saved by an earlier version of the course) is refused by name."""
    read_weights(path)
    missing, unexpected = map(sorted, load_model(model, str(path), strict=False))  # a tied tensor, stored once, counts
    missing = [name for name in missing if name not in left_out_of_checkpoints(model)]
    if missing or unexpected:
        raise CheckpointError(f"{path} does not fit this model: {len(missing)} of the model's tensors are not in it "
                              f"(first: {missing[:1]}), {len(unexpected)} of its tensors are not the model's (first: "
                              f"{unexpected[:1]}); it was saved by another architecture or by an earlier version of "
                              f"the course: train it again")


def _atomic(path: Path, write: Callable[[str], None]) -> None:
    """Write through a temporary file, then rename: a crash mid-write leaves the previous file whole."""
    tmp = path.with_name(path.name + ".tmp")
    write(str(tmp))
    os.replace(tmp, path)


def save_checkpoint(out_dir: Path, model, optimizer, step: int, history: History) -> None:
    """model.safetensors (less ``left_out_of_checkpoints``), and trainer.safetensors/.json holding what an exact resume
    needs; each file written atomically, trainer.json (the step) last, so it never points at weights from another
    step."""
    out_dir.mkdir(parents=True, exist_ok=True)
    left_out = left_out_of_checkpoints(model)
    if left_out:
        kept = {k: v.detach().contiguous() for k, v in model.state_dict().items() if k not in left_out}
        _atomic(out_dir / "model.safetensors", lambda path: save_file(kept, path))
    else:
        _atomic(out_dir / "model.safetensors", lambda path: save_model(model, path))
    state = optimizer.state_dict()
    tensors = {"rng": torch.get_rng_state()}
    for idx, slots in state["state"].items():
        for name, value in slots.items():
            tensors[f"optim.{idx}.{name}"] = torch.as_tensor(value).detach().cpu().clone()
    _atomic(out_dir / "trainer.safetensors", lambda path: save_file(tensors, path))
    meta = {"step": step, "history": history.to_dict(), "param_groups": state["param_groups"]}
    _atomic(out_dir / "trainer.json", lambda path: Path(path).write_text(json.dumps(meta)))


def load_checkpoint(out_dir: Path, model, optimizer=None) -> tuple[int, History]:
    """Load weights (and, with an optimizer, its state and the RNG). Returns (step, history) of the saved run."""
    out_dir = Path(out_dir)
    if not (out_dir / "model.safetensors").is_file():
        raise CheckpointError(f"no checkpoint in {out_dir} (model.safetensors is missing)")
    load_weights(model, out_dir / "model.safetensors")
    meta = json.loads((out_dir / "trainer.json").read_text()) if (out_dir / "trainer.json").is_file() else {}
    if optimizer is not None and meta:
        tensors = load_file(str(out_dir / "trainer.safetensors"))
        torch.set_rng_state(tensors.pop("rng"))
        state: dict = {}
        for key, value in tensors.items():
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = value
        optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    return meta.get("step", 0), History(**meta.get("history", {}))


# ---- the loop --------------------------------------------------------------------------------------------------

# The run folder that ``execute(..., resume=True)`` continues: a ``train`` call that checkpoints into it resumes from
# its checkpoint. (Stages before it, which keep no checkpoint, are run again; they are seeded, so they end the same.)
RESUMING: contextvars.ContextVar[Path | None] = contextvars.ContextVar("resuming", default=None)


# The run's metrics log, ``metrics.jsonl`` in its folder (set by ``execute``): every training stage appends a line per
# step ({"stage", "step", "loss", ...}) and per evaluation ({"stage", "step", "eval": {...}}) as it goes, so a run
# can be followed (`tail -f`) and plotted while it trains. A resumed stage first writes again what its checkpoint
# logged, so the log of an interrupted and resumed run reads as one run.
METRICS_LOG: contextvars.ContextVar[Path | None] = contextvars.ContextVar("metrics_log", default=None)


@contextlib.contextmanager
def metrics_log(stage: str):
    """Yields ``write(row)``, which appends one line tagged with ``stage`` to the run's log (or does nothing), and,
    when TensorBoard is installed, its numbers as scalars ``<stage>/<name>`` (``<stage>/eval/<name>``) in the run's
    ``tensorboard/`` folder: ``tensorboard --logdir runs/`` then follows every run."""
    path = METRICS_LOG.get()
    if path is None:
        yield lambda row: None
        return
    board = _tensorboard(path.parent / "tensorboard")
    with open(path, "a") as log:
        def write(row: dict) -> None:
            log.write(json.dumps({"stage": stage, **row}) + "\n")
            log.flush()
            if board is not None:
                prefix, values = (f"{stage}/eval/", row["eval"]) if "eval" in row else (f"{stage}/", row)
                for name, value in values.items():
                    if name != "step" and isinstance(value, (int, float)) and not isinstance(value, bool):
                        board.add_scalar(prefix + name, value, row["step"])

        try:
            yield write
        finally:
            if board is not None:
                board.close()


def _tensorboard(folder: Path):
    """A TensorBoard writer into ``folder``, or None where the optional tensorboard package is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # torch's writer is there, the package it writes with is not
        return None
    return SummaryWriter(str(folder))


@contextlib.contextmanager
def stop_requests():
    """SIGINT (Ctrl-C) and SIGTERM ask the loop to stop after the current step instead of killing it mid-step.
    Yields a list that holds the signal's name once one arrived."""
    asked: list[str] = []
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, lambda num, _: asked.append(signal.Signals(num).name))
                    for sig in (signal.SIGINT, signal.SIGTERM)}
    else:  # signal handlers can only be set from the main thread (e.g. not inside a notebook's worker)
        previous = {}
    try:
        yield asked
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def train(
    model: torch.nn.Module,
    loss_fn: Callable,
    n_train: int,
    cfg: TrainConfig,
    *,
    seed: int = 0,
    eval_fn: Callable | None = None,
    out_dir: str | Path | None = None,
    resume: bool = False,
    desc: str = "train",
) -> History:
    """Train ``model`` in place for ``cfg.steps`` steps; checkpoints go to ``out_dir`` when one is given."""
    if cfg.batch_size > n_train:  # a batch is drawn without replacement from the n_train examples
        raise ConfigError(f"batch_size={cfg.batch_size} ({desc}) is larger than the {n_train} training examples; "
                          f"use at most {n_train}")
    world = distributed.world_size()
    if cfg.batch_size % (world * cfg.accumulate):
        raise ConfigError(f"batch_size={cfg.batch_size} ({desc}) does not split into {world} processes × "
                          f"accumulate={cfg.accumulate} equal parts; use a multiple of {world * cfg.accumulate}")
    device = next(model.parameters()).device
    set_activation_checkpointing(model, cfg.activation_checkpointing)
    if cfg.compile and device.type == "cuda":
        compile_blocks(model)
    elif cfg.compile:
        warnings.warn(f"{desc}: compile=true compiles for CUDA only; on {device.type} the run stays eager",
                      stacklevel=2)
    compute = _LossOf(model, loss_fn)  # compute(idx, step) -> (loss, logs)
    if world > 1:  # every use of the model inside loss_fn then goes through DDP's forward, which syncs the gradients
        compute = DistributedDataParallel(compute, find_unused_parameters=True)
    optimizer = make_optimizer(model, cfg)
    start, history = 0, History()
    out_dir = Path(out_dir) if out_dir else None
    resume = resume or (out_dir is not None and RESUMING.get() == out_dir)
    if resume:
        if out_dir is None:
            raise ValueError("resume=True needs the out_dir of the run to continue")
        start, history = load_checkpoint(out_dir, model, optimizer)

    with metrics_log(desc) as log:
        for row in history.log_rows():  # a resumed stage: what its checkpoint logged, again
            log(row)

        def evaluate(step):
            model.eval()
            with torch.no_grad(), autocast(device):
                metrics = eval_fn(model)
            model.train()
            history.evals.append({"step": step, **metrics})
            log({"step": step, "eval": metrics})

        model.train()
        bar = tqdm(range(start, cfg.steps), desc=desc, disable=not (cfg.progress and distributed.is_main()),
                   initial=start, total=cfg.steps, mininterval=2.0, leave=False)
        saved_at = time.monotonic()
        writes = out_dir if distributed.is_main() else None  # every rank trains, rank 0 alone writes
        with stop_requests() as asked:
            for step in bar:
                _step(compute, model, optimizer, history, cfg, n_train, seed, step, device, desc)
                log(history.steps[-1])
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
                    kept = (f"a checkpoint of step {done} is in {out_dir}; continue with the same command and "
                            f"--resume" if out_dir else "no output folder was given, so nothing was kept")
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

    def forward(self, idx, step):
        return self.loss_fn(self.model, idx, step)


def _step(compute, model, optimizer, history: History, cfg: TrainConfig, n_train: int, seed: int, step: int,
          device, desc: str) -> None:
    """One optimisation step (step is 0-based), logged into ``history``; a non-finite loss stops training.
    ``compute(idx, step) -> (loss, logs)``: the experiment's loss function on ``model`` (through DDP when several
    processes train)."""
    for group in optimizer.param_groups:
        group["lr"] = lr_at(step, cfg)
    idx = distributed.share(batch_indices(n_train, cfg.batch_size, seed, step))  # the whole batch in one process
    rows = distributed.share(torch.arange(cfg.batch_size)).chunk(cfg.accumulate)  # their positions in the batch
    optimizer.zero_grad(set_to_none=True)
    loss_sum, log_sums = 0.0, {}
    for part, part_rows in zip(idx.chunk(cfg.accumulate), rows):  # (batch_size / processes / accumulate,) each
        token = _PART.set((cfg.batch_size, part_rows))
        try:
            with autocast(device):
                loss, logs = compute(part, step)
        finally:
            _PART.reset(token)
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
