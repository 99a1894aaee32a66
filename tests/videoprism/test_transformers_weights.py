"""VideoPrism's public weights through transformers: our encoder and ``VideoPrismVisionModel`` convert both ways,
tensor for tensor, and compute the same tokens (random weights here; nothing is downloaded)."""

import pytest
import torch

from minimodels.catalog import get_preset
from minimodels.engine.errors import CheckpointError
from minimodels.videoprism.transformers_weights import (config_to_transformers, load_transformers_videoprism,
                                                         state_from_transformers, to_transformers_videoprism)

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def theirs():
    """A tiny transformers VideoPrism with every tensor random (LayerNorms too: their γ − 1 is not left at 0)."""
    torch.manual_seed(0)
    model = transformers.VideoPrismVisionModel(config_to_transformers(get_preset("videoprism-tiny")))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model.eval()


def tokens(model, video):  # ours takes (B, T, H, W, C), transformers (B, T, C, H, W); both give (B, T·N, D)
    with torch.no_grad():
        if isinstance(model, transformers.VideoPrismVisionModel):
            return model(pixel_values_videos=video.permute(0, 1, 4, 2, 3)).last_hidden_state
        return model(video)


def test_a_transformers_encoder_runs_as_ours(theirs):
    ours = load_transformers_videoprism(theirs)
    video = torch.rand(2, 8, 32, 32, 3)
    diff = (tokens(ours, video) - tokens(theirs, video)).abs().max().item()
    assert diff <= 1e-4, diff
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in theirs.parameters())


def test_ours_goes_back_tensor_for_tensor_and_through_a_saved_folder(theirs, tmp_path):
    back = to_transformers_videoprism(load_transformers_videoprism(theirs))
    expected = theirs.state_dict()
    assert back.state_dict().keys() == expected.keys()
    assert all(torch.allclose(back.state_dict()[k], v, atol=1e-7) for k, v in expected.items())
    theirs.save_pretrained(tmp_path / "saved")
    video = torch.rand(1, 8, 32, 32, 3)
    torch.testing.assert_close(tokens(load_transformers_videoprism(tmp_path / "saved"), video), tokens(theirs, video))


def test_the_base_encoder_maps_all_its_tensors_at_the_public_checkpoints_size():
    cfg = get_preset("videoprism-b")
    with torch.device("meta"):
        hf = transformers.VideoPrismVisionModel(config_to_transformers(cfg))
        ours = cfg.build()
    theirs = hf.state_dict()
    mapped = state_from_transformers(theirs, cfg)
    assert sum(t.numel() for t in theirs.values()) == 114_365_184
    assert (len(mapped), len(theirs)) == (200, 200 + 16 * 4)  # their q, k, v apart: 4 more tensors in each of 16 blocks
    assert {k: tuple(v.shape) for k, v in mapped.items()} == {k: tuple(v.shape) for k, v in ours.state_dict().items()}


def test_what_cannot_be_converted_is_refused_by_name(tmp_path):
    with pytest.raises(CheckpointError, match="no config.json; save the model there with save_pretrained"):
        load_transformers_videoprism(tmp_path)
    with pytest.raises(CheckpointError, match="Linear: expected a transformers VideoPrismVisionModel"):
        load_transformers_videoprism(torch.nn.Linear(2, 2))
    joint = get_preset("videoprism-tiny")
    joint.space_time = "joint"
    with pytest.raises(CheckpointError, match="factorized"):
        config_to_transformers(joint)


@pytest.mark.slow
def test_the_base_encoder_gives_the_public_models_tokens_on_a_full_clip():
    """ViT-B at the public checkpoint's size, 16 frames of 288²: every one of the 4,096 tokens agrees."""
    cfg = get_preset("videoprism-b")
    with torch.device("meta"):
        theirs = transformers.VideoPrismVisionModel(config_to_transformers(cfg))
    theirs = theirs.to_empty(device="cpu").eval()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in theirs.parameters():  # random weights at a trained model's scale (LayerNorms included)
            p.copy_(0.02 * torch.randn(p.shape, generator=generator))
    video = torch.rand(1, 16, 288, 288, 3, generator=generator)
    diff = (tokens(load_transformers_videoprism(theirs), video) - tokens(theirs, video)).abs().max().item()
    assert diff <= 1e-4, diff


@pytest.mark.parametrize("frames, size", [(4, 32), (8, 16), (2, 24)])
def test_fewer_frames_and_other_grids_resize_the_positions_as_the_official_code(theirs, frames, size):
    """A clip unlike the trained one (4 of 8 frames; an 8² or 24² frame for a 32² model) resizes both positional
    embeddings; the official resize antialiases when it shrinks, and so must ours."""
    ours = load_transformers_videoprism(theirs)
    video = torch.rand(1, frames, size, size, 3)
    with torch.no_grad():
        expected = theirs(pixel_values_videos=video.permute(0, 1, 4, 2, 3), interpolate_pos_encoding=True)
    diff = (tokens(ours, video) - expected.last_hidden_state).abs().max().item()
    assert diff <= 1e-4, diff
