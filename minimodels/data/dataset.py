"""Loading ``data_small/`` with `datasets` (from the local JSON-lines files, never the hub) and rendering clips.

``load_table("clips", "train")`` gives a ``datasets.Dataset`` of rows; ``clip_tensors("train", size, frames)`` gives
a split's pixels with the probe labels. The pixels are indexed as a tensor, ``video[rows]`` -> uint8 (B, T, S, S, 3),
however they are held:

- a split that is small once rendered (every tiny config: 2,400 clips of 8 × 32² are 59 MB) is rendered once and
  kept, a plain tensor, so the CPU runs pay for drawing each clip once;
- a larger one (a full preset: 16 × 288² frames are 4 MB a clip, 9.5 GB for the training split) is never held:
  ``StreamedVideo`` renders the rows asked for, batch by batch, in the worker processes of a
  ``torch.utils.data.DataLoader`` over ``RenderedClips``.
"""

from __future__ import annotations

import json
import os
import warnings
from functools import lru_cache

import datasets
import numpy as np
import torch

from ..engine import distributed
from ..engine.errors import DataError
from ..engine.paths import DATA_DIR
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
    out = {"video": clips.render_all() if np.prod(clips.shape) <= KEEP_BYTES else StreamedVideo(clips)}
    for name in (*APPEARANCE, *MOTION):
        out[name] = torch.tensor([labels(r)[name] for r in clips.scenes])
    return out


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


class StreamedVideo:
    """Clips made when indexed, as a kept tensor would give them: ``video[rows]``, ``video[rows, :frames]`` ->
    uint8 (B, T, H, W, 3). ``clips`` is a Dataset with a ``shape`` (N, T, H, W, 3) whose items are uint8
    (T, H, W, 3) tensors, or (tensor, problem) pairs where an item could not be made as asked and stands in blank:
    ``RenderedClips`` for the world, ``video_folder.FolderPixels`` for real video. The rows asked for are split
    among the persistent workers of a DataLoader over it (in this process when there are none), so a split at a
    full preset's size never sits in memory; the problems come back with the pixels and are warned about here, in
    the process (and the notebook) that asked."""

    def __init__(self, clips: torch.utils.data.Dataset, workers: int | None = None):
        self.clips = clips
        self.workers = loader_workers() if workers is None else workers
        self._asked: list[list[int]] = []  # the row chunks of the current request, read by the loader's sampler
        # A generator of its own: a DataLoader otherwise draws its workers' seed from the global RNG each time it is
        # read, which would move the dropout and other global draws of the training it feeds.
        self._loader = torch.utils.data.DataLoader(clips, batch_sampler=_Asked(self._asked),
                                                   num_workers=self.workers, persistent_workers=self.workers > 0,
                                                   collate_fn=_stack, generator=torch.Generator())

    def __len__(self) -> int:
        return len(self.clips)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.clips.shape

    def __getitem__(self, index) -> torch.Tensor:
        rows, rest = (index[0], index[1:]) if isinstance(index, tuple) else (index, ())
        picked = torch.arange(len(self))[rows]  # the rows as a kept tensor's first axis would pick them
        order = picked.reshape(-1).tolist()
        if not order:
            return torch.empty(*picked.shape, *self.shape[1:], dtype=torch.uint8)[(slice(None),) * picked.ndim + rest]
        chunk = -(-len(order) // max(1, self.workers))  # one chunk per worker
        self._asked[:] = [order[i:i + chunk] for i in range(0, len(order), chunk)]
        parts = list(self._loader)  # [(uint8 (b, T, H, W, 3), [problem, ...]), ...]
        for problem in (p for _, problems in parts for p in problems):
            warnings.warn(problem, stacklevel=2)
        video = torch.cat([pixels for pixels, _ in parts]).reshape(*picked.shape, *self.shape[1:])
        return video[(slice(None),) * picked.ndim + rest]


def _stack(items: list) -> tuple[torch.Tensor, list[str]]:
    """A chunk of clips -> (their pixels stacked, the problems reported with them)."""
    pairs = [item if isinstance(item, tuple) else (item, "") for item in items]
    return torch.stack([pixels for pixels, _ in pairs]), [problem for _, problem in pairs if problem]


class _Asked(torch.utils.data.Sampler):
    """A batch sampler that yields the chunks its ``StreamedVideo`` was last asked for."""

    def __init__(self, asked: list[list[int]]):
        self.asked = asked

    def __iter__(self):
        return iter(list(self.asked))

    def __len__(self) -> int:
        return len(self.asked)


def as_float(video: torch.Tensor) -> torch.Tensor:
    """uint8 pixels -> float in [0, 1], the range every model of the course takes."""
    return video.float().div_(255)
