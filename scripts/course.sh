#!/usr/bin/env bash
# The course's main job: install (scripts/setup.sh), execute every notebook top to bottom on the tiny configs
# (papermill, outputs in runs/notebooks/), and print the course's results table.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 PATH="$PWD/.venv/bin:$PATH"
mkdir -p runs/notebooks
for nb in notebooks/[0-9]*.ipynb; do
  echo "== $nb"
  papermill --log-level WARNING --cwd notebooks "$nb" "runs/notebooks/$(basename "$nb")"
done
python -m minimodels results
