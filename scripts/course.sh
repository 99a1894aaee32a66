#!/usr/bin/env bash
# Install everything into .venv, execute every notebook top to bottom on the tiny configs (papermill), and print
# the course's results table.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check torch==2.13.0 -e . 2>&1 | grep -v "^WARNING: Location" || true
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 PATH="$PWD/.venv/bin:$PATH"
mkdir -p runs/notebooks
for nb in notebooks/[0-9]*.ipynb; do
  echo "== $nb"
  papermill --log-level WARNING --cwd notebooks "$nb" "runs/notebooks/$(basename "$nb")"
done
python -m minimodels results
