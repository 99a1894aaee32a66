"""Where the course keeps its files, resolved from the package so no notebook depends on the working directory."""

import os
from pathlib import Path
from typing import Callable

from .errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[2]  # minimodels/engine/paths.py -> the repository
DATA_DIR = Path(os.environ.get("MINIMODELS_DATA", REPO_ROOT / "data_small"))
RUNS_DIR = Path(os.environ.get("MINIMODELS_RUNS", REPO_ROOT / "runs"))
CACHE_DIR = Path(os.environ.get("MINIMODELS_CACHE", RUNS_DIR / "cache"))  # what can be made again: drawn clips
RESULTS_DIR = REPO_ROOT / "results"


def writable(folder: Path, what: str) -> None:
    """Refuse, before any work, a folder that cannot take files (a file in its place, no permission)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise ConfigError(f"{what}: cannot write to {folder} ({err.strerror}); point it at a folder you can write "
                          f"to") from None


def write_atomically(path: Path, write: Callable[[str], None]) -> None:
    """``write(name)`` a temporary file beside ``path``, then rename it to ``path``: a crash mid-write leaves the
    previous file whole, and a process reading ``path`` never sees half a file. The temporary name is this process's
    own (two processes may write the same file at once); it is removed when the write fails."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        write(str(tmp))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
