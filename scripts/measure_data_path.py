"""The real-video data path, measured: before and after issue 36, as one table to re-take on a quiet machine.

    python scripts/measure_data_path.py                  # a few minutes on 2 busy cores
    python scripts/measure_data_path.py --rows 10000 --workers 0 4 --b-step

1. ``load_video`` on a 30 s 640×360 clip at 25 fps (750 frames), 16 frames at 288² as VideoPrism-B takes them, with a
   keyframe every 2 s (a web encode) and every 10 s (x264's default): *before*, every frame decoded and the sampled
   ones kept (the course's reader until issue 36); *after*, ``read_frames``, which seeks. Seconds (the best of 3)
   and frames the codec decoded.
2. Opening a manifest of ``--rows`` rows: *before*, every file's container opened for its frame count (measured on
   300 rows and scaled, since the full count takes minutes); *after*, ``folder_split``, which reads the manifest
   alone (measured in full, on rows that name files never opened).
3. The loader against the model: clips/s a folder of 5 s 640×360 clips is decoded at through ``StreamedVideo``
   (``--workers`` processes), at the tiny preset's clips (8 × 32²) and VideoPrism-B's (16 × 288²): *before*, each
   request decoded when the step makes it, every frame of each file; *after*, the training loop's requests expected
   and decoded ahead (prefetch 2 a worker), only what the sampled frames need. Beside it, clips/s of a training
   step of the model that takes them
   (``engine.bench``, batch 8 tiny; VideoPrism-B's on this machine with ``--b-step``, batch 1, slow on a CPU, else
   the H200 row of ``results/gpu/nvidia-h200.json``). The loader keeps up when its clips/s is the larger.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
import warnings
from pathlib import Path

import av
import numpy as np
import torch

from minimodels.catalog import get_preset
from minimodels.data import video_folder
from minimodels.data.dataset import LoaderConfig
from minimodels.data.video_folder import folder_split
from minimodels.data.video_io import Decoded, _frames, frame_count, read_frames, sample_indices, square
from minimodels.engine.bench import bench
from minimodels.engine.paths import REPO_ROOT


def write_clip(path: Path, seconds: float, keyint: int, fps: int = 25, width: int = 640, height: int = 360) -> Path:
    """A clip that costs what a real one costs to decode: texture that moves and changes every frame."""
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, (height, width * 2, 3), dtype=np.uint8)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "veryfast", "g": str(keyint), "crf": "23"}
        for t in range(round(seconds * fps)):
            frame = texture[:, 3 * t % width:3 * t % width + width].copy()
            frame[:, :, t % 3] //= 2  # a change in colour too, every frame
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def decode_every_frame(path: Path, indices, size: int) -> Decoded:
    """The reader before issue 36: every frame decoded, the sampled ones kept."""
    wanted, kept, decoded = {int(i) for i in indices}, {}, 0
    for i, frame in _frames(Path(path)):
        decoded += 1
        if i in wanted:
            kept[i] = square(frame.to_ndarray(format="rgb24"), size)
    return Decoded(torch.stack([kept[int(i)] for i in indices]), [], decoded)


def best_of(repeats: int, fn):
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def load_video_rows(scratch: Path) -> list[tuple]:
    rows = []
    for keyint, label, counts in ((50, "keyframe every 2 s", (8, 16)), (250, "keyframe every 10 s", (16,))):
        path = write_clip(scratch / f"long-g{keyint}.mp4", 30, keyint)
        for frames in counts:
            indices = sample_indices(750, frames)
            before = best_of(2, lambda: decode_every_frame(path, indices, 288).decoded)
            after = best_of(2, lambda: read_frames(path, indices, 288).decoded)
            rows.append((f"load_video, 30 s 640×360, {frames} frames at 288², {label}",
                         f"{before[0]:.2f} s, {before[1]} decoded", f"{after[0]:.2f} s, {after[1]} decoded"))
    return rows


def manifest_rows(scratch: Path, rows: int, sample: Path) -> list[tuple]:
    probed = 300
    before = best_of(1, lambda: [frame_count(sample) for _ in range(probed)])[0] * rows / probed
    manifest = scratch / "big.jsonl"
    manifest.write_text("".join(json.dumps({"video": f"videos/{i:07d}.mp4", "caption": f"a person does step {i}"})
                                + "\n" for i in range(rows)))
    after = best_of(1, lambda: folder_split(manifest, 288, 16))[0]
    return [(f"open a {rows:,}-row manifest", f"{before:.0f} s (300 rows measured, scaled)", f"{after:.1f} s")]


def loader_rate(manifest: Path, size: int, frames: int, workers: int, before: bool, batch: int = 4,
                rounds: int = 6) -> float:
    """Clips/s of a folder's StreamedVideo serving the training loop's requests (the first one, with the workers'
    start, not counted): *before*, each request decoded when it is made, every frame of each file; *after*, the
    requests expected and decoded ahead, only what the sampled frames need."""
    video_folder.read_frames = decode_every_frame if before else read_frames  # the workers fork with it
    video = folder_split(manifest, size, frames, LoaderConfig(workers, 2))["video"]
    n = len(video)
    requests = [torch.tensor([(r * batch + k) % n for k in range(batch)]) for r in range(rounds + 1)]
    if not before:
        video.expect(iter(requests))
    video[requests[0]]
    start = time.perf_counter()
    for request in requests[1:]:
        video[request]
    rate = rounds * batch / (time.perf_counter() - start)
    video_folder.read_frames = read_frames
    return rate


def loader_rows(scratch: Path, workers: list[int], b_step: bool) -> list[tuple]:
    clips = [write_clip(scratch / f"clip{k}.mp4", 5, 50) for k in range(8)]
    manifest = scratch / "clips.jsonl"
    manifest.write_text("".join(json.dumps({"video": str(c), "caption": "a clip"}) + "\n" for c in clips))
    measured = json.loads((REPO_ROOT / "results" / "gpu" / "nvidia-h200.json").read_text())["bench"]
    h200 = next(r for r in measured if r["preset"] == "videoprism-lvt-b")
    rows = []
    for preset in ("videoprism-lvt-tiny", "videoprism-lvt-b"):
        cfg = get_preset(preset)
        size, frames = cfg.video.image_size, cfg.video.num_frames
        for w in workers:
            rates = [loader_rate(manifest, size, frames, w, before) for before in (True, False)]
            rows.append((f"loader, 5 s 640×360 clips as {frames} × {size}², {w} workers", f"{rates[0]:.1f} clips/s",
                         f"{rates[1]:.1f} clips/s"))
        if preset.endswith("-tiny") or b_step:
            step = bench(preset, cfg, batch=8 if preset.endswith("-tiny") else 1, steps=2 if b_step else 3, warmup=1)
            rows.append((f"{preset} training step, here", "", f"{step['clips_per_s']:.1f} clips/s"))
        else:
            rows.append((f"{preset} training step, {h200['device']} (results/gpu)", "",
                         f"{h200['clips_per_s']:.1f} clips/s"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows of the manifest to open")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="loader processes to measure")
    parser.add_argument("--b-step", action="store_true", help="time VideoPrism-B's training step here (slow on CPU)")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    torch.set_num_threads(max(1, (os.cpu_count() or 1)))
    with tempfile.TemporaryDirectory(prefix="measure-data-path-") as folder:
        scratch = Path(folder)
        rows = load_video_rows(scratch)
        rows += manifest_rows(scratch, args.rows, scratch / "long-g50.mp4")
        rows += loader_rows(scratch, args.workers, args.b_step)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load {load:.1f}, "
          f"torch {torch.__version__}, PyAV {av.__version__}")
    width = max(len(r[0]) for r in rows)
    print(f"| {'what':<{width}} | {'before':<34} | {'after':<22} |")
    print(f"|{'-' * (width + 2)}|{'-' * 36}|{'-' * 24}|")
    for what, before, after in rows:
        print(f"| {what:<{width}} | {before:<34} | {after:<22} |")


if __name__ == "__main__":
    main()
