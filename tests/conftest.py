"""Shared fixtures. The whole unit suite runs offline and on one CPU thread, and writes nothing into the repository.

One thread: the tensors here are tiny, and on a 2-core machine shared with other processes two OpenMP threads
spin against each other (a tiny forward pass goes from ~5 ms to ~300 ms). The CLI tests pass OMP_NUM_THREADS=1 to
their subprocesses. Only the offline switches and the runs folder go into the environment, because nbval's notebook
kernels inherit it: they keep matplotlib's inline backend and use both cores.

Runs: every experiment writes a run folder and the latest-results table under ``MINIMODELS_RUNS``; the suite points
it at a fresh temporary folder (for the notebooks too), so a test never touches ``runs/`` or someone's run.
"""

import atexit
import math
import os
import shutil
import tempfile

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["MINIMODELS_RUNS"] = tempfile.mkdtemp(prefix="minimodels-test-runs-")
atexit.register(shutil.rmtree, os.environ["MINIMODELS_RUNS"], ignore_errors=True)

import pytest  # noqa: E402
import torch  # noqa: E402

from minimodels.engine.train import TrainConfig, train  # noqa: E402
from minimodels.nn.video_vit import VideoViTConfig  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture
def tiny_cfg() -> VideoViTConfig:
    """A very small factorized encoder: 16² frames of 4 × 4 patches of 4², width 16, one layer per stage."""
    return VideoViTConfig(image_size=16, patch_size=4, num_frames=4, width=16, spatial_layers=1, temporal_layers=1,
                          heads=2, mlp_dim=32)



@pytest.fixture
def noise_video():
    """A writer of small MPEG-4 videos of random frames: ``noise_video(path, frames, width, height) -> path`` (an
    AVI declares its frame count in its header, an MP4 its duration)."""

    def write(path, frames, width=64, height=48):
        import av
        import numpy as np

        with av.open(str(path), "w") as container:
            stream = container.add_stream("mpeg4", rate=10)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            noise = np.random.default_rng(0)
            for _ in range(frames):
                frame = av.VideoFrame.from_ndarray(noise.integers(0, 255, (height, width, 3), dtype=np.uint8),
                                                   format="rgb24")
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        return path

    return write


@pytest.fixture
def cuda_step():
    """Run one step of the course's training loop (on the model's device), check that it stays finite, free memory."""

    def step(model, loss_fn, batch_size=1):
        history = train(model, loss_fn, batch_size, TrainConfig(steps=1, batch_size=batch_size, warmup=1,
                                                                progress=False))
        assert len(history.steps) == 1 and math.isfinite(history.steps[0]["loss"])
        assert all(torch.isfinite(p).all() for p in model.parameters())
        torch.cuda.empty_cache()
        return history

    return step


def pytest_collection_modifyitems(config, items):
    """Tests marked ``slow`` (a full-size model on the CPU, tens of seconds each) run with MINIMODELS_SLOW=1 only:
    the suite's 10-minute budget on 2 cores has no room for them."""
    if os.environ.get("MINIMODELS_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="a full-size model on the CPU: run with MINIMODELS_SLOW=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def pytest_collection_finish(session):
    """The autograder's runs (tests/test_assignments.py) start here, in the background: on 2 cores they run beside
    the unit tests, which use one thread, instead of after them."""
    for item in session.items:
        if "graded" in getattr(item, "fixturenames", ()):
            item.module.start_grading()
            return
