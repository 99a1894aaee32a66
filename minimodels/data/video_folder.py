"""A folder of real videos and their text as a ``torch.utils.data.Dataset``: the way in for MSR-VTT, WebVid,
YouCook2, Kinetics/SSv2 class lists or TVQA-style subtitled episodes.

A manifest (``.jsonl``, ``.json`` or ``.csv``, read with `datasets`) lists one video per row: a ``video`` column with
its path (relative to the manifest's folder, or absolute) and its text, one of
- ``caption`` (a string) or ``captions`` (a list of strings): video-text pairs (MSR-VTT, WebVid, YouCook2);
- ``label``: a class name or number (Kinetics, SSv2);
- ``subtitles``: the path of a ``.vtt`` or ``.srt`` file (TVQA-style episodes), read into timed cues.

Each item is decoded in the worker that asks for it (``load_video``: only the sampled frames are kept), sampled by
the paper's rule (``sampler``: uniform by default, as VideoPrism; MiniGPT4-Video passes its stride rule) and resized
to the preset's ``size``. Bad videos are never a crash mid-epoch and never silent: ``VideoFolder`` opens every file
when it is made (container and frame count, no decoding) and, with ``on_error="skip"``, leaves out the missing,
empty, unreadable and too short ones with a warning that lists them (``.skipped``), or with ``on_error="raise"``
refuses the folder naming them all. A file that turns out truncated while decoding is skipped the same way (with a
warning from the worker) and ``collate_videos`` drops it from its batch.

The experiments index a folder's videos as they index the world's clips: ``folder_split(manifest, size, frames)``
gives {"video": ``StreamedVideo`` (decoded batch by batch in DataLoader workers), "text": one string a video}.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import datasets
import torch

from ..engine.errors import DataError
from .dataset import StreamedVideo
from .subtitles import read_subtitles
from .video_io import VideoLoadError, frame_count, load_video, sample_indices

TEXT_COLUMNS = ("caption", "captions", "label", "subtitles")
READERS = {".jsonl": "json", ".json": "json", ".csv": "csv"}


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


def read_manifest(manifest: str | Path) -> list[dict]:
    """The manifest's rows, each with a ``video`` path and one text column; refused by name when malformed."""
    manifest = Path(manifest)
    if manifest.suffix.lower() not in READERS:
        raise DataError(f"{manifest}: unknown manifest kind {manifest.suffix!r}; use one of {', '.join(READERS)}")
    if not manifest.is_file():
        raise DataError(f"{manifest}: no such manifest")
    datasets.disable_progress_bars()
    try:
        rows = datasets.load_dataset(READERS[manifest.suffix.lower()], data_files=str(manifest), split="train")
    except (datasets.exceptions.DatasetGenerationError, ValueError, StopIteration) as err:
        if isinstance(err, StopIteration) or "corresponds to no data" in str(err):  # datasets' words for no rows
            raise DataError(f"{manifest}: no rows; a manifest lists one video a row") from None
        raise DataError(f"{manifest}: not a readable {manifest.suffix[1:]} manifest ({err.__cause__ or err})") from None
    texts = [c for c in TEXT_COLUMNS if c in rows.column_names]
    if "video" not in rows.column_names or len(texts) != 1:
        raise DataError(f"{manifest}: columns {rows.column_names}; a manifest needs 'video' and exactly one of "
                        f"{', '.join(TEXT_COLUMNS)}")
    rows = rows.to_list()
    if not rows:
        raise DataError(f"{manifest}: no rows; a manifest lists one video a row")
    for number, row in enumerate(rows, start=1):
        if not isinstance(row["video"], str) or not row["video"].strip():
            raise DataError(f"{manifest}: row {number}: 'video' is {row['video']!r}; give every row a video path")
        if row[texts[0]] is None or row[texts[0]] == "":
            raise DataError(f"{manifest}: row {number}: '{texts[0]}' is empty; give every row its {texts[0]}")
    return rows


class VideoFolder(torch.utils.data.Dataset):
    """Items: {"video": float (num_frames, size, size, 3) in [0, 1], "path": str, and "captions" (list of str),
    "label" or "cues" (list of Cue)}; ``None`` for a file that fails while decoding under ``on_error="skip"``."""

    def __init__(self, manifest: str | Path, num_frames: int = 8, size: int = 32, sampler=sample_indices,
                 on_error: str = "skip", min_frames: int = 1):
        if on_error not in ("skip", "raise"):
            raise DataError(f"on_error={on_error!r}: choose 'skip' (leave bad videos out, with a warning) or 'raise'")
        self.manifest, self.num_frames, self.size, self.sampler = Path(manifest), num_frames, size, sampler
        self.on_error = on_error
        rows = read_manifest(manifest)
        self.text = next(c for c in TEXT_COLUMNS if c in rows[0]) if rows else "caption"
        self.rows, self.skipped = [], []
        for row in rows:
            path = self._path(row["video"])
            try:
                frames = frame_count(path)
            except VideoLoadError as err:
                self.skipped.append(Skipped(str(path), str(err).removeprefix(f"{path}: ")))
                continue
            if frames < min_frames:
                self.skipped.append(Skipped(str(path), f"too short: {frames} frames, at least {min_frames} wanted"))
                continue
            self.rows.append({**row, "video": path})
        if self.skipped:
            listing = "; ".join(f"{s.path}: {s.reason}" for s in self.skipped[:5])
            more = f" (and {len(self.skipped) - 5} more)" if len(self.skipped) > 5 else ""
            if on_error == "raise":
                raise DataError(f"{self.manifest}: {len(self.skipped)} of {len(rows)} videos cannot be used: "
                                f"{listing}{more}; fix them, or use on_error='skip'")
            warnings.warn(f"{self.manifest}: {len(self.skipped)} of {len(rows)} videos left out: {listing}{more}",
                          stacklevel=2)

    def _path(self, video: str) -> Path:
        path = Path(video)
        return path if path.is_absolute() else self.manifest.parent / path

    def __len__(self) -> int:
        return len(self.rows)

    def decode(self, i: int) -> tuple[torch.Tensor | None, str]:
        """(video i as float (num_frames, size, size, 3) in [0, 1], "") or, when it fails while decoding under
        ``on_error="skip"``, (None, the reason); ``on_error="raise"`` raises there."""
        try:
            return load_video(self.rows[i]["video"], self.num_frames, self.size, self.sampler), ""
        except VideoLoadError as err:
            if self.on_error == "raise":
                raise
            return None, str(err)

    def __getitem__(self, i: int) -> dict | None:
        row = self.rows[i]
        video, problem = self.decode(i)
        if video is None:
            warnings.warn(f"skipped while decoding: {problem}", stacklevel=2)
            return None
        item = {"video": video, "path": str(row["video"])}
        text = row[self.text]
        if self.text == "subtitles":
            item["cues"] = read_subtitles(self._path(text))
        elif self.text in ("caption", "captions"):
            item["captions"] = [text] if self.text == "caption" else list(text)
        else:
            item["label"] = text
        return item


def collate_videos(items: list[dict | None]) -> dict:
    """A batch: "video" stacked (B, T, S, S, 3), every other field as a list; items skipped while decoding dropped."""
    kept = [item for item in items if item is not None]
    if not kept:
        return {"video": torch.empty(0)}
    return {"video": torch.stack([item["video"] for item in kept]),
            **{key: [item[key] for item in kept] for key in kept[0] if key != "video"}}


def text_of(row: dict, folder: VideoFolder) -> str:
    """One string for a video: its (first) caption, its class as a word, or its subtitles' lines joined."""
    text = row[folder.text]
    if folder.text == "subtitles":
        return " ".join(cue.text for cue in read_subtitles(folder._path(text)))
    if folder.text == "captions":
        return str(text[0]) if text else ""
    return str(text)


class FolderPixels(torch.utils.data.Dataset):
    """A folder's videos alone, uint8 (T, S, S, 3) as ``StreamedVideo`` streams them. A video that fails while
    decoding stands in as blank frames with the reason (``StreamedVideo`` warns with it), so that the rows and
    their texts stay aligned, under ``on_error="skip"``; ``on_error="raise"`` stops there instead."""

    def __init__(self, folder: VideoFolder):
        self.folder = folder

    def __len__(self) -> int:
        return len(self.folder)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self), self.folder.num_frames, self.folder.size, self.folder.size, 3)

    def __getitem__(self, i: int) -> torch.Tensor | tuple[torch.Tensor, str]:
        video, problem = self.folder.decode(i)
        if video is None:
            blank = torch.zeros(self.shape[1:], dtype=torch.uint8)
            return blank, f"blank in its batch, failed while decoding: {problem}"
        return video.mul(255).round_().to(torch.uint8)


def folder_split(manifest: str | Path, size: int, frames: int, on_error: str = "skip") -> dict:
    """A manifest's videos as the experiments take a split: {"video": uint8 (N, T, size, size, 3) streamed,
    "text": [str] * N}. Refuses a manifest with no usable video."""
    folder = VideoFolder(manifest, frames, size, on_error=on_error, min_frames=1)
    if len(folder) == 0:
        raise DataError(f"{manifest}: no usable video ({len(folder.skipped)} left out); check the paths in it")
    return {"video": StreamedVideo(FolderPixels(folder)), "text": [text_of(row, folder) for row in folder.rows]}
