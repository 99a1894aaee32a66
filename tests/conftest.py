"""Shared fixtures. The unit tests run on one CPU thread (their tensors are tiny); the suite's setting (offline, a
temporary runs folder, two worker processes) is the repository's conftest.py. The CLI tests pass OMP_NUM_THREADS=1
to their subprocesses.
"""

import math
import os
from pathlib import Path

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


def write_clip(path, codec: str, frames: int, width: int, height: int, fps: int, colour: int, keyint: int = 250):
    """A short clip of a bright square crossing a plain background, in ``codec`` (the container from the suffix),
    a keyframe every ``keyint`` frames."""
    import av
    import numpy as np

    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"threads": "1", "g": str(keyint), **({"preset": "ultrafast"} if codec == "libx264" else {})}
        side = min(width, height) // 3
        for t in range(frames):
            array = np.full((height, width, 3), 40, dtype=np.uint8)
            x = (width - side) * t // max(1, frames - 1)
            array[(height - side) // 2:(height + side) // 2, x:x + side, colour % 3] = 230
            for packet in stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture
def clip_writer():
    """``write_clip(path, codec, frames, width, height, fps, colour, keyint=250) -> path``."""
    return write_clip


CUES = [(0.0, 0.9, "first we put the pan on"), (1.0, 1.9, "then the oil goes in"), (2.0, 2.9, "now it is hot")]


@pytest.fixture(scope="session")
def real_folder(tmp_path_factory):
    """A folder a researcher would bring, tiny and short: 3 s clips at 8 fps in every container the course reads
    (mp4, webm, mkv), one portrait, one cut mid-stream (its header whole) and one that is no video, each with a
    subtitle track of three cues; and a manifest per kind of data: ``folder / "<name>.jsonl"``."""
    import json

    folder = tmp_path_factory.mktemp("real-videos")
    clips = {"kitchen.mp4": ("libx264", 64, 48), "street.webm": ("libvpx", 64, 48), "garden.mkv": ("libx264", 64, 48),
             "phone.mp4": ("libx264", 48, 64), "beach.webm": ("libvpx", 64, 48)}
    for colour, (name, (codec, width, height)) in enumerate(clips.items()):
        write_clip(folder / name, codec, 24, width, height, 8, colour)
    whole = write_clip(folder / "whole.mkv", "libx264", 24, 64, 48, 8, 0)
    (folder / "cut.mkv").write_bytes(whole.read_bytes()[: whole.stat().st_size * 7 // 10])  # 8 frames of 24 left
    whole.unlink()
    (folder / "notes.mp4").write_text("not a video\n")
    vtt = "WEBVTT\n\n" + "".join(f"00:00:0{a:.3f} --> 00:00:0{b:.3f}\n{text}\n\n" for a, b, text in CUES)
    for name in (*clips, "cut.mkv", "notes.mp4"):
        (folder / name).with_suffix(".vtt").write_text(vtt)
    videos = [*clips, "cut.mkv", "notes.mp4"]
    captions = ["a red square moves right in a kitchen", "a green square moves right on a street",
                "a blue square moves right in a garden", "a red square on a phone", "a green square on a beach",
                "a cut video", "no video at all"]
    labels = ["red", "green", "blue", "red", "green", "red", "blue"]

    def manifest(name, rows):
        (folder / f"{name}.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))

    manifest("captions", [{"video": v, "caption": c} for v, c in zip(videos, captions)])
    manifest("labels", [{"video": v, "label": label} for v, label in zip(videos, labels)])
    manifest("videos", [{"video": v} for v in videos])
    manifest("narrated", [{"video": v, "subtitles": Path(v).with_suffix(".vtt").name} for v in videos])
    manifest("segments", [{"video": v, "start": start, "end": end, "caption": f"{c} then step {k}",
                           "subtitles": Path(v).with_suffix(".vtt").name}
                          for v, c in zip(videos, captions) for k, (start, end) in enumerate([(0.0, 1.5), (1.5, 3.0)])])
    questions = [("what colour is the square?", labels), ("what goes in after the pan?", ["oil"] * len(videos))]
    options = {"what colour is the square?": ["red", "green", "blue", "white", "black"],
               "what goes in after the pan?": ["oil", "salt", "water", "sugar", "flour"]}
    manifest("questions", [{"video": v, "subtitles": Path(v).with_suffix(".vtt").name, "question": q,
                            "options": options[q], "answer_index": options[q].index(answers[i]),
                            "kind": "frames" if "colour" in q else "subtitles"}
                           for i, v in enumerate(videos) for q, answers in questions])
    return folder
