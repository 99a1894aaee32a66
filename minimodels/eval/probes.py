"""Attribute probes: read appearance (shape, colour, size) and motion (direction, speed) off video tokens.

Each attribute has its own MAP pooler over the encoder's (B, L, D) tokens and a linear classifier,

    p(y_a | clip) = softmax( W_a · MAP_a(h) + b_a )        for a ∈ attributes,

as VideoGLUE's frozen-backbone probes, which VideoPrism reports (arXiv 2402.13217, Table 2 and App. E.1).
``probe_frozen`` fits the heads on a *frozen* encoder's tokens; the course uses it on VideoPrism's stage-1 and
stage-2 encoders and on MiniGPT4-Video's frame encoder. Chance is the accuracy of always answering the most frequent
class of the evaluated split.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..data.dataset import as_float, usable
from ..data.world import APPEARANCE, MOTION
from ..engine.batches import nothing_to_learn
from ..engine.run_log import RunLog
from ..engine.train import TrainConfig, train
from ..nn.map_pooler import MAPPooler
from .loop import batched, evaluating

ATTRIBUTES = {**APPEARANCE, **MOTION}
GROUPS = {"appearance": APPEARANCE, "motion": MOTION}


class AttributeHeads(nn.Module):
    """A MAP pooler per attribute, then a linear classifier."""

    def __init__(self, width: int, heads: int, attributes: dict[str, tuple] = ATTRIBUTES):
        super().__init__()
        self.pools = nn.ModuleDict({name: MAPPooler(width, heads) for name in attributes})
        self.heads = nn.ModuleDict({name: nn.Linear(width, len(classes)) for name, classes in attributes.items()})

    def forward(self, tokens: torch.Tensor) -> dict[str, torch.Tensor]:  # (B, L, D) -> {attribute: (B, classes)}
        return {name: head(self.pools[name](tokens)) for name, head in self.heads.items()}


def attribute_accuracy(logits: dict[str, torch.Tensor], data: dict[str, torch.Tensor]) -> dict[str, float]:
    """{attribute: (N, classes)} logits against the split's labels -> accuracy per attribute."""
    return {a: round((out.argmax(-1).cpu() == data[a]).float().mean().item(), 4) for a, out in logits.items()}


def majority_chance(data: dict, attributes=ATTRIBUTES) -> dict[str, float]:
    """The accuracy of always answering the most frequent class of each attribute (of a folder's videos, those
    that decoded)."""
    ok = usable(data["video"]) if "video" in data else slice(None)
    return {a: data[a][ok].bincount().max().item() / len(data[a][ok]) for a in attributes}


def summarise(acc: dict[str, float], base: dict[str, float]) -> tuple[dict[str, float], dict[str, float]]:
    """Accuracy per attribute and per group (the mean over appearance or motion attributes) -> (metrics, chance),
    both keyed acc_<attribute> and <group>_acc."""
    metrics = {f"acc_{a}": round(v, 4) for a, v in acc.items()}
    chance = {f"acc_{a}": round(base[a], 4) for a in acc}
    for group, names in GROUPS.items():
        if all(n in acc for n in names):
            metrics[f"{group}_acc"] = round(sum(acc[n] for n in names) / len(names), 4)
            chance[f"{group}_acc"] = round(sum(base[n] for n in names) / len(names), 4)
    return metrics, chance


def frozen_probe_config() -> TrainConfig:
    """Training of the heads alone, on frozen tokens: short, since nothing below them moves."""
    return TrainConfig(steps=300, batch_size=64, lr=2e-3, warmup=10)


def frozen_features(encoder: nn.Module, video: torch.Tensor, batch_size: int = 200) -> torch.Tensor:
    """uint8 clips (N, T, H, W, C) -> frozen tokens (N, T·N_p, D), every token visible."""
    device = next(encoder.parameters()).device
    with evaluating(encoder):
        return batched(lambda rows: encoder(as_float(video[rows]).to(device)), len(video), batch_size)


def probe_frozen(encoder: nn.Module, train_data: dict, eval_data: dict, cfg: TrainConfig, seed: int,
                 attributes: dict[str, tuple] = ATTRIBUTES, log: RunLog | None = None) -> dict:
    """Train one MAP head per attribute on frozen features (logged as the stage "probe" into ``log``); held-out
    accuracy per attribute. A folder's videos that failed to decode are left out of both."""
    train_x, eval_x = frozen_features(encoder, train_data["video"]), frozen_features(encoder, eval_data["video"])
    train_ok, eval_ok = usable(train_data["video"]), usable(eval_data["video"])
    device = next(encoder.parameters()).device
    width = train_x.shape[-1]
    heads = AttributeHeads(width, max(1, width // 16), attributes).to(device)

    def loss_fn(model, batch, step):
        idx = batch.idx[train_ok[batch.idx]]
        if not len(idx):
            return nothing_to_learn(model), {}
        logits = model(train_x[idx].to(device))
        return sum(F.cross_entropy(logits[a], train_data[a][idx].to(device)) for a in attributes), {}

    held_out = {a: eval_data[a][eval_ok] for a in attributes}
    history = train(heads, loss_fn, len(train_x), cfg, seed=seed, log=log,
                    eval_fn=lambda m: attribute_accuracy(m(eval_x[eval_ok].to(device)), held_out), desc="probe")
    return history.final_eval
