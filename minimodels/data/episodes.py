"""Instructional episodes: consecutive clips that form a procedure, with the words people would attach to them.

An episode is a small "recipe" with two ingredients (each a shape of one colour and size, with a spoken name such as
"sugar" and a spoken quantity). Each step applies an action to one ingredient, and the action is what the clip
shows as motion: drop = moves down, lift = up, push = right, pull = left. Actions follow a habitual order
(drop → push → lift → pull → drop, kept 70 % of the time), so the next step is partly predictable from this one.

The texts, and which paper each serves:
- ``caption`` — what an annotator writes about the clip: appearance and motion ("a large red circle moves down
  quickly"). The target for MV-GPT's captioning fine-tune and VideoPrism's retrieval evaluation.
- ``description`` — the clean text VideoPrism's stage 1 reads: what is shown ("a large red circle"), and the motion
  too in only one clip in five (``MOTION_STATED``). Video–text corpora state what is shown far more often than how
  it moves, which is why the paper's stage-1 model is weak on motion (SSv2) and stage 2 is needed (§2.3, Fig. 7).
- ``alt_text`` — what a web page would carry: appearance keywords only, sometimes wrong, with junk words. Web
  video text says what is shown far more than how it moves (VideoPrism, arXiv 2402.13217, §2.3), which is why a
  contrastive model trained on it learns appearance before motion.
- ``utterance`` — the narration (ASR-like). Each says what is done ("now we drop the sugar": the verb gives the
  motion, the colour is sometimes said), things only speech carries (the ingredient's name, the quantity), filler
  words, and — as people narrating a video do — a *remark* on what is on screen ("look the large red circle moves
  down quickly and bounces back"): some of the clip's caption facts, in the caption's words. Speech and action are
  loosely aligned (MV-GPT, arXiv 2201.08264, introduction): a clip's remark lands in its own utterance
  (``REMARK_TIMING["same"]``), more often in the *next* one (``["next"]``), or is never made, and the words of a
  remark do not say which clip it is about. So the future utterance often describes the present frames, which is
  MV-GPT's reason for forward generation, and only the frames can tell which remark is true of which clip.
  (present, future) utterance pairs are MV-GPT's pretraining data; ``narrated.py`` draws many more episodes that
  carry narration and nothing else.
- ``cues`` — the utterances as a subtitle track with start/end times, and ``qa`` — questions of three kinds:
  ``frames`` (about the look of an object: the frames always show it, the subtitles only in some remarks, and then
  without saying which clip they are about), ``subtitles`` (only from speech: quantities are never shown) and
  ``both`` (which shape is the named ingredient: the name is spoken, the shape shown, and they meet at the moment it
  is said), and two that no single frame answers, ``many_frames``: how many times an object is shown, and which shape
  is shown last. A model that sees a few frames of the episode misses clips; these are the questions for which
  MiniGPT4-Video merges tokens, to fit more frames in the same context (arXiv 2404.03413, §3.1). Each has 5 options
  and a one-word open-ended answer.

Scenes come from the world's random stream, the words people say from a second one (``voice``) and the many-frame
questions from a third (``asker``), so a change to the narration or to those questions leaves every scene, and so
every video model trained on them, as it was.
"""

from __future__ import annotations

import random

from .world import COLOURS, SHAPES, sample_appearance, simulate

ACTIONS = {"drop": "down", "lift": "up", "push": "right", "pull": "left"}
HABIT = {"drop": "push", "push": "lift", "lift": "pull", "pull": "drop"}  # the usual next action
HABIT_KEPT = 0.7  # how often the next action is the usual one (else one of the other three)
ADVERBS = {"slow": "slowly", "fast": "quickly"}
NAMES = ("sugar", "salt", "flour", "honey", "butter", "pepper")
COUNTS = ("one", "two", "three", "four", "five")
FILLERS_START = ("um", "uh", "so", "okay", "alright", "now")
FILLERS_END = ("you know", "like this", "right", "there we go")
WEB_JUNK = ("hd", "stock footage", "free", "loop", "4k", "clip", "video", "animation")
MOTION_STATED = 0.2  # the share of descriptions that say how the object moves
REMARK_TIMING = {"same": 0.3, "next": 0.6}  # where the remark on a clip is said; never in the remaining 10 %
REMARK_SAYS = 0.7  # the chance that a remark names each of the clip's size, colour and shape
REMARK_LEADS = ("look", "see", "watch", "there")
FPS = 4  # frames per second of the episode video: a step of 8 frames lasts 2 s


def _ingredients(rng: random.Random) -> list[dict]:
    """Two ingredients with different shapes, colours and names."""
    first, second = sample_appearance(rng), sample_appearance(rng)
    while second["shape"] == first["shape"] or second["colour"] == first["colour"]:
        second = sample_appearance(rng)
    names = rng.sample(NAMES, 2)
    return [{**app, "name": name, "count": rng.choice(COUNTS)} for app, name in zip((first, second), names)]


def caption(scene: dict) -> str:
    bounce = " and bounces back" if scene["bounced"] else ""
    return f"a {scene['size']} {scene['colour']} {scene['shape']} moves {scene['direction']} " \
           f"{ADVERBS[scene['speed']]}{bounce}"


def description(rng: random.Random, scene: dict) -> str:
    if rng.random() < MOTION_STATED:
        return caption(scene)
    return f"a {scene['size']} {scene['colour']} {scene['shape']}"


def alt_text(rng: random.Random, scene: dict) -> str:
    colour = scene["colour"] if rng.random() > 0.15 else rng.choice(list(COLOURS))  # web text is sometimes wrong
    words = [colour, scene["shape"]]
    if rng.random() < 0.4:
        words.insert(0, "big" if scene["size"] == "large" else "little")
    if rng.random() < 0.2:
        words.remove(scene["shape"])
    junk = rng.sample(WEB_JUNK, rng.randint(1, 2))
    return " ".join(junk[:1] + words + junk[1:]) if rng.random() < 0.5 else " ".join(words + junk)


def remark(rng: random.Random, scene: dict) -> str:
    """What a narrator says about a clip on screen: each caption fact with some chance, at least one, in the
    caption's words ("see the small circle moves left slowly", "look the red object and bounces back")."""
    while True:
        look = [scene[k] for k in ("size", "colour") if rng.random() < REMARK_SAYS]
        shape = scene["shape"] if rng.random() < REMARK_SAYS else "object"
        motion = f" moves {scene['direction']} {ADVERBS[scene['speed']]}" if rng.random() < 0.3 else ""
        bounce = " and bounces back" if scene["bounced"] and rng.random() < 0.6 else ""
        if look or shape != "object" or motion or bounce:
            return " ".join([rng.choice(REMARK_LEADS), "the", *look, shape]) + motion + bounce


def utterance(rng: random.Random, action: str, scene: dict, ingredient: dict, introduce: bool,
              remarks: list[str]) -> str:
    """One step's narration; ``remarks`` are the remarks said during it (on the previous clip, on this one)."""
    words = []
    if rng.random() < 0.6:
        words.append(rng.choice(FILLERS_START))
    if introduce:  # the first time an ingredient is used, the narrator says how much of it is needed
        spoons = "spoon" if ingredient["count"] == "one" else "spoons"
        words.append(f"we need {ingredient['count']} {spoons} of {ingredient['name']}")
    colour = f"{scene['colour']} " if rng.random() < 0.5 else ""
    words.append(f"now we {action} the {colour}{ingredient['name']}")
    if rng.random() < 0.6:
        words.append(ADVERBS[scene["speed"]])
    words += remarks
    if rng.random() < 0.4:
        words.append(rng.choice(FILLERS_END))
    return " ".join(words)


def narrate(voice: random.Random, clips: list[dict], ingredients: list[dict]) -> list[str]:
    """The utterance of every step of an episode, remarks placed loosely in time (``REMARK_TIMING``)."""
    said, introduced, late = [], set(), None
    for clip in clips:
        ing = next(i for i in ingredients if i["name"] == clip["ingredient"])
        remarks = [late] if late else []
        when, late = voice.random(), None
        if when < REMARK_TIMING["same"]:
            remarks.append(remark(voice, clip))
        elif when < REMARK_TIMING["same"] + REMARK_TIMING["next"]:
            late = remark(voice, clip)  # said during the next step (or never, after the last one)
        said.append(utterance(voice, clip["action"], clip, ing, ing["name"] not in introduced, remarks))
        introduced.add(ing["name"])
    return said


def _question(rng, kind, question, answer, choices):
    options = list(choices)
    rng.shuffle(options)
    return {"kind": kind, "question": question, "options": options, "answer": answer,
            "answer_index": options.index(answer)}


def many_frame_questions(asker: random.Random, clips: list[dict], ingredients: list[dict]) -> list[dict]:
    """How often one ingredient is shown (one to three times) and which shape the last clip shows: only frames from
    across the whole episode answer them."""
    ing = asker.choice(ingredients)
    times = sum(clip["ingredient"] == ing["name"] for clip in clips)
    return [_question(asker, "many_frames", f"how many times do we see the {ing['colour']} object?",
                      COUNTS[times - 1], COUNTS),
            _question(asker, "many_frames", "what shape do we see last?", clips[-1]["shape"], SHAPES)]


def make_episode(rng: random.Random, voice: random.Random, asker: random.Random, episode_id: int, steps: int,
                 frames: int) -> dict:
    """One episode: ``steps`` clips of ``frames`` frames, their texts, the subtitle track and its questions.

    ``rng`` draws the scenes, the annotators' texts and the first questions; ``voice`` the narration alone;
    ``asker`` the many-frame questions.
    """
    ingredients = _ingredients(rng)
    users = [0] + [rng.randint(0, 1) for _ in range(steps - 1)]
    if 1 not in users:  # every ingredient appears at least once
        users[rng.randint(1, steps - 1)] = 1
    action = rng.choice(list(ACTIONS))
    clips = []
    step_seconds = frames / FPS
    for step, who in enumerate(users):
        if step:
            others = [a for a in ACTIONS if a != HABIT[action]]
            action = HABIT[action] if rng.random() < HABIT_KEPT else rng.choice(others)
        ing = ingredients[who]
        appearance = {k: ing[k] for k in ("shape", "colour", "size")}
        scene = simulate(rng, appearance, ACTIONS[action], rng.choice(("slow", "fast")), frames)
        start = round(step * step_seconds + rng.uniform(0.0, 0.4), 2)
        end = round((step + 1) * step_seconds - rng.uniform(0.05, 0.3), 2)
        clips.append({"episode": episode_id, "step": step, "action": action, "ingredient": ing["name"],
                      **scene, "caption": caption(scene),
                      "description": description(rng, scene), "alt_text": alt_text(rng, scene),
                      "start": start, "end": end})
    for clip, said in zip(clips, narrate(voice, clips, ingredients)):
        clip["utterance"] = said
    cues = [{"start": c["start"], "end": c["end"], "text": c["utterance"]} for c in clips]
    qa = []
    for ing in ingredients:
        qa.append(_question(rng, "frames", f"what shape is the {ing['colour']} object?", ing["shape"], SHAPES))
        qa.append(_question(rng, "subtitles", f"how many spoons of {ing['name']} do we need?", ing["count"], COUNTS))
        qa.append(_question(rng, "both", f"what shape is the {ing['name']}?", ing["shape"], SHAPES))
    qa += many_frame_questions(asker, clips, ingredients)
    episode = {"episode": episode_id, "steps": steps, "fps": FPS, "ingredients": ingredients, "cues": cues}
    return {"episode": episode, "clips": clips, "qa": [{"episode": episode_id, **q} for q in qa]}
