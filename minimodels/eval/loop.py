"""The one evaluation loop: a function applied to a split batch by batch, without gradients, outputs joined.

    with evaluating(model):
        logits = batched(lambda rows: model(as_float(video[rows]).to(device)), len(video), batch_size=256)

``evaluating`` puts the model in eval mode with gradients off and restores its mode afterwards; ``batched`` calls
``fn(rows)`` for consecutive ``slice``s of ``range(n)`` and joins what comes back along the first axis: tensors are
concatenated (on the CPU, so a split's features never pile up on the GPU), dicts of tensors key by key, lists
extended.
"""

from __future__ import annotations

import contextlib
from typing import Callable, TypeVar

import torch

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
    return _join([fn(slice(i, min(i + batch_size, n))) for i in range(0, n, batch_size)])


def _join(parts: list):
    first = parts[0]
    if torch.is_tensor(first):
        return torch.cat([p.cpu() for p in parts])
    if isinstance(first, dict):
        return {key: _join([p[key] for p in parts]) for key in first}
    if isinstance(first, list):
        return [item for p in parts for item in p]
    raise TypeError(f"cannot join outputs of type {type(first).__name__}; return tensors, dicts or lists")
