"""A run's saved state, in safetensors: the weights (``model.safetensors``) and what an exact resume needs beside
them (``trainer.safetensors``: the optimizer's moments and the global RNG; ``trainer.json``: the step, the logged
history, the optimizer's settings). Every file is written atomically, ``trainer.json`` last, so a crash mid-write
leaves the previous checkpoint whole and the step never points at weights from another step.

A model may name frozen parts that come from files of their own whenever it is built (``reloaded_parts``:
MiniGPT4-Video's image encoder and LLM; a 7B LLM copied into every checkpoint would be 27 GB): its checkpoints leave
them out, and loading one does not ask for them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, load_model, save_file, save_model

from .errors import CheckpointError
from .history import History
from .paths import write_atomically

CHECKPOINT_FILES = ("model.safetensors", "trainer.safetensors", "trainer.json")


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
    names. Most models name none: their checkpoint is whole."""
    parts = getattr(model, "reloaded_parts", ())
    return {n for n, p in model.named_parameters() if parts and n.startswith(parts) and not p.requires_grad}


def load_weights(model: torch.nn.Module, path: str | Path) -> None:
    """Load a safetensors file into ``model`` after ``read_weights`` has checked it; a file whose tensors are not
    the model's (another architecture, or a model saved by an earlier version of the course) is refused by name."""
    read_weights(path)
    missing, unexpected = map(sorted, load_model(model, str(path), strict=False))  # a tied tensor, stored once, counts
    missing = [name for name in missing if name not in left_out_of_checkpoints(model)]
    if missing or unexpected:
        first = (missing or unexpected)[0]
        raise CheckpointError(f"{path} does not fit this model ({len(missing)} tensors missing, {len(unexpected)} "
                              f"unknown, e.g. {first}): another architecture's or an older course's; train it again")


def save_checkpoint(folder: Path, model, optimizer, step: int, history: History) -> None:
    try:
        _save(folder, model, optimizer, step, history)
    except (OSError, SafetensorError) as err:  # a full disk, a folder taken away mid-run (write_atomically has
        # removed the file it was writing)
        reason = getattr(err, "strerror", None) or str(err)
        raise CheckpointError(f"could not write the checkpoint of step {step} to {folder} ({reason}); nothing "
                              f"half-written is left there: free space and run again (with --resume if an earlier "
                              f"checkpoint is there)") from None


def _save(folder: Path, model, optimizer, step: int, history: History) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    left_out = left_out_of_checkpoints(model)
    if left_out:
        kept = {k: v.detach().contiguous() for k, v in model.state_dict().items() if k not in left_out}
        write_atomically(folder / "model.safetensors", lambda path: save_file(kept, path))
    else:
        write_atomically(folder / "model.safetensors", lambda path: save_model(model, path))
    state = optimizer.state_dict()
    tensors = {"rng": torch.get_rng_state()}
    for idx, slots in state["state"].items():
        for name, value in slots.items():
            tensors[f"optim.{idx}.{name}"] = torch.as_tensor(value).detach().cpu().clone()
    write_atomically(folder / "trainer.safetensors", lambda path: save_file(tensors, path))
    meta = {"step": step, "history": history.to_dict(), "param_groups": state["param_groups"]}
    write_atomically(folder / "trainer.json", lambda path: Path(path).write_text(json.dumps(meta)))


def read_trainer_meta(folder: Path) -> dict:
    """trainer.json of an interrupted run, read and checked with the files it needs, before anything is written:
    a damaged checkpoint is refused by name, and the run's other files stay as they are."""
    missing = [name for name in CHECKPOINT_FILES if not (folder / name).is_file()]
    if missing:
        raise CheckpointError(f"--resume {folder}: the checkpoint is incomplete ({', '.join(missing)} missing); "
                              f"run again without --resume (with --force) to start over")
    try:
        meta = json.loads((folder / "trainer.json").read_text())
        if not {"step", "history", "param_groups"} <= set(meta):
            raise ValueError("keys missing")
    except ValueError as err:
        raise CheckpointError(f"--resume {folder}: trainer.json is damaged ({err}); run again without --resume "
                              f"(with --force) to start over") from None
    return meta


def load_checkpoint(folder: Path, model, optimizer=None) -> tuple[int, History]:
    """Load weights (and, with an optimizer, its state and the RNG). Returns (step, history) of the saved run."""
    folder = Path(folder)
    if not (folder / "model.safetensors").is_file():
        raise CheckpointError(f"no checkpoint in {folder} (model.safetensors is missing)")
    load_weights(model, folder / "model.safetensors")
    if optimizer is None or not (folder / "trainer.json").is_file():
        meta = json.loads((folder / "trainer.json").read_text()) if (folder / "trainer.json").is_file() else {}
        return meta.get("step", 0), History(**meta.get("history", {}))
    meta = read_trainer_meta(folder)
    tensors = read_weights(folder / "trainer.safetensors")
    torch.set_rng_state(tensors.pop("rng"))
    state: dict = {}
    for key, value in tensors.items():
        _, idx, name = key.split(".", 2)
        state.setdefault(int(idx), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    return meta["step"], History(**meta["history"])


def load_part(part: torch.nn.Module, tensors: dict[str, torch.Tensor], source: str) -> str:
    """Fill every tensor of ``part`` from ``tensors``, found under the one name prefix where they all are, each of
    its own shape (an encoder's inside a whole model's file: ``encoder.``; ``""`` for a file of the part alone);
    the file's other tensors are left (an LvT's text tower when the part is its video encoder). -> the prefix.
    Frozen parts a checkpoint leaves out (``reloaded_parts``) are not asked for."""
    needed = {k: v for k, v in part.state_dict().items() if k not in left_out_of_checkpoints(part)}
    first = next(iter(needed))
    prefixes = sorted({name[: len(name) - len(first)] for name in tensors
                       if name == first or name.endswith("." + first)}, key=len)
    for prefix in prefixes:
        if all(prefix + k in tensors for k in needed):
            wrong = [(k, tuple(tensors[prefix + k].shape), tuple(v.shape)) for k, v in needed.items()
                     if tensors[prefix + k].shape != v.shape]
            if wrong:
                name, theirs, ours = wrong[0]
                raise CheckpointError(f"{source}: {len(wrong)} tensors are of another size than this model's, e.g. "
                                      f"{prefix}{name} {theirs} there, {ours} here: another preset's weights; choose "
                                      f"the preset they were saved from (--preset)")
            part.load_state_dict({k: tensors[prefix + k] for k in needed}, strict=False)
            return prefix
    raise CheckpointError(f"{source}: holds no whole set of this model's {len(needed)} tensors (e.g. {first}, under "
                          f"any prefix); give weights of this architecture")


def init_from(part: torch.nn.Module, path: str | Path, convert: Callable | None = None) -> str:
    """Start ``part`` from the weights at ``path`` (``--set init=PATH``): a run folder (the model.safetensors and
    config.json that ``run --out`` writes), or a folder of another format that ``convert(folder)`` turns into a
    state dict of ours (a paper's public weights: VideoPrism's transformers ``save_pretrained`` folders), None for
    a folder it does not know. -> a line for the run's info: what was loaded from where."""
    folder = Path(path)
    if not (folder / "config.json").is_file():
        raise CheckpointError(f"init={path}: no config.json there; give a run folder (run ... --out FOLDER writes "
                              f"one) or a folder of public weights saved with save_pretrained")
    try:
        made_by_a_run = "experiment" in json.loads((folder / "config.json").read_text())
    except ValueError as err:
        raise CheckpointError(f"init={path}: its config.json is not readable JSON ({err})") from None
    tensors = read_weights(folder / "model.safetensors") if made_by_a_run else convert and convert(folder)
    if tensors is None:
        raise CheckpointError(f"init={path}: neither a run folder (its config.json names no experiment) nor weights "
                              f"this experiment can convert; give a folder written by run --out")
    prefix = load_part(part, tensors, f"init={path}")
    return f"{folder} ({'a run folder' if made_by_a_run else 'converted'}{f', under {prefix}' if prefix else ''})"
