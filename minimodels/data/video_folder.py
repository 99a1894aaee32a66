"""A folder of real videos and their text as a ``torch.utils.data.Dataset``: the way in for MSR-VTT, WebVid,
YouCook2, Kinetics/SSv2 class lists, HowTo100M-style narrated videos or TVQA-style subtitled episodes.

A manifest (``.jsonl``, ``.json`` or ``.csv``, read with `datasets`) lists one video per row: a ``video`` column with
its path (relative to the manifest's folder, or absolute) and, as the data has them,
- ``caption`` (a string) or ``captions`` (a list of strings): video-text pairs (MSR-VTT, WebVid, YouCook2);
- ``label``: a class name or number (Kinetics, SSv2);
- ``subtitles``: the path of a ``.vtt`` or ``.srt`` file, read into timed cues (a transcript, TVQA's subtitles);
- ``start`` and ``end``: a segment of the video in seconds (YouCook2's annotated segments of a long video);
- any other column (TVQA's ``question``, ``options``, ``answer_index``) is kept in the row for the experiment.
At most one of caption, captions and label; a manifest of videos alone is a folder of unlabelled video.

Opening a folder reads the manifest and nothing else, so a 100,000-row manifest opens in about a second on every
rank: a video is checked when it is read. One that fails then (missing, empty, not a video, too short, cut before a
sampled frame) is never a crash mid-epoch and never silent: with ``on_error="skip"`` it is warned about, naming the
file and the reason, and left out of its batch (``collate_videos`` drops it; ``StreamedVideo`` marks it, and the
experiments leave it out of the loss and the metrics); ``on_error="raise"`` stops there instead.

Each item is decoded where it is asked for (``video_io.read_frames``: only what the sampled frames need, short side
resized and centre-cropped to the preset's ``size``), sampled by the paper's rule (``sampler``: uniform by default,
as VideoPrism), and comes with the folder's timing: its fps and each sampled frame's time in seconds.

The experiments index a folder's videos as they index the world's clips: ``folder_split(manifest, size, frames)``
gives {"video": ``StreamedVideo`` (decoded batch by batch in DataLoader workers), "text": one string a video,
"column": the column it comes from, "rows": the manifest's rows}.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import datasets
import torch

from ..engine.errors import DataError
from .dataset import LoaderConfig, StreamedVideo
from .subtitles import read_subtitles
from .video_io import VideoLoadError, read_frames, sample_indices, video_info

TEXT_COLUMNS = ("caption", "captions", "label")  # at most one: what the video is paired with
READERS = {".jsonl": "json", ".json": "json", ".csv": "csv"}


def read_manifest(manifest: str | Path) -> list[dict]:
    """The manifest's rows, each with a ``video`` path and its columns; refused by name when malformed. Reads the
    manifest alone, no video."""
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
    if "video" not in rows.column_names or len(texts) > 1:
        raise DataError(f"{manifest}: columns {rows.column_names}; a manifest needs 'video' and at most one of "
                        f"{', '.join(TEXT_COLUMNS)} (with 'subtitles', 'start', 'end' beside it as the data has them)")
    rows = rows.to_list()
    if not rows:
        raise DataError(f"{manifest}: no rows; a manifest lists one video a row")
    wanted = [*texts, *(c for c in ("subtitles",) if c in rows[0])]
    for number, row in enumerate(rows, start=1):
        if not isinstance(row["video"], str) or not row["video"].strip():
            raise DataError(f"{manifest}: row {number}: 'video' is {row['video']!r}; give every row a video path")
        for column in wanted:
            if row[column] is None or row[column] == "" or row[column] == []:
                raise DataError(f"{manifest}: row {number}: '{column}' is empty; give every row its {column}")
        start, end = row.get("start"), row.get("end")
        if start is not None and end is not None and not 0 <= start < end:
            raise DataError(f"{manifest}: row {number}: the segment {start}-{end} s is empty; give start < end, "
                            f"in seconds from the video's start")
    return rows


class VideoFolder(torch.utils.data.Dataset):
    """Items: {"video": float (num_frames, size, size, 3) in [0, 1], "times": [seconds] (each sampled frame's),
    "fps": float, "path": str, and "captions" (list of str), "label" and/or "cues" (list of Cue), as the manifest
    has them}; ``None`` for a file that fails while decoding under ``on_error="skip"``."""

    def __init__(self, manifest: str | Path, num_frames: int = 8, size: int = 32, sampler=sample_indices,
                 on_error: str = "skip", min_frames: int = 1, rows: list[dict] | None = None):
        """``rows``: the items to read instead of the manifest's rows (derived from them, e.g. one per utterance of
        a transcript: ``narrated_folder.py``), their paths relative to the manifest's folder as its own are."""
        if on_error not in ("skip", "raise"):
            raise DataError(f"on_error={on_error!r}: choose 'skip' (leave bad videos out, with a warning) or 'raise'")
        self.manifest, self.num_frames, self.size, self.sampler = Path(manifest), num_frames, size, sampler
        self.on_error, self.min_frames = on_error, min_frames
        self.rows = read_manifest(manifest) if rows is None else rows
        if not self.rows:
            raise DataError(f"{manifest}: nothing to read (no rows); check what it lists")
        self.text = next((c for c in (*TEXT_COLUMNS, "subtitles") if c in self.rows[0]), None)

    def path(self, video: str) -> Path:
        path = Path(video)
        return path if path.is_absolute() else self.manifest.parent / path

    def __len__(self) -> int:
        return len(self.rows)

    def frames_of(self, i: int) -> tuple[list[int], float]:
        """(the frame indices row i samples: in its segment when it has one, by ``sampler``, and the fps)."""
        row, path = self.rows[i], self.path(self.rows[i]["video"])
        info = video_info(path)
        first = math.floor((row.get("start") or 0) * info.fps)
        last = min(info.frames, math.ceil(row["end"] * info.fps)) if row.get("end") is not None else info.frames
        if last - first < self.min_frames:
            raise VideoLoadError(f"{path}: too short: {max(0, last - first)} frames, at least {self.min_frames} "
                                 f"wanted")
        return [first + int(k) for k in self.sampler(last - first, self.num_frames)], info.fps

    def decode(self, i: int) -> tuple[dict | None, str]:
        """({"video", "times", "fps"} of row i, "") or, when it fails under ``on_error="skip"``, (None, the reason);
        ``on_error="raise"`` raises there."""
        try:
            indices, fps = self.frames_of(i)
            got = read_frames(self.path(self.rows[i]["video"]), indices, self.size)
            return {"video": got.frames, "times": got.times, "fps": fps}, ""
        except VideoLoadError as err:
            if self.on_error == "raise":
                raise
            return None, str(err)

    def __getitem__(self, i: int) -> dict | None:
        row = self.rows[i]
        decoded, problem = self.decode(i)
        if decoded is None:
            warnings.warn(f"skipped while decoding: {problem}", stacklevel=2)
            return None
        item = {**decoded, "path": str(self.path(row["video"]))}
        if "subtitles" in row:
            item["cues"] = read_subtitles(self.path(row["subtitles"]))
        if "caption" in row or "captions" in row:
            item["captions"] = [row["caption"]] if "caption" in row else list(row["captions"])
        if "label" in row:
            item["label"] = row["label"]
        return item


def collate_videos(items: list[dict | None]) -> dict:
    """A batch: "video" stacked (B, T, S, S, 3), every other field as a list; items skipped while decoding dropped."""
    kept = [item for item in items if item is not None]
    if not kept:
        return {"video": torch.empty(0)}
    return {"video": torch.stack([item["video"] for item in kept]),
            **{key: [item[key] for item in kept] for key in kept[0] if key != "video"}}


def text_of(row: dict, folder: VideoFolder) -> str:
    """One string for a video: its (first) caption, its class as a word, its subtitles' lines joined, or ""."""
    if folder.text is None:
        return ""
    text = row[folder.text]
    if folder.text == "subtitles":
        return " ".join(cue.text for cue in read_subtitles(folder.path(text)))
    if folder.text == "captions":
        return str(text[0])
    return str(text)


class FolderPixels(torch.utils.data.Dataset):
    """A folder's videos alone, uint8 (T, S, S, 3) as ``StreamedVideo`` streams them. A video that fails while
    decoding stands in as blank frames with the reason (``StreamedVideo`` warns with it and marks the row failed),
    so that the rows and their texts stay aligned, under ``on_error="skip"``; ``on_error="raise"`` stops there."""

    def __init__(self, folder: VideoFolder):
        self.folder = folder

    def __len__(self) -> int:
        return len(self.folder)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self), self.folder.num_frames, self.folder.size, self.folder.size, 3)

    def __getitem__(self, i: int) -> torch.Tensor | tuple[torch.Tensor, str]:
        decoded, problem = self.folder.decode(i)
        if decoded is None:
            blank = torch.zeros(self.shape[1:], dtype=torch.uint8)
            return blank, f"left out of its batch, failed while decoding: {problem}"
        return decoded["video"].mul(255).round_().to(torch.uint8)


def folder_split(manifest: str | Path, size: int, frames: int, loader: LoaderConfig = LoaderConfig(),
                 on_error: str = "skip") -> dict:
    """A manifest's videos as the experiments take a split: {"video": uint8 (N, T, size, size, 3) streamed,
    "text": [str] * N, "column": the column the text comes from (None: videos alone), "rows": the manifest's
    rows}, decoded by ``loader``'s workers."""
    folder = VideoFolder(manifest, frames, size, on_error=on_error)
    return {"video": StreamedVideo(FolderPixels(folder), loader.workers, loader.prefetch_factor),
            "text": [text_of(row, folder) for row in folder.rows], "column": folder.text, "rows": folder.rows}
