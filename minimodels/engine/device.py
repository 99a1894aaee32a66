"""Where a run computes: the device, its number format, and one line that names the hardware."""

from __future__ import annotations

import contextlib
import os
import platform

import torch


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
    if torch.cuda.is_available():
        where = f"CUDA {torch.cuda.get_device_name(0)}"
    else:
        kernels = torch.backends.cpu.get_cpu_capability()
        where = (f"CPU ({platform.processor() or platform.machine()}, {kernels} kernels), {os.cpu_count()} cores, "
                 f"{torch.get_num_threads()} torch threads")
    return f"torch {torch.__version__} on {where}"
