"""Where the course keeps its files, resolved from the package so no notebook depends on the working directory."""

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]  # minimodels/engine/paths.py -> the repository
DATA_DIR = Path(os.environ.get("MINIMODELS_DATA", REPO_ROOT / "data_small"))
RUNS_DIR = Path(os.environ.get("MINIMODELS_RUNS", REPO_ROOT / "runs"))
RESULTS_DIR = REPO_ROOT / "results"
