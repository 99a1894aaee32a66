"""Loading ``data_small/`` with `datasets` (from the local JSON-lines files, never the hub) and rendering clips.

``load_table("clips", "train")`` gives a ``datasets.Dataset`` of rows; ``clip_tensors("train", size, frames)`` gives
a split's pixels with the probe labels. The pixels are indexed as a tensor, ``video[rows]`` -> uint8 (B, T, S, S, 3),
however they are held:

- a split that is small once rendered (every tiny config: 2,400 clips of 8 × 32² are 59 MB) is rendered once and
  kept, a plain tensor, so the CPU runs pay for drawing each clip once; it is also saved in ``runs/cache/`` (or
  ``MINIMODELS_CACHE``), so that every later process on the machine (each notebook's kernel, each command) reads it
  back instead of drawing it again (the training split: about 2 s to draw, 0.05 s to read). The file's name carries
  a digest of the split's rows and of the drawing code (``world.py``), so a rebuilt world or an edited drawing is
  drawn afresh;
- a larger one (a full preset: 16 × 288² frames are 4 MB a clip, 9.5 GB for the training split) is never held:
  ``StreamedVideo`` renders the rows asked for, batch by batch, in the worker processes of a
  ``torch.utils.data.DataLoader`` over ``RenderedClips``.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import datasets
import numpy as np
import torch

from ..engine import distributed
from ..engine.config import require, whole
from ..engine.errors import DataError
from ..engine.paths import CACHE_DIR, DATA_DIR, write_atomically
from . import world
from .world import APPEARANCE, MOTION, labels, render_clip

SPLITS = ("train", "val", "test")
TABLES = ("clips", "episodes", "qa")


def load_table(table: str, split: str) -> datasets.Dataset:
    if table not in TABLES:
        raise DataError(f"unknown table {table!r}; choose one of {TABLES}")
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; choose one of {SPLITS}")
    path = DATA_DIR / table / f"{split}.jsonl"
    if not path.is_file():
        raise DataError(f"{path} is missing; regenerate the data with `python -m minimodels data build`")
    datasets.disable_progress_bars()
    try:
        rows = datasets.load_dataset("json", data_files={split: str(path)}, split=split)
    except datasets.exceptions.DatasetGenerationError as err:  # a line that is not JSON (a file cut mid-line)
        raise DataError(f"{path}: not valid JSON lines ({err.__cause__ or err}); regenerate the data with "
                        f"`python -m minimodels data build`") from None
    expected = _expected_rows(table, split)
    if expected is not None and len(rows) != expected:  # a file cut at a line end still parses: count its rows
        raise DataError(f"{path}: {len(rows)} rows where the world ({DATA_DIR / 'world.json'}) has {expected}; the "
                        f"file is cut or stale: regenerate the data with `python -m minimodels data build`")
    return rows


def _world_spec() -> dict:
    """The world's spec (``world.json``: splits, frames, sizes), or {} where it is missing."""
    path = DATA_DIR / "world.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _expected_rows(table: str, split: str) -> int | None:
    """How many rows the world's spec says a table holds (episodes, clips), or None when it does not say."""
    spec = _world_spec()
    if table == "qa" or not spec:
        return None
    episodes = dict(spec["episodes"]).get(split)
    if episodes is None:
        return None
    return episodes if table == "episodes" else episodes * spec["steps"]


KEEP_BYTES = 512 * 2**20  # a split whose rendered pixels fit in this is rendered once and kept in memory


def clip_tensors(split: str, size: int = 32, limit: int | None = None,
                 frames: int | None = None) -> dict[str, torch.Tensor | StreamedVideo]:
    """A split: {"video": uint8 (N, T, size, size, 3), "<attribute>": long (N,) for every probed label}.

    ``frames``: T, spread over each clip's time span (``world.render_clip``); None: the stored frames. The video is
    a kept tensor when it fits in ``KEEP_BYTES``, otherwise a ``StreamedVideo`` that renders what is indexed. Pixels
    stay uint8 (four times smaller than float); ``as_float`` scales a batch to [0, 1] when it is used.
    """
    stored = _world_spec().get("frames")
    return _clip_tensors(split, size, limit, None if frames == stored else frames)  # one cache entry for both


@lru_cache(maxsize=8)
def _clip_tensors(split: str, size: int, limit: int | None, frames: int | None) -> dict:
    rows = load_table("clips", split)
    if limit is not None:
        rows = rows.select(range(min(limit, len(rows))))
    clips = RenderedClips(rows.to_list(), size, frames)
    out = {"video": kept_pixels(clips, split) if np.prod(clips.shape) <= KEEP_BYTES else StreamedVideo(clips)}
    for name in (*APPEARANCE, *MOTION):
        out[name] = torch.tensor([labels(r)[name] for r in clips.scenes])
    return out


def cached_pixels_path(clips: RenderedClips, split: str) -> Path:
    """Where a split's drawn pixels are kept between processes: ``clips-<split>-<N>x<T>x<S>px-<digest>.npy``, the
    digest of the split's manifest and of ``world.py``, which draws it (a rebuilt world or a changed drawing gets a new
    file)."""
    digest = hashlib.sha256(Path(world.__file__).read_bytes())
    digest.update((DATA_DIR / "clips" / f"{split}.jsonl").read_bytes())
    return CACHE_DIR / f"{_pixels_stem(clips, split)}-{digest.hexdigest()[:16]}.npy"


def _pixels_stem(clips: RenderedClips, split: str) -> str:
    return f"clips-{split}-{len(clips)}x{clips.frames}x{clips.size}px"


def kept_pixels(clips: RenderedClips, split: str) -> torch.Tensor:
    """A split's pixels, uint8 (N, T, S, S, 3): read from the cache when an earlier process drew them, else drawn and
    saved there (``write_atomically``: a process reading beside it never sees half a file); a cache that cannot be
    read or written is drawn around, never an error."""
    path = cached_pixels_path(clips, split)
    try:
        pixels = np.load(path)
        if pixels.shape == clips.shape and pixels.dtype == np.uint8:
            return torch.from_numpy(pixels)
    except (OSError, ValueError):  # not there yet, or cut short
        pass
    video = clips.render_all()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        def save(name: str) -> None:  # through a file object: np.save would add ".npy" to a name without it
            with open(name, "wb") as f:
                np.save(f, video.numpy())

        write_atomically(path, save)
        for stale in path.parent.glob(f"{_pixels_stem(clips, split)}-*.npy"):
            if stale != path:  # an earlier world's or drawing's pixels for the same split
                stale.unlink(missing_ok=True)
    except OSError:
        pass
    return video


class RenderedClips(torch.utils.data.Dataset):
    """Scenes drawn when asked: ``clips[i]`` -> uint8 (T, size, size, 3)."""

    def __init__(self, scenes: list[dict], size: int, frames: int | None = None):
        self.scenes, self.size = scenes, size
        self.frames = frames or len(scenes[0]["xs"])

    def __len__(self) -> int:
        return len(self.scenes)

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.from_numpy(render_clip(self.scenes[i], self.size, frames=self.frames))

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self), self.frames, self.size, self.size, 3)

    def render_all(self) -> torch.Tensor:
        return torch.stack([self[i] for i in range(len(self))])


def loader_workers() -> int:
    """Worker processes for one training process: the CPU cores it has, one left for the process itself, at most 8."""
    return max(0, min(8, (os.cpu_count() or 1) // distributed.world_size() - 1))


@dataclass
class LoaderConfig:
    """How a folder's videos are decoded: in ``num_workers`` DataLoader processes (None: ``loader_workers()``; 0: in
    the process that trains), each holding up to ``prefetch_factor`` of the training loop's next batches decoded
    ahead of the step that asks for them."""

    num_workers: int | None = None
    prefetch_factor: int = 2

    def __post_init__(self):
        require(self, {
            "num_workers": (self.num_workers is None or whole(self.num_workers, 0),
                            "a whole number >= 0 (0: decode in the training process), or none for the cores free"),
            "prefetch_factor": (whole(self.prefetch_factor), "a whole number of batches >= 1")})

    @property
    def workers(self) -> int:
        return loader_workers() if self.num_workers is None else self.num_workers


class StreamedVideo:
    """Clips made when indexed, as a kept tensor would give them: ``video[rows]``, ``video[rows, :frames]`` ->
    uint8 (B, T, H, W, 3). ``clips`` is a Dataset with a ``shape`` (N, T, H, W, 3) whose items are uint8
    (T, H, W, 3) tensors, or (tensor, problem) pairs where an item could not be made and stands in blank:
    ``RenderedClips`` for the world, ``video_folder.FolderPixels`` for real video.

    The rows asked for are split among the persistent workers of a DataLoader over it (in this process when there
    are none), so a split at a full preset's size never sits in memory. The training loop can say ahead which rows
    it will ask for (``expect``, from ``engine.train``'s ``prefetch``): a second DataLoader then decodes them
    ``prefetch_factor`` batches per worker ahead, and a request that is the next one expected is served from it.
    A clip that could not be made is warned about here, in the process (and the notebook) that asked, once, and
    kept in ``failed`` ({row: reason}): ``take`` tells the loss function which rows to leave out."""

    def __init__(self, clips: torch.utils.data.Dataset, workers: int | None = None, prefetch_factor: int = 2):
        self.clips = clips
        self.workers = loader_workers() if workers is None else workers
        self.prefetch_factor = prefetch_factor
        self.failed: dict[int, str] = {}
        self._asked: list[list[int]] = []  # the row chunks of the current request, read by the loader's sampler
        self._loader = self._loader_over(_Asked(self._asked), persistent=self.workers > 0)
        self._expected, self._next = None, None  # the expected requests' loader, and its next request decoded

    def _loader_over(self, batches, persistent: bool = False):
        # A generator of its own: a DataLoader otherwise draws its workers' seed from the global RNG each time it is
        # read, which would move the dropout and other global draws of the training it feeds.
        return torch.utils.data.DataLoader(_WithRow(self.clips), batch_sampler=batches, num_workers=self.workers,
                                           persistent_workers=persistent, collate_fn=_stack,
                                           prefetch_factor=self.prefetch_factor if self.workers else None,
                                           generator=torch.Generator())

    def __len__(self) -> int:
        return len(self.clips)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.clips.shape

    def expect(self, requests) -> None:
        """Decode ahead the requests ``requests`` yields (tensors or lists of rows), in the order they will come."""
        self._expected = iter(self._loader_over(_Expected(requests)))
        self._next = None

    def _expected_part(self, order: list[int]):
        """The next expected request, decoded, if ``order`` is it; else None (it is decoded as asked)."""
        if self._expected is None:
            return None
        if self._next is None:
            self._next = next(self._expected, None)
            if self._next is None:  # every expected request was served
                self._expected = None
                return None
        if self._next[0] != order:
            return None
        part, self._next = self._next, None
        return part

    def __getitem__(self, index) -> torch.Tensor:
        rows, rest = (index[0], index[1:]) if isinstance(index, tuple) else (index, ())
        picked = torch.arange(len(self))[rows]  # the rows as a kept tensor's first axis would pick them
        order = picked.reshape(-1).tolist()
        if not order:
            return torch.empty(*picked.shape, *self.shape[1:], dtype=torch.uint8)[(slice(None),) * picked.ndim + rest]
        part = self._expected_part(order)
        if part is not None:
            parts = [part]
        else:
            chunk = -(-len(order) // max(1, self.workers))  # one chunk per worker
            self._asked[:] = [order[i:i + chunk] for i in range(0, len(order), chunk)]
            parts = list(self._loader)  # [(rows, uint8 (b, T, H, W, 3), [problem or "", ...]), ...]
        for row, problem in ((r, p) for got, _, problems in parts for r, p in zip(got, problems) if p):
            if row not in self.failed:
                warnings.warn(problem, stacklevel=2)
            self.failed[row] = problem
        video = torch.cat([pixels for _, pixels, _ in parts]).reshape(*picked.shape, *self.shape[1:])
        return video[(slice(None),) * picked.ndim + rest]


def take(video, rows) -> tuple[torch.Tensor, torch.Tensor]:
    """``video[rows]`` and which of them are usable, bool (B,): all of a kept tensor's; a streamed folder's except
    the files that failed while decoding (blank in the batch, to be left out of the loss and the metrics)."""
    clips = video[rows]
    if not isinstance(video, StreamedVideo):
        return clips, torch.ones(len(clips), dtype=torch.bool)
    asked = torch.arange(len(video))[rows].reshape(-1).tolist()
    return clips, torch.tensor([row not in video.failed for row in asked], dtype=torch.bool)


def usable(video) -> torch.Tensor:
    """(N,) bool: which rows of a split decoded, once it has been read through (an evaluation): all of a kept
    tensor's; a streamed folder's but the failed ones, as every process found them (call it on every rank)."""
    if not isinstance(video, StreamedVideo):
        return torch.ones(len(video), dtype=torch.bool)
    failed = {row for found in distributed.gather_parts([set(video.failed)]) for row in found}
    return torch.tensor([row not in failed for row in range(len(video))], dtype=torch.bool)


class _WithRow(torch.utils.data.Dataset):
    """Items with their row: (row, item), so that a loader's batch says which rows it holds."""

    def __init__(self, clips):
        self.clips = clips

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int):
        return i, self.clips[i]


def _stack(items: list) -> tuple[list[int], torch.Tensor, list[str]]:
    """A chunk of (row, clip) -> (its rows, their pixels stacked, the problem of each, "" where none)."""
    rows = [row for row, _ in items]
    pairs = [item if isinstance(item, tuple) else (item, "") for _, item in items]
    return rows, torch.stack([pixels for pixels, _ in pairs]), [problem for _, problem in pairs]


class _Asked(torch.utils.data.Sampler):
    """A batch sampler that yields the chunks its ``StreamedVideo`` was last asked for."""

    def __init__(self, asked: list[list[int]]):
        self.asked = asked

    def __iter__(self):
        return iter(list(self.asked))

    def __len__(self) -> int:
        return len(self.asked)


class _Expected(torch.utils.data.Sampler):
    """A batch sampler over the requests the training loop will make, as lists of rows (read as it is drawn)."""

    def __init__(self, requests):
        self.requests = requests

    def __iter__(self):
        return ([int(row) for row in rows] for rows in self.requests)


def as_float(video: torch.Tensor) -> torch.Tensor:
    """uint8 pixels -> float in [0, 1], the range every model of the course takes."""
    return video.float().div_(255)
