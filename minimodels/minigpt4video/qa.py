"""The ``minigpt4video-qa`` experiment: three training stages, then video QA with and without subtitles.

The frozen parts come trained (``frame_encoder``, ``tiny_llm``); only the projection and the LoRA adapters learn, in
the paper's three stages (``training.py``), each on the world's training split. Trained on subtitles always, the tiny
model learns to answer the frames questions from the narrators' remarks and not from the frames, so a share of the
video prompts (``subtitle_share``) carry them, as the code's data mix does. Evaluation: ``evaluation.py``.

``manifest`` brings a TVQA-style folder (videos, subtitles, questions with options: ``folder_episodes.py``): stage 3
trains on its questions, after stages 1 and 2 on the world (or none: ``image_stage.steps=0 caption_stage.steps=0``,
from a released ``checkpoint`` or a run's ``init``), and ``eval_manifest`` holds the questions scored (accuracy by
``kind``). ``init`` starts the projection and LoRA from a run folder of this experiment.

The full presets run the same stages on the real parts, given by path (``llm_path``, ``vision_path``, optionally a
released ``checkpoint``; ``official_weights.py``), with the official batch of 4 and the LLM's activations recomputed
in the backward pass; without the paths they stop at once and name what is missing (``require_frozen_parts``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from ..data.dataset import LoaderConfig
from ..data.world import APPEARANCE
from ..engine.checkpoint import init_from
from ..engine.config import finite, require, whole
from ..engine.device import pick_device
from ..engine.errors import CheckpointError, ConfigError
from ..engine.experiment import NO_FOLDER, RunFolder
from ..engine.results import ExperimentResult
from ..engine.rng import seed_everything
from ..engine.train import TrainConfig
from ..nn.text import load_tokenizer
from .evaluation import description_accuracy, evaluate
from .folder_episodes import FolderEpisodes
from .frame_encoder import load_frame_encoder
from .model import FrameViTConfig, LLMConfig, MiniGPT4Video, MiniGPT4VideoConfig
from .official_weights import load_eva_vit, load_llm, load_minigpt4video_checkpoint
from .tiny_llm import load_tiny_llm
from .training import Episodes, train_stages


@dataclass
class QAConfig:
    model: MiniGPT4VideoConfig = field(default_factory=MiniGPT4VideoConfig)
    frames: int | None = None  # sampled frames per video (None: the preset's)
    merge: bool | None = None  # 4→1 token merging (None: the preset's); changing it without ``frames`` keeps the
    # visual token budget: merge=false on the tiny preset reads 2 frames of 64 tokens instead of 8 frames of 16
    subtitle_share: float = 0.5  # of the video prompts in stages 2 and 3 that carry their subtitles (the code's stage 2
    # mixes CMD, read with subtitles, and WebVid, read without; stage 3 adds them when a video has them)
    image_stage: TrainConfig = field(default_factory=lambda: TrainConfig(steps=600, batch_size=32, lr=1e-3, warmup=20))
    caption_stage: TrainConfig = field(
        default_factory=lambda: TrainConfig(steps=150, batch_size=16, lr=1e-3, warmup=10))
    qa_stage: TrainConfig = field(default_factory=lambda: TrainConfig(steps=500, batch_size=16, lr=1e-3, warmup=20))
    repetition_penalty: float = 1.0  # the code's eval passes 1.5
    eval_limit: int | None = None  # evaluate on the first N questions (None: all 600)
    # The real parts (official_weights.py; the README says where they come from). None: the shipped tiny ones, which
    # fit the tiny preset only.
    llm_path: str | None = None  # a save_pretrained folder: Llama-2-7b-chat-hf, Mistral-7B-Instruct-v0.2
    vision_path: str | None = None  # BLIP-2's eva_vit_g.pth
    checkpoint: str | None = None  # a released MiniGPT4-Video checkpoint: the projection and LoRA start from it
    recompute_activations: bool = False  # the LLM's activations recomputed in backward (the code's video stages)
    manifest: str = ""  # a TVQA-style folder's questions for stage 3 (videos, subtitles, options): folder_episodes.py
    eval_manifest: str = ""  # its held-out questions ("": the manifest's own)
    init: str = ""  # the projection and LoRA from a run folder of this experiment
    loader: LoaderConfig = field(default_factory=LoaderConfig)  # how a folder's videos are decoded

    def __post_init__(self):
        require(self, {
            "frames": (self.frames is None or whole(self.frames), "a whole number >= 1, or none for the preset's"),
            "subtitle_share": (finite(self.subtitle_share) and 0 <= self.subtitle_share <= 1, "a share in [0, 1]"),
            "repetition_penalty": (finite(self.repetition_penalty) and self.repetition_penalty > 0, "a number > 0"),
            "eval_limit": (self.eval_limit is None or whole(self.eval_limit), "a whole number >= 1, or none for all")})


def for_preset(cfg: QAConfig, name: str, model: MiniGPT4VideoConfig) -> QAConfig:
    """The full presets train as the official video stages: batch 4, the LLM's activations recomputed."""
    if model == MiniGPT4VideoConfig():
        return replace(cfg, model=model)
    stages = {s: replace(getattr(cfg, s), batch_size=4) for s in ("image_stage", "caption_stage", "qa_stage")}
    return replace(cfg, model=model, recompute_activations=True, **stages)


def require_frozen_parts(cfg: QAConfig) -> None:
    """The shipped frozen parts fit the tiny sizes only: other sizes need the real ones, named here. Paths given are
    checked first, before minutes are spent loading a 7B LLM."""
    files = {"llm_path": cfg.llm_path and Path(cfg.llm_path) / "config.json",
             "vision_path": cfg.vision_path and Path(cfg.vision_path),
             "checkpoint": cfg.checkpoint and Path(cfg.checkpoint)}
    absent = [f"{key}={getattr(cfg, key)}" for key, file in files.items() if file and not file.is_file()]
    if absent:
        raise CheckpointError(f"not found: {', '.join(absent)} (llm_path: a folder written by transformers' "
                              f"save_pretrained; vision_path and checkpoint: files; see the README)")
    missing = []
    if cfg.llm_path is None and cfg.model.llm != LLMConfig():
        missing.append(f"llm_path=<folder> (a {cfg.model.llm.family} LLM saved by transformers' save_pretrained)")
    if cfg.vision_path is None and cfg.model.vision != FrameViTConfig():
        missing.append("vision_path=<file> (EVA-CLIP ViT-g: BLIP-2's eva_vit_g.pth)")
    if missing:
        raise ConfigError(f"these sizes need pretrained EVA-CLIP and LLM weights, which the course does not ship: "
                          f"--set {' '.join(missing)}; the README's 'The real MiniGPT4-Video' says where they come "
                          f"from")


def configured(cfg: QAConfig) -> MiniGPT4VideoConfig:
    """A copy of the preset with the experiment's ``frames`` and ``merge`` applied."""
    m = cfg.model
    merge = m.merge if cfg.merge is None else cfg.merge
    frames = cfg.frames
    if frames is None:
        frames = m.num_frames
        if merge != m.merge:  # keep the visual budget: 4x more merged frames, or 4x fewer unmerged
            frames = frames * 4 if merge else max(1, frames // 4)
    return replace(m, merge=merge, num_frames=frames)


def build_minigpt4video(cfg: QAConfig) -> tuple[MiniGPT4Video, object]:
    """The model with its frozen parts loaded (the shipped tiny ones, or the real ones the config names) and its
    projection and LoRA fresh or from ``cfg.checkpoint`` -> (model, the LLM's tokenizer)."""
    require_frozen_parts(cfg)
    m = configured(cfg)
    llm, tokenizer = load_llm(m.llm, cfg.llm_path) if cfg.llm_path else (load_tiny_llm(m.llm), load_tokenizer())
    model = MiniGPT4Video(m, llm=llm)
    if cfg.vision_path:
        left_out = load_eva_vit(model.vision, cfg.vision_path)
        print(f"EVA ViT from {cfg.vision_path}; left out of the file: {len(left_out)} tensors {left_out[:3]}")
    else:
        load_frame_encoder(model)
    if cfg.checkpoint:
        print(load_minigpt4video_checkpoint(model, cfg.checkpoint))
    if cfg.init:
        print(f"init: {init_from(model, cfg.init)}")
    if cfg.recompute_activations:  # transformers' name for it: activation (before 5.x: gradient) checkpointing
        if hasattr(model.llm, "activation_checkpointing_enable"):
            model.llm.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            model.llm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return model, tokenizer


def train_minigpt4video(cfg: QAConfig, seed: int = 0, folder: RunFolder = NO_FOLDER):
    """The frozen parts loaded, the three stages trained -> (model, tokenizer, {stage: history})."""
    seed_everything(seed)
    device = pick_device()
    model, tokenizer = build_minigpt4video(cfg)
    model.to(device)
    if cfg.manifest:  # stages 1 and 2 read the world's training split, when they train at all
        world = "train" if cfg.image_stage.steps or cfg.caption_stage.steps else None
        episodes = FolderEpisodes(model, cfg.manifest, cfg.loader, beside=world)
    else:
        episodes = Episodes(model, "train")
    history = train_stages(model, tokenizer, episodes, cfg, seed, device, checkpoints=folder.path,
                           resume=folder.resume, log=folder.log)
    return model, tokenizer, history


def run(cfg: QAConfig, seed: int = 0, folder: RunFolder = NO_FOLDER) -> ExperimentResult:
    model, tokenizer, history = train_minigpt4video(cfg, seed, folder)
    device = next(model.parameters()).device
    held_out = (FolderEpisodes(model, cfg.eval_manifest or cfg.manifest, cfg.loader) if cfg.manifest
                else Episodes(model, "test"))
    metrics = evaluate(model, tokenizer, held_out, cfg, device)
    m = model.cfg
    chance = {name: 0.2 for name in metrics}  # five options, or five possible answer words, for every question
    for attribute, acc in description_accuracy(model, tokenizer, device=device).items():
        metrics[f"describe_{attribute}"] = acc
        chance[f"describe_{attribute}"] = round(1 / len(APPEARANCE[attribute]), 4)
    headline = [f"mcq_ranking_{kind}" for kind in ("subtitles_subs", "subtitles_nosubs", "frames_nosubs", "any_subs",
                                                   "many_frames_nosubs")]
    headline = [name for name in headline if name in metrics]  # a small eval_limit may leave a kind out
    return ExperimentResult(metrics, chance, headline=headline, history=history,
                            info={"frames": m.num_frames, "visual_tokens": m.num_frames * m.tokens_per_frame})
