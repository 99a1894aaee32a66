"""``info``: parameter counts of the full presets against the paper, tokens and FLOPs counted on the meta device."""

import pytest
import torch

from minimodels.catalog import PAPER_PARAMS, get_preset, info
from minimodels.engine.config import override
from minimodels.engine.measure import count_params, example_clip, format_info, forward_flops

FULL = ("videoprism-b", "videoprism-l", "videoprism-g")


@pytest.fixture(scope="module")
def results():
    return {name: info(name) for name in FULL}


@pytest.mark.parametrize("name, part, target, tolerance", [
    ("videoprism-b", "total", 114e6, 0.01),
    ("videoprism-l", "total", 354e6, 0.01),
    ("videoprism-g", "spatial", 1.0e9, 0.02),
])
def test_full_presets_match_the_paper(results, name, part, target, tolerance):
    measured = results[name]["params"][part]
    assert abs(measured / target - 1) <= tolerance, f"{name} {part}: {measured / 1e6:.1f}M vs {target / 1e6:.0f}M"
    # info reports the comparison against the same numbers.
    paper = results[name]["paper"]
    assert paper["part"] == part and paper["params"] == target
    assert paper["relative_error"] == pytest.approx(measured / target - 1, abs=1e-4)
    assert PAPER_PARAMS[name][:3] == (target, tolerance, part)


@pytest.mark.parametrize("name", FULL)
def test_parts_add_up(results, name):
    params = results[name]["params"]
    parts = {k: v for k, v in params.items() if k not in ("total", "trainable")}
    assert set(parts) >= {"patch_proj", "spatial_pos", "temporal_pos", "spatial", "temporal"}
    assert sum(parts.values()) == params["total"] == params["trainable"]


@pytest.mark.parametrize("name", FULL)
def test_tokens_per_clip(results, name):
    r = results[name]
    cfg = get_preset(name)
    assert r["tokens_per_frame"] == 256  # 288 / 18 = 16 patches a side
    assert r["frames"] == cfg.num_frames
    assert r["tokens_per_clip"] == cfg.num_frames * 256


def test_gflops_positive_and_growing_with_frames():
    gflops = [info("videoprism-b", frames)["gflops_per_clip"] for frames in (4, 8, 16)]
    assert gflops[0] > 0
    assert gflops[0] < gflops[1] < gflops[2]
    # Factorized attention is near-linear in T: doubling frames roughly doubles the cost (at most a bit more).
    assert 1.9 < gflops[2] / gflops[1] < 2.3


def test_flops_grow_with_model_size(results):
    flops = [results[name]["gflops_per_clip"] / results[name]["frames"] for name in FULL]
    assert flops[0] < flops[1] < flops[2]


def test_joint_costs_more_than_factorized_at_16_frames():
    factorized = get_preset("videoprism-b")
    joint = override(factorized, space_time="joint")
    costs = {}
    for cfg in (factorized, joint):
        with torch.device("meta"):
            model = cfg.build()
        costs[cfg.space_time] = forward_flops(model, example_clip(cfg, 16))
    assert costs["joint"] > costs["factorized"] > 0


def test_count_params_on_a_known_module():
    model = torch.nn.Sequential(torch.nn.Linear(10, 5), torch.nn.LayerNorm(5))
    model[1].weight.requires_grad_(False)
    counts = count_params(model)
    assert counts == {"total": 10 * 5 + 5 + 5 + 5, "trainable": 10 * 5 + 5 + 5, "0": 55, "1": 10}


def test_forward_flops_counts_a_matmul():
    model = torch.nn.Linear(8, 4, bias=False)
    assert forward_flops(model, torch.zeros(3, 8)) == 2 * 3 * 8 * 4


def test_example_clip_shape():
    cfg = get_preset("videoprism-b")
    x = example_clip(cfg, 3)
    assert x.shape == (1, 3, 288, 288, 3) and x.device.type == "meta"
    assert example_clip(cfg).shape[1] == cfg.num_frames


def test_format_info_mentions_the_numbers(results):
    text = format_info(results["videoprism-b"])
    assert "videoprism-b" in text and "paper" in text and str(results["videoprism-b"]["tokens_per_clip"]) in text


def test_tiny_preset_info_has_no_paper_entry():
    r = info("videoprism-tiny")
    assert "paper" not in r
    cfg = get_preset("videoprism-tiny")
    assert r["params"]["total"] == sum(p.numel() for p in cfg.build().parameters())
