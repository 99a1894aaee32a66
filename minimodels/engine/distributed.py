"""Several processes training one model: ``torchrun --nproc_per_node N -m minimodels run EXPERIMENT ...``.

torchrun starts N copies of the command with ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` set. ``launched`` joins them
in a process group (NCCL on CUDA, one GPU per process; gloo on CPU). The training loop then gives each rank its share
of every global batch and averages the gradients with DistributedDataParallel, so N processes take the step one
process would take on the whole batch. Only rank 0 writes: the run folder, checkpoints, the metrics log, results.

A loss that compares the examples of a batch with each other (the contrastive InfoNCE: every other clip of the batch
is a negative) must see the whole batch, not the rank's share: ``gather_batch`` joins the shares, with gradients.
Evaluation is shared too: each rank computes a contiguous block of the rows (``block``) and ``gather_parts`` hands
every rank all the blocks, in order.
"""

from __future__ import annotations

import contextlib
import os

import torch
import torch.distributed as dist


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if world_size() > 1 else 0


def is_main() -> bool:
    return rank() == 0


@contextlib.contextmanager
def launched():
    """The process group torchrun asks for (``WORLD_SIZE`` > 1), for the length of the block; nothing otherwise."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        yield
        return
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    try:
        yield
    finally:
        dist.destroy_process_group()


def share(batch: torch.Tensor) -> torch.Tensor:
    """This process's part of a global batch of example indices: every ``world_size``-th, from its rank."""
    return batch[rank()::world_size()]


def block(n: int) -> range:
    """This rank's contiguous share of ``n`` rows (the ranks' blocks, in rank order, cover range(n) once)."""
    size = -(-n // world_size())
    return range(min(n, rank() * size), min(n, (rank() + 1) * size))


def gather_parts(parts: list) -> list:
    """Every rank's list of results (CPU tensors, dicts, lists), joined in rank order on every rank."""
    if world_size() == 1:
        return parts
    everyone = [None] * world_size()
    dist.all_gather_object(everyone, parts)
    return [part for rank_parts in everyone for part in rank_parts]


def from_main(value):
    """Rank 0's ``value`` on every rank (e.g. the run folder it chose)."""
    if world_size() == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def _on_backend(values: list, dtype) -> torch.Tensor:
    """A small tensor where the backend reduces: the GPU for NCCL, the CPU for gloo."""
    return torch.tensor(values, dtype=dtype, device="cuda" if dist.get_backend() == "nccl" else "cpu")


def mean_over_ranks(value: float) -> float:
    """The mean of a number over the ranks (each rank's loss on its share -> the loss on the whole batch)."""
    if world_size() == 1:
        return value
    total = _on_backend([value], torch.float64)
    dist.all_reduce(total)
    return total.item() / world_size()


def any_rank(flag: bool) -> bool:
    """True on every rank if it is True on one (a stop request must stop all ranks after the same step)."""
    if world_size() == 1:
        return flag
    count = _on_backend([int(flag)], torch.int64)
    dist.all_reduce(count)
    return bool(count.item())


def gather_batch(x: torch.Tensor) -> torch.Tensor:
    """Every rank's (b, ...) share joined into the global (N·b, ...) batch, rank by rank, on every rank; gradients flow
    back to the share each rank computed. Each rank then computes the same global loss; the backward sums every
    rank's gradient of the joined batch (N times the loss's gradient of this rank's share), and DDP's average over
    the N ranks brings it back to exactly the one-process gradient. One process: ``x`` itself."""
    return x if world_size() == 1 else _GatherBatch.apply(x)


class _GatherBatch(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        parts = [torch.empty_like(x) for _ in range(world_size())]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad):
        grad = grad.contiguous()
        dist.all_reduce(grad)  # every rank's loss used every share: sum their gradients (gloo has no reduce-scatter)
        return grad.chunk(world_size())[rank()]
