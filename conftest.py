"""The suite's setting, for the unit tests and the notebooks alike (``pytest``, or ``pytest notebooks/NN.ipynb``).

- Offline, and every experiment's run folder in a fresh temporary ``MINIMODELS_RUNS``: a test or a notebook under
  nbval never downloads, and never touches ``runs/`` or someone's run.
- Two worker processes (pytest-xdist, ``-n 2 --dist loadfile`` in pyproject.toml) share the work a file at a time:
  the notebooks first (each one file, and the longest units), then the unit test files. Every process computes on
  one torch thread, the unit tests (tests/conftest.py) and the notebooks' kernels alike (``OMP_NUM_THREADS=1``, which
  a kernel inherits): two single-threaded processes keep two cores busy, where two OpenMP threads beside a busy core
  wait on it at every parallel region (a tiny forward pass goes from ~5 ms to ~300 ms). The committed outputs come
  from two threads; the cells nbval compares (``# NBVAL_CHECK_OUTPUT``) print what holds on either (README).
"""

import atexit
import os
import shutil
import tempfile

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["MINIMODELS_RUNS"] = tempfile.mkdtemp(prefix="minimodels-test-runs-")
atexit.register(shutil.rmtree, os.environ["MINIMODELS_RUNS"], ignore_errors=True)
