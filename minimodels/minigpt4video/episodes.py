"""Episodes as MiniGPT4-Video sees them: sampled frames, the subtitles aligned to them, and question prompts.

An episode of the world is four clips of 8 frames played at 4 fps (8 s) with one subtitle cue per step; its six
questions are of three kinds (``data/episodes.py``): ``frames`` (a shape, read off the frames), ``subtitles`` (a
spoon count, only ever spoken) and ``both`` (the shape of a named ingredient: the name is spoken while the object is
shown). Each becomes the official code's prompt (``prompt.interleaved_prompt``) with the question as the
instruction, answered in two ways:

- open-ended: the answer word (``circle``, ``five``), scored by exact match;
- multiple choice, TVQA-style: the question, then ``option 0: … option 4: …``, answered by the option's number.
  The code's TVQA string asks in capitals for "THE NUMBER OF THE CORRECT ANSWER FROM THE CHOICES FROM 0 TO 4
  INCLUSIVE"; the tiny tokenizer knows only the world's lower-case words, so the tiny prompt keeps the code's
  structure ("choose one suitable answer", numbered options) with the words it has.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..data.subtitles import Cue
from .prompt import interleaved_prompt
from .sampling import sample_with_subtitles


@dataclass
class EpisodeVideo:
    frames: torch.Tensor  # (total, H, W, C) uint8, every frame of the episode in order
    fps: float
    cues: list[Cue]


def episode_videos(clip_video: torch.Tensor, clip_rows: list[dict], episodes: list[dict]) -> dict[int, EpisodeVideo]:
    """Clips (N, T, H, W, C) and their rows (episode, step) -> {episode id: its clips played in order}."""
    index = {(r["episode"], r["step"]): i for i, r in enumerate(clip_rows)}
    out = {}
    for e in episodes:
        clips = [index[(e["episode"], step)] for step in range(e["steps"])]
        out[e["episode"]] = EpisodeVideo(clip_video[clips].flatten(0, 1), e["fps"],
                                         [Cue(c["start"], c["end"], c["text"]) for c in e["cues"]])
    return out


def mcq_instruction(question: str, options: list[str]) -> str:
    return f"{question} choose one suitable answer: " + " ".join(f"option {i}: {o}" for i, o in enumerate(options))


def sample_episode(video: EpisodeVideo, num_frames: int, subtitles: bool,
                   max_words: float = math.inf) -> tuple[torch.Tensor, list[str | None]]:
    """-> (num_frames sampled frames (N, H, W, C), the subtitle text of each, all None without subtitles)."""
    indices, texts = sample_with_subtitles(len(video.frames), video.fps, num_frames, video.cues if subtitles else (),
                                           max_words)
    return video.frames[indices], texts


def question_prompt(texts: list[str | None], qa: dict, multiple_choice: bool) -> tuple[str, str]:
    """-> (the full prompt string, the answer string): the option's number for multiple choice, else the word."""
    if multiple_choice:
        return interleaved_prompt(texts, mcq_instruction(qa["question"], qa["options"])), str(qa["answer_index"])
    return interleaved_prompt(texts, qa["question"]), qa["answer"]
