"""The ``minigpt4video-qa`` experiment: three training stages, then video QA with and without subtitles.

The frozen parts come trained (``frame_encoder``, ``tiny_llm``); only the projection and the LoRA adapters learn, in
the paper's three stages (arXiv 2404.03413, §3.2–3.3; the official ``train_configs/*.yaml``), each on the world's
training split:

1. image–text alignment: one frame -> what it shows ("a large red circle"), with the code's image prompt
   ``<Img><ImageHere></Img>``;
2. video captioning: an episode's sampled frames (+ subtitles) -> its clips' captions joined by "then";
3. video QA instruction tuning: an episode (+ subtitles) and a question -> the answer, open-ended and multiple
   choice mixed.

Evaluation on the held-out episodes' questions, per kind (frames / subtitles / both): multiple choice by greedy
generation of the option's number (with the code's optional repetition penalty) and by ranking the five options'
answer loss (the code's ``multi_select``), and open-ended exact match. ``subtitles=false`` drops the subtitles from
the evaluation prompts only: the same trained model answers with and without them, as in the paper's TVQA rows.

What the tiny run shows (seeds 0-2, ``results/minigpt4video-qa--subtitles.json``; chance 0.2 everywhere): open-ended,
subtitles lift the spoon-count questions well above chance on every seed while the frames questions stay where they
were, the paper's direction. Multiple choice stays at chance with and without subtitles: the frozen tiny LLM never
learned to map an answer to its option number (``tiny_llm``), and LoRA of rank 8 on two layers does not add that
look-up. Notebook 05 and the README give the numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F

from ..data.dataset import as_float, clip_tensors, load_table
from ..engine.errors import ConfigError
from ..engine.results import ExperimentResult
from ..engine.rng import py_rng, seed_everything
from ..engine.train import TrainConfig, pick_device, train
from ..eval.loop import batched, evaluating
from ..nn.text import IGNORE, load_tokenizer
from .episodes import episode_videos, question_prompt, sample_episode
from .frame_encoder import load_frame_encoder
from .model import MiniGPT4Video, MiniGPT4VideoConfig
from .prompt import assemble, collate, interleaved_prompt
from .tiny_llm import load_tiny_llm

QUESTION_KINDS = ("frames", "subtitles", "both")


@dataclass
class QAConfig:
    model: MiniGPT4VideoConfig = field(default_factory=MiniGPT4VideoConfig)
    subtitles: bool = True  # in the evaluation prompts (training always has them, as the code when available)
    frames: int | None = None  # sampled frames per video (None: the preset's)
    merge: bool | None = None  # 4→1 token merging (None: the preset's); changing it without ``frames`` keeps the
    # visual token budget: merge=false on the tiny preset reads 2 frames of 64 tokens instead of 8 frames of 16
    image_stage: TrainConfig = field(default_factory=lambda: TrainConfig(steps=150, batch_size=32, lr=1e-3, warmup=10))
    caption_stage: TrainConfig = field(
        default_factory=lambda: TrainConfig(steps=150, batch_size=16, lr=1e-3, warmup=10))
    qa_stage: TrainConfig = field(default_factory=lambda: TrainConfig(steps=500, batch_size=16, lr=1e-3, warmup=20))
    repetition_penalty: float = 1.0  # the code's eval passes 1.5
    eval_limit: int | None = None  # evaluate on the first N questions (None: all 600)


def for_preset(cfg: QAConfig, name: str, model: MiniGPT4VideoConfig) -> QAConfig:
    if name != "minigpt4video-tiny":  # the frozen parts it loads are the shipped tiny ones
        raise ConfigError(f"experiment 'minigpt4video-qa' runs the tiny preset only: {name!r} needs pretrained "
                          f"EVA-CLIP and LLM weights the course does not ship (use `info {name}` for its sizes)")
    return replace(cfg, model=model)


def frozen_tokens(model: MiniGPT4Video, video: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """uint8 frames (B, N, H, W, C) -> their frozen visual tokens (B, N, K, D_merged), a batch at a time, on CPU."""
    device = next(model.parameters()).device
    return batched(lambda rows: model.visual_tokens(as_float(video[rows]).to(device)), len(video), batch_size)


class Episodes:
    """One split's episodes: their frozen visual tokens, computed once (the projection is applied per step), and the
    subtitles aligned to the sampled frames (a prompt without subtitles simply leaves them out)."""

    def __init__(self, model: MiniGPT4Video, split: str):
        m = model.cfg
        rows = load_table("clips", split).to_list()
        self.episodes = load_table("episodes", split).to_list()
        self.qa = load_table("qa", split).to_list()
        self.rows = rows
        videos = episode_videos(clip_tensors(split, m.vision.image_size)["video"], rows, self.episodes)
        self.subtitles, frames = {}, []
        for e in self.episodes:
            sampled, texts = sample_episode(videos[e["episode"]], m.num_frames, subtitles=True,
                                            max_words=m.max_subtitle_words)
            self.subtitles[e["episode"]] = texts
            frames.append(sampled)
        self.position = {e["episode"]: i for i, e in enumerate(self.episodes)}
        self.tokens = frozen_tokens(model, torch.stack(frames))  # (E, N, K, D_merged)


def appearance_of(clip: dict) -> str:
    """What one frame of a clip shows, in words (stage 1's answer): "a large red circle"."""
    return f"a {clip['size']} {clip['colour']} {clip['shape']}"


def captions_of(rows: list[dict], episode: int) -> str:
    return " then ".join(r["caption"] for r in sorted(rows, key=lambda r: r["step"]) if r["episode"] == episode)


def prompt_batch(model, tokenizer, prompts: list[tuple[str, torch.Tensor, str | None]], device):
    """[(prompt, frozen visual tokens (N, K, D_merged), answer)] -> a collated LLM batch (projection applied)."""
    items = [assemble(tokenizer, model.embed, p, model.proj(tokens.to(device)), a, model.cfg.llm.context_length)
             for p, tokens, a in prompts]
    return collate(items)


def llm_loss(model, batch) -> torch.Tensor:
    return model.llm(inputs_embeds=batch["inputs_embeds"], attention_mask=batch["attention_mask"],
                     labels=batch["labels"]).loss


def train_stages(model, tokenizer, train_eps: Episodes, cfg: QAConfig, seed: int, device, out_dir=None):
    m = model.cfg
    frame_rows = train_eps.rows
    single = frozen_tokens(model, clip_tensors("train", m.vision.image_size)["video"][:, :1])  # (clips, 1, K, D)
    image_prompt = "[INST] <Img><ImageHere></Img> describe this image.[/INST]"

    def image_loss(model, idx, step):
        batch = prompt_batch(model, tokenizer, [(image_prompt, single[i], appearance_of(frame_rows[i]))
                                                for i in idx.tolist()], device)
        return llm_loss(model, batch), {}

    def caption_loss(model, idx, step):
        prompts = []
        for i in idx.tolist():
            e = train_eps.episodes[i]["episode"]
            prompts.append((interleaved_prompt(train_eps.subtitles[e], "describe this video."), train_eps.tokens[i],
                            captions_of(frame_rows, e)))
        return llm_loss(model, prompt_batch(model, tokenizer, prompts, device)), {}

    def qa_loss(model, idx, step):
        rng = py_rng(seed, step, "question-format")  # open-ended or multiple choice, per question
        prompts = []
        for i in idx.tolist():
            qa = train_eps.qa[i]
            prompt, answer = question_prompt(train_eps.subtitles[qa["episode"]], qa, rng.random() < 0.5)
            prompts.append((prompt, train_eps.tokens[train_eps.position[qa["episode"]]], answer))
        return llm_loss(model, prompt_batch(model, tokenizer, prompts, device)), {}

    return {"image": train(model, image_loss, len(frame_rows), cfg.image_stage, seed=seed, desc="stage 1 image"),
            "caption": train(model, caption_loss, len(train_eps.episodes), cfg.caption_stage, seed=seed,
                             desc="stage 2 captions"),
            "qa": train(model, qa_loss, len(train_eps.qa), cfg.qa_stage, seed=seed, out_dir=out_dir,
                        desc="stage 3 QA")}


@torch.no_grad()
def answer_losses(model, tokenizer, prompt: str, tokens, answers: list[str], device) -> torch.Tensor:
    """Mean token loss of each candidate answer after the same prompt (the code's multi_select): (len(answers),)."""
    batch = prompt_batch(model, tokenizer, [(prompt, tokens, a) for a in answers], device)
    logits = model.llm(inputs_embeds=batch["inputs_embeds"], attention_mask=batch["attention_mask"]).logits
    labels = batch["labels"][:, 1:]
    loss = F.cross_entropy(logits[:, :-1].transpose(1, 2).float(), labels, ignore_index=IGNORE, reduction="none")
    return loss.sum(1) / (labels != IGNORE).sum(1)


@torch.no_grad()
def generate(model, tokenizer, prompt: str, tokens, device, penalty: float, max_new_tokens: int = 4) -> str:
    batch = prompt_batch(model, tokenizer, [(prompt, tokens, None)], device)
    out = model.llm.generate(inputs_embeds=batch["inputs_embeds"], attention_mask=batch["attention_mask"],
                             max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
                             repetition_penalty=penalty, eos_token_id=tokenizer.eos_token_id,
                             pad_token_id=tokenizer.pad_token_id)
    return tokenizer.decode(out[0], skip_special_tokens=True).strip()


def evaluate(model, tokenizer, eps: Episodes, cfg: QAConfig, device, subtitles: bool) -> dict:
    """Accuracy per question kind and way of answering, with or without the subtitles in the prompts."""
    questions = eps.qa[: cfg.eval_limit] if cfg.eval_limit else eps.qa
    hits = {(k, how): 0 for k in QUESTION_KINDS for how in ("mcq_generation", "mcq_ranking", "open")}
    counts = {k: 0 for k in QUESTION_KINDS}
    with evaluating(model):
        for qa in questions:
            texts, tokens = eps.subtitles[qa["episode"]], eps.tokens[eps.position[qa["episode"]]]
            texts = texts if subtitles else [None] * len(texts)
            kind = qa["kind"]
            counts[kind] += 1
            prompt, index = question_prompt(texts, qa, multiple_choice=True)
            hits[kind, "mcq_generation"] += generate(model, tokenizer, prompt, tokens, device,
                                                     cfg.repetition_penalty)[:1] == index
            hits[kind, "mcq_ranking"] += answer_losses(model, tokenizer, prompt, tokens, [str(i) for i in range(5)],
                                                       device).argmin().item() == int(index)
            prompt, word = question_prompt(texts, qa, multiple_choice=False)
            hits[kind, "open"] += generate(model, tokenizer, prompt, tokens, device, cfg.repetition_penalty) == word
    out = {f"{how}_{k}": round(hits[k, how] / counts[k], 4) for (k, how) in hits if counts[k]}
    total = sum(counts.values())
    for how in ("mcq_generation", "mcq_ranking", "open"):
        out[f"{how}_overall"] = round(sum(hits[k, how] for k in QUESTION_KINDS) / total, 4)
    return out


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


def train_minigpt4video(cfg: QAConfig, seed: int = 0, out_dir=None):
    """The frozen parts loaded, the three stages trained -> (model, tokenizer, {stage: history})."""
    seed_everything(seed)
    device = pick_device()
    m = configured(cfg)
    tokenizer = load_tokenizer()
    model = MiniGPT4Video(m, llm=load_tiny_llm(m.llm))
    load_frame_encoder(model)
    model.to(device)
    history = train_stages(model, tokenizer, Episodes(model, "train"), cfg, seed, device, out_dir)
    return model, tokenizer, history


def run(cfg: QAConfig, seed: int = 0, out_dir=None) -> ExperimentResult:
    model, tokenizer, history = train_minigpt4video(cfg, seed, out_dir)
    metrics = evaluate(model, tokenizer, Episodes(model, "test"), cfg, next(model.parameters()).device, cfg.subtitles)
    m = model.cfg
    chance = {name: 0.2 for name in metrics}  # five options, or five possible answer words, for every question
    return ExperimentResult(metrics, chance, headline=["open_subtitles", "open_frames", "mcq_ranking_overall"],
                            history=history, info={"frames": m.num_frames,
                                                   "visual_tokens": m.num_frames * m.tokens_per_frame})
