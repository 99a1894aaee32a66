"""Reading and writing real video files with PyAV: the one path every video takes into the course.

``load_video`` does what VideoPrism's demo does to a clip: decode, sample T frames uniformly
(``linspace(0, n_frames, T, endpoint=False)``), resize every frame to size × size, scale to [0, 1].
Any file that cannot give frames raises ``VideoLoadError`` naming the file and the reason.
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


def decode_frames(path: str | Path) -> np.ndarray:
    """All frames of the first video stream as uint8 RGB, shape (n, H, W, 3)."""
    path = Path(path)
    if not path.is_file():
        raise VideoLoadError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise VideoLoadError(f"{path}: the file is empty (0 bytes)")
    try:
        container = av.open(str(path))
    except av.FFmpegError as err:
        raise VideoLoadError(f"{path}: not a readable video file ({err})") from err
    frames = []
    with container:
        if not container.streams.video:
            raise VideoLoadError(f"{path}: the file has no video stream")
        try:
            for frame in container.decode(video=0):
                frames.append(frame.to_ndarray(format="rgb24"))
        except av.FFmpegError as err:
            raise VideoLoadError(f"{path}: corrupt or truncated after {len(frames)} frames ({err})") from err
    if not frames:
        raise VideoLoadError(f"{path}: the video stream holds no decodable frames (corrupt or truncated)")
    return np.stack(frames)


def sample_indices(total: int, num_frames: int) -> np.ndarray:
    """Uniform sampling: ``floor(linspace(0, total, num_frames, endpoint=False))``; repeats frames of short clips."""
    return np.linspace(0, total, num_frames, endpoint=False).astype(int)


def load_video(path: str | Path, num_frames: int = 8, size: int = 32) -> torch.Tensor:
    """A video file -> float tensor (num_frames, size, size, 3) with values in [0, 1]."""
    if num_frames < 1 or size < 1:
        raise ConfigError(f"load_video({path}): num_frames={num_frames} and size={size} must both be >= 1")
    frames = decode_frames(path)
    clip = torch.from_numpy(frames[sample_indices(len(frames), num_frames)]).permute(0, 3, 1, 2).float() / 255
    clip = F.interpolate(clip, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return clip.clamp(0, 1).permute(0, 2, 3, 1).contiguous()  # (T, size, size, 3)


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
