"""Clips at a preset's size stream: rendered batch by batch in DataLoader workers, never the whole split in memory,
and indexed exactly as the kept tensor of a tiny config (so an experiment cannot tell them apart); a kept split is
drawn once per machine and read back by every later process."""

from pathlib import Path

import numpy as np
import pytest
import torch

from minimodels.catalog import run_experiment
from minimodels.data import dataset
from minimodels.data.dataset import RenderedClips, StreamedVideo, clip_tensors, load_table
from minimodels.data.world import render_clip


@pytest.fixture(scope="module")
def val_scenes():
    return load_table("clips", "val").to_list()


@pytest.mark.parametrize("workers", [0, 2])
def test_streamed_video_is_indexed_as_the_kept_tensor(val_scenes, workers):
    kept = clip_tensors("val", 16)["video"]
    video = StreamedVideo(RenderedClips(val_scenes, 16), workers=workers)
    assert len(video) == len(kept) and video.shape == tuple(kept.shape)
    rows = torch.tensor([[5, 399], [0, 5]])
    before = torch.get_rng_state()
    for index in (rows, (rows[0], slice(None, 1)), slice(2, 9), 7, [1, 2], slice(3, 3)):
        assert torch.equal(video[index], kept[index]), index
    assert torch.equal(torch.get_rng_state(), before)  # the global RNG (dropout, ...) of the training it feeds


def test_a_split_too_big_to_keep_streams(monkeypatch):
    monkeypatch.setattr(dataset, "KEEP_BYTES", 16 * 16 * 3 * 8 * 399)  # val (400 clips) at 16² no longer fits
    dataset._clip_tensors.cache_clear()
    try:
        streamed = clip_tensors("val", 16)["video"]
        small = clip_tensors("val", 16, limit=399)["video"]
    finally:
        dataset._clip_tensors.cache_clear()
    assert isinstance(streamed, StreamedVideo) and torch.is_tensor(small)
    assert torch.equal(streamed[:399], small)


def test_a_kept_split_is_drawn_once_and_read_back_until_the_world_or_its_drawing_changes(tmp_path, monkeypatch):
    monkeypatch.setattr(dataset, "CACHE_DIR", tmp_path / "cache")

    def fresh(split="val", size=16, **kw):  # what a new process gets: nothing held in memory yet
        dataset._clip_tensors.cache_clear()
        return clip_tensors(split, size, **kw)["video"]

    try:
        drawn = fresh()
        (saved,) = (tmp_path / "cache").glob("clips-val-400x8x16px-*.npy")
        assert torch.equal(torch.from_numpy(np.load(saved)), drawn)
        assert len(fresh(limit=10)) == 10 and len(list((tmp_path / "cache").iterdir())) == 2  # its own file

        def not_again(*args, **kwargs):
            raise AssertionError("drawn again")

        with monkeypatch.context() as m:
            m.setattr(dataset, "render_clip", not_again)
            assert torch.equal(fresh(), drawn)  # read back, not drawn

        saved.write_bytes(saved.read_bytes()[:1000])  # a file cut short is drawn around, and saved whole again
        assert torch.equal(fresh(), drawn) and torch.equal(torch.from_numpy(np.load(saved)), drawn)

        edited = tmp_path / "world.py"  # the drawing code changed: drawn afresh, the old file gone
        edited.write_text(Path(dataset.world.__file__).read_text() + "# an edit\n")
        monkeypatch.setattr(dataset.world, "__file__", str(edited))
        assert torch.equal(fresh(), drawn)
        (now,) = (tmp_path / "cache").glob("clips-val-400x8x16px-*.npy")
        assert now != saved

        monkeypatch.setattr(dataset, "CACHE_DIR", tmp_path / "a-file")  # a cache that cannot be written is no error
        (tmp_path / "a-file").write_text("")
        assert torch.equal(fresh(), drawn)
    finally:
        dataset._clip_tensors.cache_clear()


def test_more_frames_show_the_same_motion_at_a_higher_frame_rate(val_scenes):
    scene = val_scenes[0]
    stored, dense = render_clip(scene, 32), render_clip(scene, 32, frames=15)  # 8 frames -> every half step
    assert np.array_equal(render_clip(scene, 32, frames=8), stored) and dense.shape == (15, 32, 32, 3)
    assert np.array_equal(dense[::2], stored)  # the stored frames, with frames between them
    assert clip_tensors("val", 16, limit=3, frames=16)["video"].shape == (3, 16, 16, 16, 3)


def test_a_run_on_streamed_clips_equals_the_run_on_kept_ones(monkeypatch, tmp_path):
    sets = {"train.steps": "2", "train.batch_size": "8", "train.progress": "false", "eval_split": "val",
            "model.num_frames": "4"}
    kept = run_experiment("videoprism-vit-probe", sets=sets, out_dir=tmp_path / "kept").metrics
    monkeypatch.setattr(dataset, "KEEP_BYTES", 0)
    dataset._clip_tensors.cache_clear()
    try:
        streamed = run_experiment("videoprism-vit-probe", sets=sets, out_dir=tmp_path / "streamed").metrics
    finally:
        dataset._clip_tensors.cache_clear()
    assert streamed == kept
