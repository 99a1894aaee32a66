#!/usr/bin/env bash
# Install everything into .venv and run the whole test suite: pytest unit tests, then nbval over every notebook.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check torch==2.13.0 -e . 2>&1 | grep -v "^WARNING: Location" || true
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 PATH="$PWD/.venv/bin:$PATH"
python -m pytest tests notebooks --nbval-lax --nbval-sanitize-with notebooks/sanitize.cfg -p no:cacheprovider "$@"
