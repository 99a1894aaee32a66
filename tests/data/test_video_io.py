"""Reading real video files: uniform frame sampling, resizing, and a clear error for every kind of bad file."""

import numpy as np
import pytest
import torch

from minimodels.data.build import generate
from minimodels.data.video_io import VideoLoadError, decode_frames, load_video, sample_indices, write_video
from minimodels.data.world import render_clip
from minimodels.engine.paths import REPO_ROOT

VIDEOS = REPO_ROOT / "data_small" / "videos"
EPISODE = VIDEOS / "episode_0700.mp4"


@pytest.mark.parametrize("T, size", [(8, 32), (4, 64), (16, 16), (32, 48), (3, 288)])
def test_load_video_shape_and_range(T, size):
    clip = load_video(EPISODE, num_frames=T, size=size)
    assert clip.shape == (T, size, size, 3)
    assert clip.dtype == torch.float32
    assert clip.min() >= 0 and clip.max() <= 1
    assert clip.max() > 0.5  # the coloured objects are bright: not an all-black decode


def test_load_video_matches_the_rendered_episode():
    """The shipped .mp4 shows the test split's first episode: its 4 clips, rendered at 64², one after another."""
    clips = [c for c in generate()["test"]["clips"] if c["episode"] == 700]
    frames = np.concatenate([render_clip(c, 64) for c in clips])  # (32, 64, 64, 3)
    assert decode_frames(EPISODE).shape == frames.shape
    loaded = load_video(EPISODE, num_frames=len(frames), size=64)
    expected = torch.from_numpy(frames).float() / 255
    assert (loaded - expected).abs().mean() < 0.02
    # Sampling 8 of 32 frames picks every 4th one.
    eight = load_video(EPISODE, num_frames=8, size=64)
    torch.testing.assert_close(eight, loaded[::4])


@pytest.mark.parametrize("total, T, expected", [
    (10, 4, [0, 2, 5, 7]),             # floor(0, 2.5, 5, 7.5)
    (8, 8, list(range(8))),
    (32, 4, [0, 8, 16, 24]),
    (3, 6, [0, 0, 1, 1, 2, 2]),        # short clips repeat frames
    (1, 3, [0, 0, 0]),
])
def test_sample_indices(total, T, expected):
    got = sample_indices(total, T)
    assert got.tolist() == expected


@pytest.mark.parametrize("total, T", [(7, 3), (100, 16), (5, 9), (300, 8)])
def test_sample_indices_properties(total, T):
    got = sample_indices(total, T)
    assert len(got) == T and got[0] == 0 and got.max() < total
    assert (np.diff(got) >= 0).all()


@pytest.fixture
def bad_files(tmp_path):
    data = EPISODE.read_bytes()
    files = {
        "missing": (tmp_path / "missing.mp4", "no such file"),
        "empty": (tmp_path / "empty.mp4", "empty"),
        "random": (tmp_path / "random.mp4", None),
        "truncated": (tmp_path / "truncated.mp4", None),
        "text": (tmp_path / "notes.mp4", None),
    }
    files["empty"][0].write_bytes(b"")
    files["random"][0].write_bytes(np.random.default_rng(0).bytes(4096))
    files["truncated"][0].write_bytes(data[: len(data) // 2])
    files["text"][0].write_text("this is a text file with a video extension\n" * 40)
    return files


@pytest.mark.parametrize("kind", ["missing", "empty", "random", "truncated", "text"])
def test_bad_files_raise_video_load_error_naming_file_and_reason(bad_files, kind):
    path, reason = bad_files[kind]
    with pytest.raises(VideoLoadError) as err:
        load_video(path)
    message = str(err.value)
    assert str(path) in message
    reasons = [reason] if reason else ["not a readable video", "corrupt", "truncated", "no video stream",
                                      "no decodable frames"]
    assert any(r in message for r in reasons), message


def test_a_file_with_no_video_stream(tmp_path):
    import av

    path = tmp_path / "audio_only.mp4"
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("aac", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), dtype=np.float32), format="fltp", layout="mono")
        frame.sample_rate = 8000
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    with pytest.raises(VideoLoadError, match="no video stream") as err:
        load_video(path)
    assert str(path) in str(err.value)


def test_write_then_load_round_trip(tmp_path):
    clip = generate()["val"]["clips"][5]
    frames = render_clip(clip, 64)  # (8, 64, 64, 3) uint8
    path = tmp_path / "clip.mp4"
    write_video(path, frames, fps=4)
    decoded = decode_frames(path)
    assert decoded.shape == frames.shape and decoded.dtype == np.uint8
    loaded = load_video(path, num_frames=len(frames), size=64)
    source = torch.from_numpy(frames).float() / 255
    assert (loaded - source).abs().mean() < 0.02
    # The error is far below the difference between two frames of the moving object.
    assert (loaded - source).abs().mean() < (source[1:] - source[:-1]).abs().mean() / 2
    # And downsizing gives what resizing the source would (up to coding noise).
    small = load_video(path, num_frames=len(frames), size=32)
    ref = torch.nn.functional.interpolate(source.permute(0, 3, 1, 2), size=(32, 32), mode="bilinear",
                                          antialias=True, align_corners=False).permute(0, 2, 3, 1)
    assert (small - ref).abs().mean() < 0.02
