"""What ``python -m minimodels info PRESET`` measures: sizes of a model config, on the ``meta`` device (no memory,
no time).

Parameters are counted from the real modules, and forward FLOPs are counted by PyTorch's ``FlopCounterMode``
while a meta-device clip flows through the model (matrix multiplies count 2·M·N·K; the rest is negligible).
"""

from __future__ import annotations

from collections import defaultdict

import torch
from torch.utils.flop_counter import FlopCounterMode

from .errors import ConfigError


def count_params(model: torch.nn.Module) -> dict[str, int]:
    """{"total": n, "trainable": n, "<top-level part>": n, ...}."""
    parts: dict[str, int] = defaultdict(int)
    for name, p in model.named_parameters():
        parts[name.split(".")[0]] += p.numel()
    total = sum(parts.values())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"total": total, "trainable": trainable, **parts}


def forward_flops(model: torch.nn.Module, *inputs: torch.Tensor) -> int:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(*inputs)
    return counter.get_total_flops()


def example_clip(cfg, frames: int | None = None, device="meta") -> torch.Tensor:
    """One clip of zeros (1, T, H, W, C) shaped for the model config ``cfg``."""
    return cfg.example_inputs(frames, device)[0]


def measure(name: str, cfg, frames: int | None = None, paper: tuple | None = None) -> dict:
    """Parameter counts (total and by part), tokens per clip and forward GFLOPs per clip of the model ``cfg``
    builds (called ``name``); ``paper`` = (parameters, tolerance, part, source) to compare with, if the paper says."""
    if frames is not None and frames < 1:
        raise ConfigError(f"--frames {frames}: a clip needs at least 1 frame (default: the preset's {cfg.num_frames})")
    with torch.device("meta"):
        model = cfg.build()
    T = cfg.num_frames if frames is None else frames
    out = {
        "preset": name,
        "params": count_params(model),
        "frames": T,
        "tokens_per_frame": cfg.tokens_per_frame,
        "tokens_per_clip": T * cfg.tokens_per_frame,
    }
    if hasattr(cfg, "token_budget"):  # an LLM reads the clip: what the frames leave of its context
        out["token_budget"] = cfg.token_budget()
    else:
        out["gflops_per_clip"] = round(forward_flops(model, *cfg.example_inputs(T)) / 1e9, 3)
    if paper is not None:
        target, tol, part, source = paper
        measured = out["params"][part]
        out["paper"] = {"part": part, "params": target, "tolerance": tol, "source": source,
                        "relative_error": round(measured / target - 1, 4)}
    return out


def format_info(result: dict) -> str:
    lines = [f"{result['preset']}: {result['params']['total'] / 1e6:,.2f}M parameters"]
    for part, n in result["params"].items():
        if part not in ("total", "trainable"):
            lines.append(f"  {part:<16} {n / 1e6:>10,.3f}M")
    lines.append(f"tokens: {result['frames']} frames × {result['tokens_per_frame']} = {result['tokens_per_clip']}")
    if "gflops_per_clip" in result:
        lines.append(f"forward: {result['gflops_per_clip']:,} GFLOPs per clip")
    if "token_budget" in result:
        b = result["token_budget"]
        lines.append(f"context: {b['context_length']:,} positions = 1 BOS + {b['visual_tokens']:,} visual + "
                     f"{b['left_for_text']:,} for subtitles (at most {b['max_subtitle_words']} words), "
                     f"instruction and answer")
    lines.append(f"trainable: {result['params']['trainable'] / 1e6:,.2f}M")
    if "paper" in result:
        p = result["paper"]
        lines.append(f"paper: {p['params'] / 1e6:,.0f}M ({p['part']}; {p['source']}); "
                     f"measured is {100 * p['relative_error']:+.2f}%")
    return "\n".join(lines)
