"""Which examples a training step takes, and which of them one call of a loss function computes.

The batch of step s is a function of (seed, s) alone (``batch_indices``), so a resumed run replays the same batches.
The loop may split a step's batch: over processes (torchrun) and into micro-batches (``TrainConfig.accumulate``).
A ``Batch`` is one such share, and the loop hands it to the loss function: ``batch.idx`` are its examples, and
``per_example`` makes random draws (masks, permutations, coin flips) per example of the *whole* batch and cuts them
to the share, so N processes, or K micro-batches, draw for each example what one process draws for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from .rng import rng


def batch_indices(n: int, batch_size: int, seed: int, step: int) -> torch.Tensor:
    """The examples of one step: a function of (seed, step) alone, so resuming replays the same batches."""
    return torch.randperm(n, generator=rng(seed, step, "batches"))[:batch_size]


@dataclass(frozen=True)
class Batch:
    """The examples one loss-function call computes: ``idx`` (b,) their indices in the training set, ``rows`` (b,)
    their positions in the step's whole batch of ``size`` examples."""

    idx: torch.Tensor
    rows: torch.Tensor
    size: int

    @classmethod
    def whole(cls, idx: torch.Tensor) -> "Batch":
        """A batch computed in one call (one process, no micro-batches)."""
        return cls(idx, torch.arange(len(idx)), len(idx))

    def __len__(self) -> int:
        return len(self.idx)


def per_example(draw: Callable[[int], torch.Tensor], batch: Batch | None, n: int) -> torch.Tensor:
    """``draw(size) -> (size, ...)`` for the step's whole batch, cut to ``batch``'s rows; outside the training loop
    (``batch`` None) ``draw(n)`` for the ``n`` examples at hand."""
    if batch is None:
        return draw(n)
    if len(batch) != n:
        raise ValueError(f"per_example: {n} examples, but the training loop is computing {len(batch)} of its batch")
    return draw(batch.size)[batch.rows]


def nothing_to_learn(model: torch.nn.Module) -> torch.Tensor:
    """The loss of a batch with no usable example in it (every video of a folder's batch failed to decode): zero,
    reaching every trainable parameter, so that the step goes on (and every process of a torchrun runs its
    backward) without changing the weights."""
    return sum(p.sum() for p in model.parameters() if p.requires_grad) * 0.0
