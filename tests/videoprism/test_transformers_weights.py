"""VideoPrism's public weights through transformers: our encoder and ``VideoPrismVisionModel``, our LvT model and
``VideoPrismClipModel``, convert both ways, tensor for tensor, and compute the same tokens, embeddings and similarity
logits (random weights here; nothing is downloaded)."""

import pytest
import torch

from minimodels.catalog import get_preset
from minimodels.engine.errors import CheckpointError
from minimodels.videoprism.text_encoder import sinusoidal_positions, tokenize_texts
from minimodels.videoprism.transformers_weights import (
    config_from_transformers,
    config_to_transformers,
    load_transformers_videoprism,
    state_from_transformers,
    to_transformers_videoprism,
)

transformers = pytest.importorskip("transformers")


def randomised(model):
    """Every tensor moved off its initial value (LayerNorms' γ − 1 and the pooler's query scale are 0 at the start)."""
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model.eval()


@pytest.fixture(scope="module")
def theirs():
    return randomised(transformers.VideoPrismVisionModel(config_to_transformers(get_preset("videoprism-tiny"))))


@pytest.fixture(scope="module")
def their_lvt():
    return randomised(transformers.VideoPrismClipModel(config_to_transformers(get_preset("videoprism-lvt-tiny"))))


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


def assert_goes_back_tensor_for_tensor(theirs):
    """Theirs -> ours -> theirs: every tensor, under its own name (LayerNorms' γ ± 1 within float rounding)."""
    back = to_transformers_videoprism(load_transformers_videoprism(theirs))
    expected = theirs.state_dict()
    assert back.state_dict().keys() == expected.keys()
    assert all(torch.allclose(back.state_dict()[k], v, atol=1e-7) for k, v in expected.items())


def test_ours_goes_back_tensor_for_tensor_and_through_a_saved_folder(theirs, tmp_path):
    assert_goes_back_tensor_for_tensor(theirs)
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
    with pytest.raises(CheckpointError, match="Linear: expected a transformers VideoPrismVisionModel or "
                                              "VideoPrismClipModel"):
        load_transformers_videoprism(torch.nn.Linear(2, 2))
    joint = get_preset("videoprism-tiny")
    joint.space_time = "joint"
    with pytest.raises(CheckpointError, match="factorized"):
        config_to_transformers(joint)
    lvt = config_to_transformers(get_preset("videoprism-lvt-tiny"))
    lvt.text_config.hidden_act = "gelu"
    with pytest.raises(CheckpointError, match="text tower differs from ours in activation gelu"):
        config_from_transformers(lvt)


def public_size(kind, preset, generator):
    """Their model at a preset's (the public checkpoint's) size, built without initialising, then given random
    weights at a trained model's scale (LayerNorms included)."""
    with torch.device("meta"):
        theirs = kind(config_to_transformers(get_preset(preset)))
    theirs = theirs.to_empty(device="cpu").eval()
    with torch.no_grad():
        for p in theirs.parameters():
            p.copy_(0.02 * torch.randn(p.shape, generator=generator))
    return theirs


@pytest.mark.slow
def test_the_base_encoder_gives_the_public_models_tokens_on_a_full_clip():
    """ViT-B at the public checkpoint's size, 16 frames of 288²: every one of the 4,096 tokens agrees."""
    generator = torch.Generator().manual_seed(0)
    theirs = public_size(transformers.VideoPrismVisionModel, "videoprism-b", generator)
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


def embeddings(model, video, ids, keep):
    """(video embeddings (B, D), text embeddings (N, D), softmax over the videos of each text's similarities at
    temperature 0.1 (B, N)): transformers' ``logits_per_video``."""
    with torch.no_grad():
        if isinstance(model, transformers.VideoPrismClipModel):
            out = model(pixel_values_videos=video.permute(0, 1, 4, 2, 3), input_ids=ids, attention_mask=keep.long(),
                        temperature=0.1)
            return out.video_embeds, out.text_embeds, out.logits_per_video
        v, t = model(video, ids, keep)
        return v, t, torch.softmax(v @ t.T / 0.1, dim=0)


def test_a_transformers_lvt_model_runs_as_ours(their_lvt):
    ours = load_transformers_videoprism(their_lvt)
    video = torch.rand(2, 8, 32, 32, 3)
    ids = torch.randint(0, 326, (3, 16))
    keep = torch.arange(16) < torch.tensor([[16], [9], [4]])  # texts of 16, 9 and 4 tokens, the rest padding
    for name, a, b in zip(("video", "text", "logits"), embeddings(ours, video, ids, keep),
                          embeddings(their_lvt, video, ids, keep)):
        assert (a - b).abs().max().item() <= 1e-4, name
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in their_lvt.parameters()) + 1  # τ


def test_our_lvt_model_goes_back_tensor_for_tensor_and_through_a_saved_folder(their_lvt, tmp_path):
    assert_goes_back_tensor_for_tensor(their_lvt)
    their_lvt.save_pretrained(tmp_path / "saved")
    video, ids = torch.rand(1, 8, 32, 32, 3), torch.randint(0, 326, (2, 16))
    keep = torch.ones_like(ids, dtype=torch.bool)
    loaded = load_transformers_videoprism(tmp_path / "saved")
    for a, b in zip(embeddings(loaded, video, ids, keep), embeddings(their_lvt, video, ids, keep)):
        torch.testing.assert_close(a, b)


def test_the_base_lvt_model_maps_all_its_tensors_at_the_public_checkpoints_size():
    cfg = get_preset("videoprism-lvt-b")
    with torch.device("meta"):
        hf = transformers.VideoPrismClipModel(config_to_transformers(cfg))
        ours = cfg.build()
    theirs = {k: v for k, v in hf.state_dict().items() if k != "text_model.embeddings.position_ids"}
    mapped = state_from_transformers(theirs, cfg)
    assert {k: tuple(v.shape) for k, v in mapped.items()} == {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    weights = sum(t.numel() for k, t in theirs.items() if k != "text_model.embeddings.position_embedding")
    assert weights == sum(p.numel() for p in ours.parameters()) - 1  # all but our temperature


@pytest.mark.slow
def test_the_base_lvt_model_gives_the_public_models_embeddings():
    """LvT-B at the public checkpoint's size (16 frames of 288², 64 text tokens of a 32,000-token vocabulary)."""
    generator = torch.Generator().manual_seed(0)
    theirs = public_size(transformers.VideoPrismClipModel, "videoprism-lvt-b", generator)
    with torch.no_grad():  # buffers too, as from_pretrained fills them
        theirs.text_model.embeddings.position_ids.copy_(torch.arange(64)[None])
        theirs.text_model.embeddings.position_embedding.copy_(sinusoidal_positions(64, 768))
    video = torch.rand(1, 16, 288, 288, 3, generator=generator)
    ids = torch.randint(0, 32_000, (2, 64), generator=generator)
    keep = torch.arange(64) < torch.tensor([[12], [64]])
    ours = load_transformers_videoprism(theirs)
    for name, a, b in zip(("video", "text", "logits"), embeddings(ours, video, ids, keep),
                          embeddings(theirs, video, ids, keep)):
        assert (a - b).abs().max().item() <= 1e-4, name


def test_notebook_02_runs_the_public_model_from_a_folder(their_lvt, tmp_path, capsys):
    """Notebook 02's "real VideoPrism" cell with a weights folder (here a tiny random model saved with our tokenizer,
    as the README's commands save the public one): it loads both and ranks its four texts for the real video."""
    import nbformat

    from minimodels.engine.paths import REPO_ROOT
    from minimodels.nn.text import load_tokenizer

    their_lvt.save_pretrained(tmp_path)
    load_tokenizer().save_pretrained(tmp_path)
    notebook = nbformat.read(REPO_ROOT / "notebooks" / "02_videoprism_contrastive.ipynb", as_version=4)
    cell = next(c.source for c in notebook.cells if "if videoprism_weights:" in c.source)
    exec(cell, {"videoprism_weights": str(tmp_path), "device": "cpu", "torch": torch, "tokenize_texts": tokenize_texts})
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and all(line.split()[2:4] == ["video", "of"] for line in lines), lines
    assert sum(float(line.split("%")[0]) for line in lines) == pytest.approx(100, abs=0.5)
