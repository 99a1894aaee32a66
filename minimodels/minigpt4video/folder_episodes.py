"""MiniGPT4-Video's episodes from a TVQA-style folder: videos with their subtitles, and multiple-choice questions.

A manifest lists one question a row (TVQA's layout: a clip's several questions are several rows), read as
``VideoFolder`` reads any manifest (``data/video_folder.py``):

    {"video": "s01e02_seg01.mp4", "subtitles": "s01e02_seg01.srt", "question": "what does Sheldon hold?",
     "options": ["a cup", "a book", "a phone", "a spoon", "a pen"], "answer_index": 1, "kind": "frames"}

``kind`` is optional (TVQA has none; the accuracy is then reported under ``any``). Every distinct video becomes an
episode, sampled and captioned as the official code does (``sampling.py``: its stride rule over the decoded frame
count, its subtitles aligned to the sampled frames' times, i / fps), its frozen visual tokens computed once. This
builds the interface of ``training.Episodes`` (``rows``, ``episodes``, ``qa``, ``subtitles``, ``position``,
``tokens``), so that the three stages and the evaluation read a folder as they read the world: with
``beside="train"`` the folder's episodes come after the world's training split, whose clips and episodes stages 1
(image) and 2 (captioning) train on, while stage 3 (video QA) takes the folder's questions alone, as the paper's
stage 3 fine-tunes on video QA (TVQA among it) what the first two stages aligned on other data.

Decoding and the subtitle alignment are shared over the ranks of a torchrun (``eval.loop.batched``); a video that
fails to decode takes its questions with it, with a warning naming it.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from ..data.dataset import LoaderConfig, StreamedVideo, usable
from ..data.subtitles import read_subtitles
from ..data.video_folder import read_manifest
from ..data.video_io import VideoLoadError, read_frames, video_info
from ..engine.errors import DataError
from ..eval.loop import batched
from .sampling import sample_with_subtitles
from .training import Episodes, frozen_tokens

QUESTION_COLUMNS = ("subtitles", "question", "options", "answer_index")
ANY_KIND = "any"  # the kind of a question whose manifest gives none


class EpisodeFrames(torch.utils.data.Dataset):
    """Each video's frames as MiniGPT4-Video samples them: uint8 (num_frames, size, size, 3), or (blank frames, the
    reason) for a video that cannot give them (``StreamedVideo`` warns, and marks it failed)."""

    def __init__(self, paths: list[Path], num_frames: int, size: int):
        self.paths, self.num_frames, self.size = paths, num_frames, size

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self), self.num_frames, self.size, self.size, 3)

    def __getitem__(self, i: int):
        try:
            info = video_info(self.paths[i])
            indices, _ = sample_with_subtitles(info.frames, info.fps, self.num_frames)
            return read_frames(self.paths[i], indices, self.size).frames.mul(255).round_().to(torch.uint8)
        except VideoLoadError as err:
            return torch.zeros(self.shape[1:], dtype=torch.uint8), f"its questions left out: {err}"


def subtitle_texts(video: Path, subtitles: Path, num_frames: int, max_words: int) -> list[str | None] | None:
    """The subtitles attached to each sampled frame (None where none), or None for a video that cannot be read."""
    try:
        info = video_info(video)
    except VideoLoadError:
        return None  # EpisodeFrames names the reason
    return sample_with_subtitles(info.frames, info.fps, num_frames, read_subtitles(subtitles), max_words)[1]


class FolderEpisodes:
    """A TVQA-style manifest's episodes and questions, as ``training.Episodes`` has them; with ``beside`` (a world
    split), after that split's episodes, whose clips and captions stages 1 and 2 read."""

    def __init__(self, model, manifest: str | Path, loader: LoaderConfig = LoaderConfig(), beside: str | None = None):
        manifest, m = Path(manifest), model.cfg
        rows = read_manifest(manifest)
        missing = [c for c in QUESTION_COLUMNS if c not in rows[0]]
        if missing:
            raise DataError(f"{manifest}: no {', '.join(missing)} column; a question row has video, subtitles, "
                            f"question, options and answer_index (kind optional)")
        path = lambda name: Path(name) if Path(name).is_absolute() else manifest.parent / name
        videos = list(dict.fromkeys((row["video"], row["subtitles"]) for row in rows))  # one episode a video
        world = Episodes(model, beside) if beside else None
        first = len(world.episodes) if world else 0
        ids = {video: f"{manifest.stem}:{k}" for k, video in enumerate(videos)}  # apart from the world's ids
        frames = StreamedVideo(EpisodeFrames([path(v) for v, _ in videos], m.num_frames, m.vision.image_size),
                               loader.workers, loader.prefetch_factor)
        tokens = frozen_tokens(model, frames)  # (E, N, K, D_merged), every rank decoding its share
        texts = batched(lambda part: [subtitle_texts(path(v), path(s), m.num_frames, m.max_subtitle_words)
                                      for v, s in videos[part]], len(videos), 64)
        decoded = usable(frames)
        self.rows = world.rows if world else []
        self.episodes = (world.episodes if world else []) + [{"episode": ids[v], "video": v[0]} for v in videos]
        self.subtitles = {**(world.subtitles if world else {}),
                          **{ids[v]: t for v, t, ok in zip(videos, texts, decoded.tolist()) if ok}}
        self.position = {**(world.position if world else {}), **{ids[v]: first + k for k, v in enumerate(videos)}}
        self.tokens = torch.cat([world.tokens, tokens]) if world else tokens
        self.qa = [question(row, ids[(row["video"], row["subtitles"])]) for row in rows
                   if ids[(row["video"], row["subtitles"])] in self.subtitles]
        if len(self.qa) < len(rows):
            warnings.warn(f"{manifest}: {len(rows) - len(self.qa)} of {len(rows)} questions left out with their "
                          f"videos, which could not be decoded", stacklevel=2)
        if not self.qa:
            raise DataError(f"{manifest}: no question left: none of its videos could be decoded")


def question(row: dict, episode: str) -> dict:
    """A manifest row as the world's questions are: episode, kind, question, options, answer (the option's text)
    and answer_index."""
    options, index = list(row["options"]), row["answer_index"]
    if not isinstance(index, int) or not 0 <= index < len(options):
        raise DataError(f"answer_index {index!r} of {row['question']!r}: the number of the right option, from 0 to "
                        f"{len(options) - 1}")
    return {"episode": episode, "kind": row.get("kind") or ANY_KIND, "question": row["question"],
            "options": options, "answer": options[index], "answer_index": index}
