"""MiniGPT4-Video's frame sampling and subtitle alignment, as the official code does them (``minigpt4/datasets/
datasets/video_datasets.py`` and ``minigpt4_video_inference.py`` of Vision-CAIR/MiniGPT4-video; arXiv 2404.03413,
§3.1).

Sampling N of a video's ``total`` decoded frames:

    interval = max(1, int(total / N));   frame i is sampled  iff  i % interval == 0,   stop after N;
    fewer than N (a short video): repeat the last sampled frame until there are N (those get no subtitles).

Subtitles are read frame by frame while decoding. At every decoded frame i (time t = i / fps) the first cue with
start ≤ t ≤ end whose text has not been used yet is appended to a buffer. At every *sampled* frame the buffer, if not
empty and while fewer than ``max_words`` subtitle words have been emitted, is attached to that frame (``<Cap>...``)
and cleared; so text spoken between two sampled frames goes with the next one. Once the budget is spent no more
subtitles are emitted (400 words for the Llama-2 preset, 800 for Mistral: the code's stand-in for the paper's "1000
tokens for subtitles").

Two quirks of the code kept on purpose: each cue's text enters the buffer followed by one space, and the words of an
emission are counted as ``len(text.split(" "))``, which counts that trailing space as one more word. Where we differ:
cue times are read to the millisecond (``data/subtitles.py``; the code's webvtt-py ``start_in_seconds`` is whole
seconds in recent versions).
"""

from __future__ import annotations

import math

from ..data.subtitles import Cue


def sample_with_subtitles(total: int, fps: float, num_frames: int, cues: list[Cue] = (),
                          max_words: float = math.inf) -> tuple[list[int], list[str | None]]:
    """-> (N sampled frame indices, the subtitle text attached to each sampled frame or None)."""
    if total < 1 or num_frames < 1:
        raise ValueError(f"need at least one frame to sample and to keep, got total={total}, N={num_frames}")
    interval = max(1, int(total / num_frames))
    frames, subtitles = [], []
    buffer, seen, words = "", set(), 0
    for i in range(total):
        t = i / fps
        for cue in cues:
            if cue.start <= t <= cue.end and cue.text not in seen:
                buffer += cue.text + " "
                seen.add(cue.text)
                break
        if i % interval == 0:
            frames.append(i)
            if buffer and words < max_words:
                subtitles.append(buffer)
                words += len(buffer.split(" "))
                buffer = ""
            else:
                subtitles.append(None)
            if len(frames) == num_frames:
                break
    padding = num_frames - len(frames)
    return frames + [frames[-1]] * padding, subtitles + [None] * padding


def sample_frame_indices(total: int, num_frames: int) -> list[int]:
    """The sampled frame indices alone (no subtitles)."""
    return sample_with_subtitles(total, 1.0, num_frames)[0]
