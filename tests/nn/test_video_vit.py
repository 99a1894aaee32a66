"""The factorized video ViT: shapes, patch order, positional interpolation, input checks and both token masks."""

import dataclasses

import pytest
import torch

from minimodels.engine.measure import count_params
from minimodels.nn.video_vit import (
    FactorizedVideoViT,
    VideoViTConfig,
    interpolate_spatial,
    interpolate_temporal,
    patchify,
)


def clip(cfg, B=2, T=None, size=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    size = size or cfg.image_size
    return torch.rand(B, T or cfg.num_frames, size, size, cfg.channels, generator=g)


def build(cfg, seed=0):
    torch.manual_seed(seed)
    return cfg.build().eval()


def test_output_shape(tiny_cfg):
    model = build(tiny_cfg)
    out = model(clip(tiny_cfg))
    assert out.shape == (2, tiny_cfg.num_frames * tiny_cfg.tokens_per_frame, tiny_cfg.width)
    assert torch.isfinite(out).all()


def test_return_spatial(tiny_cfg):
    out, spatial = build(tiny_cfg)(clip(tiny_cfg), return_spatial=True)
    assert spatial.shape == out.shape


def test_output_is_time_major(tiny_cfg):
    """Changing frame t changes the tokens of frame t after the spatial stage and nothing before it."""
    model = build(tiny_cfg)
    video = clip(tiny_cfg, B=1)
    _, spatial = model(video, return_spatial=True)
    video2 = video.clone()
    video2[:, 2] = torch.rand_like(video2[:, 2])
    _, spatial2 = model(video2, return_spatial=True)
    N = tiny_cfg.tokens_per_frame
    changed = (spatial - spatial2).abs().amax(-1)[0] > 1e-6  # (T·N,)
    assert changed[2 * N:3 * N].all() and not changed[:2 * N].any() and not changed[3 * N:].any()


def test_patchify_order_is_row_col_channel():
    B, T, H, W, C, p = 1, 2, 4, 6, 3, 2
    # Each pixel value encodes where it comes from: t·10000 + row·1000 + col·10 + channel.
    t, r, c, ch = torch.meshgrid(torch.arange(T), torch.arange(H), torch.arange(W), torch.arange(C), indexing="ij")
    video = (t * 10000 + r * 1000 + c * 10 + ch).float()[None]
    patches = patchify(video, p)
    assert patches.shape == (B, T, (H // p) * (W // p), p * p * C)
    grid_w = W // p
    for ti in range(T):
        for n in range(patches.shape[2]):
            pr, pc = divmod(n, grid_w)  # raster order of patches
            expected = [ti * 10000 + (pr * p + i) * 1000 + (pc * p + j) * 10 + k
                        for i in range(p) for j in range(p) for k in range(C)]  # (row, col, channel)
            assert patches[0, ti, n].tolist() == expected


def test_interpolate_spatial():
    pos = torch.randn(16, 5)
    assert interpolate_spatial(pos, 4, 4) is pos
    out = interpolate_spatial(pos, 6, 3)
    assert out.shape == (18, 5)
    # A constant embedding stays constant; bilinear resizing keeps values within the original range.
    const = torch.full((16, 5), 0.7)
    torch.testing.assert_close(interpolate_spatial(const, 8, 8), torch.full((64, 5), 0.7))
    assert out.min() >= pos.min() - 1e-6 and out.max() <= pos.max() + 1e-6


def test_interpolate_temporal():
    pos = torch.randn(8, 5)
    assert interpolate_temporal(pos, 8) is pos
    assert interpolate_temporal(pos, 16).shape == (16, 5)
    assert interpolate_temporal(pos, 3).shape == (3, 5)
    # A linear ramp over time stays monotone when resized.
    ramp = torch.arange(8.0)[:, None].expand(8, 2)
    up = interpolate_temporal(ramp, 20)
    assert (up[1:] >= up[:-1]).all() and up[0, 0] >= 0 and up[-1, 0] <= 7


def test_fewer_frames_or_a_smaller_grid_average_the_rows_they_cover():
    """Antialiased, as the official resize: 16 -> 4 frames spreads a one-frame spike over the two new frames near it
    (a plain linear resize would put half of it into one and drop the rest); likewise on a grid."""
    spike = torch.zeros(16, 3)
    spike[5] = 1.0
    out = interpolate_temporal(spike, 4)[:, 0]
    assert (out > 0.01).sum() == 2 and out.max() < 0.3
    grid = torch.zeros(8, 8, 3)
    grid[2, 2] = 1.0
    small = interpolate_spatial(grid.reshape(64, 3), 2, 2)[:, 0]
    assert (small > 0).sum() >= 2 and small.max() < 0.25


@pytest.mark.parametrize("T, size", [(1, 16), (7, 16), (4, 24), (2, 8)])
def test_other_frame_counts_and_sizes_run(tiny_cfg, T, size):
    model = build(tiny_cfg)
    out = model(clip(tiny_cfg, B=1, T=T, size=size))
    assert out.shape == (1, T * (size // tiny_cfg.patch_size) ** 2, tiny_cfg.width)
    assert torch.isfinite(out).all()


def test_input_errors_say_what_was_expected(tiny_cfg):
    model = build(tiny_cfg)
    s = tiny_cfg.image_size
    with pytest.raises(ValueError, match=r"\(B, T, H, W, 3\)"):
        model(torch.rand(4, s, s, 3))  # a single clip without the batch axis
    with pytest.raises(ValueError, match="float"):
        model(torch.randint(0, 255, (1, 2, s, s, 3), dtype=torch.uint8))
    with pytest.raises(ValueError, match="channels") as err:
        model(torch.rand(1, 2, 3, s, s))  # channels first
    assert "permute" in str(err.value)
    with pytest.raises(ValueError, match="divisible by the patch size"):
        model(torch.rand(1, 2, s + 2, s + 2, 3))
    with pytest.raises(ValueError, match=r"\(B, T, H, W, 3\)"):
        model(torch.rand(2, 2, s, s, 3).numpy())


@pytest.mark.parametrize("changes, words", [
    ({"image_size": 30, "patch_size": 8}, "patch_size=8: must be a whole number >= 1 that divides image_size=30"),
    ({"width": 30, "heads": 4}, "heads=4: must be a whole number >= 1 that divides width=30"),
    ({"attn_impl": "flash"}, "attn_impl"),
    ({"space_time": "divided"}, "space_time"),
])
def test_config_errors(changes, words):
    with pytest.raises(ValueError, match=words):
        VideoViTConfig(**changes)


def test_visible_gives_tube_shaped_output(tiny_cfg):
    model = build(tiny_cfg)
    video = clip(tiny_cfg)
    visible = torch.tensor([[0, 5, 6, 15], [3, 2, 9, 12]])
    out = model(video, visible=visible)
    assert out.shape == (2, tiny_cfg.num_frames * 4, tiny_cfg.width)


@pytest.mark.parametrize("space_time", ["factorized", "joint"])
def test_visible_all_positions_equals_the_full_run(tiny_cfg, space_time):
    cfg = dataclasses.replace(tiny_cfg, space_time=space_time)
    model = build(cfg)
    video = clip(cfg)
    N = cfg.tokens_per_frame
    full = model(video)
    torch.testing.assert_close(model(video, visible=torch.arange(N).expand(2, N)), full, atol=1e-6, rtol=0)


@pytest.mark.parametrize("space_time", ["factorized", "joint"])
def test_visible_equals_token_mask_restricted_to_the_tube(tiny_cfg, space_time):
    """Tube indices (dense, smaller tensors) and the same tube as a token mask give the same visible tokens."""
    cfg = dataclasses.replace(tiny_cfg, space_time=space_time)
    model = build(cfg)
    video = clip(cfg)
    B, T, N = 2, cfg.num_frames, cfg.tokens_per_frame
    visible = torch.tensor([[0, 5, 6, 15, 7], [12, 3, 2, 9, 1]])  # any order
    tube = model(video, visible=visible).view(B, T, visible.shape[1], -1)
    mask = torch.zeros(B, T, N, dtype=torch.bool)
    mask[torch.arange(B)[:, None], :, visible] = True
    masked = model(video, token_mask=mask).view(B, T, N, -1)
    picked = masked[torch.arange(B)[:, None], :, visible].transpose(1, 2)  # (B, T, M, D)
    torch.testing.assert_close(tube, picked, atol=1e-5, rtol=1e-5)


def test_visible_and_token_mask_together_is_an_error(tiny_cfg):
    model = build(tiny_cfg)
    N = tiny_cfg.tokens_per_frame
    with pytest.raises(ValueError, match="not both"):
        model(clip(tiny_cfg), visible=torch.arange(N).expand(2, N),
              token_mask=torch.ones(2, tiny_cfg.num_frames, N, dtype=torch.bool))
    with pytest.raises(ValueError, match="token_mask must have shape"):
        model(clip(tiny_cfg), token_mask=torch.ones(2, tiny_cfg.num_frames, N + 1, dtype=torch.bool))


@pytest.mark.parametrize("space_time", ["factorized", "joint"])
@pytest.mark.parametrize("attn_impl", ["manual", "fused"])
@torch.no_grad()  # the fused path with a cap runs FlexAttention, which refuses inputs needing grad on CPU
def test_hidden_tokens_do_not_influence_visible_outputs(tiny_cfg, space_time, attn_impl):
    cfg = dataclasses.replace(tiny_cfg, space_time=space_time, attn_impl=attn_impl)
    model = build(cfg)
    video = clip(cfg)
    B, T, N, p, grid = 2, cfg.num_frames, cfg.tokens_per_frame, cfg.patch_size, cfg.grid
    g = torch.Generator().manual_seed(1)
    mask = torch.rand(B, T, N, generator=g) < 0.6  # block-style: differs per frame
    mask[:, :, 0] = True
    hidden_t, hidden_n = 1, 5
    mask[0, hidden_t, hidden_n] = False  # the patch we will repaint
    out = model(video, token_mask=mask)
    video2 = video.clone()
    r, c = divmod(hidden_n, grid)
    video2[0, hidden_t, r * p:(r + 1) * p, c * p:(c + 1) * p] = torch.rand(p, p, 3, generator=g)
    out2 = model(video2, token_mask=mask)
    keep = mask.reshape(B, T * N)
    torch.testing.assert_close(out2[keep], out[keep], atol=1e-6, rtol=0)
    # Without the mask the repainted patch does change other tokens: the test can tell the difference.
    assert not torch.allclose(model(video2)[0, :N], model(video)[0, :N], atol=1e-4)


@pytest.mark.parametrize("space_time", ["factorized", "joint"])
def test_manual_and_fused_models_agree(tiny_cfg, space_time):
    video = clip(tiny_cfg)
    g = torch.Generator().manual_seed(2)
    mask = torch.rand(2, tiny_cfg.num_frames, tiny_cfg.tokens_per_frame, generator=g) > 0.3
    outs, weights = [], None
    for impl in ("manual", "fused"):
        model = FactorizedVideoViT(dataclasses.replace(tiny_cfg, space_time=space_time, attn_impl=impl)).eval()
        if weights is None:
            weights = model.state_dict()  # the manual model's, given to the fused one
        model.load_state_dict(weights)
        with torch.no_grad():
            outs.append((model(video), model(video, token_mask=mask)))
    (a, am), (b, bm) = outs
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(am[mask.flatten(1)], bm[mask.flatten(1)], atol=1e-5, rtol=1e-5)


def test_joint_and_factorized_have_equal_parameter_counts(tiny_cfg):
    fact = build(tiny_cfg)
    joint = build(dataclasses.replace(tiny_cfg, space_time="joint"))
    assert count_params(fact) == count_params(joint)
    assert count_params(fact)["total"] == sum(p.numel() for p in fact.parameters())


def test_joint_differs_from_factorized(tiny_cfg):
    fact = build(tiny_cfg)
    joint = build(dataclasses.replace(tiny_cfg, space_time="joint"))
    joint.load_state_dict(fact.state_dict())
    video = clip(tiny_cfg)
    assert not torch.allclose(fact(video), joint(video), atol=1e-4)


def test_gradients_reach_every_parameter(tiny_cfg):
    model = build(tiny_cfg).train()
    model(clip(tiny_cfg)).square().mean().backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing
