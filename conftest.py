"""The suite's setting, for the unit tests and the notebooks alike (``pytest``, or ``pytest notebooks/NN.ipynb``).

- Offline, and every experiment's run folder in a fresh temporary ``MINIMODELS_RUNS``: a test or a notebook under
  nbval never downloads, and never touches ``runs/`` or someone's run. The clips drawn once (``data/dataset.py``)
  go into one temporary ``MINIMODELS_CACHE``, made by the first process (pytest's own, before its workers start) and
  shared by every later one: the workers, the notebooks' kernels and the commands the tests start, each of which
  would otherwise draw the training split again (2 s).
- Two worker processes (pytest-xdist, ``-n 2 --dist loadfile`` in pyproject.toml) share the work a file at a time:
  the longest files first (``LONGEST_FIRST`` below: most of them notebooks), then the rest. Every process computes on
  one torch thread, the unit tests (tests/conftest.py) and the notebooks' kernels alike (``OMP_NUM_THREADS=1``, which
  a kernel inherits): two single-threaded processes keep two cores busy, where two OpenMP threads beside a busy core
  wait on it at every parallel region (a tiny forward pass goes from ~5 ms to ~300 ms). The committed outputs come
  from two threads; the cells nbval compares (``# NBVAL_CHECK_OUTPUT``) print what holds on either (README).
- glibc's allocator keeps freed blocks of up to 32 MB for the next step instead of handing them back to the kernel
  (``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``; set here, before the workers start, so every process of
  the suite inherits them). A training step frees and asks again for the same activations every step; with
  glibc's defaults each of them is a fresh ``mmap`` whose pages the kernel zeroes on first touch. Measured on
  `run videoprism-vit-probe` (150 steps, one thread, three runs each): 21.4 s with the defaults, 19.6 s with these;
  system time 2.0 -> 1.3 s. The numbers the runs compute are the same (the allocator decides where memory comes
  from, never what is computed in it); scripts/course.sh sets the same for the course's main job.
"""

import atexit
import os
import shutil
import tempfile

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MALLOC_MMAP_THRESHOLD_", str(32 * 2**20))  # glibc's largest (64-bit); see above
os.environ.setdefault("MALLOC_TRIM_THRESHOLD_", str(128 * 2**20))
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["MINIMODELS_RUNS"] = tempfile.mkdtemp(prefix="minimodels-test-runs-")
atexit.register(shutil.rmtree, os.environ["MINIMODELS_RUNS"], ignore_errors=True)
if "MINIMODELS_CACHE" not in os.environ:  # one cache of drawn clips for the whole suite (see above)
    os.environ["MINIMODELS_CACHE"] = tempfile.mkdtemp(prefix="minimodels-test-cache-")
    atexit.register(shutil.rmtree, os.environ["MINIMODELS_CACHE"], ignore_errors=True)


# The files in the order the two workers take them: the longest first (longest-processing-time-first scheduling;
# xdist hands out whole files in collection order under --no-loadscope-reorder, in pyproject.toml, and otherwise
# sorts them by their number of tests), so that neither worker is left with a long file at the end.
# CPU seconds per file (its process and the kernels and commands it starts), one torch thread, measured on
# a clean clone (`PYTHONPATH=scripts .venv/bin/python -m pytest -p file_cpu`: both workers end within a second of each
# other); every other file follows in its collected order.
LONGEST_FIRST = (
    "notebooks/03_videoprism_masked_distillation.ipynb",  # 107 s
    "notebooks/05_minigpt4video_frame_subtitle_prompting.ipynb",  # 105 s
    "notebooks/01_factorized_video_vit.ipynb",  # 80 s
    "notebooks/04_mvgpt_bidirectional_generation.ipynb",  # 62 s
    "tests/test_grading.py",  # 43 s (its two grading kernels beside the other worker)
    "notebooks/02_videoprism_contrastive.ipynb",  # 36 s
    "tests/test_cli.py",  # 31 s
    "notebooks/06_from_notebook_to_gpu.ipynb",  # 24 s
    "tests/videoprism/test_stage2.py",  # 24 s
    "tests/minigpt4video/test_minigpt4video.py",  # 23 s
    "tests/mvgpt/test_mvgpt.py",  # 16 s
    "tests/test_assignments.py",  # 14 s
    "notebooks/00_video_world.ipynb",  # 12 s
    "tests/eval/test_caption_metrics.py",  # 8 s of wall time: its Java tools (their CPU time is not counted)
    "tests/minigpt4video/test_official_weights.py",  # 7 s
)


def pytest_collection_modifyitems(items):
    rank = {path: i for i, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))  # a stable sort
