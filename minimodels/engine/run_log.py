"""A run's metrics log, ``metrics.jsonl`` in its folder: every training stage appends a line per step
({"stage", "step", "loss", ...}) and per evaluation ({"stage", "step", "eval": {...}}) as it goes, so a run can be
followed (``tail -f``) and plotted while it trains; when TensorBoard is installed, the same numbers go to the
folder's ``tensorboard/`` as scalars ``<stage>/<name>`` (``<stage>/eval/<name>``), and ``tensorboard --logdir runs/``
follows every run. A resumed stage first writes again what its checkpoint logged, so the log of an interrupted and
resumed run reads as one run.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path


class RunLog:
    def __init__(self, path: Path):
        self.path = path

    def start(self) -> None:
        """An empty log (a resumed run too: its earlier stages run again and log again)."""
        self.path.write_text("")
        shutil.rmtree(self.path.parent / "tensorboard", ignore_errors=True)

    @contextlib.contextmanager
    def stage(self, name: str):
        """Yields ``write(row)``, which appends one line tagged with the stage ``name``."""
        board = _tensorboard(self.path.parent / "tensorboard")
        with open(self.path, "a") as log:
            def write(row: dict) -> None:
                log.write(json.dumps({"stage": name, **row}) + "\n")
                log.flush()
                if board is not None:
                    prefix, values = (f"{name}/eval/", row["eval"]) if "eval" in row else (f"{name}/", row)
                    for key, value in values.items():
                        if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool):
                            board.add_scalar(prefix + key, value, row["step"])

            try:
                yield write
            finally:
                if board is not None:
                    board.close()


@contextlib.contextmanager
def stage_writer(log: RunLog | None, name: str):
    """``log.stage(name)``, or a writer that keeps nothing when there is no run log (a notebook's short run)."""
    if log is None:
        yield _nothing
    else:
        with log.stage(name) as write:
            yield write


def _nothing(row: dict) -> None:
    pass


def _tensorboard(folder: Path):
    """A TensorBoard writer into ``folder``, or None where the optional tensorboard package is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # torch's writer is there, the package it writes with is not
        return None
    return SummaryWriter(str(folder))


