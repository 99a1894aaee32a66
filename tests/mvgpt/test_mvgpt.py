"""MV-GPT building blocks: the co-attentional fusion encoder, the causal text decoder."""

import pytest
import torch

from minimodels.engine.errors import ConfigError
from minimodels.eval import captions
from minimodels.mvgpt.coattention import CoAttentionEncoder
from minimodels.mvgpt.text_decoder import TextDecoder

D, H = 16, 2


@pytest.fixture
def fusion():
    torch.manual_seed(0)
    return CoAttentionEncoder(layers=2, width=D, heads=H, mlp_dim=32).eval()


def streams(seed=0):
    g = torch.Generator().manual_seed(seed)
    video, text = torch.randn(2, 6, D, generator=g), torch.randn(2, 4, D, generator=g)
    return video, text, torch.tensor([[True] * 4, [True, True, False, False]])


def test_each_stream_sees_the_other(fusion):
    video, text, mask = streams()
    memory, memory_mask = fusion(video, text, mask)
    assert memory.shape == (2, 10, D) and memory_mask.tolist()[1] == [True] * 6 + [True, True, False, False]
    other_text = text.clone()
    other_text[:, 0] += torch.randn(D)
    changed, _ = fusion(video, other_text, mask)
    assert not torch.allclose(changed[:, :6], memory[:, :6], atol=1e-4), "text must reach the video stream"
    other_video = video.clone()
    other_video[:, 0] += torch.randn(D)
    changed, _ = fusion(other_video, text, mask)
    assert not torch.allclose(changed[:, 6:], memory[:, 6:], atol=1e-4), "video must reach the text stream"


def test_text_padding_does_not_reach_the_video_stream(fusion):
    video, text, mask = streams()
    memory, _ = fusion(video, text, mask)
    junk = text.clone()
    junk[1, 2:] = 100.0  # padded positions of the second text
    changed, _ = fusion(video, junk, mask)
    assert torch.allclose(changed[:, :6], memory[:, :6], atol=1e-5)
    assert torch.allclose(changed[:, 6:8], memory[:, 6:8], atol=1e-5)  # nor the real text tokens


@pytest.fixture
def decoder():
    torch.manual_seed(0)
    return TextDecoder(vocab_size=20, width=D, layers=2, heads=H, mlp_dim=32, max_length=8).eval()


def test_decoder_is_causal(decoder):
    """Changing a later target token leaves the logits at every earlier position unchanged."""
    memory, memory_mask = torch.randn(1, 5, D), torch.ones(1, 5, dtype=torch.bool)
    ids = torch.tensor([[1, 5, 6, 7, 8, 9]])
    keep = torch.ones_like(ids, dtype=torch.bool)
    logits = decoder(ids, keep, memory, memory_mask)
    for t in range(1, 6):
        changed = ids.clone()
        changed[0, t] = 3
        other = decoder(changed, keep, memory, memory_mask)
        assert torch.allclose(other[:, :t], logits[:, :t], atol=1e-5)
        assert not torch.allclose(other[:, t], logits[:, t], atol=1e-5)


def test_decoder_reads_the_memory_but_not_its_padding(decoder):
    ids = torch.tensor([[1, 5, 6]])
    keep = torch.ones_like(ids, dtype=torch.bool)
    memory, mask = torch.randn(1, 5, D), torch.tensor([[True, True, True, False, False]])
    logits = decoder(ids, keep, memory, mask)
    padded = memory.clone()
    padded[0, 3:] = 50.0
    assert torch.allclose(decoder(ids, keep, padded, mask), logits, atol=1e-5)
    moved = memory.clone()
    moved[0, 0] += torch.randn(D)
    assert not torch.allclose(decoder(ids, keep, moved, mask), logits, atol=1e-4)
    assert logits.shape == (1, 3, 20)
    with pytest.raises(ValueError, match="max_length 8"):
        decoder(torch.ones(1, 9, dtype=torch.long), torch.ones(1, 9, dtype=torch.bool), memory, mask)


# ---- the bidirectional generation loss -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tokenizer():
    from minimodels.nn.text import load_tokenizer

    return load_tokenizer()


def test_forward_and_backward_swap_the_texts_and_use_their_start_token(tokenizer):
    from minimodels.mvgpt.bidirectional import generation_batches
    from minimodels.nn.text import tokenize

    present, future = ["now we push the butter"], ["we need two spoons of salt"]
    batches = generation_batches(tokenizer, present, future, text_length=10, decoder_length=12)
    fwd, bwd = batches["forward"], batches["backward"]
    assert torch.equal(fwd["ids"], tokenize(tokenizer, present, 10)[0])  # forward reads the present ...
    assert torch.equal(bwd["ids"], tokenize(tokenizer, future, 10)[0])  # ... backward the future
    assert fwd["dec_ids"][0, 0] == tokenizer.convert_tokens_to_ids("[BOS-F]")
    assert bwd["dec_ids"][0, 0] == tokenizer.convert_tokens_to_ids("[BOS-B]")
    words = lambda labels: tokenizer.decode([t for t in labels.tolist() if t >= 0], skip_special_tokens=True)
    assert words(fwd["labels"][0]) == future[0] and words(bwd["labels"][0]) == present[0]
    n = len(tokenizer(future[0], add_special_tokens=False)["input_ids"])
    assert fwd["labels"][0, n] == tokenizer.eos_token_id and (fwd["labels"][0, n + 1:] == -100).all()
    assert torch.equal(fwd["dec_ids"][0, 1:n + 1], fwd["labels"][0, :n])  # teacher forcing: input = labels shifted
    assert fwd["dec_keep"][0].sum() == n + 1


def test_padding_never_contributes_to_the_loss(tokenizer):
    from minimodels.mvgpt.bidirectional import decoder_tensors, generation_loss

    _, keep, labels = decoder_tensors(tokenizer, ["now we stir", "we need one spoon of honey now"], "[BOS-F]", 10)
    torch.manual_seed(0)
    logits = torch.randn(2, 10, len(tokenizer))
    loss = generation_loss(logits, labels)
    junk = logits.clone()
    junk[labels == -100] = 100 * torch.randn_like(junk[labels == -100])
    assert torch.isclose(generation_loss(junk, labels), loss)
    by_hand = -logits.log_softmax(-1).gather(2, labels.clamp(min=0)[..., None])[..., 0][labels != -100].mean()
    assert torch.isclose(loss, by_hand, atol=1e-5)


# ---- the assembled model and its presets -----------------------------------------------------------------------

def test_mvgpt_base_sizes_match_bert_base_and_vivit_b():
    from minimodels.catalog import info

    params = info("mvgpt-base")["params"]
    # bert-base-uncased (109,482,240) less its pooler and token-type embeddings:
    # 30,522·768 + 512·768 + LN + 12 layers of 7,087,872
    assert params["text"] == 30_522 * 768 + 512 * 768 + 2 * 768 + 12 * 7_087_872 == 108_890_112
    assert 113e6 < params["video"] < 115e6  # ViViT-B factorized encoder (12 spatial + 4 temporal layers)
    # GPT-2 small's blocks (12 × 7,087,872) + cross-attention (12 × (4·768² + 4·768 + 2 LN))
    # + 30,522·768 embeddings + 1,024·768 positions + final LN
    cross = 12 * (4 * 768 * 768 + 4 * 768 + 4 * 768)
    assert params["decoder"] == 12 * 7_087_872 + cross + 30_522 * 768 + 1024 * 768 + 2 * 768


def test_tiny_mvgpt_runs_and_its_decoder_is_causal_end_to_end():
    from minimodels.catalog import get_preset

    cfg = get_preset("mvgpt-tiny")
    torch.manual_seed(0)
    model = cfg.build().eval()
    video, ids, keep, dec, dec_keep = cfg.example_inputs(device="cpu")
    video = torch.rand_like(video)
    ids, dec = torch.randint(8, cfg.vocab_size, ids.shape), torch.randint(8, cfg.vocab_size, dec.shape)
    logits = model(video, ids, keep, dec, dec_keep)
    assert logits.shape == (1, cfg.decoder_length, cfg.vocab_size)
    later = dec.clone()
    later[0, 10] = 5
    assert torch.allclose(model(video, ids, keep, later, dec_keep)[:, :10], logits[:, :10], atol=1e-5)
    other_frames = model(torch.rand_like(video), ids, keep, dec, dec_keep)
    assert not torch.allclose(other_frames, logits, atol=1e-4), "the frames must reach the decoder"
    with pytest.raises(ValueError, match="text_length 24"):
        model(video, torch.zeros(1, 30, dtype=torch.long), torch.ones(1, 30, dtype=torch.bool), dec, dec_keep)


# ---- decoding --------------------------------------------------------------------------------------------------

START, END, A, B = 0, 1, 2, 3


class TwoStepDecoder(torch.nn.Module):
    """p(A)=0.6, p(B)=0.4 first; after A the end token has only 0.3, after B 0.9. Greedy takes A (0.6·0.3 = 0.18),
    the best sequence is B, end (0.4·0.9 = 0.36)."""

    def forward(self, ids, keep, memory, memory_mask):
        probs = torch.full((len(ids), ids.shape[1], 4), 1e-6)
        for row, prefix in enumerate(ids.tolist()):
            last = prefix[-1]
            probs[row, -1] = torch.tensor({START: [0, 0, 0.6, 0.4], A: [0, 0.3, 0.35, 0.35],
                                           B: [0, 0.9, 0.05, 0.05]}.get(last, [0, 1, 0, 0])) + 1e-6
        return probs.log()


def test_beam_search_finds_what_greedy_misses():
    from minimodels.nn.decoding import beam_search, greedy_decode

    memory, mask = torch.zeros(1, 1, 4), torch.ones(1, 1, dtype=torch.bool)
    assert greedy_decode(TwoStepDecoder(), memory, mask, START, END, max_len=5) == [[A, A, A, A, A]]
    assert beam_search(TwoStepDecoder(), memory, mask, START, END, max_len=5, beam=2) == [[B]]
    assert beam_search(TwoStepDecoder(), memory, mask, START, END, max_len=2, beam=1) == [[A, A]]  # cut at max_len


def test_beam_one_equals_greedy(decoder):
    from minimodels.nn.decoding import beam_search, greedy_decode

    torch.manual_seed(3)
    memory, mask = torch.randn(4, 5, D), torch.ones(4, 5, dtype=torch.bool)
    end = greedy_decode(decoder, memory, mask, START, END, max_len=3)[0][1]  # an end token greedy will meet
    greedy = greedy_decode(decoder, memory, mask, START, end, max_len=6)
    assert greedy == beam_search(decoder, memory, mask, START, end, max_len=6, beam=1)
    assert all(len(g) <= 6 and end not in g for g in greedy)
    assert any(len(g) < 6 for g in greedy), "the end token stops at least one example early"
    with pytest.raises(ValueError, match="beam must be at least 1"):
        beam_search(decoder, memory, mask, START, end, max_len=6, beam=0)


# ---- the experiment --------------------------------------------------------------------------------------------

def test_narration_pairs_are_consecutive_steps_of_one_episode():
    from minimodels.data.dataset import load_table
    from minimodels.mvgpt.pretraining import narration_pairs

    rows = load_table("clips", "val").to_list()
    index, present, future = narration_pairs(rows)
    assert len(index) == len(rows) - len({r["episode"] for r in rows})  # every clip but each episode's last
    for i, p, f in zip(index.tolist()[:50], present, future):
        nxt = next(r for r in rows if r["episode"] == rows[i]["episode"] and r["step"] == rows[i]["step"] + 1)
        assert p == rows[i]["utterance"] and f == nxt["utterance"]


def test_mask_tokens_masks_only_real_tokens():
    from minimodels.mvgpt.pretraining import mask_tokens

    ids = torch.arange(10, 30).view(2, 10)
    keep = torch.arange(10)[None].expand(2, -1) < torch.tensor([[10], [4]])
    masked, labels = mask_tokens(ids, keep, mask_id=4, prob=0.5, generator=torch.Generator().manual_seed(0))
    chosen = masked == 4
    assert chosen.any() and not (chosen & ~keep).any()
    assert torch.equal(labels[chosen], ids[chosen]) and (labels[~chosen] == -100).all()


@pytest.mark.parametrize("pretrain", ["none", "encoder", "forward", "bidirectional", "bidirectional+mlm"])
def test_mvgpt_runs_every_pretraining_setting(pretrain, monkeypatch):
    from minimodels.catalog import run_experiment

    monkeypatch.setattr(captions, "java_available", lambda: False)  # no JVM start-ups here
    sets = {"pretrain": pretrain, "pretraining.steps": "2", "finetuning.steps": "2", "pretraining.batch_size": "4",
            "finetuning.batch_size": "4", "pretraining.progress": "false", "finetuning.progress": "false",
            "max_caption_len": "3", "eval_split": "val"}
    r = run_experiment("mvgpt-captioning", seed=0, sets=sets)
    assert {"bleu4", "rouge_l", "cider", "meteor", "acc_shape"} <= set(r.metrics) and r.metrics["meteor"] is None
    assert "Java" in r.info["meteor_missing"] and {"bleu4", "cider"} <= set(r.chance)  # chance: the commonest caption
    assert r.info["labelled_clips"] == 240  # captions for 10 % of the 2,400 training clips
    logged = set(r.history["pretraining"].steps[0]) if "pretraining" in r.history else set()
    expected = {"none": set(), "encoder": {"loss_mlm"}, "forward": {"loss_forward"},
                "bidirectional": {"loss_forward", "loss_backward"},
                "bidirectional+mlm": {"loss_forward", "loss_backward", "loss_mlm"}}[pretrain]
    assert logged - {"step", "loss"} == expected
    grounding = {k for k in r.metrics if k.startswith("word_acc_")}  # only where a decoder was pretrained
    directions = {"forward": ["forward"], "bidirectional": ["forward", "backward"]}.get(pretrain.split("+")[0], [])
    assert grounding == {f"word_acc_{d}_{f}" for d in directions for f in ("colour", "size", "shape")}
    assert all(r.chance[k] in (0.1667, 0.5, 0.2) for k in grounding)


def test_unknown_pretraining_names_the_choices():
    from minimodels.catalog import run_experiment

    with pytest.raises(ConfigError, match="none, encoder, forward, bidirectional, bidirectional\\+mlm"):
        run_experiment("mvgpt-captioning", sets={"pretrain": "both", "finetuning.steps": "1"})


def test_labelled_subset_is_a_seeded_fraction_of_distinct_clips():
    from minimodels.mvgpt.captioning import labelled_subset

    chosen = labelled_subset(2400, 0.1, seed=3)
    assert len(chosen) == 240 and len(set(chosen.tolist())) == 240 and chosen.max() < 2400
    assert torch.equal(chosen, labelled_subset(2400, 0.1, seed=3))
    assert not torch.equal(chosen, labelled_subset(2400, 0.1, seed=4))
    assert len(labelled_subset(2400, 1.0, seed=0)) == 2400
    with pytest.raises(ConfigError, match="labelled_fraction"):
        labelled_subset(2400, 0.0, seed=0)


def test_attribute_accuracy_reads_each_fact_of_a_caption():
    from minimodels.mvgpt.captioning import attribute_accuracy

    row = {"size": "large", "colour": "red", "shape": "circle", "direction": "down", "speed": "fast",
           "bounced": True}
    right = attribute_accuracy(["a large red circle moves down quickly and bounces back"], [row])
    assert set(right.values()) == {1.0}
    wrong = attribute_accuracy(["a small red red blue square moves down slowly"], [row])
    assert wrong == {"acc_size": 0.0, "acc_colour": 0.0, "acc_shape": 0.0, "acc_direction": 1.0, "acc_speed": 0.0,
                     "acc_bounce": 0.0}


def test_masked_lm_d_is_read_from_the_decoders_outputs_at_the_masked_tokens():
    from torch import nn

    from minimodels.mvgpt.model import MVGPTConfig
    from minimodels.mvgpt.pretraining import MLMHead, mask_tokens, masked_lm_loss

    torch.manual_seed(0)
    cfg = MVGPTConfig()
    model = cfg.build()
    parts = nn.ModuleDict({"model": model, "mlm": MLMHead(cfg.video.width, cfg.vocab_size)})
    video_tokens = model.video(torch.rand(2, cfg.video.num_frames, 32, 32, 3))
    ids = torch.randint(8, cfg.vocab_size, (2, 10))
    keep = torch.ones_like(ids, dtype=torch.bool)
    loss = masked_lm_loss(parts, "decoder", video_tokens, ids, keep, 4, 0.5, torch.Generator().manual_seed(1))
    masked, labels = mask_tokens(ids, keep, 4, 0.5, torch.Generator().manual_seed(1))  # the same draw, by hand
    logits = model.decoder(masked, keep, *model.fuse(video_tokens, masked, keep))  # output i names token i
    at = labels != -100
    by_hand = -logits.log_softmax(-1)[at].gather(1, labels[at][:, None]).mean()
    assert at.any() and torch.allclose(loss, by_hand, atol=1e-5)
    loss.backward()
    assert model.decoder.embed.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in parts["mlm"].parameters())  # MLM-D never touches MLM-E's head
    encoder_side = masked_lm_loss(parts, "encoder", video_tokens.detach(), ids, keep, 4, 0.5,
                                  torch.Generator().manual_seed(1))
    encoder_side.backward()
    assert all(p.grad is not None for p in parts["mlm"].parameters())


@pytest.mark.parametrize("frames", [False, True])
def test_narration_check_trains_a_model_of_the_future_utterance_with_or_without_frames(frames, monkeypatch):
    from minimodels.catalog import run_experiment
    from minimodels.mvgpt import pretraining

    seen, real_batch = [], pretraining.pool_batch

    def recording(*args, **kwargs):  # the clips each training step is shown
        batch = real_batch(*args, **kwargs)
        seen.append(batch[0])
        return batch

    monkeypatch.setattr(pretraining, "pool_batch", recording)
    sets = {"training.steps": "2", "training.batch_size": "4", "training.progress": "false", "eval_split": "val",
            "frames": str(frames).lower()}
    r = run_experiment("mvgpt-narration", seed=0, sets=sets)
    assert len(seen) == 2 and all(v.shape[0] == 4 for v in seen)
    assert all(bool(v.any()) == frames for v in seen)  # the text-only model is shown blank clips
    for fact, chance in (("colour", 0.1667), ("size", 0.5), ("shape", 0.2)):
        assert r.chance[f"word_acc_{fact}"] == chance and 0 <= r.metrics[f"word_acc_{fact}"] <= 1
        assert 0.4 < r.metrics[f"true_of_present_{fact}"] < 1  # the premise in the data: many, not all
