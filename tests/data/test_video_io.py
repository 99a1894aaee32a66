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


def test_only_what_the_sampled_frames_need_is_decoded(tmp_path, clip_writer):
    """A 12 s clip at 10 fps with a keyframe every second: a sampled frame is decoded from the keyframe before it
    (1 frame when it is one, 6 half a second after one), not the whole file's 120, and it is the frame a full
    decode gives."""
    from minimodels.data.video_io import read_frames, square

    path = clip_writer(tmp_path / "long.mp4", "libx264", 120, 64, 48, 10, 1, keyint=10)
    got = read_frames(path, sample_indices(120, 4), 16)
    every = decode_frames(path)
    assert got.decoded <= 8 and got.times == [0.0, 3.0, 6.0, 9.0]
    assert read_frames(path, [5, 35, 65, 95], 16).decoded <= 4 * 6
    assert torch.equal(got.frames, torch.stack([square(every[i], 16) for i in (0, 30, 60, 90)]))
    repeated = read_frames(path, [90, 30, 30], 16)  # any order, repeats allowed
    assert torch.equal(repeated.frames, got.frames[[3, 1, 1]])


def test_a_portrait_video_keeps_its_aspect(tmp_path, clip_writer):
    """The short side resized and the long one centre-cropped: a 48 x 64 (portrait) frame loses 8 rows at the top
    and 8 at the bottom, and nothing is stretched."""
    path = clip_writer(tmp_path / "phone.mp4", "libx264", 8, 48, 64, 8, 0)
    frame = decode_frames(path)[0]
    expected = torch.from_numpy(frame[8:56]).float() / 255  # (48, 48, 3): the centred square
    torch.testing.assert_close(load_video(path, num_frames=1, size=48)[0], expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("name, codec", [("clip.webm", "libvpx"), ("clip.mkv", "libx264")])
def test_containers_that_declare_no_frame_count_give_it_from_their_duration(tmp_path, clip_writer, name, codec):
    from minimodels.data.video_io import video_info

    path = clip_writer(tmp_path / name, codec, 24, 64, 48, 8, 2)
    info = video_info(path)
    assert (info.frames, info.fps, info.declared, info.width, info.height) == (24, 8.0, False, 64, 48)
    assert torch.equal(load_video(path, 8, 16), load_video(path, 8, 16))
    assert load_video(path, 24, 16).shape == (24, 16, 16, 3)  # the last frame too
