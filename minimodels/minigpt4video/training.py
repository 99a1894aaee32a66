"""MiniGPT4-Video's three training stages (arXiv 2404.03413, §3.2–3.3; the official ``train_configs/*.yaml``), on
the world's training split; only the projection and the LoRA adapters learn:

1. image–text alignment: one frame -> what it shows ("a large red circle"), in the image stage's prompt;
2. video captioning: an episode's sampled frames (+ subtitles) -> its clips' captions, joined;
3. video QA instruction tuning: an episode (+ subtitles) and a question -> the answer, open-ended and TVQA-style
   multiple choice mixed.

What the stages train on follows what the paper's data asks of the frames (``QAConfig``): its stage-2 captions
describe what is on screen, and its subtitled source (CMD, Condensed Movies clips) carries dialogue that does not;
our narrators describe the screen in the captions' own words, so a subtitled caption prompt would be copying, and
stage 2 reads the frames without subtitles by default (``caption_subtitle_share``), as its other source WebVid (web
videos with alt-text captions, whose loader leaves subtitles out) does. Its stage 3 (VideoInstruct-100K) asks about
the video's content, never about what only the sound says: stage 3 trains on the questions about what is shown
(``qa_kinds``), with subtitles in a share of the prompts (``qa_subtitle_share``), and the spoken-answer questions
are met only at evaluation, as the paper meets TVQA zero-shot. Each prompt's coin (subtitles or not; open-ended or
multiple choice) is drawn per example of the step's whole batch (``per_example``), from streams keyed by the step.

``blank``: every frame black, in training and evaluation: what the same stages learn from the text alone.
"""

from __future__ import annotations

import torch

from ..data.dataset import as_float, clip_tensors, load_table
from ..engine.batches import Batch, per_example
from ..engine.rng import py_rng
from ..engine.run_log import RunLog
from ..engine.train import train
from ..eval.loop import batched
from .episodes import episode_videos, sample_episode
from .model import MiniGPT4Video
from .prompt import assemble, collate
from .wording import CAPTION_INSTRUCTION, caption_of_video, image_prompt, interleaved_prompt, question_prompt


def frozen_tokens(model: MiniGPT4Video, video: torch.Tensor, blank: bool = False, batch_size: int = 64) -> torch.Tensor:
    """uint8 frames (B, N, H, W, C) -> their frozen visual tokens (B, N, K, D_merged), a batch at a time, on CPU; in
    bf16 on a GPU (the code computes them in fp16): a full preset's 600 training videos hold 20 GB of them.
    ``blank``: the tokens of black frames of the same shape instead."""
    device = next(model.parameters()).device
    kept = torch.bfloat16 if device.type == "cuda" else torch.float32

    def tokens(rows):
        frames = as_float(video[rows]).to(device)
        return model.visual_tokens(torch.zeros_like(frames) if blank else frames).to(kept)

    return batched(tokens, len(video), batch_size)


class Episodes:
    """One split's episodes: their frozen visual tokens, computed once (the projection is applied per step), and the
    subtitles aligned to the sampled frames (a prompt without subtitles simply leaves them out)."""

    def __init__(self, model: MiniGPT4Video, split: str, blank: bool = False):
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
        self.tokens = frozen_tokens(model, torch.stack(frames), blank)  # (E, N, K, D_merged)


def appearance_of(clip: dict) -> str:
    """What one frame of a clip shows, in words (stage 1's answer): "a large red circle"."""
    return f"a {clip['size']} {clip['colour']} {clip['shape']}"


def captions_of(rows: list[dict], episode: int) -> str:
    """Stage 2's answer: the captions of an episode's clips, in order, as one."""
    return caption_of_video([r["caption"] for r in sorted(rows, key=lambda r: r["step"]) if r["episode"] == episode])


def prompt_batch(model, tokenizer, prompts: list[tuple[str, torch.Tensor, str | None]], device):
    """[(prompt, frozen visual tokens (N, K, D_merged), answer)] -> a collated LLM batch (projection applied)."""
    items = [assemble(tokenizer, model.embed, p, model.project(tokens.to(device)), a, model.cfg.llm.context_length)
             for p, tokens, a in prompts]
    return collate(items)


def llm_loss(model, batch) -> torch.Tensor:
    return model.llm(inputs_embeds=batch["inputs_embeds"], attention_mask=batch["attention_mask"],
                     labels=batch["labels"]).loss


def coins(batch: Batch, rng) -> list[float]:
    """One uniform draw per example of the step's whole batch (``rng``: a ``random.Random``), cut to ``batch``."""
    return per_example(lambda size: torch.tensor([rng.random() for _ in range(size)], dtype=torch.float64), batch,
                       len(batch)).tolist()


class StageLosses:
    """The three stages' loss functions, ``loss(model, batch, step) -> (loss, {})``, over one split's episodes
    (``cfg``: a ``QAConfig``; stage 3 draws its examples from ``questions``, those of the kinds it trains on)."""

    def __init__(self, model, tokenizer, episodes: Episodes, cfg, seed: int, device):
        self.tokenizer, self.episodes, self.cfg = tokenizer, episodes, cfg
        self.seed, self.device = seed, device
        self.questions = [q for q in episodes.qa if q["kind"] in cfg.qa_kinds]
        # every training clip's first frame, for stage 1: (clips, 1, K, D_merged)
        frames = clip_tensors("train", model.cfg.vision.image_size)["video"][:, :1]
        self.single = frozen_tokens(model, frames, cfg.blank_frames)

    def subtitles(self, episode: int, coin: float, share: float) -> list[str | None]:
        """The episode's subtitles, or none, for one prompt: with them when ``coin`` < ``share``."""
        texts = self.episodes.subtitles[episode]
        return texts if coin < share else [None] * len(texts)

    def image(self, model, batch: Batch, step: int):
        rows = self.episodes.rows
        prompts = [(image_prompt(), self.single[i], appearance_of(rows[i])) for i in batch.idx.tolist()]
        return llm_loss(model, prompt_batch(model, self.tokenizer, prompts, self.device)), {}

    def caption(self, model, batch: Batch, step: int):
        prompts = []
        for i, coin in zip(batch.idx.tolist(), coins(batch, py_rng(self.seed, step, "prompt-subtitles"))):
            e = self.episodes.episodes[i]["episode"]
            texts = self.subtitles(e, coin, self.cfg.caption_subtitle_share)
            prompts.append((interleaved_prompt(texts, CAPTION_INSTRUCTION), self.episodes.tokens[i],
                            captions_of(self.episodes.rows, e)))
        return llm_loss(model, prompt_batch(model, self.tokenizer, prompts, self.device)), {}

    def qa(self, model, batch: Batch, step: int):
        formats = coins(batch, py_rng(self.seed, step, "question-format"))  # open-ended or multiple choice
        # stage 3's draws of the subtitle stream are keyed apart from stage 2's (same seed, overlapping step numbers)
        shown = coins(batch, py_rng(self.seed, 1_000_000 + step, "prompt-subtitles"))
        prompts = []
        for i, coin, form in zip(batch.idx.tolist(), shown, formats):
            qa = self.questions[i]
            prompt, answer = question_prompt(self.subtitles(qa["episode"], coin, self.cfg.qa_subtitle_share), qa,
                                             form < 0.5)
            prompts.append((prompt, self.episodes.tokens[self.episodes.position[qa["episode"]]], answer))
        return llm_loss(model, prompt_batch(model, self.tokenizer, prompts, self.device)), {}


STAGES = ("image", "caption", "qa")


def train_stages(model, tokenizer, episodes: Episodes, cfg, seed: int, device, checkpoints=None, resume: bool = False,
                 log: RunLog | None = None, after_stage=None) -> dict:
    """The three stages in order (``cfg``: a ``QAConfig``) -> {stage: History}. The last one checkpoints into (and
    resumes from) ``checkpoints``; the ones before keep no checkpoint and, seeded, end the same when run again.
    ``after_stage(name)`` is called after each stage (to measure what the model sees at that point)."""
    losses = StageLosses(model, tokenizer, episodes, cfg, seed, device)
    plan = {"image": (losses.image, len(episodes.rows), cfg.image_stage, "stage 1 image", {}),
            "caption": (losses.caption, len(episodes.episodes), cfg.caption_stage, "stage 2 captions", {}),
            "qa": (losses.qa, len(losses.questions), cfg.qa_stage, "stage 3 QA",
                   {"checkpoints": checkpoints, "resume": resume})}
    history = {}
    for name in STAGES:
        loss, n, stage_cfg, desc, saving = plan[name]
        history[name] = train(model, loss, n, stage_cfg, seed=seed, log=log, desc=desc, **saving)
        if after_stage is not None:
            after_stage(name)
    return history
