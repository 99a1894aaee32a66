"""Episodes as MiniGPT4-Video sees them: sampled frames and the subtitles aligned to them.

An episode of the world is four clips of 8 frames played at 4 fps (8 s) with one subtitle cue per step; its eight
questions are of four kinds (``data/episodes.py``): ``frames`` (a shape, read off the frames), ``subtitles`` (a
spoon count, only ever spoken), ``both`` (the shape of a named ingredient: the name is spoken while the object is
shown) and ``many_frames`` (how often an object is shown, which shape is shown last). Each becomes the official
code's prompt (``wording.question_prompt``), answered in three ways:

- open-ended: the question as the instruction, the answer word (``circle``, ``five``) generated, exact match;
- multiple choice by generation, as the code's TVQA evaluation (``TVQAEVAL`` in ``video_datasets.py``): the question,
  the five options and the request for the option's number; the generated number must be the answer's. The code's
  string is in capitals and has blank lines; the tiny tokenizer knows the world's lower-case words, so the tiny
  string is the code's in lower case, its "\\n" kept (each one <unk>, like an unseen character) and its words split
  into the pieces the tokenizer has;
- multiple choice by ranking, as the code's ``multi_select``: each of the five option *texts* is scored by the
  model's mean answer loss after the question's prompt (the training string, since ``multi_select`` goes through
  ``forward``), and the lowest wins.

Evaluation prompts use the code's inference template (``question_prompt(..., inference=True)``), training prompts
its training string.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..data.subtitles import Cue
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


def sample_episode(video: EpisodeVideo, num_frames: int, subtitles: bool,
                   max_words: float = math.inf) -> tuple[torch.Tensor, list[str | None]]:
    """-> (num_frames sampled frames (N, H, W, C), the subtitle text of each, all None without subtitles)."""
    indices, texts = sample_with_subtitles(len(video.frames), video.fps, num_frames, video.cues if subtitles else (),
                                           max_words)
    return video.frames[indices], texts
