"""The synthetic world, its episodes, the shipped ``data_small/`` (rebuilt byte for byte) and its tokenizer."""

import random
import re
from collections import Counter

import numpy as np
import pytest

from minimodels.data import world
from minimodels.data.build import SPECIAL_TOKENS, WorldSpec, build, built_files, differing_files, generate
from minimodels.data.dataset import SPLITS, TABLES, as_float, clip_tensors, load_table
from minimodels.data.episodes import ACTIONS, COUNTS, NAMES, make_episode
from minimodels.data.video_io import decode_frames, write_video
from minimodels.data.world import (
    APPEARANCE,
    BOUNCE_VISIBLE,
    COLOURS,
    DIRECTIONS,
    MOTION,
    SHAPES,
    SIZES,
    SPEEDS,
    labels,
    render_clip,
    simulate,
)
from minimodels.engine.errors import DataError
from minimodels.engine.paths import REPO_ROOT

DATA_SMALL = REPO_ROOT / "data_small"


@pytest.fixture(scope="module")
def data():
    return generate()


def all_clips(data):
    return [c for split in data.values() for c in split["clips"]]


def words(text):
    return set(re.findall(r"[a-z0-9]+", text.lower()))


# ---- the world -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [16, 32, 64])
def test_render_clip_shape_dtype_and_colours(data, size):
    scene = data["train"]["clips"][0]
    frames = render_clip(scene, size)
    assert frames.shape == (len(scene["xs"]), size, size, 3) and frames.dtype == np.uint8
    # The pixel under the object's centre has the object's colour; a far corner is the background.
    t = 0
    cx, cy = int(scene["xs"][t] * size), int(scene["ys"][t] * size)
    colour = np.round(np.asarray(COLOURS[scene["colour"]]) * 255)
    assert np.abs(frames[t, cy, cx].astype(int) - colour).max() <= 1
    far = (size - 1 if scene["xs"][t] < 0.5 else 0, size - 1 if scene["ys"][t] < 0.5 else 0)
    assert (np.abs(frames[t, far[1], far[0]].astype(int) - round(scene["background"] * 255)) <= 1).all()


def test_render_clip_shapes_differ_and_cover_about_the_right_area():
    base = {"colour": "red", "size": "large", "background": 0.0, "xs": [0.5], "ys": [0.5]}
    areas = {}
    for shape in SHAPES:
        frame = render_clip({**base, "shape": shape}, 64)[0].astype(float) / 255
        areas[shape] = frame[..., 0].sum() / (0.92 * 64 * 64)  # red channel / colour = covered fraction
    r = SIZES["large"]
    assert areas["circle"] == pytest.approx(np.pi * r**2, rel=0.05)
    assert areas["square"] == pytest.approx((1.6 * r) ** 2, rel=0.05)
    assert areas["diamond"] == pytest.approx(2 * r**2, rel=0.05)
    assert len({round(a, 3) for a in areas.values()}) == len(SHAPES)
    with pytest.raises(ValueError, match="hexagon"):
        render_clip({**base, "shape": "hexagon"}, 16)


def test_positions_stay_in_bounds(data):
    for clip in all_clips(data):
        r = SIZES[clip["size"]]
        for coords in (clip["xs"], clip["ys"]):
            assert all(r - 1e-4 <= c <= 1 - r + 1e-4 for c in coords)


def fold(u, lo, hi):
    """Reflect an unbounded coordinate into [lo, hi]: motion on a circle of length 2(hi - lo)."""
    w = hi - lo
    m = (u - lo) % (2 * w)
    return lo + (m if m <= w else 2 * w - m)


@pytest.mark.parametrize("seed", range(20))
def test_motion_is_a_reflected_straight_line(seed):
    rng = random.Random(seed)
    direction, speed = rng.choice(list(DIRECTIONS)), rng.choice(list(SPEEDS))
    appearance = world.sample_appearance(rng)
    scene = simulate(rng, appearance, direction, speed, frames=24)  # long enough to hit a wall
    r = SIZES[appearance["size"]]
    vx, vy = (c * SPEEDS[speed] for c in DIRECTIONS[direction])
    for t in range(24):
        assert scene["xs"][t] == pytest.approx(fold(scene["xs"][0] + vx * t, r, 1 - r), abs=1e-3)
        assert scene["ys"][t] == pytest.approx(fold(scene["ys"][0] + vy * t, r, 1 - r), abs=1e-3)
    assert scene["bounced"]  # 24 fast-or-slow steps always reach a wall (0.035·23 > 1 - 2·0.16)


def test_bounce_reverses_the_step():
    class StartNearRightWall(random.Random):
        def uniform(self, a, b):
            return a + 0.97 * (b - a)

    scene = simulate(StartNearRightWall(0), {"shape": "circle", "colour": "red", "size": "small"}, "right", "fast", 4)
    xs, hi = np.array(scene["xs"]), 1 - SIZES["small"]
    steps = np.diff(xs)
    assert steps[0] < 0 and np.allclose(steps[1:], -SPEEDS["fast"], atol=2e-4)  # bounced before frame 1, then back
    assert xs[1] == pytest.approx(2 * hi - (xs[0] + SPEEDS["fast"]), abs=2e-4)
    assert scene["bounced"] and scene["ys"] == [scene["ys"][0]] * 4


def test_bounced_flag_matches_what_the_frames_show(data):
    """A clip says it bounced exactly when its frames leave the straight line at constant speed (by more than a
    graze of the wall in the last step)."""
    wrong = []
    for clip in all_clips(data):
        dx, dy = DIRECTIONS[clip["direction"]]
        coords = np.array(clip["xs"] if dx else clip["ys"])
        straight = np.allclose(np.diff(coords), (dx or dy) * SPEEDS[clip["speed"]], atol=BOUNCE_VISIBLE)
        if clip["bounced"] == straight or ("bounces back" in clip["caption"]) == straight:
            wrong.append(clip)
    assert not wrong, f"{len(wrong)} clips say they bounced but do not show it"


def test_one_frame_carries_no_motion():
    """Over the train split, the first frame's position does not tell the heading (the start is uniform)."""
    clips = load_table("clips", "train").to_list()

    def mean_start(axis, key, value):
        picked = [c[axis][0] for c in clips if c[key] == value]
        assert len(picked) > 100
        return float(np.mean(picked))

    assert abs(mean_start("xs", "direction", "left") - mean_start("xs", "direction", "right")) < 0.05
    assert abs(mean_start("ys", "direction", "up") - mean_start("ys", "direction", "down")) < 0.05
    for axis in ("xs", "ys"):
        assert abs(mean_start(axis, "speed", "slow") - mean_start(axis, "speed", "fast")) < 0.05
        assert abs(mean_start(axis, "direction", "left") - 0.5) < 0.05


def test_later_frames_do_show_motion():
    """The control for the test above: by the last frame, left- and right-movers sit in different places."""
    clips = load_table("clips", "train").to_list()
    left = np.mean([c["xs"][-1] for c in clips if c["direction"] == "left"])
    right = np.mean([c["xs"][-1] for c in clips if c["direction"] == "right"])
    assert right - left > 0.1


def test_labels_are_class_indices(data):
    for clip in data["val"]["clips"][:50]:
        got = labels(clip)
        assert set(got) == set(APPEARANCE) | set(MOTION)
        for name, classes in {**APPEARANCE, **MOTION}.items():
            assert classes[got[name]] == clip[name]
    scene = {"shape": "cross", "colour": "orange", "size": "large", "direction": "left", "speed": "fast"}
    assert labels(scene) == {"shape": SHAPES.index("cross"), "colour": list(COLOURS).index("orange"), "size": 1,
                             "direction": list(DIRECTIONS).index("left"), "speed": 1}


# ---- episodes ----------------------------------------------------------------------------------------------------

def episodes_with_rows(data):
    for split in data.values():
        clips, qa = {}, {}
        for c in split["clips"]:
            clips.setdefault(c["episode"], []).append(c)
        for q in split["qa"]:
            qa.setdefault(q["episode"], []).append(q)
        for ep in split["episodes"]:
            yield ep, clips[ep["episode"]], qa[ep["episode"]]


def test_every_episode_uses_both_ingredients(data):
    for ep, clips, _ in episodes_with_rows(data):
        names = [i["name"] for i in ep["ingredients"]]
        assert len(ep["ingredients"]) == 2 and len(set(names)) == 2 and set(names) <= set(NAMES)
        assert {c["ingredient"] for c in clips} == set(names)
        first, second = ep["ingredients"]
        assert first["shape"] != second["shape"] and first["colour"] != second["colour"]


def test_clips_show_their_ingredient_and_action(data):
    for ep, clips, _ in episodes_with_rows(data):
        by_name = {i["name"]: i for i in ep["ingredients"]}
        assert [c["step"] for c in clips] == list(range(ep["steps"]))
        for c in clips:
            ing = by_name[c["ingredient"]]
            assert (c["shape"], c["colour"], c["size"]) == (ing["shape"], ing["colour"], ing["size"])
            assert c["direction"] == ACTIONS[c["action"]]
            assert c["action"] in words(c["utterance"]) and c["ingredient"] in words(c["utterance"])


def test_questions(data):
    for ep, clips, qa in episodes_with_rows(data):
        assert len(qa) == 8
        assert sorted(q["kind"] for q in qa) == sorted(["frames", "subtitles", "both", "many_frames"] * 2)
        for q in qa:
            assert len(q["options"]) == 5 and len(set(q["options"])) == 5
            assert q["options"][q["answer_index"]] == q["answer"]
        for ing in ep["ingredients"]:
            mine = [q for q in qa if {ing["name"], ing["colour"]} & words(q["question"]) and q["kind"] != "many_frames"]
            by_kind = {q["kind"]: q for q in mine}
            assert len(mine) == 3 and len(by_kind) == 3
            assert by_kind["frames"]["answer"] == ing["shape"] and ing["colour"] in by_kind["frames"]["question"]
            assert by_kind["subtitles"]["answer"] == ing["count"]
            assert set(by_kind["subtitles"]["options"]) == set(COUNTS)
            assert by_kind["both"]["answer"] == ing["shape"] and ing["name"] in by_kind["both"]["question"]


def test_many_frame_questions_need_the_whole_episode(data):
    """How often an object is shown and which shape is shown last: the answers come from clips across the episode,
    and the first half of an episode (all that two frames sampled 16 apart ever show) often gets them wrong."""
    first_half_right = []
    for ep, clips, qa in episodes_with_rows(data):
        times, last = [q for q in qa if q["kind"] == "many_frames"]
        colour = times["question"].split("the ")[1].split()[0]
        shown = [c for c in clips if c["colour"] == colour]
        assert times["answer"] == COUNTS[len(shown) - 1] and times["question"].startswith("how many times")
        assert last["answer"] == clips[-1]["shape"] and set(last["options"]) == set(SHAPES)
        first_half_right.append(COUNTS[sum(c["colour"] == colour for c in clips[:2]) - 1] == times["answer"]
                                if any(c["colour"] == colour for c in clips[:2]) else False)
    assert np.mean(first_half_right) < 0.6


def test_descriptions_state_the_motion_rarely(data):
    """Stage 1's clean text: appearance always, motion in about one clip in five (the rest say nothing of it)."""
    clips = all_clips(data)
    stated = [c["description"] == c["caption"] for c in clips]
    assert 0.15 < np.mean(stated) < 0.25
    motion_words = set(DIRECTIONS) | {"slowly", "quickly", "moves", "bounces"}
    for clip, says_motion in zip(clips, stated):
        assert words(clip["description"]) >= {clip["size"], clip["colour"], clip["shape"]}
        assert bool(words(clip["description"]) & motion_words) == says_motion


def test_what_is_said_and_what_is_shown(data):
    """Quantities are spoken in the episode but never shown (captions, alt-text); names are only spoken."""
    for ep, clips, qa in episodes_with_rows(data):
        said = set().union(*(words(c["utterance"]) for c in clips))
        shown = set().union(*(words(c["caption"]) | words(c["alt_text"]) for c in clips))
        assert not shown & set(COUNTS)
        for q in qa:
            if q["kind"] == "subtitles":
                assert q["answer"] in said
                name = q["question"].split("spoons of ")[1].split()[0]
                spoons = "spoon" if q["answer"] == "one" else "spoons"  # "one spoon", "two spoons"
                assert any(f"{q['answer']} {spoons} of {name}" in c["utterance"] for c in clips)
            if q["kind"] == "both":
                assert q["question"].split("the ")[-1].rstrip("?") in said


def test_narration_remarks_on_the_screen_loosely_in_time(data):
    """MV-GPT's premise: every caption fact is said some of the time, a look word is always true of the clip on
    screen or of the one before (the remark came late), and late remarks are common."""
    clips = all_clips(data)
    said = Counter(w for c in clips for w in words(c["utterance"]))
    for word in (*SHAPES, *COLOURS, *SIZES, *DIRECTIONS, "slowly", "quickly", "bounces"):
        assert said[word] > 0.01 * len(clips), word  # every caption fact, in the caption's words
    late = on_screen = 0
    for ep, ep_clips, _ in episodes_with_rows(data):
        for before, clip in zip([None, *ep_clips], ep_clips):
            for fact, values in (("shape", SHAPES), ("size", SIZES), ("colour", COLOURS)):
                for word in words(clip["utterance"]) & set(values):
                    assert word == clip[fact] or (before is not None and word == before[fact]), clip["utterance"]
                    on_screen += word == clip[fact]
                    late += before is not None and word == before[fact] and word != clip[fact]
    assert late > 0.1 * (late + on_screen)  # words that only the previous clip's frames confirm are common
def test_cues_are_the_utterances_in_time_order(data):
    for ep, clips, _ in episodes_with_rows(data):
        step_seconds = len(clips[0]["xs"]) / ep["fps"]
        assert [c["text"] for c in ep["cues"]] == [c["utterance"] for c in clips]
        for i, cue in enumerate(ep["cues"]):
            assert i * step_seconds <= cue["start"] < cue["end"] <= (i + 1) * step_seconds


def test_make_episode_is_a_function_of_the_rng_state():
    def episode(world, voice, asker):
        return make_episode(random.Random(world), random.Random(voice), random.Random(asker), 0, steps=4, frames=8)

    a, b, c, d, e = episode(5, 1, 7), episode(5, 1, 7), episode(6, 1, 7), episode(5, 2, 7), episode(5, 1, 8)
    assert a == b and a != c
    # the voice draws the words alone: another voice, the same scenes and annotations
    strip = lambda ep: [{k: v for k, v in clip.items() if k != "utterance"} for clip in ep["clips"]]
    assert strip(a) == strip(d) and a["clips"] != d["clips"] and a["qa"] == d["qa"]
    # the asker draws the many-frame questions alone
    assert a["clips"] == e["clips"] and a["qa"][:6] == e["qa"][:6] and a["qa"][6:] != e["qa"][6:]


def test_the_narrated_pool_is_drawn_pair_by_pair_and_carries_no_annotation(data):
    from minimodels.data.narrated import narrated_pairs, pool_episode, pool_pairs

    spec = WorldSpec()
    assert pool_pairs(spec) >= 10 * round(0.1 * spec.episodes[0][1] * spec.steps)  # >= 10x the captioned clips
    last = pool_pairs(spec) - 1
    scenes, present, future = narrated_pairs([last, 0, 1])
    episode = pool_episode(0)
    assert present[1:] == [episode[0]["utterance"], episode[1]["utterance"]] and future[1] == episode[1]["utterance"]
    assert scenes[1] == episode[0] and narrated_pairs([last])[0] == scenes[:1]  # alone or in a batch, the same
    assert set(scenes[0]) == {"shape", "colour", "size", "direction", "speed", "bounced", "background", "xs", "ys",
                              "utterance"}  # no caption, description, alt-text or question
    stored = {(*c["xs"], *c["ys"]) for split in data.values() for c in split["clips"]}
    assert not stored & {(*c["xs"], *c["ys"]) for e in range(20) for c in pool_episode(e)}  # a split of its own
    with pytest.raises(IndexError, match="narrated pool has episodes"):
        pool_episode(spec.narrated_episodes)


def test_the_pools_clips_are_drawn_batch_by_batch_in_workers_at_a_full_size():
    import torch

    from minimodels.data.dataset import loader_workers
    from minimodels.data.narrated import narrated_pairs, pool_pairs, pool_video

    scenes, _, _ = narrated_pairs([5, 0])
    tiny = pool_video(16, 8)
    assert torch.equal(tiny[torch.tensor([5, 0])], torch.from_numpy(np.stack([render_clip(s, 16) for s in scenes])))
    full = pool_video(224, 16)  # mvgpt-base's clips: never held, drawn in loader workers (none is started here)
    assert tiny.workers == 0 and full.workers == loader_workers() and full.shape == (pool_pairs(), 16, 224, 224, 3)


# ---- splits and the shipped files ------------------------------------------------------------------------------

def test_splits_are_disjoint_episodes(data):
    spec = WorldSpec()
    ids = {}
    for split, count in spec.episodes:
        rows = data[split]
        ids[split] = {e["episode"] for e in rows["episodes"]}
        assert len(ids[split]) == count
        assert {c["episode"] for c in rows["clips"]} == ids[split]
        assert {q["episode"] for q in rows["qa"]} == ids[split]
        assert len(rows["clips"]) == count * spec.steps
    assert not ids["train"] & ids["val"] and not ids["train"] & ids["test"] and not ids["val"] & ids["test"]
    # The shipped files too, table by table.
    for table in TABLES:
        shipped = {split: set(load_table(table, split)["episode"]) for split in SPLITS}
        assert shipped == ids


def test_shipped_tables_are_the_generated_ones(data):
    for split in SPLITS:
        for table in TABLES:
            rows = load_table(table, split).to_list()
            assert len(rows) == len(data[split][table])
    clips = load_table("clips", "val").to_list()
    assert clips[0] == data["val"]["clips"][0]


def test_build_is_deterministic_and_equals_data_small(tmp_path):
    first, second = build(tmp_path / "a"), build(tmp_path / "b")
    assert {"world.json", "tokenizer/tokenizer.json", "clips/train.jsonl", "qa/test.jsonl",
            "episodes/val.jsonl", "videos/episode_0700.mp4", "videos/episode_0700.vtt"} <= set(built_files(first))
    assert differing_files(first, second) == [], "two builds differ"
    assert differing_files(DATA_SMALL, first) == [], "data_small/ is not what build() writes; run `data build`"


def test_differing_files_sees_a_changed_byte_a_changed_frame_and_a_missing_file(tmp_path):
    import shutil

    for name in ("a", "b"):
        shutil.copytree(DATA_SMALL / "videos", tmp_path / name / "videos")
    assert differing_files(tmp_path / "a", tmp_path / "b") == []
    vtt = tmp_path / "b" / "videos" / "episode_0700.vtt"
    vtt.write_text(vtt.read_text().replace("-->", "--> ", 1))
    frames = decode_frames(tmp_path / "a" / "videos" / "episode_0700.mp4")
    frames[3] = 255 - frames[3]
    write_video(tmp_path / "b" / "videos" / "episode_0700.mp4", frames, fps=4)
    (tmp_path / "b" / "videos" / "episode_0701.vtt").unlink()
    assert differing_files(tmp_path / "a", tmp_path / "b") == [
        "videos/episode_0700.mp4", "videos/episode_0700.vtt", "videos/episode_0701.vtt"]


# ---- tokenizer and tables --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(DATA_SMALL / "tokenizer"), local_files_only=True)


def test_tokenizer_round_trips_a_caption(tokenizer, data):
    for text in (data["test"]["clips"][3]["caption"], data["test"]["clips"][3]["utterance"]):
        ids = tokenizer(text)["input_ids"]
        assert len(ids) < len(text.split()) * 3  # learnt merges: words are mostly whole tokens
        assert tokenizer.unk_token_id not in ids
        assert tokenizer.decode(ids, skip_special_tokens=True) == text


@pytest.mark.parametrize("token", ["<s>", "</s>", "<pad>", "[BOS-F]", "[BOS-B]", "[CLS]", "[MASK]"])
def test_tokenizer_special_tokens(tokenizer, token):
    assert token in tokenizer.all_special_tokens
    assert tokenizer.tokenize(f"{token} a red circle")[0] == token  # never split into pieces
    token_id = tokenizer.convert_tokens_to_ids(token)
    assert token_id != tokenizer.unk_token_id and token_id < len(SPECIAL_TOKENS)


def test_tokenizer_named_special_tokens(tokenizer):
    assert (tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token) == ("<s>", "</s>", "<pad>")
    assert (tokenizer.cls_token, tokenizer.mask_token) == ("[CLS]", "[MASK]")


def test_load_table_rejects_unknown_names():
    with pytest.raises(DataError) as err:
        load_table("videos", "train")
    assert all(t in str(err.value) for t in TABLES)
    with pytest.raises(DataError) as err:
        load_table("clips", "dev")
    assert all(s in str(err.value) for s in SPLITS)


def test_clip_tensors_and_as_float():
    out = clip_tensors("val", 16, limit=5)
    assert out["video"].shape == (5, 8, 16, 16, 3) and out["video"].dtype.is_floating_point is False
    rows = load_table("clips", "val").to_list()[:5]
    for name in (*APPEARANCE, *MOTION):
        assert out[name].tolist() == [labels(r)[name] for r in rows]
    assert np.array_equal(out["video"][2].numpy(), render_clip(rows[2], 16))
    x = as_float(out["video"][:2])
    assert x.dtype.is_floating_point and 0 <= x.min() and x.max() <= 1 and x.max() > 0.5
