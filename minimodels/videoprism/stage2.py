"""The ``videoprism-stage2`` experiment: masked video modelling with global–local distillation (arXiv 2402.13217,
§2.3.2, App. C.2, Alg. 1, Table 11).

The frozen stage-1 model (the teacher) sees the whole clip. The student starts as a copy of its video encoder and
sees what BEVT's masks leave (``nn/masking.py``: a 2-D block mask over 65 % of the grid, laid over 50–75 % of the
frames); its output feeds the two decoders of ``distill.py``:

    L = L_local + L_global = mean_i [1 - cos(ŷ_i, y_i)] + [1 - cos(ĝ, g)]        equal weights, each switchable

where y_i is the teacher's token at canonical position i, as it is (the paper's targets; ``target_norm`` offers
data2vec's per-token layer norm and a per-clip standardisation), and g the teacher's stage-1 MAP embedding. Only
clips are used, never their text. The schedule is the paper's (App. C.2, Table 10): peak learning rate 5·10⁻⁴,
linear warm-up over a twelfth of the steps (2.5·10⁴ of 3·10⁵), cosine decay to 10⁻⁵, weight decay 0.05 (AdamW
for Adafactor). Evaluation: frozen-feature attribute probes (one MAP head per attribute, as VideoGLUE) on the student
and, for reference, on the stage-1 encoder; the premise check of ``masked_targets.py`` with the trained student
among the guesses; and the token-wise loss on the slots the student saw and on the masked ones (``jigsaw_*``).

``recipe="one-stage"`` runs Fig. 4's baseline instead (``one_stage.py``).

On real video: ``manifest`` lists the videos to distil on (their text, if any, is never read: stage 2 needs clips
alone); the probes are fit on ``probe_manifest``'s labelled videos and scored on ``eval_manifest``'s, and the jigsaw
is measured on those (the premise check needs the world's scenes, so it is left out). ``teacher`` may be a public LvT
(a transformers ``save_pretrained`` folder: the paper's own stage-1 model as the teacher), and ``init`` starts the
student from other weights than the teacher's encoder (a run folder, or a public VideoPrism encoder).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from torch import nn

from ..data.dataset import LoaderConfig, as_float, clip_tensors, take
from ..data.video_folder import folder_split
from ..engine.batches import Batch, nothing_to_learn, per_example
from ..engine.config import finite, override, require, whole
from ..engine.device import pick_device
from ..engine.errors import ConfigError
from ..engine.experiment import NO_FOLDER, RunFolder
from ..engine.history import History
from ..engine.results import ExperimentResult
from ..engine.rng import rng, seed_everything
from ..engine.train import TrainConfig, train
from ..eval.probes import ATTRIBUTES, frozen_probe_config, majority_chance, probe_frozen, summarise
from ..nn.masking import BEVT_SPAN, MIN_BLOCK, stage2_keep
from .distill import TARGET_NORMS, GlobalDecoder, LocalDecoder, cosine_distance, normalise_targets, random_permutations
from .one_stage import train_one_stage
from .stage2_checks import jigsaw, premise_check
from .teacher import load_teacher, teacher_folder
from .transformers_weights import init_videoprism
from .video_text import VideoTextConfig, VideoTextModel
from .vit_probe import folder_classes


@dataclass
class DecoderConfig:
    """Both decoders' size. App. C.2 and Table 11: four transformer layers at every model size, between MLP
    projectors (1408 -> 512 -> 1408 for VideoPrism-g). The tiny decoders keep the four layers at the tiny encoder's
    own width, 64, with its 4 heads; the paper does not give the heads (Table-11 size: MAE's decoder, 16 heads of
    32 at width 512)."""

    width: int = 64
    layers: int = 4
    heads: int = 4
    mlp_dim: int = 256

    def __post_init__(self):
        require(self, {
            "width": (whole(self.width), "a whole number >= 1"),
            "layers": (whole(self.layers), "a whole number >= 1"),
            "heads": (whole(self.heads) and self.width % self.heads == 0,
                      f"a whole number >= 1 that divides width={self.width}"),
            "mlp_dim": (whole(self.mlp_dim), "a whole number >= 1")})


TABLE_11_DECODER = DecoderConfig(width=512, layers=4, heads=16, mlp_dim=2048)
MASK_KINDS = ("bevt", "block-tube", "tube")
RECIPES = ("two-stage", "one-stage")


def paper_schedule(steps: int = 600) -> TrainConfig:
    """App. C.2's schedule at ``steps``: 5e-4 peak, a twelfth of the run warming up, cosine to 1e-5, decay 0.05."""
    return TrainConfig(steps=steps, batch_size=32, lr=5e-4, min_lr=1e-5, warmup_share=1 / 12, weight_decay=0.05)


@dataclass
class Stage2Config:
    model: VideoTextConfig = field(default_factory=VideoTextConfig)  # the teacher's architecture
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    train: TrainConfig = field(default_factory=paper_schedule)
    probe: TrainConfig = field(default_factory=frozen_probe_config)
    teacher: str = ""  # a stage-1 checkpoint folder; "" = the one shipped for this seed (see teacher_folder)
    mask: str = "bevt"  # BEVT's (the paper's), "block-tube" (its blocks in every frame) or "tube" (random positions)
    mask_ratio: float = 0.65  # the share of a masked frame's patches (BEVT's num_masking_patches / N)
    mask_span: tuple[float, float] = BEVT_SPAN  # BEVT: the share of frames its 2-D mask covers, drawn in this range
    mask_min_block: int = MIN_BLOCK  # patches in BEVT's smallest rectangle
    shuffle: bool = True
    local_distill: bool = True
    global_distill: bool = True
    target_norm: str = "none"  # "none" (the paper), "layer" (per token) or "instance" (per channel over the clip)
    train_student: bool = True  # False: the decoders alone learn, on a frozen copy of the teacher (a diagnostic:
    # how long does the token-wise decoder take to solve the shuffled jigsaw when the student cannot move?)
    recipe: str = "two-stage"  # or "one-stage": Fig. 4's baseline (see one_stage.py)
    # recipe="one-stage": a stage-1 model's schedule (it is one, with a masked loss beside), for both stages' steps
    one_stage_train: TrainConfig = field(default_factory=lambda: TrainConfig(steps=1200, batch_size=64, lr=2e-3,
                                                                             warmup=30))
    eval_split: str = "test"
    manifest: str = ""  # real videos to distil on instead of the world's clips (videos alone)
    probe_manifest: str = ""  # labelled videos the probes are fit on, and ...
    eval_manifest: str = ""  # ... the labelled held-out videos they are scored on ("": no probes)
    init: str = ""  # the student's starting weights ("": the teacher's encoder); a run folder or a public encoder
    loader: LoaderConfig = field(default_factory=LoaderConfig)  # how a folder's videos are decoded

    def __post_init__(self):  # checked when the config is made, so a bad setting never starts a run
        choices = {"mask": MASK_KINDS, "target_norm": TARGET_NORMS, "recipe": RECIPES}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(f"unknown {name} {getattr(self, name)!r}; choose one of {', '.join(allowed)}")
        if not (self.local_distill or self.global_distill):
            raise ConfigError("local_distill and global_distill are both off: stage 2 would have no loss")
        low, high = self.mask_span if len(self.mask_span) == 2 else (-1, -1)
        require(self, {
            "mask_ratio": (finite(self.mask_ratio) and 0 < self.mask_ratio < 1, "a share in (0, 1)"),
            "mask_span": (0 < low <= high <= 1, "two shares of the frames, 0 < low <= high <= 1"),
            "mask_min_block": (whole(self.mask_min_block), "a whole number of patches >= 1")})
        if self.manifest and self.recipe == "one-stage":
            raise ConfigError("recipe='one-stage' trains on the world's clips and texts; a manifest of videos alone "
                              "is for the two-stage recipe (recipe=two-stage)")
        if bool(self.probe_manifest) != bool(self.eval_manifest):
            raise ConfigError("probe_manifest and eval_manifest go together: the probes are fit on the one and "
                              "scored on the other (both labelled)")


def for_preset(cfg: Stage2Config, name: str, model: VideoTextConfig) -> Stage2Config:
    """The config with preset ``name``'s teacher; every preset but the tiny one gets Table 11's decoders."""
    decoder = cfg.decoder if name.endswith("-tiny") else TABLE_11_DECODER
    return override(cfg, model=model, decoder=decoder)


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

    def encode(self, video: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """The student on what each frame keeps: (B, T, H, W, C), (B, T, N) visible -> (B, T·N, D). Hidden tokens
        are no key in either factorized stage, so no visible output depends on them; their own rows are never read
        (a position hidden in every frame has no key in the temporal stage, whose attention then adds nothing)."""
        return self.student(video, token_mask=keep)


def make_mask(cfg: Stage2Config, batch: int, frames: int, grid: int, generator: torch.Generator) -> torch.Tensor:
    """(B, T, N) visible tokens, True = the student sees it, for the config's kind of mask."""
    return stage2_keep(cfg.mask, batch, frames, grid, cfg.mask_ratio, generator, cfg.mask_span, cfg.mask_min_block)


def stage2_loss(model: Stage2Model, teacher: VideoTextModel, video: torch.Tensor, cfg: Stage2Config,
                generator: torch.Generator, batch: Batch | None = None,
                decoded: torch.Tensor | None = None) -> tuple[torch.Tensor, dict]:
    """One batch of float clips (B, T, H, W, C) -> (L_local + L_global, per-part logs). ``batch``: the training
    loop's share of the step (masks and permutations are drawn for its whole batch); None outside the loop.
    ``decoded`` (B,) bool: the clips that take part (a folder's video that failed to decode does not)."""
    v = teacher.cfg.video
    B, T, N, device = len(video), v.num_frames, v.tokens_per_frame, video.device
    with torch.no_grad():  # the teacher sees the whole clip and never learns; one pass gives both targets
        teacher_tokens = teacher.encoder(video)  # (B, T·N, D)
        target_tokens = normalise_targets(teacher_tokens, cfg.target_norm) if cfg.local_distill else None
        target_global = teacher.pool_tokens(teacher_tokens) if cfg.global_distill else None  # (B, D): its MAP head
    keep = per_example(lambda n: make_mask(cfg, n, T, v.grid, generator), batch, B).to(device)  # (B, T, N)
    seen = keep.flatten(1)  # (B, T·N), canonical (time-major) order
    student = model.encode(video, keep)  # (B, T·N, D)
    loss, logs = video.new_zeros(()), {}
    if cfg.local_distill:
        perm = (per_example(lambda n: random_permutations(n, T * N, generator), batch, B).to(device)
                if cfg.shuffle else None)
        local = cosine_distance(model.local(student, seen, perm), target_tokens)  # (B, T·N), canonical order
        if decoded is not None:
            local, seen = local[decoded], seen[decoded]
        loss = loss + local.mean()
        logs.update(loss_visible=local[seen].mean().item(), loss_masked=local[~seen].mean().item())
    if cfg.global_distill:
        global_ = cosine_distance(model.global_(student, keep.flatten(1)), target_global)  # (B,)
        global_ = (global_ if decoded is None else global_[decoded]).mean()
        loss = loss + global_
        logs["loss_global"] = global_.item()
    return loss, logs


def late_mean(history: History, key: str, share: float = 0.1) -> float:
    """The mean of a logged quantity over the last ``share`` of the steps that logged it (the last step alone is one
    noisy batch; a folder's step in which no video decoded logs nothing)."""
    rows = [r for r in history.steps if key in r]
    rows = rows[-max(1, round(share * len(rows))):]
    return round(sum(r[key] for r in rows) / len(rows), 4)


def run(cfg: Stage2Config, seed: int = 0, folder: RunFolder = NO_FOLDER) -> ExperimentResult:
    seed_everything(seed)
    device = pick_device()
    v = cfg.model.video
    draw = lambda n, generator: make_mask(cfg, n, v.num_frames, v.grid, generator)  # (B, T, N) stage 2's masks
    if cfg.manifest:
        return run_on_folder(cfg, seed, folder, device, draw)
    train_data, eval_data = (clip_tensors(split, v.image_size, frames=v.num_frames)
                             for split in ("train", cfg.eval_split))
    if cfg.recipe == "one-stage":
        encoder, history = train_one_stage(cfg, draw, train_data, seed, device, folder)
        metrics, chance = summarise(probe_frozen(encoder, train_data, eval_data, cfg.probe, seed, log=folder.log),
                                    majority_chance(eval_data))
        metrics.update({f"late_{k}": late_mean(history, k) for k in ("loss_contrastive", "loss_masked")})
        return ExperimentResult(metrics, chance, headline=["motion_acc", "appearance_acc"], history={"train": history})

    model, teacher, history, info = distil(cfg, seed, folder, device, train_data["video"])
    metrics, chance = probes(cfg, seed, folder, model, teacher, train_data, eval_data)
    metrics.update(late_losses(history))
    if cfg.local_distill:
        metrics.update(jigsaw(model, teacher, cfg, draw, seed, eval_data["video"]))
    metrics.update(premise_check(model, teacher, cfg, draw, seed, eval_data["video"]))
    return ExperimentResult(metrics, chance, headline=["motion_acc", "appearance_acc"], history={"train": history},
                            info=info)


def distil(cfg: Stage2Config, seed: int, folder: RunFolder, device, video) -> tuple:
    """Stage 2 itself on the clips ``video`` (uint8, kept or streamed) -> (Stage2Model, teacher, History, info)."""
    teacher = load_teacher(teacher_folder(cfg, seed), expected=cfg.model).to(device)
    model = Stage2Model(teacher, cfg.decoder)
    info = {"init": init_videoprism(model.student, cfg.init)} if cfg.init else {}
    model.to(device)
    model.student.requires_grad_(cfg.train_student)

    def loss_fn(model, batch, step):  # masks and permutations drawn per step: a resume repeats them
        clips, decoded = take(video, batch.idx)  # a folder's file that failed: left out
        if not decoded.any():
            return nothing_to_learn(model), {}
        return stage2_loss(model, teacher, as_float(clips).to(device), cfg, rng(seed, step, "stage2-mask"), batch,
                           None if decoded.all() else decoded.to(device))

    history = train(model, loss_fn, len(video), cfg.train, seed=seed, checkpoints=folder.path, resume=folder.resume,
                    log=folder.log, desc="videoprism-stage2", prefetch=(video,))
    return model, teacher, history, info


def probes(cfg: Stage2Config, seed: int, folder: RunFolder, model: Stage2Model, teacher: VideoTextModel,
           train_data: dict, eval_data: dict, attributes: dict[str, tuple] = ATTRIBUTES) -> tuple[dict, dict]:
    """Frozen probes of the student and, for reference, of the stage-1 encoder (``stage1_*``) -> (metrics, chance:
    the most frequent class of the held-out videos, those that decoded)."""
    student = probe_frozen(model.student, train_data, eval_data, cfg.probe, seed, attributes, log=folder.log)
    base = majority_chance(eval_data, attributes)  # once the probe has read every held-out video
    metrics, chance = summarise(student, base)
    stage1, _ = summarise(probe_frozen(teacher.encoder, train_data, eval_data, cfg.probe, seed, attributes,
                                       log=folder.log), base)
    metrics.update({f"stage1_{k}": value for k, value in stage1.items()})
    chance.update({f"stage1_{k}": chance[k] for k in stage1})
    return metrics, chance


def late_losses(history: History) -> dict[str, float]:
    return {f"late_{k}": late_mean(history, k) for k in ("loss_visible", "loss_masked", "loss_global")
            if any(k in row for row in history.steps)}


def run_on_folder(cfg: Stage2Config, seed: int, folder: RunFolder, device, draw) -> ExperimentResult:
    """Stage 2 on a folder's videos; probes of a labelled pair of manifests when given, and the jigsaw."""
    v = cfg.model.video
    videos = folder_split(cfg.manifest, v.image_size, v.num_frames, cfg.loader)["video"]
    model, teacher, history, info = distil(cfg, seed, folder, device, videos)
    metrics, chance, headline = late_losses(history), {}, []
    held_out = videos
    if cfg.eval_manifest:
        train_data, eval_data, attributes = folder_classes(cfg.probe_manifest, cfg.eval_manifest, v.image_size,
                                                           v.num_frames, cfg.loader)
        found, chance = probes(cfg, seed, folder, model, teacher, train_data, eval_data, attributes)
        metrics, headline, held_out = {**found, **metrics}, ["acc_label", "stage1_acc_label"], eval_data["video"]
    if cfg.local_distill:
        metrics.update(jigsaw(model, teacher, cfg, draw, seed, held_out))
    return ExperimentResult(metrics, chance, headline=headline, history={"train": history}, info=info)
