"""MiniGPT4-Video's input side: frame sampling, subtitle alignment, 4→1 token merging, the interleaved prompt."""

import pytest
import torch

from minimodels.data.subtitles import Cue, SubtitleError, read_subtitles
from minimodels.minigpt4video.prompt import assemble, collate
from minimodels.minigpt4video.sampling import sample_frame_indices, sample_with_subtitles
from minimodels.minigpt4video.token_merge import merge_tokens
from minimodels.minigpt4video.wording import IMAGE, interleaved_prompt
from minimodels.nn.text import IGNORE


@pytest.mark.parametrize("total, n, expected", [
    (5, 8, [0, 1, 2, 3, 4, 4, 4, 4]),  # shorter than N: the last frame repeats
    (8, 8, list(range(8))),  # exactly N
    (17, 8, [0, 2, 4, 6, 8, 10, 12, 14]),  # interval int(17 / 8) = 2, stop at N
    (100, 8, [0, 12, 24, 36, 48, 60, 72, 84]),  # much longer: interval 12, the tail is never reached
])
def test_frame_sampling_on_known_lengths(total, n, expected):
    assert sample_frame_indices(total, n) == expected


def test_subtitles_go_with_the_next_sampled_frame():
    # 10 frames at 1 fps, 5 sampled: 0, 2, 4, 6, 8
    cues = [Cue(0.0, 0.5, "alpha"), Cue(1.0, 1.0, "beta"),  # beta is said at frame 1, between sampled frames
            Cue(2.5, 3.5, "gamma"), Cue(3.0, 4.0, "delta"),  # frame 3 takes gamma (first match), frame 4 delta
            Cue(9.0, 9.5, "omega")]  # after the last sampled frame: never shown
    frames, subs = sample_with_subtitles(10, 1.0, 5, cues)
    assert frames == [0, 2, 4, 6, 8]
    assert subs == ["alpha ", "beta ", "gamma delta ", None, None]


def test_subtitle_word_budget_stops_emission_as_the_code_counts():
    cues = [Cue(float(t), float(t), f"w{t}") for t in range(10)]
    _, subs = sample_with_subtitles(10, 1.0, 10, cues, max_words=3)
    # "w0 " counts 2 words (the trailing space is one), 2 < 3 so "w1 " is emitted too, then the budget is spent
    assert subs == ["w0 ", "w1 "] + [None] * 8
    padded_frames, padded_subs = sample_with_subtitles(3, 1.0, 5, cues)
    assert padded_frames == [0, 1, 2, 2, 2] and padded_subs[3:] == [None, None]


def test_reading_vtt_and_srt(tmp_path):
    (tmp_path / "a.vtt").write_text("WEBVTT\n\n00:00:01.250 --> 00:00:02.000\nhello\nthere\n")
    (tmp_path / "a.srt").write_text("1\n00:00:01,250 --> 00:00:02,000\nhello\nthere\n")
    assert read_subtitles(tmp_path / "a.vtt") == read_subtitles(tmp_path / "a.srt") == [Cue(1.25, 2.0, "hello there")]
    (tmp_path / "bad.vtt").write_text("not a subtitle file\n")
    with pytest.raises(SubtitleError, match="bad.vtt: not a valid VTT"):
        read_subtitles(tmp_path / "bad.vtt")
    with pytest.raises(SubtitleError, match="unknown subtitle kind '.txt'"):
        read_subtitles(tmp_path / "a.txt")
    with pytest.raises(SubtitleError, match="no such file"):
        read_subtitles(tmp_path / "missing.srt")


def test_shipped_subtitles_match_the_episode_table():
    from minimodels.data.dataset import load_table
    from minimodels.engine.paths import DATA_DIR

    episode = next(e for e in load_table("episodes", "test").to_list() if e["episode"] == 700)
    cues = read_subtitles(DATA_DIR / "videos" / "episode_0700.vtt")
    assert [(c.start, c.end, c.text) for c in cues] == [(c["start"], c["end"], c["text"]) for c in episode["cues"]]


def test_merging_concatenates_four_raster_neighbours_not_a_block():
    grid = torch.arange(256.0).view(1, 256, 1).expand(-1, -1, 3)  # token i carries the value i in every channel
    merged = merge_tokens(grid)
    assert merged.shape == (1, 64, 12)
    assert merged[0, 0, ::3].tolist() == [0, 1, 2, 3]  # a 2x2 block would be [0, 1, 16, 17]
    assert merged[0, 4, ::3].tolist() == [16, 17, 18, 19]  # the second row of the 16-wide grid starts at group 4
    with pytest.raises(ValueError, match="not a multiple of 4"):
        merge_tokens(torch.zeros(1, 10, 3))


@pytest.fixture(scope="module")
def tokenizer():
    from minimodels.nn.text import load_tokenizer

    return load_tokenizer()


def frames_with_values(n, k, d):
    return torch.arange(1.0, n + 1).view(n, 1, 1).expand(n, k, d).clone()  # frame i holds i + 1 everywhere


def test_prompt_text_is_the_codes():
    # training: "[INST] " + frames and subtitles + "\n" + instruction + "[/INST]" (chat_template in the model)
    prompt = interleaved_prompt(["now we lift the salt ", None], "what shape is the salt?")
    assert prompt == ("[INST] <Img><ImageHere><Cap>now we lift the salt <Img><ImageHere>\n"
                      "what shape is the salt?[/INST]")
    # evaluation: CONV_VISION's "<s>" + "[INST] " + " " + message (prepare_texts, template '') + " [/INST]"
    prompt = interleaved_prompt(["now we lift the salt ", None], "what shape is the salt?", inference=True)
    assert prompt == ("<s>[INST]  <Img><ImageHere><Cap>now we lift the salt <Img><ImageHere>\n"
                      "what shape is the salt? [/INST]")


def test_the_inference_prompt_starts_with_two_bos_as_the_code_tokenises_it(tokenizer):
    embed = torch.nn.Embedding(len(tokenizer), 6)
    prompt = interleaved_prompt([None], "what?", inference=True)
    out = assemble(tokenizer, embed, prompt, frames_with_values(1, 2, 6), None, 99)
    first = tokenizer(prompt.split(IMAGE)[0], add_special_tokens=False)["input_ids"]
    assert first[0] == tokenizer.bos_token_id  # the literal "<s>" is the BOS token, after the one put in front
    assert torch.equal(out.embeds[1], embed.weight[tokenizer.bos_token_id]) and out.kinds[:2] == ["bos", "prompt"]
    assert out.kinds[-3:] != ["instruction"] * 3 and "instruction" in out.kinds


def test_splice_puts_each_frame_at_its_own_placeholder_and_labels_only_the_answer(tokenizer):
    torch.manual_seed(0)
    embed = torch.nn.Embedding(len(tokenizer), 6)
    prompt = interleaved_prompt(["now we lift the salt ", None, "we need two spoons "], "how many spoons?")
    out = assemble(tokenizer, embed, prompt, frames_with_values(3, 4, 6), "two", context_length=200)
    visual = [i for i, k in enumerate(out.kinds) if k == "visual"]
    assert len(visual) == 12
    for frame in range(3):  # the frame-th run of 4 visual positions holds that frame, in order
        run = visual[4 * frame: 4 * frame + 4]
        assert run == list(range(run[0], run[0] + 4)) and (out.embeds[run] == frame + 1).all()
    pieces = prompt.split(IMAGE)
    first = tokenizer(pieces[0], add_special_tokens=False)["input_ids"]
    assert torch.equal(out.embeds[1:1 + len(first)], embed(torch.tensor(first)))  # text before frame 1 is embedded
    assert visual[0] == 1 + len(first) and out.kinds[0] == "bos"
    assert torch.equal(out.embeds[0], embed.weight[tokenizer.bos_token_id])
    answer = tokenizer("two", add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    assert out.labels[-len(answer):].tolist() == answer and (out.labels[:-len(answer)] == IGNORE).all()
    assert out.kinds[-len(answer):] == ["answer"] * len(answer) and "subtitle" in out.kinds
    assert "instruction" in out.kinds


def test_over_budget_prompts_name_the_numbers(tokenizer):
    embed = torch.nn.Embedding(len(tokenizer), 6)
    prompt = interleaved_prompt([None] * 5, "what?")
    with pytest.raises(ValueError, match=r"5 frames x 4 visual tokens = 20 positions .* context of 16; at most 3"):
        assemble(tokenizer, embed, prompt, frames_with_values(5, 4, 6), "yes", context_length=16)
    with pytest.raises(ValueError, match=r"takes \d+ positions \(1 BOS, 20 visual, \d+ text, \d+ answer\)"):
        assemble(tokenizer, embed, prompt, frames_with_values(5, 4, 6), "yes", context_length=24)
    with pytest.raises(ValueError, match="2 <ImageHere> placeholders for 5 frames"):
        assemble(tokenizer, embed, interleaved_prompt([None] * 2, "what?"), frames_with_values(5, 4, 6), None, 99)


def test_collate_pads_on_the_right_without_loss(tokenizer):
    embed = torch.nn.Embedding(len(tokenizer), 6)
    short = assemble(tokenizer, embed, interleaved_prompt([None], "what?"), frames_with_values(1, 2, 6), "no", 99)
    long = assemble(tokenizer, embed, interleaved_prompt([None, None], "what shape?"), frames_with_values(2, 2, 6),
                    "circle", 99)
    batch = collate([short, long])
    n, pad = len(short.labels), len(long.labels) - len(short.labels)
    assert batch["inputs_embeds"].shape == (2, len(long.labels), 6)
    assert batch["attention_mask"][0].tolist() == [1] * n + [0] * pad
    assert (batch["labels"][0, n:] == IGNORE).all() and torch.equal(batch["labels"][1], long.labels)
    left = collate([short, long], left=True)  # for generation: each row ends at its own last token
    assert left["attention_mask"][0].tolist() == [0] * pad + [1] * n
    assert torch.equal(left["inputs_embeds"][0, pad:], short.embeds) and (left["inputs_embeds"][0, :pad] == 0).all()


def test_an_episode_plays_its_clips_in_order_with_every_cue_once():
    from minimodels.data.dataset import clip_tensors, load_table
    from minimodels.minigpt4video.episodes import episode_videos, sample_episode

    rows = load_table("clips", "test").to_list()
    episodes = load_table("episodes", "test").to_list()[:3]
    videos = episode_videos(clip_tensors("test", 32)["video"], rows, episodes)
    first = videos[episodes[0]["episode"]]
    steps = [i for i, r in enumerate(rows) if r["episode"] == episodes[0]["episode"]]
    assert first.frames.shape == (32, 32, 32, 3) and first.fps == 4
    assert torch.equal(first.frames[8:16], clip_tensors("test", 32)["video"][steps[1]])
    frames, texts = sample_episode(first, num_frames=8, subtitles=True)
    assert torch.equal(frames[1], first.frames[4])  # interval int(32 / 8) = 4
    said = [t for t in texts if t]
    assert [t.strip() for t in said] == [c.text for c in first.cues]  # each cue once, in order
    assert texts[0] is None  # the first cue starts after frame 0, so it goes with the next sampled frame
    assert sample_episode(first, 8, subtitles=False)[1] == [None] * 8


def test_question_prompts_open_ended_and_multiple_choice():
    from minimodels.minigpt4video.wording import question_prompt

    qa = {"question": "what shape is the salt?", "options": ["square", "circle", "cross", "diamond", "triangle"],
          "answer": "circle", "answer_index": 1}
    prompt, answer = question_prompt(["we need two spoons of salt ", None], qa, multiple_choice=False)
    assert answer == "circle" and prompt.endswith("\nwhat shape is the salt?[/INST]")
    prompt, answer = question_prompt([None, None], qa, multiple_choice=True, inference=True)
    # the code's TVQAEVAL string, in the tiny tokenizer's lower case
    assert answer == "1" and prompt == (
        "<s>[INST]  <Img><ImageHere><Img><ImageHere>\nwhat shape is the salt? \n\n as you watched in this video "
        "choose one suitable answer from these mutiple choices \n\noption 0: square \n\noption 1: circle \n\n"
        "option 2: cross \n\noption 3: diamond \n\noption 4: triangle \n\n\n your output should be the number "
        "of the correct answer from the choices from 0 to 4 inclusive [/INST]")


def test_the_image_stage_prompt_marks_its_instruction(tokenizer):
    embed = torch.nn.Embedding(len(tokenizer), 6)
    out = assemble(tokenizer, embed, "[INST] <Img><ImageHere></Img> describe this image.[/INST]",
                   frames_with_values(1, 4, 6), "a large red circle", context_length=99)
    assert out.kinds.count("visual") == 4 and "instruction" in out.kinds and "subtitle" not in out.kinds
