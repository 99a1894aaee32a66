"""Narrated videos from a folder: MV-GPT's pretraining pairs and captioned segments, read as ``VideoFolder`` reads
any manifest (``video_folder.py``).

Pretraining, HowTo100M-style (arXiv 2201.08264: narrated video with its speech transcript and no caption): rows
``{"video", "subtitles"}``, the transcript a ``.vtt``/``.srt`` file of timed utterances. Every utterance that has a
next one makes a pair, as the paper builds them: the frames of the utterance's own time span (T sampled uniformly
between its cue's start and end), the utterance itself (present, U) and the next one (future, W).

Fine-tuning, YouCook2-style: rows ``{"video", "start", "end", "caption" or "captions"}``, a segment of a video and
what an annotator wrote about it, and optionally the video's ``subtitles``: the present utterance is then what the
transcript says within the segment (the cues that overlap it, in order), else empty (MSR-VTT-style captions
without speech).

Both give their clips as a ``StreamedVideo`` over the segments (decoded in loader workers, a file that fails left
out of its batch) and their texts as lists beside it, in the same order.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from ..engine.errors import DataError
from .dataset import LoaderConfig, StreamedVideo
from .subtitles import Cue, read_subtitles
from .video_folder import FolderPixels, VideoFolder, read_manifest


def _cues_of(manifest: Path):
    """A reader of a row's transcript (relative to the manifest), each file read once."""
    return lru_cache(maxsize=None)(lambda name: read_subtitles(name if Path(name).is_absolute()
                                                               else manifest.parent / name))


def _clips(manifest: Path, rows: list[dict], size: int, frames: int, loader: LoaderConfig) -> StreamedVideo:
    folder = VideoFolder(manifest, frames, size, rows=rows)
    return StreamedVideo(FolderPixels(folder), loader.workers, loader.prefetch_factor)


def narration_pairs(manifest: str | Path, size: int, frames: int, loader: LoaderConfig = LoaderConfig()) -> dict:
    """{"video": the present utterances' clips, uint8 (P, frames, size, size, 3) streamed, "present": [U] * P,
    "future": [W] * P}: every utterance of every transcript that has a next one."""
    manifest = Path(manifest)
    rows = read_manifest(manifest)
    if "subtitles" not in rows[0]:
        raise DataError(f"{manifest}: no 'subtitles' column; pretraining reads each video's timed transcript (a "
                        f".vtt or .srt path per row)")
    cues, pairs = _cues_of(manifest), []
    for row in rows:
        said = cues(row["subtitles"])
        pairs += [{"video": row["video"], "start": now.start, "end": max(now.end, now.start + 1e-3),
                   "present": now.text, "future": then.text} for now, then in zip(said, said[1:])]
    if not pairs:
        raise DataError(f"{manifest}: no transcript holds two utterances; a pair is an utterance and the next one")
    return {"video": _clips(manifest, pairs, size, frames, loader), "present": [p["present"] for p in pairs],
            "future": [p["future"] for p in pairs]}


def spoken_within(cues: list[Cue], start: float | None, end: float | None) -> str:
    """What a transcript says within [start, end] (None: the video's start or end): the overlapping cues, joined."""
    start, end = start or 0.0, float("inf") if end is None else end
    return " ".join(cue.text for cue in cues if cue.end > start and cue.start < end)


def captioned_segments(manifest: str | Path, size: int, frames: int, loader: LoaderConfig = LoaderConfig()) -> dict:
    """{"video": the segments' clips, uint8 (N, frames, size, size, 3) streamed, "utterance": [present] * N,
    "captions": [[caption, ...]] * N}."""
    manifest = Path(manifest)
    rows = read_manifest(manifest)
    if "caption" not in rows[0] and "captions" not in rows[0]:
        raise DataError(f"{manifest}: no 'caption' or 'captions' column; captioning learns from a caption per "
                        f"segment")
    cues = _cues_of(manifest)
    spoken = [spoken_within(cues(row["subtitles"]), row.get("start"), row.get("end")) if "subtitles" in row else ""
              for row in rows]
    captions = [[row["caption"]] if "caption" in row else list(row["captions"]) for row in rows]
    return {"video": _clips(manifest, rows, size, frames, loader), "utterance": spoken, "captions": captions}
