"""Reading and writing real video files with PyAV: the one path every video takes into the course.

``load_video`` does what VideoPrism's demo does to a clip: decode, sample T frames uniformly
(``linspace(0, n_frames, T, endpoint=False)``), resize every frame to size × size, scale to [0, 1]; it keeps only the
sampled frames. Any file that cannot give frames, or gives fewer than its container declares, raises
``VideoLoadError`` naming the file and the reason.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import torch
import torch.nn.functional as F

from ..engine.errors import ConfigError, DataError


class VideoLoadError(DataError):
    """A video file that is missing, empty, corrupt, truncated or has no video stream."""


def _open(path: Path):
    """An opened container with a video stream, or a VideoLoadError naming the file and what is wrong with it."""
    if not path.is_file():
        raise VideoLoadError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise VideoLoadError(f"{path}: the file is empty (0 bytes)")
    try:
        container = av.open(str(path))
    except av.FFmpegError as err:
        raise VideoLoadError(f"{path}: not a readable video file ({err})") from err
    if not container.streams.video:
        container.close()
        raise VideoLoadError(f"{path}: the file has no video stream")
    return container


def _frames(path: Path):
    """Yield (index, av.VideoFrame) for every frame of the first video stream, then check that the stream held as
    many frames as its container declares (a cut file often decodes without an error, only shorter)."""
    container = _open(path)
    with container:
        declared, decoded = container.streams.video[0].frames, 0
        try:
            for frame in container.decode(video=0):
                yield decoded, frame
                decoded += 1
        except av.FFmpegError as err:
            raise VideoLoadError(f"{path}: corrupt or truncated after {decoded} frames ({err})") from err
    if not decoded:
        raise VideoLoadError(f"{path}: the video stream holds no decodable frames (corrupt or truncated)")
    if declared and decoded < declared:
        raise VideoLoadError(f"{path}: truncated: the container declares {declared} frames, {decoded} decode")


def decode_frames(path: str | Path) -> np.ndarray:
    """All frames of the first video stream as uint8 RGB, shape (n, H, W, 3)."""
    return np.stack([frame.to_ndarray(format="rgb24") for _, frame in _frames(Path(path))])


def frame_count(path: str | Path) -> int:
    """How many frames the first video stream holds: the container's count, else its packets counted (no decoding)."""
    container = _open(Path(path))
    with container:
        stream = container.streams.video[0]
        return stream.frames or sum(1 for packet in container.demux(stream) if packet.size)


def sample_indices(total: int, num_frames: int) -> np.ndarray:
    """Uniform sampling: ``floor(linspace(0, total, num_frames, endpoint=False))``; repeats frames of short clips."""
    return np.linspace(0, total, num_frames, endpoint=False).astype(int)


def _resized(frame: np.ndarray, size: int) -> torch.Tensor:
    """uint8 (H, W, 3) -> float (size, size, 3) in [0, 1], antialiased bilinear."""
    image = torch.from_numpy(frame).permute(2, 0, 1)[None].float() / 255  # (1, 3, H, W)
    image = F.interpolate(image, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return image.clamp(0, 1)[0].permute(1, 2, 0)


def load_video(path: str | Path, num_frames: int = 8, size: int = 32, sampler=sample_indices) -> torch.Tensor:
    """A video file -> float tensor (num_frames, size, size, 3) with values in [0, 1].

    ``sampler(total_frames, num_frames) -> indices`` picks the frames: uniform by default (VideoPrism); a paper's
    own rule can be given (MiniGPT4-Video's stride with the last frame repeated). Every frame is decoded (the codec
    needs them) but only the sampled ones are kept, each resized as soon as it is decoded: memory grows with the
    output, not with the video.
    """
    if num_frames < 1 or size < 1:
        raise ConfigError(f"load_video({path}): num_frames={num_frames} and size={size} must both be >= 1")
    path = Path(path)
    wanted = [int(i) for i in sampler(frame_count(path), num_frames)]
    sampled = set(wanted)
    kept = {i: _resized(frame.to_ndarray(format="rgb24"), size) for i, frame in _frames(path) if i in sampled}
    missing = sorted(sampled - kept.keys())
    if missing:  # the stream held fewer frames than its packets promised
        raise VideoLoadError(f"{path}: truncated: frame {missing[0]} was to be sampled but the stream ends before it")
    return torch.stack([kept[i] for i in wanted]).contiguous()  # (T, size, size, 3)


def write_video(path: str | Path, frames: np.ndarray, fps: int) -> None:
    """uint8 frames (T, H, W, 3), H and W even -> an H.264 .mp4, byte-identical on every rebuild.

    A constant quantiser (``qp``) rather than x264's default constant-quality rate control: the latter's macroblock
    tree made one of the three shipped episodes come out a few bytes different in about one build in ten, even on
    one thread. ``threads`` is the codec option libx264 reads (PyAV's ``thread_count`` alone left it threaded).
    """
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"qp": "18", "preset": "medium", "threads": "1"}
        for array in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(array), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
