#!/usr/bin/env bash
# Create .venv and install the course into it: torch 2.13 (the CPU build on the course machines) and this package.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check torch==2.13.0 -e . 2>&1 | grep -v "^WARNING: Location" || true
