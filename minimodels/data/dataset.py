"""Loading ``data_small/`` with `datasets` (from the local JSON-lines files, never the hub) and rendering clips.

``load_table("clips", "train")`` gives a ``datasets.Dataset`` of rows; ``clip_tensors("train")`` renders every clip
of a split once and returns the pixels with the probe labels, ready for training on CPU.
"""

from __future__ import annotations

import json
from functools import lru_cache

import datasets
import numpy as np
import torch

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


def _expected_rows(table: str, split: str) -> int | None:
    """How many rows the world's spec says a table holds (episodes, clips), or None when it does not say."""
    spec_path = DATA_DIR / "world.json"
    if table == "qa" or not spec_path.is_file():
        return None
    spec = json.loads(spec_path.read_text())
    episodes = dict(spec["episodes"]).get(split)
    if episodes is None:
        return None
    return episodes if table == "episodes" else episodes * spec["steps"]


@lru_cache(maxsize=8)
def clip_tensors(split: str, size: int = 32, limit: int | None = None) -> dict[str, torch.Tensor]:
    """Render a split: {"video": uint8 (N, T, size, size, 3), "<attribute>": long (N,) for every probed label}.

    Pixels stay uint8 (four times smaller than float); ``as_float`` scales a batch to [0, 1] when it is used.
    """
    rows = load_table("clips", split)
    if limit is not None:
        rows = rows.select(range(min(limit, len(rows))))
    rows = rows.to_list()
    out = {"video": torch.from_numpy(np.stack([render_clip(r, size) for r in rows]))}
    for name in (*APPEARANCE, *MOTION):
        out[name] = torch.tensor([labels(r)[name] for r in rows])
    return out


def as_float(video: torch.Tensor) -> torch.Tensor:
    """uint8 pixels -> float in [0, 1], the range every model of the course takes."""
    return video.float().div_(255)
