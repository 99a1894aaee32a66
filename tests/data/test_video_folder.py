"""Real video folders: manifests of videos with captions, labels, subtitles or segments, opened without reading a
video and decoded where they are asked for; a bad video reported (path and reason) when it is read and left out of
its batch, never a crash mid-epoch and never silent, never trained on as blank frames."""

import json
import shutil
import time

import pytest
import torch

from minimodels.data.dataset import StreamedVideo, take, usable
from minimodels.data.subtitles import read_subtitles
from minimodels.data.video_folder import FolderPixels, VideoFolder, collate_videos, folder_split, read_manifest
from minimodels.data.video_io import VideoLoadError, load_video
from minimodels.engine.errors import DataError
from minimodels.engine.paths import DATA_DIR

SHIPPED = sorted((DATA_DIR / "videos").glob("*.mp4"))


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_captioned_videos_load_in_workers_as_load_video_gives_them_with_their_timing(tmp_path):
    manifest = write_jsonl(tmp_path / "pairs.jsonl", [{"video": str(p), "caption": f"episode {i}"}
                                                      for i, p in enumerate(SHIPPED)])
    folder = VideoFolder(manifest, num_frames=4, size=16)
    item = folder[1]
    assert len(folder) == 3 and torch.equal(item["video"], load_video(SHIPPED[1], 4, 16))
    assert item["captions"] == ["episode 1"] and item["fps"] == 4.0 and item["times"] == [0.0, 2.0, 4.0, 6.0]
    loader = torch.utils.data.DataLoader(folder, batch_size=2, num_workers=2, collate_fn=collate_videos)
    batches = list(loader)
    assert [tuple(b["video"].shape) for b in batches] == [(2, 4, 16, 16, 3), (1, 4, 16, 16, 3)]
    assert batches[1]["captions"] == [["episode 2"]]


def test_labels_from_a_csv_with_relative_paths_and_a_papers_sampler(tmp_path):
    shutil.copy(SHIPPED[0], tmp_path / "clip.mp4")
    (tmp_path / "classes.csv").write_text("video,label\nclip.mp4,pouring\n")
    last_frame = lambda total, n: [total - 1] * n  # noqa: E731 - a sampler: (frames in the video, frames wanted)
    item = VideoFolder(tmp_path / "classes.csv", num_frames=2, size=8, sampler=last_frame)[0]
    assert item["label"] == "pouring" and item["path"] == str(tmp_path / "clip.mp4")
    assert torch.equal(item["video"], load_video(SHIPPED[0], 2, 8, last_frame))
    assert torch.equal(item["video"][0], item["video"][1])


def test_subtitled_episodes_come_with_their_cues_and_segments_with_their_frames(tmp_path):
    vtt = SHIPPED[0].with_suffix(".vtt")
    manifest = write_jsonl(tmp_path / "episodes.jsonl", [
        {"video": str(SHIPPED[0]), "subtitles": str(vtt), "caption": "all"},
        {"video": str(SHIPPED[0]), "subtitles": str(vtt), "caption": "the second step", "start": 2.0, "end": 4.0}])
    folder = VideoFolder(manifest, num_frames=4)
    assert folder[0]["cues"] == read_subtitles(vtt) and folder[0]["captions"] == ["all"]
    assert folder[1]["times"] == [2.0, 2.5, 3.0, 3.5]  # the 8 frames of 2-4 s at 4 fps, sampled uniformly


@pytest.fixture
def broken_folder(tmp_path, noise_video):
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "notes.mp4").write_text("just some text\n")
    noise_video(tmp_path / "short.avi", 3)
    rows = [{"video": name, "caption": name} for name in ("empty.mp4", "notes.mp4", "gone.mp4", "short.avi")]
    shutil.copy(SHIPPED[0], tmp_path / "good.mp4")
    return write_jsonl(tmp_path / "mixed.jsonl", rows + [{"video": "good.mp4", "caption": "fine"}])


def test_a_folder_opens_without_reading_a_video_and_each_bad_one_is_named_when_read(broken_folder, monkeypatch):
    import av

    opened = []
    real_open = av.open
    monkeypatch.setattr(av, "open", lambda *a, **k: opened.append(a) or real_open(*a, **k))
    folder = VideoFolder(broken_folder, min_frames=8)
    assert len(folder) == 5 and opened == []  # the manifest alone
    reasons = {}
    for i in range(4):
        with pytest.warns(UserWarning, match="skipped while decoding") as caught:
            assert folder[i] is None
        reasons[folder.rows[i]["video"]] = str(caught[0].message)
    assert "the file is empty" in reasons["empty.mp4"] and "gone.mp4: no such file" in reasons["gone.mp4"]
    assert "not a readable video file" in reasons["notes.mp4"]
    assert "short.avi: too short: 3 frames, at least 8 wanted" in reasons["short.avi"]
    assert folder[4]["captions"] == ["fine"]


def test_bad_videos_stop_the_run_when_asked(broken_folder):
    folder = VideoFolder(broken_folder, on_error="raise")
    with pytest.raises(VideoLoadError, match="empty.mp4: the file is empty"):
        folder[0]


def test_a_video_truncated_mid_stream_is_dropped_from_its_batch_with_a_warning(tmp_path, noise_video):
    whole = noise_video(tmp_path / "whole.avi", 40)
    (tmp_path / "cut.avi").write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])  # still declares 40 frames
    manifest = write_jsonl(tmp_path / "m.jsonl", [{"video": "whole.avi", "label": 0}, {"video": "cut.avi", "label": 1}])
    folder = VideoFolder(manifest, num_frames=4, size=8)
    with pytest.warns(UserWarning, match="skipped while decoding: .*cut.avi: truncated"):
        batch = collate_videos([folder[0], folder[1]])
    assert batch["label"] == [0] and batch["video"].shape == (1, 4, 8, 8, 3)


@pytest.mark.parametrize("name, content, named", [
    ("list.txt", "a.mp4\n", "unknown manifest kind '.txt'"),
    ("pairs.jsonl", '{"video": "a.mp4", "caption": "x", "captions": ["y"]}\n', "at most one of caption"),
    ("pairs.csv", "video,caption,label\na.mp4,x,1\n", "at most one of caption"),
    ("cut.jsonl", '{"video": "a.mp4", "caption": "x", "start": 3, "end": 2}\n', "the segment 3-2 s is empty"),
])
def test_a_malformed_manifest_names_itself_and_what_it_needs(tmp_path, name, content, named):
    (tmp_path / name).write_text(content)
    with pytest.raises(DataError, match=named):
        read_manifest(tmp_path / name)


def test_an_experiment_indexes_a_folder_as_it_indexes_the_world_and_leaves_failures_out(real_folder):
    split = folder_split(real_folder / "captions.jsonl", size=16, frames=4)
    video = split["video"]
    assert split["text"][0] == "a red square moves right in a kitchen" and video.shape == (7, 4, 16, 16, 3)
    with pytest.warns(UserWarning, match="left out of its batch, failed while decoding: .*notes.mp4"):
        batch, decoded = take(video, torch.tensor([6, 3, 0]))  # decoded in the loader's workers, named here
    expected = (load_video(real_folder / "kitchen.mp4", 4, 16) * 255).round().to(torch.uint8)
    assert batch.dtype == torch.uint8 and torch.equal(batch[2], expected)
    assert decoded.tolist() == [False, True, True] and not batch[0].any()  # blank, and marked to be left out
    assert batch[1].shape == (4, 16, 16, 3)  # the portrait video, centre-cropped to a square
    with pytest.warns(UserWarning, match="cut.mkv: truncated"):
        video[:]
    assert usable(video).tolist() == [True] * 5 + [False, False]


def test_the_loader_decodes_the_expected_requests_ahead_and_serves_others_as_asked(real_folder, monkeypatch):
    video = StreamedVideo(FolderPixels(VideoFolder(real_folder / "captions.jsonl", 4, 16)), workers=0)
    direct = video[torch.tensor([0, 1, 2, 3, 4])]
    video.expect(iter([torch.tensor([3, 1]), torch.tensor([4])]))
    asked = []
    monkeypatch.setattr(video, "_loader", asked)  # what is not expected would be decoded through it
    assert torch.equal(video[torch.tensor([3, 1])], direct[[3, 1]]) and asked == []
    monkeypatch.undo()
    assert torch.equal(video[torch.tensor([0])], direct[[0]])  # an evaluation in between, not expected
    assert torch.equal(video[torch.tensor([4])], direct[[4]]) and video._expected is not None


def test_opening_a_manifest_of_20000_rows_takes_seconds(tmp_path):
    rows = [{"video": f"videos/{i:06d}.mp4", "caption": f"a person does step {i}"} for i in range(20_000)]
    manifest = write_jsonl(tmp_path / "big.jsonl", rows)
    start = time.perf_counter()
    split = folder_split(manifest, size=16, frames=4)
    assert len(split["video"]) == 20_000 and time.perf_counter() - start < 10  # 4.5 ms a row before: 90 s
