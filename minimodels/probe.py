"""Attribute probes: read appearance (shape, colour, size) and motion (direction, speed) off video tokens.

Each attribute has its own MAP pooler over the encoder's (B, T·N, D) tokens and a linear classifier:

    p(y_a | clip) = softmax( W_a · MAP_a(h) + b_a )        for a ∈ attributes

The experiment ``vit-probe`` trains the tiny factorized encoder and the heads together from scratch on the world's
training clips and reports held-out accuracy per attribute beside chance (the most frequent class). With
``frames=1`` the encoder sees only the first frame: appearance stays readable and motion falls to chance, which is
how the world was designed (``data/world.py``).

``probe_frozen`` fits the same heads on a *frozen* encoder's tokens (VideoGLUE-style), as VideoPrism's ablations
do; stage 2 (notebook 03) uses it, and ``vit-probe --set frozen_probe=true`` checks it on an encoder that is known
to carry motion.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .data.dataset import as_float, clip_tensors
from .data.world import APPEARANCE, MOTION
from .map_pooler import MAPPooler
from .train import TrainConfig, pick_device, seed_everything, train
from .video_vit import VideoViTConfig

ATTRIBUTES = {**APPEARANCE, **MOTION}


class AttributeHeads(nn.Module):
    """A MAP pooler per attribute (as VideoGLUE's frozen-backbone probes), then a linear classifier."""

    def __init__(self, width: int, heads: int, attributes: dict[str, tuple] = ATTRIBUTES):
        super().__init__()
        self.pools = nn.ModuleDict({name: MAPPooler(width, heads) for name in attributes})
        self.heads = nn.ModuleDict({name: nn.Linear(width, len(classes)) for name, classes in attributes.items()})

    def forward(self, tokens: torch.Tensor) -> dict[str, torch.Tensor]:  # (B, L, D) -> {attribute: (B, classes)}
        return {name: head(self.pools[name](tokens)) for name, head in self.heads.items()}


class VideoClassifier(nn.Module):
    """Encoder + attribute heads, trained end to end."""

    def __init__(self, encoder_cfg: VideoViTConfig):
        super().__init__()
        self.encoder = encoder_cfg.build()
        self.heads = AttributeHeads(encoder_cfg.width, encoder_cfg.heads)

    def forward(self, video):  # (B, T, H, W, C) -> {attribute: logits}
        return self.heads(self.encoder(video))


def frozen_probe_config() -> TrainConfig:
    """Training of the heads alone, on frozen tokens: short, since nothing below them moves."""
    return TrainConfig(steps=300, batch_size=64, lr=2e-3, warmup=10)


@torch.no_grad()
def frozen_features(encoder: nn.Module, video: torch.Tensor, batch_size: int = 200) -> torch.Tensor:
    """uint8 clips (N, T, H, W, C) -> frozen tokens (N, T·N_p, D), every token visible."""
    device = next(encoder.parameters()).device
    encoder.eval()
    return torch.cat([encoder(as_float(video[i:i + batch_size]).to(device)).cpu()
                      for i in range(0, len(video), batch_size)])


def probe_frozen(encoder: nn.Module, train_data: dict, eval_data: dict, cfg: TrainConfig, seed: int) -> dict:
    """Train one MAP head per attribute on frozen features; held-out accuracy per attribute."""
    train_x, eval_x = frozen_features(encoder, train_data["video"]), frozen_features(encoder, eval_data["video"])
    device = next(encoder.parameters()).device
    width = train_x.shape[-1]
    heads = AttributeHeads(width, max(1, width // 16)).to(device)

    def loss_fn(model, idx, step):
        logits = model(train_x[idx].to(device))
        return sum(F.cross_entropy(logits[a], train_data[a][idx].to(device)) for a in ATTRIBUTES), {}

    def accuracy(model):
        logits = model(eval_x.to(device))
        return {a: round((logits[a].argmax(1).cpu() == eval_data[a]).float().mean().item(), 4) for a in ATTRIBUTES}

    history = train(heads, loss_fn, len(train_x), cfg, seed=seed, eval_fn=accuracy, desc="probe")
    return {k: v for k, v in history[-1].items() if k in ATTRIBUTES}


@dataclass
class VitProbeConfig:
    model: VideoViTConfig = field(default_factory=VideoViTConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(steps=1000, batch_size=32, lr=2e-3, warmup=30))
    frames: int = 8  # frames shown to the encoder, from the start of the clip (1 = a single frame)
    frozen_probe: bool = False  # then fit fresh heads on the trained encoder's frozen tokens (reported as frozen_*)
    probe: TrainConfig = field(default_factory=frozen_probe_config)
    eval_split: str = "test"


def accuracy(model, data: dict, frames: int, batch_size: int = 256) -> dict[str, float]:
    """Accuracy of every attribute head on a rendered split."""
    device = next(model.parameters()).device
    correct = {name: 0 for name in ATTRIBUTES}
    n = len(data["video"])
    for start in range(0, n, batch_size):
        video = as_float(data["video"][start:start + batch_size, :frames]).to(device)
        logits = model(video)
        for name in ATTRIBUTES:
            labels = data[name][start:start + batch_size].to(device)
            correct[name] += (logits[name].argmax(-1) == labels).sum().item()
    return {name: correct[name] / n for name in ATTRIBUTES}


def chance(data: dict) -> dict[str, float]:
    """The accuracy of always answering the most frequent class."""
    return {name: data[name].bincount().max().item() / len(data[name]) for name in ATTRIBUTES}


def summarise(acc: dict[str, float], base: dict[str, float]) -> dict[str, float]:
    out = {f"acc_{k}": round(v, 4) for k, v in acc.items()}
    out.update({f"chance_{k}": round(v, 4) for k, v in base.items()})
    for group, names in (("appearance", APPEARANCE), ("motion", MOTION)):
        out[f"{group}_acc"] = round(sum(acc[n] for n in names) / len(names), 4)
        out[f"{group}_chance"] = round(sum(base[n] for n in names) / len(names), 4)
    return out


def run_vit_probe(cfg: VitProbeConfig, seed: int = 0, out_dir=None, config_json: str = "{}") -> dict:
    seed_everything(seed)
    device = pick_device()
    size = cfg.model.image_size
    train_data, eval_data = clip_tensors("train", size), clip_tensors(cfg.eval_split, size)
    model = VideoClassifier(cfg.model).to(device)

    def loss_fn(model, idx, step):
        video = as_float(train_data["video"][idx, : cfg.frames]).to(device)  # (B, frames, H, W, 3)
        logits = model(video)
        losses = {name: F.cross_entropy(logits[name], train_data[name][idx].to(device)) for name in ATTRIBUTES}
        return sum(losses.values()), {f"loss_{k}": v.item() for k, v in losses.items()}

    history = train(model, loss_fn, len(train_data["video"]), cfg.train, seed=seed, out_dir=out_dir,
                    eval_fn=lambda m: accuracy(m, eval_data, cfg.frames), config_json=config_json, desc="vit-probe")
    final = {k: v for k, v in history[-1].items() if k in ATTRIBUTES}
    frozen = {}
    if cfg.frozen_probe:  # can a frozen-feature probe read what the encoder learned? (notebook 03 asks)
        acc = probe_frozen(model.encoder, train_data, eval_data, cfg.probe, seed)
        frozen = {f"frozen_{k}": v for k, v in summarise(acc, chance(eval_data)).items() if "chance" not in k}
    return {**summarise(final, chance(eval_data)), **frozen, "final_loss": round(history[-2]["loss"], 4),
            "headline": [("appearance_acc", "appearance_chance"), ("motion_acc", "motion_chance")],
            "history": history}
