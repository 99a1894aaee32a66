"""Reading and writing real video files with PyAV: the one path every video takes into the course.

``load_video`` does what VideoPrism's demo does to a clip: sample T frames uniformly
(``linspace(0, n_frames, T, endpoint=False)``), bring each to size × size, scale to [0, 1]. Three things make it fit
for real data at scale:

- **only the sampled frames are decoded**, or nearly: ``read_frames`` seeks (``container.seek``, to the keyframe at
  or before the frame's time) whenever the next sampled frame lies further ahead than the keyframe spacing seen so
  far, and decodes forward from there; a codec can only start at a keyframe, so the frames between it and the
  sampled one are decoded too, never a whole 30 s file for 16 frames;
- **the aspect is kept**: the demo asserts that a video already has the target's aspect and squashes nothing
  (``mediapy.resize_video`` after ``assert original_height * target_width == original_width * target_height``);
  for any other aspect we take the centred square of the short side and resize it to size × size (antialiased
  bilinear), which is resizing the short side to ``size`` and centre-cropping, the usual evaluation crop: a portrait
  phone video loses its top and bottom, nothing is stretched;
- **the header is enough to plan**: ``video_info`` reads the frame count, fps and frame size without decoding (the
  count a container declares; WebM and Matroska declare none, so their duration × fps).

A file that cannot give the frames asked for (missing, empty, not a video, no video stream, cut before a sampled
frame) raises ``VideoLoadError`` naming the file and the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import torch
import torch.nn.functional as F

from ..engine.errors import ConfigError, DataError


class VideoLoadError(DataError):
    """A video file that is missing, empty, corrupt, truncated or has no video stream."""


@dataclass(frozen=True)
class VideoInfo:
    frames: int  # in the first video stream: the container's count, else its duration × fps
    fps: float
    width: int
    height: int
    declared: bool  # whether the container declared ``frames`` (a shortfall is then a truncation, not rounding)


@dataclass(frozen=True)
class Decoded:
    frames: torch.Tensor  # float (T, size, size, 3) in [0, 1], in the order asked
    times: list[float]  # each frame's time in seconds, index / fps
    decoded: int  # frames the codec decoded to give them (seeks included)


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


def _info(container, path: Path) -> VideoInfo:
    stream = container.streams.video[0]
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    if not rate:
        raise VideoLoadError(f"{path}: the video stream gives no frame rate")
    fps = float(rate)
    frames, declared = stream.frames, bool(stream.frames)
    if not frames:
        seconds = (float(stream.duration * stream.time_base) if stream.duration
                   else (container.duration or 0) / av.time_base)
        frames = round(seconds * fps)
    if not frames:  # nothing in the header: count the packets (reads the file, decodes nothing)
        frames = sum(1 for packet in container.demux(stream) if packet.size)
    return VideoInfo(frames, fps, stream.width, stream.height, declared)


def video_info(path: str | Path) -> VideoInfo:
    """Frame count, fps and frame size of the first video stream, from the container's header (no decoding)."""
    path = Path(path)
    with _open(path) as container:
        return _info(container, path)


def frame_count(path: str | Path) -> int:
    return video_info(path).frames


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


def sample_indices(total: int, num_frames: int) -> np.ndarray:
    """Uniform sampling: ``floor(linspace(0, total, num_frames, endpoint=False))``; repeats frames of short clips."""
    return np.linspace(0, total, num_frames, endpoint=False).astype(int)


def square(frame: np.ndarray, size: int) -> torch.Tensor:
    """uint8 (H, W, 3) -> float (size, size, 3) in [0, 1]: the centred square of the short side, resized with
    antialiased bilinear interpolation (the short side resized to ``size``, then centre-cropped)."""
    height, width = frame.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    image = torch.from_numpy(frame[top:top + side, left:left + side]).permute(2, 0, 1)[None].float() / 255
    image = F.interpolate(image, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return image.clamp(0, 1)[0].permute(1, 2, 0)  # (size, size, 3)


SLACK = 2  # a count estimated from the duration may be this many frames more than the stream holds


def read_frames(path: str | Path, indices, size: int) -> Decoded:
    """The frames at ``indices`` (of the first video stream, in any order, repeats allowed) at size × size.

    Sampled frames are visited in order; before each, a seek is made when it lies further ahead than the spacing of
    the keyframes seen so far (a seek lands on the keyframe at or before the frame, and a codec decodes from there:
    one that lands behind the frames already decoded would only decode them again). A frame is the first one the
    stream gives at or after its index. The stream ending before a sampled frame is a truncation, except within
    ``SLACK`` frames of a length estimated from the duration.
    """
    path = Path(path)
    wanted = sorted({int(i) for i in indices})
    if not wanted or wanted[0] < 0:
        raise ConfigError(f"read_frames({path}): frame indices {list(indices)[:5]} must be >= 0, at least one")
    with _open(path) as container:
        info = _info(container, path)
        stream = container.streams.video[0]
        start = stream.start_time or 0

        def seek(index: int):  # -> (frames from the keyframe at or before frame ``index``, where it aimed)
            try:
                container.seek(start + int(index / info.fps / stream.time_base), stream=stream)
            except av.FFmpegError:  # a file without an index to seek by (a cut Matroska file): decode on
                return frames or container.decode(stream), None
            return container.decode(stream), index

        kept: dict[int, torch.Tensor] = {}
        decoded, position, spacing, last, frames, aimed = 0, -1, max(1, round(info.fps)), None, None, None
        try:
            for target in wanted:
                if last is not None and target <= position:  # passed already (a variable frame rate)
                    kept[target] = last
                    continue
                if frames is None or target - position > spacing:
                    frames, aimed = seek(target)
                while (frame := next(frames, None)) is not None:
                    decoded, position = decoded + 1, round((frame.pts - start) * stream.time_base * info.fps)
                    if aimed is not None:  # the keyframe a seek landed on: keyframes are at least this far apart
                        spacing, landed, aimed = max(spacing, target - position), aimed, None
                        if position > landed > 0:  # past the frame (an index that is off): from the start instead
                            frames, aimed = seek(0)
                            continue
                    if position >= target:
                        last = kept[target] = square(frame.to_ndarray(format="rgb24"), size)
                        break
                else:
                    if last is not None and not info.declared and target >= info.frames - SLACK:
                        kept[target] = last  # a length estimated from the duration, a frame or two long
                        continue
                    raise VideoLoadError(f"{path}: truncated: frame {target} was to be sampled but the stream ends "
                                         f"after {position + 1} of {info.frames} frames")
        except av.FFmpegError as err:
            raise VideoLoadError(f"{path}: corrupt or truncated near frame {max(position, 0)} ({err})") from err
    order = [int(i) for i in indices]
    return Decoded(torch.stack([kept[i] for i in order]).contiguous(), [i / info.fps for i in order], decoded)


def load_video(path: str | Path, num_frames: int = 8, size: int = 32, sampler=sample_indices) -> torch.Tensor:
    """A video file -> float tensor (num_frames, size, size, 3) with values in [0, 1].

    ``sampler(total_frames, num_frames) -> indices`` picks the frames: uniform by default (VideoPrism); a paper's
    own rule can be given (MiniGPT4-Video's stride with the last frame repeated). Only what the sampled frames need
    is decoded (``read_frames``), and memory grows with the output, not with the video.
    """
    if num_frames < 1 or size < 1:
        raise ConfigError(f"load_video({path}): num_frames={num_frames} and size={size} must both be >= 1")
    return read_frames(path, sampler(video_info(path).frames, num_frames), size).frames


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
