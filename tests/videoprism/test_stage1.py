"""VideoPrism stage 1: text encoder, MAP pooler, symmetric InfoNCE, tube dropping, retrieval metrics, presets."""

import json
import math

import pytest
import torch

from minimodels.catalog import PAPER_PARAMS, info, make_config, run_experiment
from minimodels.data.world import APPEARANCE, MOTION
from minimodels.engine.errors import ConfigError
from minimodels.engine.paths import DATA_DIR
from minimodels.eval.retrieval import ranks, retrieval_metrics
from minimodels.nn.map_pooler import MAPPooler
from minimodels.nn.masking import tube_keep
from minimodels.nn.text import canonicalize, load_tokenizer, tokenize
from minimodels.videoprism.contrastive import symmetric_infonce
from minimodels.videoprism.stage1 import prompt_grid, text_tensors
from minimodels.videoprism.text_encoder import TextEncoder, sinusoidal_positions, tokenize_texts
from minimodels.videoprism.video_text import VideoTextConfig


def unit(*shape):
    return torch.nn.functional.normalize(torch.randn(*shape), dim=-1)


# ---- the loss --------------------------------------------------------------------------------------------------

def test_infonce_is_symmetric_in_video_and_text():
    torch.manual_seed(0)
    v, t, s = unit(6, 8), unit(6, 8), torch.tensor(2.0)
    assert symmetric_infonce(v, t, s) == pytest.approx(symmetric_infonce(t, v, s).item(), abs=1e-6)


def test_infonce_on_known_inputs():
    B = 5
    same = torch.ones(B, 4) / 2  # every similarity equal: each softmax is uniform, loss = log B
    assert symmetric_infonce(same, same, torch.tensor(3.0)).item() == pytest.approx(math.log(B), abs=1e-5)
    eye = torch.eye(B)  # matching pairs at similarity 1, others at 0: the minimum for these scales
    for s in (1.0, 5.0):
        expected = -math.log(math.exp(math.exp(s)) / (math.exp(math.exp(s)) + B - 1))
        assert symmetric_infonce(eye, eye, torch.tensor(s)).item() == pytest.approx(expected, rel=1e-5)
    assert symmetric_infonce(eye, eye, torch.tensor(5.0)) < 1e-3
    shuffled = eye[torch.tensor([1, 0, 2, 3, 4])]  # two pairs swapped: worse than the identity
    assert symmetric_infonce(eye, shuffled, torch.tensor(5.0)) > symmetric_infonce(eye, eye, torch.tensor(5.0)) + 1


def test_infonce_matches_the_two_cross_entropies_by_hand():
    torch.manual_seed(1)
    v, t, s = unit(4, 8), unit(4, 8), torch.tensor(1.5)
    logits = v @ t.T * math.exp(1.5)
    rows = -(logits.diagonal() - logits.logsumexp(1)).mean()
    cols = -(logits.diagonal() - logits.logsumexp(0)).mean()
    assert symmetric_infonce(v, t, s).item() == pytest.approx(0.5 * (rows + cols).item(), abs=1e-6)


# ---- retrieval metrics -----------------------------------------------------------------------------------------

def test_ranks_and_retrieval_metrics_on_a_hand_made_matrix():
    sim = torch.tensor([[0.9, 0.1, 0.0, 0.0],  # query 0: its match is best -> rank 1
                        [0.8, 0.5, 0.7, 0.0],  # query 1: two items above it -> rank 3
                        [0.0, 0.0, 0.2, 0.2],  # query 2: a tie with item 3 counts in its favour -> rank 1
                        [0.4, 0.3, 0.2, 0.1]])  # query 3: last -> rank 4
    assert ranks(sim).tolist() == [1, 3, 1, 4]
    m = retrieval_metrics(sim, "t2v")
    assert m == {"t2v_r1": 50.0, "t2v_r5": 100.0, "t2v_r10": 100.0, "t2v_median_rank": 1.0}
    assert retrieval_metrics(sim.T, "v2t")["v2t_r1"] == 50.0  # columns: item 0 wins 0, 1 loses, 2 wins, 3 loses


# ---- MAP pooler and text encoder -------------------------------------------------------------------------------

def test_video_embedding_is_unit_norm_and_the_pooler_ignores_padding():
    torch.manual_seed(0)
    model = VideoTextConfig(video=VideoTextConfig().video).build().eval()
    video = torch.rand(3, 8, 32, 32, 3)
    emb = model.encode_video(video)
    assert emb.shape == (3, 64) and torch.allclose(emb.norm(dim=-1), torch.ones(3), atol=1e-5)

    pooler = MAPPooler(16, 2, hidden=64)
    tokens, keep = torch.randn(2, 7, 16), torch.tensor([[1, 1, 1, 1, 0, 0, 0], [1] * 7]).bool()
    noisy = tokens.clone()
    noisy[0, 4:] = 100 * torch.randn(3, 16)  # change only the padded tokens
    assert torch.allclose(pooler(tokens, keep), pooler(noisy, keep), atol=1e-6)
    assert not torch.allclose(pooler(tokens), pooler(noisy), atol=1e-3)  # without the mask they do matter


@pytest.fixture
def text_encoder():
    torch.manual_seed(0)
    return TextEncoder(vocab_size=50, width=16, layers=2, heads=2, length=6).eval()


def test_text_encoder_is_causal(text_encoder):
    ids, keep = torch.tensor([[5, 6, 7, 8, 9, 10]]), torch.ones(1, 6, dtype=torch.bool)
    changed = ids.clone()
    changed[0, 3] = 20
    _, h = text_encoder(ids, keep, return_tokens=True)
    _, h2 = text_encoder(changed, keep, return_tokens=True)
    assert torch.allclose(h[:, :3], h2[:, :3], atol=1e-6)  # positions before the change do not see it
    assert not torch.allclose(h[:, 3:], h2[:, 3:], atol=1e-4)


def test_class_token_sees_the_whole_text_but_not_the_padding(text_encoder):
    ids, keep = torch.tensor([[5, 6, 7, 0, 0, 0]]), torch.tensor([[1, 1, 1, 0, 0, 0]]).bool()
    base = text_encoder(ids, keep)
    assert base.shape == (1, 16) and base.norm().item() == pytest.approx(1.0, abs=1e-5)
    for pos in range(3):  # any real token changes the text embedding, the first one included
        changed = ids.clone()
        changed[0, pos] = 30
        assert not torch.allclose(text_encoder(changed, keep), base, atol=1e-4)
    padded = ids.clone()
    padded[0, 3:] = torch.tensor([11, 12, 13])  # different ids behind the padding mask
    assert torch.allclose(text_encoder(padded, keep), base, atol=1e-6)


def test_text_encoder_rejects_a_wrong_length(text_encoder):
    with pytest.raises(ValueError, match="expected 6 text tokens"):
        text_encoder(torch.zeros(1, 5, dtype=torch.long), torch.ones(1, 5, dtype=torch.bool))


def test_canonicalize_and_tokenize():
    assert canonicalize("  A Red,  CIRCLE!moves\tup. ") == "a red circle moves up"
    for text in ("Hello, World!", "Hello,World..", "  Hello   WORLD"):  # the official function's own examples
        assert canonicalize(text, period=True) == "hello world."
    tokenizer = load_tokenizer()
    ids, keep = tokenize(tokenizer, ["A red circle!", "a red circle"], 8)
    assert ids.shape == keep.shape == (2, 8) and torch.equal(ids[0], ids[1])
    assert keep[0].sum() < 8 and (ids[0][~keep[0]] == tokenizer.pad_token_id).all()


def test_videoprism_texts_end_with_a_period_of_their_own():
    tokenizer = load_tokenizer()
    ids, keep = tokenize_texts(tokenizer, ["A red circle!"], 8)
    words = tokenize(tokenizer, ["A red circle!"], 8)[0][0, : keep.sum() - 1]
    assert torch.equal(ids[0, : keep.sum() - 1], words)  # the same words, then "." (its own token, not <unk>)
    assert ids[0, keep.sum() - 1] == tokenizer.convert_tokens_to_ids(".") != tokenizer.unk_token_id


def test_the_class_token_goes_in_after_the_padding_without_a_position(text_encoder):
    seen = {}
    text_encoder.blocks.register_forward_pre_hook(lambda m, args: seen.update(x=args[0]))
    ids, keep = torch.tensor([[5, 6, 7, 0, 0, 0]]), torch.tensor([[1, 1, 1, 0, 0, 0]]).bool()
    text_encoder(ids, keep)
    scale = 16**0.5
    assert seen["x"].shape == (1, 7, 16)
    torch.testing.assert_close(seen["x"][0, -1], scale * text_encoder.cls)
    torch.testing.assert_close(seen["x"][0, :6], scale * text_encoder.embed(ids[0]) + sinusoidal_positions(6, 16))


def test_the_text_layers_cap_their_attention_logits_as_the_video_layers():
    model = VideoTextConfig().build()
    caps = {block.attn.logit_cap for block in model.text.blocks.blocks}
    assert caps == {model.cfg.video.logit_cap} == {50.0}


def test_the_pooler_scales_its_query_per_dimension():
    """softplus(σ) / softplus(0) multiplies each dimension of the query: σ = 0 is the plain pooler, and a σ that
    doubles the query is the same as doubling the query projection."""
    torch.manual_seed(0)
    pooler, tokens = MAPPooler(16, 2, hidden=32).eval(), torch.randn(2, 7, 16)
    assert torch.equal(pooler.query_scale, torch.zeros(16))  # d_head = 32 / 2
    base = pooler(tokens)
    with torch.no_grad():
        pooler.query_scale.fill_(math.log(math.exp(2 * math.log(2)) - 1))  # softplus(σ) = 2 · softplus(0)
        doubled = pooler(tokens)
        pooler.query_scale.zero_()
        pooler.q_proj.weight.mul_(2), pooler.q_proj.bias.mul_(2)
    torch.testing.assert_close(doubled, pooler(tokens))
    assert not torch.allclose(doubled, base, atol=1e-3)


def test_a_pooler_saved_before_the_query_scale_loads_at_sigma_zero():
    torch.manual_seed(0)
    saved, tokens = MAPPooler(16, 2, hidden=32).eval(), torch.randn(2, 7, 16)
    older = {k: v for k, v in saved.state_dict().items() if k != "query_scale"}  # as MiniGPT4-Video's frame encoder
    loaded = MAPPooler(16, 2, hidden=32).eval()
    with torch.no_grad():
        loaded.query_scale.fill_(1.0)
    loaded.load_state_dict(older)  # strict: nothing missing
    assert torch.equal(loaded.query_scale, torch.zeros(16))
    torch.testing.assert_close(loaded(tokens), saved(tokens))


def test_sinusoidal_positions_shape_and_range():
    pe = sinusoidal_positions(10, 8)
    assert pe.shape == (10, 8) and pe.abs().max() <= 1.0
    assert torch.allclose(pe[0], torch.tensor([0.0] * 4 + [1.0] * 4))  # sin 0 = 0, cos 0 = 1


# ---- tube dropping ---------------------------------------------------------------------------------------------

def test_tube_keep_ratio_and_indices():
    keep = tube_keep(4, 16, 0.5, torch.Generator().manual_seed(0))
    assert keep.shape == (4, 8)
    for row in keep:
        assert row.tolist() == sorted(set(row.tolist())) and 0 <= row.min() and row.max() < 16
    assert tube_keep(2, 10, 0.75).shape == (2, 2)  # round(10 · 0.25) = 2
    with pytest.raises(ValueError, match="drop_ratio"):
        tube_keep(1, 16, 1.0)


def test_tube_dropping_hides_the_same_positions_in_every_frame(tiny_cfg):
    torch.manual_seed(0)
    model = tiny_cfg.build().eval()
    video = torch.rand(1, tiny_cfg.num_frames, 16, 16, 3)
    keep = tube_keep(1, tiny_cfg.tokens_per_frame, 0.5, torch.Generator().manual_seed(3))  # (1, 8) of 16
    out = model(video, visible=keep)
    assert out.shape == (1, tiny_cfg.num_frames * 8, tiny_cfg.width)
    dropped = sorted(set(range(16)) - set(keep[0].tolist()))
    changed = video.clone()
    p, grid = tiny_cfg.patch_size, tiny_cfg.grid
    for n in dropped:  # scribble over every dropped patch in every frame: the output must not move
        r, c = divmod(n, grid)
        changed[:, :, r * p:(r + 1) * p, c * p:(c + 1) * p] = torch.rand(1, tiny_cfg.num_frames, p, p, 3)
    assert torch.allclose(model(changed, visible=keep), out, atol=1e-6)
    r, c = divmod(keep[0, 0].item(), grid)  # but a kept patch in one frame does matter
    changed[:, -1, r * p:(r + 1) * p, c * p:(c + 1) * p] = 0.0
    assert not torch.allclose(model(changed, visible=keep), out, atol=1e-5)


# ---- presets, data, experiment ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["videoprism-lvt-b", "videoprism-lvt-l"])
def test_lvt_presets_match_the_public_checkpoints(name):
    target, tol, part, _ = PAPER_PARAMS[name]
    r = info(name)
    assert abs(r["params"][part] / target - 1) <= tol
    assert set(r["params"]) >= {"encoder", "aux", "pooler", "text"}
    assert r["gflops_per_clip"] > 0


def test_prompt_grid_names_every_class_equally():
    prompts, attrs = prompt_grid()
    assert len(prompts) == len(set(prompts)) == math.prod(len(c) for c in {**APPEARANCE, **MOTION}.values())
    for name, classes in {**APPEARANCE, **MOTION}.items():
        counts = [sum(a[name] == c for a in attrs) for c in classes]
        assert len(set(counts)) == 1
    assert "a large red circle moves up quickly" in prompts


def test_text_tensors_fit_the_text_length():
    tokenizer = load_tokenizer()
    ids, keep = text_tensors(tokenizer, "val", ("caption",), 16)["caption"]
    assert ids.shape == (400, 16)
    assert (keep.sum(1) < 16).all()  # no caption is truncated at the tiny preset's length
    with pytest.raises(ConfigError, match="unknown text source.*'caption'"):
        text_tensors(tokenizer, "val", ("subtitles",), 16)


def test_stage1_reads_text_that_rarely_states_motion_unless_told_to():
    assert make_config("videoprism-stage1").text_sources == ("description", "alt_text")
    assert make_config("videoprism-stage1", sets={"text_sources": "caption,alt_text"}).text_sources == (
        "caption", "alt_text")


def test_stage1_config_errors():
    with pytest.raises(ConfigError, match="videoprism-lvt-tiny"):
        make_config("videoprism-stage1", preset="videoprism-b")  # a video-only preset for a video-text experiment
    assert make_config("videoprism-stage1", sets={"token_drop": "0"}).token_drop == 0.0


def test_stage1_runs_a_few_steps_and_reports_every_metric(tmp_path):
    sets = {"train.steps": "3", "train.batch_size": "8", "train.progress": "false", "model.text_layers": "1"}
    r = run_experiment("videoprism-stage1", seed=0, sets=sets, out_dir=tmp_path / "ckpt")
    for key in ("t2v_r1", "t2v_r5", "t2v_r10", "t2v_median_rank", "v2t_r1", "zs_colour", "zs_direction"):
        assert key in r.metrics and key in r.chance
    assert r.chance["t2v_r1"] == pytest.approx(100 / 400) and r.chance["t2v_median_rank"] == 200.5
    assert (tmp_path / "ckpt" / "model.safetensors").is_file()
    assert 0.0 < r.metrics["temperature"] < 1.0



def test_stage1_trains_on_a_folder_of_real_videos_and_evaluates_retrieval_on_another(tmp_path):
    videos = sorted((DATA_DIR / "videos").glob("*.mp4")) + [DATA_DIR / "real" / "big_buck_bunny_5s.mp4"]
    captions = ["a red circle", "a blue square", "a green cross", "a rabbit in a meadow"]
    rows = [json.dumps({"video": str(v), "caption": c}) for v, c in zip(videos, captions)]
    (tmp_path / "train.jsonl").write_text("\n".join(rows))
    (tmp_path / "test.csv").write_text(f"video,caption\n{videos[3]},a rabbit\n{videos[0]},a circle\n")
    sets = {"train.steps": "2", "train.batch_size": "2", "train.progress": "false", "model.text_layers": "1",
            "manifest": str(tmp_path / "train.jsonl"), "eval_manifest": str(tmp_path / "test.csv")}
    r = run_experiment("videoprism-stage1", seed=0, sets=sets, out_dir=tmp_path / "run")
    assert sorted(r.metrics) == sorted(["final_loss", "temperature", *(f"{d}_{k}" for d in ("t2v", "v2t")
                                                                      for k in ("r1", "r5", "r10", "median_rank"))])
    assert r.chance["t2v_r1"] == 50.0 and r.chance["t2v_r5"] == 100.0  # two videos to rank
    assert r.headline == ["t2v_r1", "v2t_r1"] and len(r.history["train"].steps) == 2


def test_a_contrastive_loss_over_micro_batches_says_at_run_time_that_its_negatives_are_fewer(real_folder):
    sets = {"train.steps": "1", "train.batch_size": "4", "train.accumulate": "2", "train.progress": "false",
            "model.text_layers": "1", "loader.num_workers": "0", "manifest": str(real_folder / "captions.jsonl")}
    with pytest.warns(UserWarning, match="train.accumulate=2 makes each micro-batch of 2 clips a contrastive batch "
                                         "of its own: a clip's negatives are the 1 others of its micro-batch, not "
                                         "the 3 others of the step"):
        run_experiment("videoprism-stage1", seed=0, sets=sets)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", ["videoprism-lvt-b", "videoprism-lvt-l"])
def test_lvt_preset_trains_one_contrastive_step_on_cuda(name, cuda_step):
    from minimodels.catalog import get_preset

    cfg = get_preset(name)
    device = torch.device("cuda")
    torch.manual_seed(0)
    with device:
        model = cfg.build()
    video = torch.rand(2, cfg.num_frames, cfg.video.image_size, cfg.video.image_size, 3, device=device)
    ids = torch.randint(1, cfg.vocab_size, (2, cfg.text_length), device=device)
    keep = torch.ones_like(ids, dtype=torch.bool)

    def loss_fn(model, batch, step):
        visible = tube_keep(2, cfg.tokens_per_frame, 0.5, device=device)
        return symmetric_infonce(*model(video, ids, keep, visible=visible), model.log_scale), {}

    cuda_step(model, loss_fn, batch_size=2)
