"""The ``videoprism-stage2`` experiment: masked video modelling with global–local distillation (arXiv 2402.13217,
§2.3.2, App. C.2, Alg. 1).

The frozen stage-1 model (the teacher) sees the whole clip. The student starts as a copy of its video encoder and
sees 35 % of the tokens (BEVT-style block masks by default, the paper's choice, §2.3.2 and Fig. 6; tube masks are a
setting); its output feeds the two decoders of ``distill.py``:

    L = L_local + L_global = mean_i [1 - cos(ŷ_i, ȳ_i)] + [1 - cos(ĝ, g)]        equal weights, each switchable

where ȳ_i is the teacher's token at canonical position i, standardised over the clip (``distill.standardise_tokens``),
and g the teacher's stage-1 MAP embedding. Only clips are used, never their text. Evaluation: frozen-feature
attribute probes (one MAP head per attribute, as VideoGLUE) on the student and, for reference, on the stage-1 encoder;
and the premise check of ``masked_targets.py`` (``guess_*``: how well guesses that know the clip's look, its start and
its motion fill the masked targets, the trained student among them, on the same test clips and masks).

``recipe="one-stage"`` runs Fig. 4's baseline instead (``one_stage.py``): a fresh stage-1 model trained on the
contrastive loss and a masked-patch loss at once, for both stages' steps together, probed the same way.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch import nn

from ..data.dataset import as_float, clip_tensors, load_table
from ..engine.config import from_dict, override
from ..engine.errors import CheckpointError, ConfigError
from ..engine.paths import DATA_DIR
from ..engine.results import ExperimentResult
from ..engine.rng import rng, seed_everything
from ..engine.train import TrainConfig, load_checkpoint, per_example, pick_device, train
from ..eval.loop import evaluating
from ..eval.probes import frozen_probe_config, majority_chance, probe_frozen, summarise
from ..nn.masking import block_keep, tube_keep
from ..nn.text import load_tokenizer
from .distill import GlobalDecoder, LocalDecoder, cosine_distance, random_permutations, seen_slots, teacher_targets
from .masked_targets import masked_target_guesses
from .one_stage import OneStageModel, one_stage_loss
from .stage1 import TEXT_SOURCES, text_tensors
from .video_text import VideoTextConfig, VideoTextModel


@dataclass
class DecoderConfig:
    """Both decoders' size. Table 11: 4 layers of width 512 (MLP 2048) behind a projection from the encoder width,
    small beside the 16-40-layer encoders, so that the encoder, not the decoder, has to model the clip. The tiny
    decoder keeps that proportion: one layer at half the tiny encoder's width."""

    width: int = 32
    layers: int = 1
    heads: int = 2
    mlp_dim: int = 128


TABLE_11_DECODER = DecoderConfig(width=512, layers=4, heads=8, mlp_dim=2048)  # heads: not stated by the paper
# (batch, grid, ratio, generator) -> (B, M) kept positions; "tube": random positions, "bevt": random blocks
MASKS = {"tube": lambda b, grid, ratio, gen: tube_keep(b, grid * grid, ratio, gen), "bevt": block_keep}
RECIPES = ("two-stage", "one-stage")


@dataclass
class Stage2Config:
    model: VideoTextConfig = field(default_factory=VideoTextConfig)  # the teacher's architecture
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(steps=600, batch_size=32, lr=1e-3, warmup=30))
    probe: TrainConfig = field(default_factory=frozen_probe_config)
    teacher: str = ""  # a stage-1 checkpoint folder; "" = the one shipped for this seed (see teacher_folder)
    mask: str = "bevt"  # the paper's BEVT-style blocks (repeated over frames), or "tube" (random positions)
    mask_ratio: float = 0.65
    shuffle: bool = True
    local_distill: bool = True
    global_distill: bool = True
    target_norm: str = "instance"  # "instance" (standardise the teacher's tokens over the clip, our choice) or "none"
    train_student: bool = True  # False: the decoders alone learn, on a frozen copy of the teacher (a diagnostic:
    # how long does the token-wise decoder take to solve the shuffled jigsaw when the student cannot move?)
    recipe: str = "two-stage"  # or "one-stage": Fig. 4's baseline (see one_stage.py)
    one_stage_steps: int = 1200  # recipe="one-stage": both stages' steps together (stage 1's 600 + stage 2's 600)
    eval_split: str = "test"

    def __post_init__(self):  # checked when the config is made, so a bad setting never starts a run
        if self.mask not in MASKS:
            raise ConfigError(f"unknown mask {self.mask!r}; choose {' or '.join(map(repr, MASKS))}")
        if self.target_norm not in ("instance", "none"):
            raise ConfigError(f"unknown target_norm {self.target_norm!r}; choose 'instance' or 'none'")
        if not (self.local_distill or self.global_distill):
            raise ConfigError("local_distill and global_distill are both off: stage 2 would have no loss")
        if self.recipe not in RECIPES:
            raise ConfigError(f"unknown recipe {self.recipe!r}; choose {' or '.join(map(repr, RECIPES))}")


def for_preset(cfg: Stage2Config, name: str, model: VideoTextConfig) -> Stage2Config:
    """The config with preset ``name``'s teacher; every preset but the tiny one gets Table 11's decoders."""
    decoder = cfg.decoder if name.endswith("-tiny") else TABLE_11_DECODER
    return override(cfg, model=model, decoder=decoder)


def teacher_folder(cfg: Stage2Config, seed: int) -> Path:
    """The stage-1 checkpoint to distil from: ``cfg.teacher``, or the one ``data_small/`` ships for ``seed``."""
    folder = Path(cfg.teacher) if cfg.teacher else DATA_DIR / "checkpoints" / "videoprism-stage1" / f"seed{seed}"
    if not (folder / "model.safetensors").is_file():
        raise CheckpointError(f"no stage-1 teacher in {folder}; train one with: python -m minimodels run "
                                f"videoprism-stage1 --seed {seed} --out {folder}  (or pass --set teacher=FOLDER)")
    return folder


def load_teacher(folder: Path, expected: VideoTextConfig | None = None) -> VideoTextModel:
    """A frozen stage-1 model from a checkpoint folder (model.safetensors + config.json). With ``expected`` (the
    experiment's model), a teacher of another architecture is refused: the student would silently be the teacher's
    size while the run's config.json claimed the preset's."""
    saved = from_dict(VideoTextConfig, json.loads((folder / "config.json").read_text())["config"]["model"])
    if expected is not None:  # how attention is computed is the run's choice, not the teacher's architecture
        saved = replace(saved, video=replace(saved.video, attn_impl=expected.video.attn_impl))
    if expected is not None and saved != expected:
        raise CheckpointError(
            f"the teacher in {folder} is {describe(saved)}, but this run's model is {describe(expected)}; train a "
            f"teacher of the same preset with: python -m minimodels run videoprism-stage1 --preset PRESET --seed N "
            f"--out FOLDER, then pass --set teacher=FOLDER")
    teacher = saved.build()
    load_checkpoint(folder, teacher)
    return teacher.eval().requires_grad_(False)


def describe(model: VideoTextConfig) -> str:
    v = model.video
    return (f"width {v.width}, {v.spatial_layers}+{v.temporal_layers} layers, {v.image_size}² frames in "
            f"{v.patch_size}² patches, {v.num_frames} frames, {model.text_layers} text layers")


class Stage2Model(nn.Module):
    """What stage 2 trains: the student encoder and both decoders (the teacher is kept outside, frozen)."""

    def __init__(self, teacher: VideoTextModel, decoder: DecoderConfig):
        super().__init__()
        v = teacher.cfg.video
        self.student = copy.deepcopy(teacher.encoder).requires_grad_(True)
        d = decoder
        self.local = LocalDecoder(v.width, d.width, d.layers, d.heads, d.mlp_dim, v.width,
                                  v.num_frames * v.tokens_per_frame, v.ln_eps)
        self.global_ = GlobalDecoder(v.width, d.width, d.layers, d.heads, d.mlp_dim, v.width, v.ln_eps)


def make_mask(cfg: Stage2Config, batch: int, grid: int, generator: torch.Generator) -> torch.Tensor:
    """(B, M) kept spatial positions, the same in every frame, so both factorized stages stay dense."""
    return MASKS[cfg.mask](batch, grid, cfg.mask_ratio, generator)


def stage2_loss(model: Stage2Model, teacher: VideoTextModel, video: torch.Tensor, cfg: Stage2Config,
                generator: torch.Generator) -> tuple[torch.Tensor, dict]:
    """One batch of float clips (B, T, H, W, C) -> (L_local + L_global, per-part logs)."""
    v = teacher.cfg.video
    B, T, N, device = len(video), v.num_frames, v.tokens_per_frame, video.device
    with torch.no_grad():  # the teacher sees the whole clip and never learns
        target_tokens = teacher_targets(teacher, video, cfg.target_norm)  # (B, T·N, D)
        target_global = teacher.encode_video(video)  # (B, D): its stage-1 MAP head
    keep = per_example(lambda n: make_mask(cfg, n, v.grid, generator), B).to(device)  # (B, M)
    student = model.student(video, visible=keep)  # (B, T·M, D)
    loss, logs = video.new_zeros(()), {}
    if cfg.local_distill:
        perm = per_example(lambda n: random_permutations(n, T * N, generator), B).to(device) if cfg.shuffle else None
        local = cosine_distance(model.local(student, keep, T, N, perm), target_tokens)  # (B, T·N), canonical order
        seen = seen_slots(keep, T, N)  # which canonical positions the student saw
        loss = loss + local.mean()
        logs.update(loss_visible=local[seen].mean().item(), loss_masked=local[~seen].mean().item())
    if cfg.global_distill:
        global_ = cosine_distance(model.global_(student), target_global).mean()
        loss = loss + global_
        logs["loss_global"] = global_.item()
    return loss, logs


def run(cfg: Stage2Config, seed: int = 0, out_dir=None) -> ExperimentResult:
    seed_everything(seed)
    device = pick_device()
    size, frames = cfg.model.video.image_size, cfg.model.video.num_frames
    train_data, eval_data = (clip_tensors(split, size, frames=frames) for split in ("train", cfg.eval_split))
    if cfg.recipe == "one-stage":
        encoder, history = train_one_stage(cfg, train_data, seed, device, out_dir)
        metrics, chance = summarise(probe_frozen(encoder, train_data, eval_data, cfg.probe, seed),
                                    majority_chance(eval_data))
        last = history.steps[-1]
        metrics.update({f"final_{k}": round(last[k], 4) for k in ("loss_contrastive", "loss_masked")})
        return ExperimentResult(metrics, chance, headline=["motion_acc", "appearance_acc"], history={"train": history})

    teacher = load_teacher(teacher_folder(cfg, seed), expected=cfg.model).to(device)
    model = Stage2Model(teacher, cfg.decoder).to(device)
    model.student.requires_grad_(cfg.train_student)

    def loss_fn(model, idx, step):  # masks and permutations drawn per step: a resume repeats them
        video = as_float(train_data["video"][idx]).to(device)
        return stage2_loss(model, teacher, video, cfg, rng(seed, step, "stage2-mask"))

    history = train(model, loss_fn, len(train_data["video"]), cfg.train, seed=seed, out_dir=out_dir,
                    desc="videoprism-stage2")
    base = majority_chance(eval_data)
    metrics, chance = summarise(probe_frozen(model.student, train_data, eval_data, cfg.probe, seed), base)
    stage1, _ = summarise(probe_frozen(teacher.encoder, train_data, eval_data, cfg.probe, seed), base)
    metrics.update({f"stage1_{k}": v for k, v in stage1.items()})
    chance.update({f"stage1_{k}": chance[k] for k in stage1})
    last = history.steps[-1]
    metrics.update({f"final_{k}": round(last[k], 4) for k in ("loss_visible", "loss_masked", "loss_global")
                    if k in last})
    metrics.update(premise_check(model, teacher, cfg, seed, eval_data["video"]))
    return ExperimentResult(metrics, chance, headline=["motion_acc", "appearance_acc"], history={"train": history})


def premise_check(model: Stage2Model, teacher: VideoTextModel, cfg: Stage2Config, seed: int,
                  video: torch.Tensor) -> dict[str, float]:
    """The masked-target guesses of ``masked_targets.py`` on the eval clips (``video``, uint8 as ``clip_tensors``
    renders them), with the trained student among them:
    {"guess_<name>": cos distance, ..., "guess_student": ..., "masked_object_share": ...}."""
    v = teacher.cfg.video

    def student(video, keep):  # the local decoder's predictions, unshuffled at evaluation (each slot its own)
        with evaluating(model):
            return model.local(model.student(video, visible=keep), keep, v.num_frames, v.tokens_per_frame)

    premise = masked_target_guesses(teacher, load_table("clips", cfg.eval_split).to_list(), video,
                                    lambda b, grid, gen: make_mask(cfg, b, grid, gen), cfg.target_norm,
                                    rng(seed, 0, "stage2-premise"), student=student if cfg.local_distill else None)
    return {f"masked_{k}" if k == "object_share" else f"guess_{k}": value for k, value in premise.items()}


def train_one_stage(cfg: Stage2Config, train_data: dict, seed: int, device, out_dir=None):
    """Fig. 4's baseline: a fresh stage-1 model on InfoNCE + masked patches -> (its video encoder, History)."""
    d = cfg.decoder
    model = OneStageModel(cfg.model, d.width, d.layers, d.heads, d.mlp_dim).to(device)
    texts = text_tensors(load_tokenizer(), "train", TEXT_SOURCES, cfg.model.text_length)
    grid = cfg.model.video.grid

    def loss_fn(model, idx, step):  # the stage-2 masks, and stage 1's alternation of text sources (AGD)
        ids, keep_text = (t[idx].to(device) for t in texts[TEXT_SOURCES[step % len(TEXT_SOURCES)]])
        masks = rng(seed, step, "stage2-mask")
        keep = per_example(lambda n: make_mask(cfg, n, grid, masks), len(idx)).to(device)
        return one_stage_loss(model, as_float(train_data["video"][idx]).to(device), ids, keep_text, keep)

    steps = override(cfg.train, steps=cfg.one_stage_steps)
    history = train(model, loss_fn, len(train_data["video"]), steps, seed=seed, out_dir=out_dir,
                    desc="videoprism one-stage")
    return model.video_text.encoder, history
