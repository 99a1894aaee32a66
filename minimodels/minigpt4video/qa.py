"""The ``minigpt4video-qa`` experiment: three training stages, then video QA with and without subtitles.

The frozen parts come trained (``frame_encoder``, ``tiny_llm``); only the projection and the LoRA adapters learn, in
the paper's three stages (``training.py``, which says what each stage trains on and why), each on the world's training
split. ``blank_frames`` trains and evaluates the same stages on black frames: the text-only baseline that says how much
the frames add. ``sight`` measures after each stage what reaches the LLM from one frame, and stage 2's captions are
scored when stage 2 ends. Evaluation: ``evaluation.py``; the premise counted in the data: ``premise.py``.

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
from .evaluation import (
    CAPTION_FACTS,
    QUESTION_KINDS,
    FirstFrames,
    caption_accuracy,
    description_accuracy,
    evaluate,
    projected_readout,
    ranked_description_accuracy,
)
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
    # What each stage trains on (training.py says why): stage 2's share of caption prompts with subtitles (0: the
    # frames alone, as WebVid; our narration says the captions' own words), stage 3's question kinds (what is shown,
    # as VideoInstruct-100K asks) and its share of prompts with subtitles (the code adds them when a video has them)
    caption_subtitle_share: float = 0.0
    qa_kinds: tuple[str, ...] = ("frames", "many_frames")
    qa_subtitle_share: float = 0.5
    blank_frames: bool = False  # every frame black, in training and evaluation: the text-only baseline
    sight: bool = True  # measure what reaches the LLM from one frame after each stage (evaluation.py)
    image_stage: TrainConfig = field(default_factory=lambda: TrainConfig(steps=600, batch_size=32, lr=1e-3, warmup=20))
    caption_stage: TrainConfig = field(
        default_factory=lambda: TrainConfig(steps=150, batch_size=16, lr=1e-3, warmup=10))
    qa_stage: TrainConfig = field(default_factory=lambda: TrainConfig(steps=500, batch_size=16, lr=1e-3, warmup=20))
    repetition_penalty: float = 1.0  # the code's eval passes 1.5
    eval_limit: int | None = None  # evaluate on the first N questions (None: all 800) and captions on their episodes
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
            "caption_subtitle_share": (finite(self.caption_subtitle_share) and 0 <= self.caption_subtitle_share <= 1,
                                       "a share in [0, 1]"),
            "qa_kinds": (bool(self.qa_kinds) and set(self.qa_kinds) <= set(QUESTION_KINDS),
                         f"one or more of {', '.join(QUESTION_KINDS)}"),
            "qa_subtitle_share": (finite(self.qa_subtitle_share) and 0 <= self.qa_subtitle_share <= 1,
                                  "a share in [0, 1]"),
            "repetition_penalty": (finite(self.repetition_penalty) and self.repetition_penalty > 0, "a number > 0"),
            "eval_limit": (self.eval_limit is None or whole(self.eval_limit), "a whole number >= 1, or none for all"),
            "blank_frames": (not (self.blank_frames and self.manifest),
                             "false with a manifest (the blank-frames baseline is the world's text-only model)")})


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


def train_minigpt4video(cfg: QAConfig, seed: int = 0, folder: RunFolder = NO_FOLDER, after_stage=None):
    """The frozen parts loaded, the three stages trained -> (model, tokenizer, {stage: history});
    ``after_stage(model, tokenizer, stage)`` runs after each stage."""
    seed_everything(seed)
    device = pick_device()
    model, tokenizer = build_minigpt4video(cfg)
    model.to(device)
    hook = None if after_stage is None else (lambda stage: after_stage(model, tokenizer, stage))
    if cfg.manifest:  # stages 1 and 2 read the world's training split, when they train at all
        world = "train" if cfg.image_stage.steps or cfg.caption_stage.steps else None
        episodes = FolderEpisodes(model, cfg.manifest, cfg.loader, beside=world)
    else:
        episodes = Episodes(model, "train", cfg.blank_frames)
    history = train_stages(model, tokenizer, episodes, cfg, seed, device, checkpoints=folder.path,
                           resume=folder.resume, log=folder.log, after_stage=hook)
    return model, tokenizer, history


SIGHT_CLIPS = {"test": 400, "train": 2400}  # the read-out is fitted on the training frames, scored on the test ones
DESCRIBED = 200  # the test frames described (by generation and by ranking)


def sight(model, tokenizer, frames: dict[str, FirstFrames], seed: int) -> tuple[dict[str, float], dict[str, float]]:
    """What reaches the LLM from one frame, three ways (evaluation.py) -> (metrics, chance), keyed
    ``{said|rank|readout}_{attribute}``; ``frames``: the first frames of SIGHT_CLIPS, computed once per run."""
    device = next(model.parameters()).device
    described = frames["test"].head(DESCRIBED)
    ways = {"said": description_accuracy(model, tokenizer, described, device),
            "rank": ranked_description_accuracy(model, tokenizer, described, device),
            "readout": projected_readout(model, frames["train"], frames["test"], device, seed=seed)}
    metrics = {f"{way}_{a}": acc for way, accs in ways.items() for a, acc in accs.items()}
    return metrics, {f"{way}_{a}": round(1 / len(APPEARANCE[a]), 4) for way in ways for a in APPEARANCE}


def run(cfg: QAConfig, seed: int = 0, folder: RunFolder = NO_FOLDER) -> ExperimentResult:
    metrics, chance, held_out, first_frames = {}, {}, [], {}

    def test_episodes(model) -> Episodes:  # the frozen visual tokens of the test split, computed once
        if not held_out:
            held_out.append(FolderEpisodes(model, cfg.eval_manifest or cfg.manifest, cfg.loader) if cfg.manifest
                            else Episodes(model, "test", cfg.blank_frames))
        return held_out[0]

    def look(model, tokenizer, stage):
        if cfg.sight and not cfg.manifest:  # after each stage: can the model still describe one frame?
            if not first_frames:  # the frozen tokens of the frames sight reads, once for the three stages
                first_frames.update({split: FirstFrames(model, split, n, cfg.blank_frames)
                                     for split, n in SIGHT_CLIPS.items()})
            seen, base = sight(model, tokenizer, first_frames, seed)
            metrics.update({f"sight_{k}_{stage}": v for k, v in seen.items()})
            chance.update({f"sight_{k}_{stage}": v for k, v in base.items()})
        if stage == "caption" and not cfg.manifest:  # stage 2, scored when it ends (stage 3 teaches short answers)
            device = next(model.parameters()).device
            for subtitles, suffix in ((True, "subs"), (False, "nosubs")):
                shown = 100 if cfg.eval_limit is None else max(1, cfg.eval_limit // 8)  # the questions' episodes
                for fact, acc in caption_accuracy(model, tokenizer, test_episodes(model), subtitles, device,
                                                  limit=shown).items():
                    metrics[f"caption_{fact}_{suffix}"] = acc
                    chance[f"caption_{fact}_{suffix}"] = round(1 / len(CAPTION_FACTS[fact]), 4)

    model, tokenizer, history = train_minigpt4video(cfg, seed, folder, after_stage=look)
    device = next(model.parameters()).device
    answers = evaluate(model, tokenizer, test_episodes(model), cfg, device)
    chance.update({name: 0.2 for name in answers})  # five options, or five possible answer words, for every question
    metrics.update(answers)
    m = model.cfg
    headline = [f"mcq_ranking_{kind}" for kind in ("subtitles_subs", "subtitles_nosubs", "frames_nosubs", "any_subs",
                                                   "many_frames_nosubs")]
    headline = [name for name in headline if name in metrics]  # a small eval_limit may leave a kind out
    return ExperimentResult(metrics, chance, headline=headline, history=history,
                            info={"frames": m.num_frames, "visual_tokens": m.num_frames * m.tokens_per_frame})
