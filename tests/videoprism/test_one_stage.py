"""Fig. 4's one-stage baseline: contrastive and masked-patch losses on one fresh model."""

import torch

from minimodels.nn.masking import stage2_keep
from minimodels.videoprism.one_stage import OneStageModel, one_stage_loss, pixel_targets
from minimodels.videoprism.video_text import VideoTextConfig


def tiny(tiny_cfg):
    torch.manual_seed(0)
    return OneStageModel(VideoTextConfig(video=tiny_cfg, text_layers=1, vocab_size=16, text_length=4), 8, 1, 2, 16)


def batch(cfg, n=4):
    g = torch.Generator().manual_seed(0)
    video = torch.rand(n, cfg.num_frames, cfg.image_size, cfg.image_size, 3, generator=g)
    ids = torch.randint(1, 16, (n, 4), generator=g)
    return video, ids, torch.ones_like(ids, dtype=torch.bool), stage2_keep("bevt", n, cfg.num_frames, cfg.grid, 0.65, g)


def test_pixel_targets_are_standardised_patches_in_token_order(tiny_cfg):
    video = batch(tiny_cfg)[0]
    targets = pixel_targets(video, tiny_cfg.patch_size)  # (B, T·N, p·p·C)
    assert targets.shape == (4, tiny_cfg.num_frames * tiny_cfg.tokens_per_frame, tiny_cfg.patch_size**2 * 3)
    assert torch.allclose(targets.mean(-1), torch.zeros(()), atol=1e-5)
    assert torch.allclose(targets.var(-1, unbiased=False), torch.ones(()), atol=1e-3)
    second = video[:, 0, :tiny_cfg.patch_size, tiny_cfg.patch_size:2 * tiny_cfg.patch_size].flatten(1)  # frame 0, n=1
    by_hand = (second - second.mean(-1, keepdim=True)) / second.var(-1, unbiased=False, keepdim=True).sqrt()
    assert torch.allclose(targets[:, 1], by_hand, atol=1e-3)


def test_both_losses_reach_their_parts(tiny_cfg):
    model = tiny(tiny_cfg)
    loss, logs = one_stage_loss(model, *batch(tiny_cfg))
    loss.backward()
    assert logs["loss_contrastive"] > 0 and logs["loss_masked"] > 0
    for part in (model.video_text.encoder, model.video_text.text, model.video_text.pooler, model.decoder):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())


def test_the_masked_loss_ignores_what_the_encoder_saw(tiny_cfg, monkeypatch):
    """A decoder right on the masked patches and wrong on the visible ones scores a masked loss of zero."""
    model = tiny(tiny_cfg)
    video, ids, text_keep, keep = batch(tiny_cfg)
    target = pixel_targets(video, tiny_cfg.patch_size)
    seen = keep.flatten(1)  # (B, T·N)
    monkeypatch.setattr(model.decoder, "forward", lambda *a, **k: target + 5.0 * seen[..., None])
    _, logs = one_stage_loss(model, video, ids, text_keep, keep)
    assert logs["loss_masked"] < 1e-10
