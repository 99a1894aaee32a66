"""Real video folders: manifests of videos with captions, labels or subtitles, decoded in DataLoader workers; bad
videos reported (path and reason) and left out or refused, never a crash mid-epoch and never silent."""

import json
import shutil

import pytest
import torch

from minimodels.data.subtitles import read_subtitles
from minimodels.data.video_folder import VideoFolder, collate_videos, folder_split, read_manifest
from minimodels.data.video_io import load_video
from minimodels.engine.errors import DataError
from minimodels.engine.paths import DATA_DIR

SHIPPED = sorted((DATA_DIR / "videos").glob("*.mp4"))


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_captioned_videos_load_in_workers_as_load_video_gives_them(tmp_path):
    manifest = write_jsonl(tmp_path / "pairs.jsonl", [{"video": str(p), "caption": f"episode {i}"}
                                                      for i, p in enumerate(SHIPPED)])
    folder = VideoFolder(manifest, num_frames=4, size=16)
    assert len(folder) == 3 and folder.skipped == []
    assert torch.equal(folder[1]["video"], load_video(SHIPPED[1], 4, 16)) and folder[1]["captions"] == ["episode 1"]
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


def test_subtitled_episodes_come_with_their_cues(tmp_path):
    vtt = SHIPPED[0].with_suffix(".vtt")
    manifest = write_jsonl(tmp_path / "episodes.jsonl", [{"video": str(SHIPPED[0]), "subtitles": str(vtt)}])
    assert VideoFolder(manifest)[0]["cues"] == read_subtitles(vtt)


@pytest.fixture
def broken_folder(tmp_path, noise_video):
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "notes.mp4").write_text("just some text\n")
    noise_video(tmp_path / "short.avi", 3)
    rows = [{"video": name, "caption": name} for name in ("empty.mp4", "notes.mp4", "gone.mp4", "short.avi")]
    shutil.copy(SHIPPED[0], tmp_path / "good.mp4")
    return write_jsonl(tmp_path / "mixed.jsonl", rows + [{"video": "good.mp4", "caption": "fine"}])


def test_bad_videos_are_left_out_with_a_warning_naming_each(broken_folder):
    with pytest.warns(UserWarning, match="4 of 5 videos left out") as caught:
        folder = VideoFolder(broken_folder, min_frames=8)
    assert len(folder) == 1 and folder[0]["captions"] == ["fine"]
    reasons = {s.path.rsplit("/", 1)[1]: s.reason for s in folder.skipped}
    assert reasons["empty.mp4"].startswith("the file is empty") and reasons["gone.mp4"] == "no such file"
    assert reasons["notes.mp4"].startswith("not a readable video file")
    assert reasons["short.avi"] == "too short: 3 frames, at least 8 wanted"
    assert all(name in str(caught[0].message) for name in reasons)


def test_bad_videos_refuse_the_folder_when_asked(broken_folder):
    with pytest.raises(DataError, match=r"mixed.jsonl: 4 of 5 videos cannot be used: .*empty.mp4: the file is empty"):
        VideoFolder(broken_folder, on_error="raise", min_frames=8)


def test_a_video_truncated_mid_stream_is_dropped_from_its_batch_with_a_warning(tmp_path, noise_video):
    whole = noise_video(tmp_path / "whole.avi", 40)
    (tmp_path / "cut.avi").write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])  # still declares 40 frames
    manifest = write_jsonl(tmp_path / "m.jsonl", [{"video": "whole.avi", "label": 0}, {"video": "cut.avi", "label": 1}])
    folder = VideoFolder(manifest, num_frames=4, size=8)
    assert len(folder) == 2  # the container looks whole until it is decoded
    with pytest.warns(UserWarning, match="skipped while decoding: .*cut.avi: truncated"):
        batch = collate_videos([folder[0], folder[1]])
    assert batch["label"] == [0] and batch["video"].shape == (1, 4, 8, 8, 3)


@pytest.mark.parametrize("name, content, named", [
    ("list.txt", "a.mp4\n", "unknown manifest kind '.txt'"),
    ("pairs.jsonl", '{"video": "a.mp4", "text": "x"}\n', "needs 'video' and exactly one of caption"),
    ("pairs.csv", "video,caption,label\na.mp4,x,1\n", "needs 'video' and exactly one of caption"),
])
def test_a_malformed_manifest_names_itself_and_what_it_needs(tmp_path, name, content, named):
    (tmp_path / name).write_text(content)
    with pytest.raises(DataError, match=named):
        read_manifest(tmp_path / name)


def test_an_experiment_indexes_a_folder_as_it_indexes_the_world(broken_folder, noise_video):
    cut = broken_folder.parent / "cut.avi"
    whole = noise_video(broken_folder.parent / "whole.avi", 40)
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    rows = [{"video": "good.mp4", "caption": "fine"}, {"video": "cut.avi", "caption": "cut"},
            {"video": "notes.mp4", "caption": "text"}, {"video": "whole.avi", "caption": "noise"}]
    with pytest.warns(UserWarning, match="1 of 4 videos left out: .*notes.mp4"):
        split = folder_split(write_jsonl(broken_folder.parent / "m.jsonl", rows), size=16, frames=4)
    video = split["video"]
    assert split["text"] == ["fine", "cut", "noise"] and video.shape == (3, 4, 16, 16, 3)
    with pytest.warns(UserWarning, match="blank in its batch, failed while decoding: .*cut.avi: truncated"):
        batch = video[torch.tensor([2, 1, 0])]  # decoded in the loader's workers, the problem reported here
    expected = (load_video(SHIPPED[0], 4, 16) * 255).round().to(torch.uint8)
    assert batch.dtype == torch.uint8 and torch.equal(batch[2], expected)
    assert not batch[1].any() and batch[0].any()  # the truncated video blank, so rows and texts stay aligned


def test_a_manifest_with_no_usable_video_is_refused_by_name(tmp_path):
    manifest = write_jsonl(tmp_path / "none.jsonl", [{"video": "gone.mp4", "caption": "x"}])
    with pytest.warns(UserWarning), pytest.raises(DataError, match="none.jsonl: no usable video"):
        folder_split(manifest, 16, 4)
