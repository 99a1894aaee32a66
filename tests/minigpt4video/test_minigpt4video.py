"""MiniGPT4-Video's model: frozen frame encoder, merging, trainable projection, frozen LLM with LoRA on q/v."""

import pytest
import torch

from minimodels.catalog import info
from minimodels.engine.errors import CheckpointError
from minimodels.minigpt4video.model import MiniGPT4VideoConfig

READS_COUNTS = 0.6  # the shipped tiny LLM's text-only ranking accuracy on the count questions is well above this
LLAMA2_7B = 6_738_415_616  # meta-llama/Llama-2-7b-hf, as counted by transformers
MISTRAL_7B = 7_241_732_096  # mistralai/Mistral-7B-v0.1 / Instruct-v0.2


@pytest.mark.parametrize("preset, frames, base_llm, lora_v_out", [
    ("minigpt4video-llama2", 45, LLAMA2_7B, 4096),
    ("minigpt4video-mistral", 90, MISTRAL_7B, 1024),  # Mistral's v_proj maps 4096 -> 8 KV heads x 128
])
def test_full_presets_counts_on_meta(preset, frames, base_llm, lora_v_out):
    out = info(preset)
    params = out["params"]
    projection = 5632 * 4096 + 4096  # llama_proj: merged EVA tokens to the LLM width
    lora = 32 * 64 * ((4096 + 4096) + (4096 + lora_v_out))  # r = 64: A (r x in) + B (out x r) on q and v
    assert params["proj"] == projection
    assert params["llm"] == base_llm + lora
    assert params["trainable"] == projection + lora
    assert 0.98e9 < params["vision"] < 0.99e9  # EVA-CLIP ViT-g/14 less its last layer, as BLIP-2 uses it
    assert out["tokens_per_frame"] == 64 and out["frames"] == frames
    assert out["token_budget"]["visual_tokens"] == frames * 64  # 2,880 for Llama 2 (paper §3.2)


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return MiniGPT4VideoConfig().build()


def test_only_the_projection_and_lora_on_q_and_v_train(tiny):
    trainable = [n for n, p in tiny.named_parameters() if p.requires_grad]
    assert trainable and all(n.startswith("proj.") or "lora_" in n for n in trainable)
    lora_targets = {n.split(".lora_")[0].rsplit(".", 1)[-1] for n in trainable if "lora_" in n}
    assert lora_targets == {"q_proj", "v_proj"}
    frozen_before = {n: p.detach().clone() for n, p in tiny.named_parameters() if not p.requires_grad}
    lora_b_before = {n: p.detach().clone() for n, p in tiny.named_parameters() if "lora_B" in n}
    optimizer = torch.optim.AdamW([p for p in tiny.parameters() if p.requires_grad], lr=1e-2)
    frames = tiny.frame_embeddings(torch.rand(2, 3, 32, 32, 3))  # (2, 3, 16, D)
    out = tiny.llm(inputs_embeds=frames.flatten(1, 2), labels=torch.randint(0, 336, (2, 48)))
    out.loss.backward()
    optimizer.step()
    assert all(torch.equal(p, frozen_before[n]) for n, p in tiny.named_parameters() if not p.requires_grad)
    assert any(not torch.equal(p, lora_b_before[n]) for n, p in tiny.named_parameters() if "lora_B" in n)


def test_frame_embeddings_shape_and_bad_input(tiny):
    assert tiny.frame_embeddings(torch.rand(1, 5, 32, 32, 3)).shape == (1, 5, 16, 128)
    unmerged = MiniGPT4VideoConfig(merge=False).build()
    assert unmerged.frame_embeddings(torch.rand(1, 5, 32, 32, 3)).shape == (1, 5, 64, 128)
    with pytest.raises(ValueError, match=r"expected frames \(B, N, H, W, 3\), got \(5, 32, 32, 3\)"):
        tiny.frame_embeddings(torch.rand(5, 32, 32, 3))


def test_shipped_frame_encoder_reads_appearance_from_patch_tokens_and_loads_into_the_model():
    from safetensors.torch import load_file

    from minimodels.data.dataset import clip_tensors
    from minimodels.minigpt4video.frame_encoder import CHECKPOINT, FrameEncoder, frame_accuracy, load_frame_encoder
    from minimodels.minigpt4video.model import FrameViTConfig

    encoder = FrameEncoder(FrameViTConfig())
    encoder.load_state_dict(load_file(str(CHECKPOINT / "model.safetensors")))
    acc = frame_accuracy(encoder, clip_tensors("test", 32, limit=400))
    assert acc["colour"] > 0.95 and acc["size"] > 0.95 and acc["shape"] > 0.6  # chance 0.22, 0.54, 0.22
    model = MiniGPT4VideoConfig().build()
    load_frame_encoder(model)
    assert torch.equal(model.vision.pos, encoder.vision.pos)
    assert torch.equal(model.ln_vision.weight, encoder.ln_vision.weight)
    assert not any(p.requires_grad for p in [*model.vision.parameters(), *model.ln_vision.parameters()])


def test_missing_frame_encoder_names_the_command(tmp_path):
    from minimodels.minigpt4video.frame_encoder import load_frame_encoder

    with pytest.raises(CheckpointError, match="python -m minimodels run minigpt4video-frame-encoder --out"):
        load_frame_encoder(MiniGPT4VideoConfig().build(), tmp_path)


def test_frame_encoder_experiment_reports_accuracy_beside_chance():
    from minimodels.catalog import run_experiment

    r = run_experiment("minigpt4video-frame-encoder",
                       sets={"train.steps": "2", "train.batch_size": "8", "train.progress": "false"})
    assert {"acc_shape", "acc_colour", "acc_size"} <= set(r.metrics) & set(r.chance)
    assert set(r.history["train"].steps[-1]) >= {"loss_shape", "loss_colour", "loss_size"}


def test_shipped_tiny_llm_speaks_the_world_and_is_wrapped_frozen():
    from minimodels.minigpt4video.model import MiniGPT4Video
    from minimodels.minigpt4video.tiny_llm import heldout_loss, heldout_texts, load_tiny_llm
    from minimodels.nn.text import load_tokenizer

    cfg = MiniGPT4VideoConfig()
    llm = load_tiny_llm(cfg.llm)
    texts = {k: v[:100] for k, v in heldout_texts("test").items()}
    losses = heldout_loss(llm, load_tokenizer(), texts, length=128)
    assert all(v < 1.5 for v in losses.values()), losses  # untrained: ln 336 = 5.8
    model = MiniGPT4Video(cfg, llm=llm)
    q_weight = next(p for n, p in model.llm.named_parameters() if n.endswith("q_proj.base_layer.weight"))
    assert not q_weight.requires_grad and torch.equal(q_weight, llm.model.layers[0].self_attn.q_proj.base_layer.weight)


def test_missing_tiny_llm_names_the_command(tmp_path):
    from minimodels.minigpt4video.model import LLMConfig
    from minimodels.minigpt4video.tiny_llm import load_tiny_llm

    with pytest.raises(CheckpointError, match="python -m minimodels run minigpt4video-tiny-llm --out"):
        load_tiny_llm(LLMConfig(), tmp_path)


def test_shipped_tiny_llm_picks_the_spoken_count_from_the_subtitles():
    """Text only, the frames left out: ranking the five option texts (the code's multi_select) finds the count said
    for the named ingredient, where an LLM that cannot read is at 0.2."""
    from minimodels.minigpt4video.tiny_llm import load_tiny_llm, ranking_accuracy, reading_prompts
    from minimodels.nn.text import load_tokenizer

    counts = [q for q in reading_prompts("test", multiple_choice=False) if q["kind"] == "subtitles"][:100]
    read = ranking_accuracy(load_tiny_llm(MiniGPT4VideoConfig().llm), load_tokenizer(), counts, length=256)
    assert read["subtitles"] >= READS_COUNTS, read


def test_text_questions_keep_the_video_prompt_layout_without_frames():
    from minimodels.data.dataset import load_table
    from minimodels.minigpt4video.tiny_llm import text_question
    from minimodels.minigpt4video.wording import IMAGE

    episode = load_table("episodes", "test")[0]
    qa = [q for q in load_table("qa", "test").to_list() if q["episode"] == episode["episode"]][1]
    prompt, answer = text_question(episode, qa, num_frames=8, multiple_choice=False, max_words=60)
    assert prompt.count("<Img>") == 8 and IMAGE not in prompt and answer == qa["answer"]
    assert episode["cues"][0]["text"] in prompt and prompt.endswith(f"\n{qa['question']}[/INST]")
    prompt, answer = text_question(episode, qa, num_frames=8, multiple_choice=True, max_words=5)
    assert answer == str(qa["answer_index"]) and f"option {answer}: {qa['answer']}" in prompt
    assert episode["cues"][1]["text"] not in prompt  # past the word budget


def test_tiny_llm_experiment_reports_heldout_loss_and_reading_per_kind():
    from minimodels.catalog import run_experiment

    steps = {f"{part}.{k}": v for part in ("drills", "train")
             for k, v in (("steps", "2"), ("batch_size", "8"), ("progress", "false"))}
    r = run_experiment("minigpt4video-tiny-llm", sets={**steps, "episodes": "20", "eval_questions": "16"})
    assert {"loss_narration", "loss_caption", "loss_question"} <= set(r.metrics) & set(r.chance)  # chance: untrained
    assert {"read_rank_subtitles", "read_open_subtitles", "read_mcq_frames", "read_rank_many_frames"} <= set(r.metrics)
    assert set(r.history) == {"drills", "train"} and len(r.history["drills"].steps) == 2


@pytest.mark.parametrize("sets, frames, tokens", [
    ({}, 8, 128), ({"merge": "false"}, 2, 128), ({"merge": "false", "frames": "8"}, 8, 512), ({"frames": "4"}, 4, 64)])
def test_experiment_frames_and_merge_settings(sets, frames, tokens):
    from minimodels.catalog import make_config
    from minimodels.minigpt4video.qa import configured

    m = configured(make_config("minigpt4video-qa", sets=sets))
    assert (m.num_frames, m.num_frames * m.tokens_per_frame) == (frames, tokens)


def test_full_presets_train_as_the_official_video_stages_and_need_the_real_parts():
    from minimodels.catalog import make_config
    from minimodels.engine.errors import ConfigError
    from minimodels.minigpt4video.qa import require_frozen_parts

    tiny = make_config("minigpt4video-qa", preset="minigpt4video-tiny")
    require_frozen_parts(tiny)  # the shipped parts fit
    assert (tiny.qa_stage.batch_size, tiny.recompute_activations) == (16, False)
    full = make_config("minigpt4video-qa", preset="minigpt4video-llama2")
    assert (full.qa_stage.batch_size, full.recompute_activations) == (4, True)  # the paper's batch of 4
    with pytest.raises(ConfigError, match=r"--set llm_path=<folder> \(a llama LLM .*\) vision_path=<file>"):
        require_frozen_parts(full)
    with pytest.raises(ConfigError, match=r"--set vision_path=<file>"):  # the shipped ViT fits its own sizes only
        require_frozen_parts(make_config("minigpt4video-qa", sets={"model.vision.depth": 3}))


def test_visual_tokens_are_frozen_and_projected_per_frame(tiny):
    video = torch.rand(2, 3, 32, 32, 3)
    tokens = tiny.visual_tokens(video)
    assert tokens.shape == (2, 3, 16, 256) and not tokens.requires_grad  # 4 x 64 channels after merging
    assert torch.allclose(tiny.frame_embeddings(video), tiny.proj(tokens))


def test_ranking_scores_the_option_texts_after_the_training_prompt(monkeypatch):
    """multi_select: each option *text* is a candidate answer after the question's training string; the lowest
    loss wins. Generation gets the inference template (open-ended and TVQA-style)."""
    from minimodels.minigpt4video import evaluation
    from minimodels.minigpt4video.training import Episodes
    from minimodels.nn.text import load_tokenizer

    model = MiniGPT4VideoConfig().build()
    tokenizer = load_tokenizer()
    eps = Episodes(model, "test")
    questions = eps.qa[:8]
    scored, asked = [], []

    def fake_losses(model, tokenizer, prompts, device):  # lowest loss on each question's answer text
        scored.extend(prompts)
        return torch.tensor([0.0 if a == q["answer"] else 1.0 for q in questions for a in q["options"]])

    def fake_generate(model, tokenizer, prompts, device, penalty):
        asked.extend(p for p, _ in prompts)
        return ["?"] * len(prompts)

    monkeypatch.setattr(evaluation, "answer_losses", fake_losses)
    monkeypatch.setattr(evaluation, "generate", fake_generate)
    hits = evaluation.answer_questions(model, tokenizer, eps, questions, True, "cpu", 1.0)
    assert hits["mcq_ranking"] == [True] * 8 and hits["open"] == [False] * 8
    assert [a for _, _, a in scored] == [o for q in questions for o in q["options"]]
    assert all(p.startswith("[INST] <Img>") and p.endswith(f"\n{q['question']}[/INST]")
               for (p, _, _), q in zip(scored[::5], questions))
    assert all(p.startswith("<s>[INST]  <Img>") and p.endswith(" [/INST]") for p in asked)
    assert sum("your output should be the number" in p for p in asked) == 8  # the TVQA request, once per question


def test_blank_frames_give_the_tokens_of_black_frames(tiny):
    """blank_frames=true: every frame of training and evaluation is black, so only the text can answer."""
    from minimodels.minigpt4video.training import frozen_tokens

    video = torch.randint(0, 256, (2, 3, 32, 32, 3), dtype=torch.uint8)
    blank = frozen_tokens(tiny, video, blank=True)
    assert torch.equal(blank, tiny.visual_tokens(torch.zeros(2, 3, 32, 32, 3)))
    assert not torch.equal(blank, frozen_tokens(tiny, video))


def test_the_projected_tokens_carry_the_frame_and_blank_frames_carry_nothing(tiny):
    """The linear read-out of the projected tokens reads colour off real frames (the frozen encoder knows it, and
    even an untrained projection passes it on), and nothing above chance off black ones."""
    from minimodels.minigpt4video.evaluation import FirstFrames, projected_readout

    real = projected_readout(tiny, FirstFrames(tiny, "train", 400), FirstFrames(tiny, "test", 200), steps=60)
    blank = projected_readout(tiny, FirstFrames(tiny, "train", 400, blank=True),
                              FirstFrames(tiny, "test", 200, blank=True), steps=60)
    assert real["colour"] > 0.8, real
    assert max(blank.values()) <= 0.55 and blank["colour"] < 0.3, blank  # chance: shape 0.2, colour 1/6, size 0.5


def test_caption_accuracy_scores_each_fact_of_each_clip(monkeypatch):
    """Stage 2's task: the written caption is cut at "then" into the clips' captions; a fact counts when the clip's
    part names it and no other value of it."""
    from minimodels.minigpt4video import evaluation
    from minimodels.minigpt4video.training import Episodes, captions_of
    from minimodels.nn.text import load_tokenizer

    model = MiniGPT4VideoConfig().build()
    eps = Episodes(model, "test")
    truth = [captions_of(eps.rows, e["episode"]) for e in eps.episodes[:3]]
    written = iter([])
    monkeypatch.setattr(evaluation, "generate", lambda *args, **kwargs: next(written))
    written = iter([truth])
    assert set(evaluation.caption_accuracy(model, load_tokenizer(), eps, True, "cpu", limit=3).values()) == {1.0}
    first = truth[0].split(" then ")[0]
    colour = next(c for c in evaluation.CAPTION_FACTS["colour"] if c in first.split())
    other = next(c for c in evaluation.CAPTION_FACTS["colour"] if c != colour)
    written = iter([[truth[0].replace(first, first.replace(colour, other), 1), *truth[1:]]])
    scores = evaluation.caption_accuracy(model, load_tokenizer(), eps, True, "cpu", limit=3)
    assert scores["colour"] == round(1 - 1 / sum(len(t.split(" then ")) for t in truth), 4) and scores["shape"] == 1


def test_the_experiment_reports_each_kind_and_way_and_sight_and_captions_after_their_stages(monkeypatch):
    """Every question kind, with and without subtitles, three ways; sight after every stage (said, ranked, read out)
    and the captions when stage 2 ends; blank_frames reaches all of them."""
    from minimodels.catalog import run_experiment
    from minimodels.minigpt4video import qa

    looked, captioned = [], []
    monkeypatch.setattr(qa, "SIGHT_CLIPS", {"test": 4, "train": 4})  # the frames sight reads, few here
    monkeypatch.setattr(qa, "sight", lambda model, tokenizer, frames, seed: (
        looked.append(float(frames["test"].tokens.abs().sum())) or ({"rank_shape": 0.5}, {"rank_shape": 0.2})))
    monkeypatch.setattr(qa, "caption_accuracy", lambda model, tokenizer, eps, subtitles, device, limit: (
        captioned.append((subtitles, float(eps.tokens.abs().sum()), limit)) or {"shape": 0.25}))
    steps = {f"{stage}.{k}": v for stage in ("image_stage", "caption_stage", "qa_stage")
             for k, v in (("steps", "1"), ("batch_size", "2"), ("progress", "false"))}
    r = run_experiment("minigpt4video-qa", sets={**steps, "eval_limit": "8", "blank_frames": "true"})
    for kind in ("frames", "subtitles", "both", "many_frames"):
        for prompt in ("subs", "nosubs"):
            assert {f"open_{kind}_{prompt}", f"mcq_generation_{kind}_{prompt}", f"mcq_ranking_{kind}_{prompt}"} \
                <= set(r.metrics)
    assert r.info["visual_tokens"] == 128 and len(r.history["qa"].steps) == 1
    assert len(looked) == 3 and [(s, n) for s, _, n in captioned] == [(True, 1), (False, 1)]  # 8 questions
    assert {f"sight_rank_shape_{stage}" for stage in ("image", "caption", "qa")} <= set(r.metrics)
    assert r.metrics["caption_shape_nosubs"] == 0.25 and r.chance["caption_shape_nosubs"] == 0.2
    model = qa.build_minigpt4video(qa.QAConfig())[0]
    black_frame = float(model.visual_tokens(torch.zeros(1, 1, 32, 32, 3)).abs().sum())  # all black frames alike
    assert captioned[0][1] == pytest.approx(100 * 8 * black_frame, rel=1e-4)  # the test episodes' frames: black
    assert looked[0] == pytest.approx(4 * black_frame, rel=1e-4)  # and sight read black frames too


def test_the_premise_counts_what_the_subtitles_say():
    """Subtitle questions are answered by the subtitles by construction; a frames question's shape is said in some
    remarks only; a caption's words are said by its clip's narration in a share of the clips."""
    from minimodels.minigpt4video.evaluation import QUESTION_KINDS
    from minimodels.minigpt4video.premise import answers_said, caption_words_said

    said = answers_said("test")
    assert said["subtitles"] == 1.0 and 0.3 < said["frames"] < 1.0 and set(said) == set(QUESTION_KINDS)
    words = caption_words_said("test")
    assert all(0.0 < share < 1.0 for share in words.values()) and words["direction"] < words["colour"]
