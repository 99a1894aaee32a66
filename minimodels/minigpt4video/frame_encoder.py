"""The tiny stand-in for EVA-CLIP: a per-frame ViT trained once, on its own, then frozen for MiniGPT4-Video.

MiniGPT4-Video never trains its vision encoder; it takes EVA-CLIP ViT-g/14, pretrained on web images, as it is. Our
world has no web images, so experiment ``minigpt4video-frame-encoder`` gives the tiny ``FrameViT`` what a pretrained
image encoder has: patch tokens from which an object's shape, colour and size can be read. It trains the ViT and one
MAP-pooled linear head per appearance attribute on single frames of the training clips (one random frame of each clip
per step), reading the *patch tokens after* ``ln_vision`` *with the CLS token dropped* — exactly the tokens
MiniGPT4-Video's projection will see. Held-out accuracy per attribute is reported beside chance.

The shipped checkpoint (``data_small/checkpoints/minigpt4video-frame-encoder``) is what MiniGPT4-Video loads and
freezes; its keys ``vision.*`` and ``ln_vision.*`` are those of ``MiniGPT4Video``."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..data.dataset import as_float, clip_tensors
from ..data.world import APPEARANCE
from ..engine.batches import Batch, per_example
from ..engine.checkpoint import read_weights
from ..engine.device import pick_device
from ..engine.errors import CheckpointError
from ..engine.experiment import NO_FOLDER, RunFolder
from ..engine.paths import DATA_DIR
from ..engine.results import ExperimentResult, rounded
from ..engine.rng import rng, seed_everything
from ..engine.train import TrainConfig, train
from ..eval.loop import batched, evaluating
from ..eval.probes import AttributeHeads, attribute_accuracy, majority_chance, summarise
from .model import FrameViT, FrameViTConfig

CHECKPOINT = DATA_DIR / "checkpoints" / "minigpt4video-frame-encoder"


class FrameEncoder(nn.Module):
    """FrameViT + ln_vision (named as in MiniGPT4Video) + appearance heads over the patch tokens."""

    def __init__(self, cfg: FrameViTConfig):
        super().__init__()
        self.vision = FrameViT(cfg)
        self.ln_vision = nn.LayerNorm(cfg.width, eps=cfg.ln_eps)
        self.heads = AttributeHeads(cfg.width, cfg.heads, APPEARANCE)

    def patch_tokens(self, images):  # (B, H, W, C) -> (B, G², Dv): what MiniGPT4-Video reads
        return self.ln_vision(self.vision(images))[:, 1:]

    def forward(self, images):  # -> {attribute: (B, classes)}
        return self.heads(self.patch_tokens(images))


def load_frame_encoder(module: nn.Module, folder=CHECKPOINT) -> None:
    """Copy a trained frame encoder's ``vision.*`` and ``ln_vision.*`` weights into ``module`` (e.g. MiniGPT4Video)."""
    path = folder / "model.safetensors"
    if not path.is_file():
        raise CheckpointError(f"no frame encoder at {folder}; make it with: python -m minimodels run "
                              f"minigpt4video-frame-encoder --out {folder}")
    weights = {k: v for k, v in read_weights(path).items() if k.startswith(("vision.", "ln_vision."))}
    missing = [k for k in module.state_dict() if k.startswith(("vision.", "ln_vision.")) and k not in weights]
    if missing:
        raise CheckpointError(f"{path} does not fit this model: missing {missing[:3]}")
    module.load_state_dict(weights, strict=False)


@dataclass
class FrameEncoderConfig:
    model: FrameViTConfig = field(default_factory=FrameViTConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(steps=800, batch_size=64, lr=1e-3, warmup=40))


def one_frame_per_clip(video: torch.Tensor, generator: torch.Generator, batch: Batch | None = None) -> torch.Tensor:
    """(B, T, H, W, C) -> (B, H, W, C): a random frame of each clip (the object looks the same in all of them)."""
    pick = per_example(lambda n: torch.randint(video.shape[1], (n,), generator=generator), batch, len(video))
    return video[torch.arange(len(video)), pick]


def frame_accuracy(model: FrameEncoder, data: dict, batch_size: int = 400) -> dict[str, float]:
    """Held-out accuracy per attribute on the first frame of every clip."""
    device = next(model.parameters()).device
    with evaluating(model):
        logits = batched(lambda rows: model(as_float(data["video"][rows, 0]).to(device)), len(data["video"]),
                         batch_size)
    return attribute_accuracy(logits, data)


def run(cfg: FrameEncoderConfig, seed: int = 0, folder: RunFolder = NO_FOLDER) -> ExperimentResult:
    seed_everything(seed)
    device = pick_device()
    train_data = clip_tensors("train", cfg.model.image_size)
    test_data = clip_tensors("test", cfg.model.image_size)
    model = FrameEncoder(cfg.model).to(device)

    def loss_fn(model, batch, step):
        frames = one_frame_per_clip(train_data["video"][batch.idx], rng(seed, step, "frame-pick"), batch)
        logits = model(as_float(frames).to(device))
        losses = {a: F.cross_entropy(logits[a], train_data[a][batch.idx].to(device)) for a in APPEARANCE}
        return sum(losses.values()), {f"loss_{a}": v.item() for a, v in losses.items()}

    history = train(model, loss_fn, len(train_data["video"]), cfg.train, seed=seed, checkpoints=folder.path,
                    resume=folder.resume, log=folder.log, desc="minigpt4video-frame-encoder")
    metrics, chance = summarise(frame_accuracy(model, test_data), majority_chance(test_data, APPEARANCE))
    metrics["final_loss"] = rounded(history.final_loss)
    return ExperimentResult(metrics, chance, headline=[f"acc_{a}" for a in APPEARANCE], history={"train": history})
