"""The suite's setting, for the unit tests and the notebooks alike (``pytest``, or ``pytest notebooks/NN.ipynb``).

- Offline, and every experiment's run folder in a fresh temporary ``MINIMODELS_RUNS``: a test or a notebook under
  nbval never downloads, and never touches ``runs/`` or someone's run.
- Two worker processes (pytest-xdist, ``-n 2`` in pyproject.toml) share the unit tests, one file at a time, each on
  one torch thread (tests/conftest.py); then one of them runs every notebook, one after the other, alone: a
  notebook's numbers are those of torch's two threads (README), and two OpenMP threads beside a busy core wait on it
  at every parallel region (a tiny forward pass goes from ~5 ms to ~300 ms).
"""

import atexit
import os
import shutil
import tempfile

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["MINIMODELS_RUNS"] = tempfile.mkdtemp(prefix="minimodels-test-runs-")
atexit.register(shutil.rmtree, os.environ["MINIMODELS_RUNS"], ignore_errors=True)


def pytest_xdist_make_scheduler(config, log):
    """pytest-xdist's file-by-file scheduling, with all the notebooks one unit of work, handed out last (they are
    collected last: ``testpaths`` in pyproject.toml)."""
    from xdist.scheduler import LoadFileScheduling

    class NotebooksOnOneWorker(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "notebooks" if ".ipynb::" in nodeid else super()._split_scope(nodeid)

    return NotebooksOnOneWorker(config, log)
