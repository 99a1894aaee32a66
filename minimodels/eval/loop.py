"""The one evaluation loop: a function applied to a split batch by batch, without gradients, outputs joined.

    with evaluating(model):
        logits = batched(lambda rows: model(as_float(video[rows]).to(device)), len(video), batch_size=256)

``evaluating`` puts the model in eval mode with gradients off and restores its mode afterwards; ``batched`` calls
``fn(rows)`` for consecutive ``slice``s of ``range(n)`` and joins what comes back along the first axis: tensors are
concatenated (on the CPU, so a split's features never pile up on the GPU), dicts of tensors key by key, lists
extended. Under torchrun each process computes a contiguous block of the rows and every process gets them all
(``engine.distributed.block``, ``gather_parts``): N processes evaluate a split N times faster, and every rank
must call ``batched`` alike, as every rank runs the same evaluation.
"""

from __future__ import annotations

import contextlib
from typing import Callable, TypeVar

import torch

from ..engine import distributed

T = TypeVar("T")


@contextlib.contextmanager
def evaluating(model: torch.nn.Module):
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        model.train(was_training)


def batched(fn: Callable[[slice], T], n: int, batch_size: int) -> T:
    if n < 1:
        raise ValueError(f"nothing to evaluate: n = {n}")
    rows = distributed.block(n)
    parts = [_cpu(fn(slice(i, min(i + batch_size, rows.stop)))) for i in range(rows.start, rows.stop, batch_size)]
    return _join(distributed.gather_parts(parts))


def _cpu(part):
    """A part as it is sent between processes and kept: tensors on the CPU."""
    if torch.is_tensor(part):
        return part.cpu()
    if isinstance(part, dict):
        return {key: _cpu(value) for key, value in part.items()}
    return part


def _join(parts: list):
    first = parts[0]
    if torch.is_tensor(first):
        return torch.cat(parts)
    if isinstance(first, dict):
        return {key: _join([p[key] for p in parts]) for key in first}
    if isinstance(first, list):
        return [item for p in parts for item in p]
    raise TypeError(f"cannot join outputs of type {type(first).__name__}; return tensors, dicts or lists")
