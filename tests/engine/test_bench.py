"""``python -m minimodels bench``: step time, throughput, memory and (on CUDA) MFU of a preset's training step."""

import json

import pytest
import torch

from minimodels.catalog import get_preset
from minimodels.cli import main
from minimodels.engine.bench import bench, peak_tflops


def test_bench_times_a_tiny_preset_and_derives_its_rates(capsys):
    assert main(["bench", "videoprism-tiny", "--batch", "2", "--steps", "1", "--json"]) == 0
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert r["step_ms"] > 0 and r["clips_per_s"] == pytest.approx(2000 / r["step_ms"], rel=0.01)
    assert r["tokens_per_clip"] == 8 * 16 and r["tokens_per_s"] == pytest.approx(r["clips_per_s"] * 128, rel=0.01)
    assert r["tflops_per_s"] > 0 and r["peak_memory_mb"] > 0
    if not torch.cuda.is_available():
        assert r["device"].startswith("CPU") and r["mfu"] is None


@pytest.mark.skipif(torch.cuda.is_available(), reason="on CUDA the blocks are compiled")
def test_bench_says_a_cpu_run_was_not_compiled():
    from minimodels.catalog import get_preset

    with pytest.warns(UserWarning, match="compiles for CUDA only"):
        r = bench("videoprism-tiny", get_preset("videoprism-tiny"), batch=2, steps=1, warmup=0, compile=True)
    assert r["compile"] is False


def test_bench_refuses_what_it_cannot_time(capsys):
    assert main(["bench", "minigpt4video-tiny"]) == 2
    assert "info minigpt4video-tiny" in capsys.readouterr().err
    assert main(["bench", "videoprism-tiny", "--steps", "0"]) == 2


def test_the_bf16_peak_is_read_from_the_device_name():
    assert peak_tflops("NVIDIA H100 PCIe") == 756 and peak_tflops("NVIDIA H100 80GB HBM3") == 989
    assert peak_tflops("NVIDIA A100-SXM4-80GB") == 312 and peak_tflops("Tesla T4") is None


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name, checkpointing, compiled", [
    ("videoprism-b", False, False), ("videoprism-b", False, True), ("videoprism-lvt-b", False, False),
    ("mvgpt-base", False, False), ("videoprism-g", True, False)])
def test_full_presets_train_on_cuda_with_their_mfu(name, checkpointing, compiled):
    r = bench(name, get_preset(name), batch=2, steps=2, recompute_activations=checkpointing, compile=compiled)
    assert r["step_ms"] > 0 and r["peak_memory_mb"] > 0
    if r["peak_bf16_tflops"]:
        assert 0 < r["mfu"] < 1
    torch.cuda.empty_cache()
