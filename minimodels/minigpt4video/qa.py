"""The ``minigpt4video-qa`` experiment: three training stages, then video QA with and without subtitles.

The frozen parts come trained (``frame_encoder``, ``tiny_llm``); only the projection and the LoRA adapters learn, in
the paper's three stages (arXiv 2404.03413, §3.2–3.3; the official ``train_configs/*.yaml``), each on the world's
training split:

1. image–text alignment: one frame -> what it shows ("a large red circle"), with the code's image prompt
   ``<Img><ImageHere></Img>``;
2. video captioning: an episode's sampled frames (+ subtitles) -> its clips' captions joined by "then";
3. video QA instruction tuning: an episode (+ subtitles) and a question -> the answer, open-ended and TVQA-style
   multiple choice mixed.

In stages 2 and 3 a share of the prompts (``subtitle_share``) carry their subtitles: the code's stage 2 mixes CMD,
read with subtitles, and WebVid, whose loader leaves them out, and stage 3 adds them when a video has them. Trained
on subtitles always, the tiny model learns to answer the frames questions from the narrators' remarks and not from
the frames.

Evaluation on the held-out episodes' questions, per kind (frames / subtitles / both / many_frames), each with and
without the subtitles in the prompt (``_subs`` / ``_nosubs``; the same trained model, as in the paper's TVQA rows),
three ways (``episodes.py``): open-ended exact match and TVQA-style generation of the option's number, both in the
code's inference template, and ranking the five option texts by their answer loss (``multi_select``). Also reported:
``describe_*``, how often stage 1's description of a single test frame names its shape, colour and size — what
reaches the LLM from one frame, beside the frame encoder's own probe.

The full presets run the same stages on the real parts, given by path (``llm_path``, ``vision_path``, optionally a
released ``checkpoint``; ``official_weights.py``), with the official batch of 4 and gradient checkpointing in the LLM;
without the paths they stop at once and name what is missing (``require_frozen_parts``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from ..data.dataset import as_float, clip_tensors, load_table
from ..data.world import APPEARANCE
from ..engine.errors import CheckpointError, ConfigError
from ..engine.results import ExperimentResult
from ..engine.rng import py_rng, seed_everything
from ..engine.train import TrainConfig, per_example, pick_device, train
from ..eval.loop import batched, evaluating
from ..nn.text import mean_answer_loss
from ..nn.text import load_tokenizer
from .episodes import episode_videos, question_prompt, sample_episode
from .frame_encoder import load_frame_encoder
from .model import FrameViTConfig, LLMConfig, MiniGPT4Video, MiniGPT4VideoConfig
from .official_weights import load_eva_vit, load_llm, load_minigpt4video_checkpoint
from .prompt import assemble, collate, interleaved_prompt
from .tiny_llm import load_tiny_llm

IMAGE_PROMPT = "[INST] <Img><ImageHere></Img> describe this image.[/INST]"  # stage 1, as the code's image stages
QUESTION_KINDS = ("frames", "subtitles", "both", "many_frames")
WAYS = ("open", "mcq_generation", "mcq_ranking")


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
    gradient_checkpointing: bool = False  # the LLM's activations recomputed in backward (the code's video stages)


def for_preset(cfg: QAConfig, name: str, model: MiniGPT4VideoConfig) -> QAConfig:
    """The full presets train as the official video stages: batch 4, gradient checkpointing in the LLM."""
    if model == MiniGPT4VideoConfig():
        return replace(cfg, model=model)
    stages = {s: replace(getattr(cfg, s), batch_size=4) for s in ("image_stage", "caption_stage", "qa_stage")}
    return replace(cfg, model=model, gradient_checkpointing=True, **stages)


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


def frozen_tokens(model: MiniGPT4Video, video: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """uint8 frames (B, N, H, W, C) -> their frozen visual tokens (B, N, K, D_merged), a batch at a time, on CPU; in
    bf16 on a GPU (the code computes them in fp16): a full preset's 600 training videos hold 20 GB of them."""
    device = next(model.parameters()).device
    kept = torch.bfloat16 if device.type == "cuda" else torch.float32
    return batched(lambda rows: model.visual_tokens(as_float(video[rows]).to(device)).to(kept), len(video),
                   batch_size)


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
    items = [assemble(tokenizer, model.embed, p, model.project(tokens.to(device)), a, model.cfg.llm.context_length)
             for p, tokens, a in prompts]
    return collate(items)


def llm_loss(model, batch) -> torch.Tensor:
    return model.llm(inputs_embeds=batch["inputs_embeds"], attention_mask=batch["attention_mask"],
                     labels=batch["labels"]).loss


def train_stages(model, tokenizer, train_eps: Episodes, cfg: QAConfig, seed: int, device, out_dir=None):
    m = model.cfg
    frame_rows = train_eps.rows
    single = frozen_tokens(model, clip_tensors("train", m.vision.image_size)["video"][:, :1])  # (clips, 1, K, D)

    def image_loss(model, idx, step):
        batch = prompt_batch(model, tokenizer, [(IMAGE_PROMPT, single[i], appearance_of(frame_rows[i]))
                                                for i in idx.tolist()], device)
        return llm_loss(model, batch), {}

    def coins(n: int, rng) -> list[float]:  # one uniform draw per example of the step's batch (see per_example)
        return per_example(lambda size: torch.tensor([rng.random() for _ in range(size)], dtype=torch.float64),
                           n).tolist()

    def subtitles(episode: int, coin: float) -> list[str | None]:  # the episode's subtitles, or none, per prompt
        texts = train_eps.subtitles[episode]
        return texts if coin < cfg.subtitle_share else [None] * len(texts)

    def caption_loss(model, idx, step):
        prompts = []
        for i, coin in zip(idx.tolist(), coins(len(idx), py_rng(seed, step, "prompt-subtitles"))):
            e = train_eps.episodes[i]["episode"]
            prompts.append((interleaved_prompt(subtitles(e, coin), "describe this video."), train_eps.tokens[i],
                            captions_of(frame_rows, e)))
        return llm_loss(model, prompt_batch(model, tokenizer, prompts, device)), {}

    def qa_loss(model, idx, step):
        formats = coins(len(idx), py_rng(seed, step, "question-format"))  # open-ended or multiple choice
        # stage 3's draws of the subtitle stream are keyed apart from stage 2's (same seed, overlapping step numbers)
        shown = coins(len(idx), py_rng(seed, 1_000_000 + step, "prompt-subtitles"))
        prompts = []
        for i, coin, form in zip(idx.tolist(), shown, formats):
            qa = train_eps.qa[i]
            prompt, answer = question_prompt(subtitles(qa["episode"], coin), qa, form < 0.5)
            prompts.append((prompt, train_eps.tokens[train_eps.position[qa["episode"]]], answer))
        return llm_loss(model, prompt_batch(model, tokenizer, prompts, device)), {}

    return {"image": train(model, image_loss, len(frame_rows), cfg.image_stage, seed=seed, desc="stage 1 image"),
            "caption": train(model, caption_loss, len(train_eps.episodes), cfg.caption_stage, seed=seed,
                             desc="stage 2 captions"),
            "qa": train(model, qa_loss, len(train_eps.qa), cfg.qa_stage, seed=seed, out_dir=out_dir,
                        desc="stage 3 QA")}


@torch.no_grad()
def answer_losses(model, tokenizer, prompts: list[tuple[str, torch.Tensor, str]], device) -> torch.Tensor:
    """[(prompt, frozen visual tokens, candidate answer)] -> the mean token loss of each candidate after its prompt
    (the code's ``multi_select``): (len(prompts),)."""
    batch = prompt_batch(model, tokenizer, prompts, device)
    logits = model.llm(inputs_embeds=batch["inputs_embeds"], attention_mask=batch["attention_mask"]).logits
    return mean_answer_loss(logits, batch["labels"])


@torch.no_grad()
def generate(model, tokenizer, prompts: list[tuple[str, torch.Tensor]], device, penalty: float,
             max_new_tokens: int = 4) -> list[str]:
    """Greedy answers to a batch of (prompt, frozen visual tokens), left-padded so each continues its own prompt."""
    items = [assemble(tokenizer, model.embed, p, model.project(tokens.to(device)), None,
                      model.cfg.llm.context_length) for p, tokens in prompts]
    batch = collate(items, left=True)
    out = model.llm.generate(inputs_embeds=batch["inputs_embeds"], attention_mask=batch["attention_mask"],
                             max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
                             repetition_penalty=penalty, eos_token_id=tokenizer.eos_token_id,
                             pad_token_id=tokenizer.pad_token_id)
    return [tokenizer.decode(row, skip_special_tokens=True).strip() for row in out]


def description_accuracy(model, tokenizer, split: str = "test", limit: int = 200, device="cpu") -> dict[str, float]:
    """What reaches the LLM from one frame: the description of the first frame of each clip, asked with stage 1's own
    prompt, scored per attribute (is the clip's shape, colour, size among the words said?)."""
    rows = load_table("clips", split).to_list()[:limit]
    tokens = frozen_tokens(model, clip_tensors(split, model.cfg.vision.image_size)["video"][:limit, :1])
    with evaluating(model):
        said = [generate(model, tokenizer, [(IMAGE_PROMPT, tokens[i]) for i in range(start, min(start + 50, limit))],
                         device, 1.0, max_new_tokens=6) for start in range(0, limit, 50)]
    said = [s.split() for chunk in said for s in chunk]
    return {a: round(sum(r[a] in words for r, words in zip(rows, said)) / len(rows), 4)
            for a in APPEARANCE}


def answer_questions(model, tokenizer, eps: Episodes, questions: list[dict], subtitles: bool, device,
                     penalty: float) -> dict[str, list[bool]]:
    """Whether each question is answered right, per way: open-ended and multiple choice by generation (inference
    template), multiple choice by ranking the option texts (training string)."""
    prompts = {way: [] for way in WAYS}
    for qa in questions:
        texts, tokens = eps.subtitles[qa["episode"]], eps.tokens[eps.position[qa["episode"]]]
        texts = texts if subtitles else [None] * len(texts)
        prompts["open"].append((*question_prompt(texts, qa, multiple_choice=False, inference=True), tokens))
        prompts["mcq_generation"].append((*question_prompt(texts, qa, multiple_choice=True, inference=True), tokens))
        training = question_prompt(texts, qa, multiple_choice=False)[0]
        prompts["mcq_ranking"] += [(training, tokens, option) for option in qa["options"]]
    said = {way: generate(model, tokenizer, [(p, t) for p, _, t in prompts[way]], device, penalty)
            for way in ("open", "mcq_generation")}
    losses = answer_losses(model, tokenizer, prompts["mcq_ranking"], device).view(len(questions), -1)
    return {"open": [s == answer for s, (_, answer, _) in zip(said["open"], prompts["open"])],
            "mcq_generation": [s[:1] == index for s, (_, index, _) in zip(said["mcq_generation"],
                                                                          prompts["mcq_generation"])],
            "mcq_ranking": [pick == qa["answer_index"] for pick, qa in zip(losses.argmin(1).tolist(), questions)]}


def evaluate(model, tokenizer, eps: Episodes, cfg: QAConfig, device, batch_size: int = 40) -> dict:
    """Accuracy per way of answering, question kind and prompt (``_subs``: with the subtitles, ``_nosubs``: without
    them), on the first ``cfg.eval_limit`` questions (all when None)."""
    questions = eps.qa[: cfg.eval_limit] if cfg.eval_limit else eps.qa
    out = {}
    with evaluating(model):
        for subtitles, suffix in ((True, "subs"), (False, "nosubs")):
            right = {way: [] for way in WAYS}
            for start in range(0, len(questions), batch_size):
                chunk = questions[start:start + batch_size]
                for way, hits in answer_questions(model, tokenizer, eps, chunk, subtitles, device,
                                                  cfg.repetition_penalty).items():
                    right[way] += hits
            for way in WAYS:
                for kind in QUESTION_KINDS:
                    hits = [h for h, qa in zip(right[way], questions) if qa["kind"] == kind]
                    if hits:
                        out[f"{way}_{kind}_{suffix}"] = round(sum(hits) / len(hits), 4)
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
    if cfg.gradient_checkpointing:
        model.llm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return model, tokenizer


def train_minigpt4video(cfg: QAConfig, seed: int = 0, out_dir=None):
    """The frozen parts loaded, the three stages trained -> (model, tokenizer, {stage: history})."""
    seed_everything(seed)
    device = pick_device()
    model, tokenizer = build_minigpt4video(cfg)
    model.to(device)
    history = train_stages(model, tokenizer, Episodes(model, "train"), cfg, seed, device, out_dir)
    return model, tokenizer, history


def run(cfg: QAConfig, seed: int = 0, out_dir=None) -> ExperimentResult:
    model, tokenizer, history = train_minigpt4video(cfg, seed, out_dir)
    device = next(model.parameters()).device
    metrics = evaluate(model, tokenizer, Episodes(model, "test"), cfg, device)
    m = model.cfg
    chance = {name: 0.2 for name in metrics}  # five options, or five possible answer words, for every question
    for attribute, acc in description_accuracy(model, tokenizer, device=device).items():
        metrics[f"describe_{attribute}"] = acc
        chance[f"describe_{attribute}"] = round(1 / len(APPEARANCE[attribute]), 4)
    headline = [f"mcq_ranking_{kind}" for kind in ("subtitles_subs", "subtitles_nosubs", "frames_nosubs",
                                                   "many_frames_nosubs")]
    headline = [name for name in headline if name in metrics]  # a small eval_limit may leave a kind out
    return ExperimentResult(metrics, chance, headline=headline, history=history,
                            info={"frames": m.num_frames, "visual_tokens": m.num_frames * m.tokens_per_frame})
