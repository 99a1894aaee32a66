"""``python -m minimodels bench PRESET``: how fast a preset trains on this machine, and how much of it it uses.

Steps of the course's training loop (``engine.train``: bf16 autocast on CUDA, fp32 on CPU, AdamW, gradient clipping)
are timed on random clips of the preset's frames and resolution, after warm-up steps that are not counted. The loss is
the mean square of the model's outputs: the cost of a step does not depend on what the loss asks.

Model FLOPs utilisation (MFU, as in the PaLM paper, arXiv 2204.02311 App. B): the FLOPs a step must do, 3 × the
forward FLOPs counted by ``FlopCounterMode`` (the backward pass costs twice the forward; recomputation under
recomputed activations are not counted), per second, over the device's dense bf16 peak from its datasheet.
"""

from __future__ import annotations

import resource
import sys
import time

import torch

from .device import pick_device
from .errors import ConfigError
from .measure import forward_flops
from .train import TrainConfig, train

# Dense (no sparsity) bf16 tensor-core peaks in TFLOP/s, from NVIDIA's datasheets; the first name found in the
# device's name is used (so "H100 PCIe" is matched before "H100").
PEAK_BF16_TFLOPS = {"H100 PCIe": 756, "H100": 989, "H200": 989, "GH200": 989, "B200": 2250, "A100": 312,
                    "L40S": 362, "L4": 121, "A10": 125}


def peak_tflops(device_name: str) -> float | None:
    return next((peak for name, peak in PEAK_BF16_TFLOPS.items() if name in device_name), None)


def _batch(cfg, batch: int, frames: int | None, device) -> tuple[torch.Tensor, ...]:
    """The preset's example inputs for ``batch`` clips: random pixels, token ids as they come (zeros)."""
    inputs = []
    for x in cfg.example_inputs(frames, device=device):
        x = x.expand(batch, *x.shape[1:]).clone()
        inputs.append(torch.rand_like(x) if x.is_floating_point() else x)
    return tuple(inputs)


def _loss(output) -> torch.Tensor:
    """Mean square of every float tensor the model returned (a tensor, a tuple or a dict of them)."""
    parts = output.values() if isinstance(output, dict) else output if isinstance(output, (tuple, list)) else [output]
    return sum(t.float().pow(2).mean() for t in parts if torch.is_tensor(t) and t.is_floating_point())


def bench(name: str, cfg, batch: int = 8, steps: int = 5, frames: int | None = None, warmup: int = 2,
          recompute_activations: bool = False, compile: bool = False) -> dict:
    """Time ``steps`` training steps of preset ``name`` (config ``cfg``) at ``batch`` clips (after ``warmup``
    steps, which also take the compilation when ``compile`` is on)."""
    if hasattr(cfg, "token_budget") or not hasattr(cfg, "example_inputs"):
        raise ConfigError(f"bench {name}: measures the video models (VideoPrism, LvT, MV-GPT presets); "
                          f"for an LLM preset see `info {name}`")
    if batch < 1 or steps < 1 or warmup < 0:
        raise ConfigError(f"bench: --batch {batch} and --steps {steps} must be >= 1 (warm-up {warmup} >= 0)")
    if frames is not None and frames < 1:
        raise ConfigError(f"bench: --frames {frames}: a clip has at least 1 frame (leave it out for the preset's)")
    device = pick_device()
    with torch.device("meta"):
        flops_per_clip = forward_flops(cfg.build(), *cfg.example_inputs(frames))
    model = cfg.build().to(device)
    inputs = _batch(cfg, batch, frames, device)

    def loss_fn(m, batch, step):  # batch.idx: the examples in the loop's seeded order
        return _loss(m(*(x[batch.idx.to(device)] for x in inputs))), {}

    def run(n):  # the course's own training loop, so the benchmark times the step every experiment takes
        train(model, loss_fn, batch, TrainConfig(steps=n, batch_size=batch, warmup=0, progress=False,
                                                 recompute_activations=recompute_activations, compile=compile))

    if warmup:
        run(warmup)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    run(steps)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = (time.perf_counter() - start) / steps
    T = frames or cfg.num_frames
    tflops = 3 * flops_per_clip * batch / seconds / 1e12
    if device.type == "cuda":
        where, peak = torch.cuda.get_device_name(device), peak_tflops(torch.cuda.get_device_name(device))
        memory = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        where, peak = f"CPU, {torch.get_num_threads()} torch threads", None
        # ru_maxrss: kilobytes on Linux, bytes on macOS; the whole process's peak, imports included
        memory = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (2**20 if sys.platform == "darwin" else 2**10)
    return {"preset": name, "device": where, "batch": batch, "frames": T, "tokens_per_clip": T * cfg.tokens_per_frame,
            "recompute_activations": recompute_activations,
            "compile": compile and device.type == "cuda",  # the training loop compiles for CUDA only (and says so)
            "step_ms": round(1000 * seconds, 2),
            "clips_per_s": round(batch / seconds, 2), "tokens_per_s": round(batch * T * cfg.tokens_per_frame / seconds),
            "peak_memory_mb": round(memory),
            "memory_kind": "allocated by torch" if device.type == "cuda" else "process peak (RSS)",
            "tflops_per_s": round(tflops, 4),
            "peak_bf16_tflops": peak, "mfu": round(tflops / peak, 4) if peak else None}


def format_bench(result: dict) -> str:
    r = result
    lines = [f"{r['preset']} on {r['device']}: batch {r['batch']} × {r['frames']} frames "
             f"({r['tokens_per_clip']:,} tokens a clip)" + (", activations recomputed" if
                                                           r["recompute_activations"] else "")
             + (", compiled" if r.get("compile") else ""),
             f"step {r['step_ms']:,} ms: {r['clips_per_s']:,} clips/s, {r['tokens_per_s']:,} tokens/s",
             f"peak memory {r['peak_memory_mb']:,} MB ({r['memory_kind']})",
             f"model FLOPs: {r['tflops_per_s']:,} TFLOP/s"]
    if r["mfu"] is not None:
        lines[-1] += f" = {100 * r['mfu']:.1f}% MFU of the device's {r['peak_bf16_tflops']} TFLOP/s bf16 peak"
    elif r["device"].startswith("CPU"):
        lines[-1] += " (MFU is reported on CUDA devices, against their bf16 peak)"
    else:
        lines[-1] += " (no bf16 peak known for this device: MFU not reported)"
    return "\n".join(lines)
