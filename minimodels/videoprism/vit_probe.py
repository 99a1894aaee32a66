"""The ``videoprism-vit-probe`` experiment: the tiny factorized encoder trained end to end on the attribute probes.

The encoder of notebook 01 and a MAP-pooled linear head per attribute (``eval/probes.py``) learn together from
scratch on the world's training clips; held-out accuracy per attribute is reported beside chance (the most frequent
class). With ``frames=1`` the encoder sees only the first frame: appearance stays readable and motion falls to
chance, which is how the world was designed (``data/world.py``). ``frozen_probe=true`` then fits fresh heads on the
trained encoder's frozen tokens, to check that a frozen probe can read what an encoder is known to carry (the
protocol of VideoPrism's ablations, notebook 03).

``manifest`` trains on a folder of real videos with a class each instead (Kinetics, SSv2: ``data/video_folder.py``),
one head over the manifest's classes, evaluated on ``eval_manifest``'s videos. ``init`` starts the encoder from a
run folder (a probe's, a stage-1 or stage-2 run's encoder) or a public VideoPrism (a transformers
``save_pretrained`` folder, the encoder alone or an LvT's); with ``train.steps=0`` and ``frozen_probe=true`` the
run is the frozen-backbone probe of those weights on one's own labelled videos, one command:

    python -m minimodels run videoprism-vit-probe --preset videoprism-b --set init=videoprism-b train.steps=0
        frozen_probe=true manifest=kinetics/train.csv eval_manifest=kinetics/test.csv
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..data.dataset import LoaderConfig, as_float, clip_tensors, take, usable
from ..data.video_folder import folder_split
from ..engine.batches import nothing_to_learn
from ..engine.config import override, require, whole
from ..engine.device import pick_device
from ..engine.errors import DataError
from ..engine.experiment import NO_FOLDER, RunFolder
from ..engine.results import ExperimentResult, rounded
from ..engine.rng import seed_everything
from ..engine.train import TrainConfig, train
from ..eval.loop import batched, evaluating
from ..eval.probes import (
    ATTRIBUTES,
    AttributeHeads,
    attribute_accuracy,
    frozen_probe_config,
    majority_chance,
    probe_frozen,
    summarise,
)
from ..nn.video_vit import VideoViTConfig
from .transformers_weights import init_videoprism


class VideoClassifier(nn.Module):
    """Encoder + attribute heads, trained end to end."""

    def __init__(self, encoder_cfg: VideoViTConfig, attributes: dict[str, tuple] = ATTRIBUTES):
        super().__init__()
        self.encoder = encoder_cfg.build()
        self.heads = AttributeHeads(encoder_cfg.width, encoder_cfg.heads, attributes)

    def forward(self, video):  # (B, T, H, W, C) -> {attribute: logits}
        return self.heads(self.encoder(video))


@dataclass
class VitProbeConfig:
    model: VideoViTConfig = field(default_factory=VideoViTConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(steps=1000, batch_size=32, lr=2e-3, warmup=30))
    frames: int | None = None  # frames shown to the encoder, from the start of the clip (1 = a single frame; None:
    # every frame the model is built for)
    frozen_probe: bool = False  # then fit fresh heads on the trained encoder's frozen tokens (reported as frozen_*)
    probe: TrainConfig = field(default_factory=frozen_probe_config)
    eval_split: str = "test"
    manifest: str = ""  # a real-video manifest with a class per video (Kinetics, SSv2) to train on instead
    eval_manifest: str = ""  # its held-out videos ("": the training manifest's own)
    init: str = ""  # start the encoder from these weights: a run folder, or a public VideoPrism's save_pretrained one
    loader: LoaderConfig = field(default_factory=LoaderConfig)  # how a folder's videos are decoded

    def __post_init__(self):
        require(self, {"frames": (self.frames is None or (whole(self.frames) and self.frames <= self.model.num_frames),
                                  f"a whole number from 1 to the model's num_frames={self.model.num_frames}, or "
                                  f"none for all of them")})

    @property
    def shown_frames(self) -> int:
        return self.model.num_frames if self.frames is None else self.frames


def for_preset(cfg: VitProbeConfig, name: str, model: VideoViTConfig) -> VitProbeConfig:
    """The config with preset ``name``'s encoder (shown every frame it is built for, unless ``frames`` says)."""
    return override(cfg, model=model)


def accuracy(model: VideoClassifier, data: dict, frames: int, batch_size: int = 256) -> dict[str, float]:
    """Accuracy of every attribute head on a split, the encoder shown its first ``frames`` frames (a folder's videos
    that failed to decode left out)."""
    device = next(model.parameters()).device
    with evaluating(model):
        logits = batched(lambda rows: model(as_float(data["video"][rows, :frames]).to(device)), len(data["video"]),
                         batch_size)
    ok = usable(data["video"])
    return attribute_accuracy({a: out[ok] for a, out in logits.items()}, {a: data[a][ok] for a in logits})


def run(cfg: VitProbeConfig, seed: int = 0, folder: RunFolder = NO_FOLDER) -> ExperimentResult:
    seed_everything(seed)
    device = pick_device()
    size, frames = cfg.model.image_size, cfg.model.num_frames  # the clips as the preset expects them
    if cfg.manifest:
        train_data, eval_data, attributes = folder_classes(cfg.manifest, cfg.eval_manifest, size, frames, cfg.loader)
    else:
        train_data, eval_data = (clip_tensors(split, size, frames=frames) for split in ("train", cfg.eval_split))
        attributes = ATTRIBUTES
    model = VideoClassifier(cfg.model, attributes)
    info = {"init": init_videoprism(model.encoder, cfg.init)} if cfg.init else {}
    model.to(device)

    def loss_fn(model, batch, step):
        video, decoded = take(train_data["video"], batch.idx)  # a folder's file that failed: left out
        if not decoded.any():
            return nothing_to_learn(model), {}
        idx = batch.idx[decoded]
        logits = model(as_float(video[decoded, : cfg.shown_frames]).to(device))  # (B, frames, H, W, 3) in
        losses = {name: F.cross_entropy(logits[name], train_data[name][idx].to(device)) for name in attributes}
        return sum(losses.values()), {f"loss_{k}": v.item() for k, v in losses.items()}

    history = train(model, loss_fn, len(train_data["video"]), cfg.train, seed=seed, checkpoints=folder.path,
                    resume=folder.resume, log=folder.log, eval_fn=lambda m: accuracy(m, eval_data, cfg.shown_frames),
                    desc="videoprism-vit-probe", prefetch=(train_data["video"],))
    base = majority_chance(eval_data, attributes)
    metrics, chance = summarise(history.final_eval, base)
    metrics["final_loss"] = rounded(history.final_loss)
    histories = {"train": history}
    if cfg.frozen_probe:  # can a frozen-feature probe read what the encoder learned? (notebook 03 asks)
        frozen, _ = summarise(probe_frozen(model.encoder, train_data, eval_data, cfg.probe, seed, attributes,
                                           log=folder.log), base)
        metrics.update({f"frozen_{k}": v for k, v in frozen.items()})
        chance.update({f"frozen_{k}": chance[k] for k in frozen})
    headline = ["acc_label"] if cfg.manifest else ["appearance_acc", "motion_acc"]
    if cfg.frozen_probe and not cfg.train.steps:  # the probe of the weights as given: its heads are the result
        headline = [f"frozen_{name}" for name in headline]
    return ExperimentResult(metrics, chance, headline=headline, history=histories, info=info)


def folder_classes(manifest: str, eval_manifest: str, size: int, frames: int,
                   loader: LoaderConfig = LoaderConfig()) -> tuple[dict, dict, dict]:
    """Real videos with a class each (``label``; a caption works too, as a class name): (train, held-out,
    {"label": classes}), each split {"video": streamed uint8 clips, "label": class index (N,)}. The classes are the
    training manifest's, sorted; a held-out class never seen in training is refused by name."""
    train_data = folder_split(manifest, size, frames, loader)
    eval_data = folder_split(eval_manifest, size, frames, loader) if eval_manifest else train_data
    classes = tuple(sorted(set(train_data["text"])))
    unseen = sorted(set(eval_data["text"]) - set(classes))
    if unseen:
        raise DataError(f"{eval_manifest}: classes {unseen[:5]} do not occur in {manifest}; a classifier cannot "
                        f"name them")
    for data in (train_data, eval_data):
        data["label"] = torch.tensor([classes.index(text) for text in data["text"]])
    return train_data, eval_data, {"label": classes}
