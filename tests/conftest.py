"""Shared fixtures. The unit tests run on one CPU thread (their tensors are tiny); the suite's setting (offline, a
temporary runs folder, two worker processes) is the repository's conftest.py. The CLI tests pass OMP_NUM_THREADS=1
to their subprocesses.
"""

import math
import os

import pytest
import torch

from minimodels.engine.train import TrainConfig, train
from minimodels.nn.video_vit import VideoViTConfig

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
