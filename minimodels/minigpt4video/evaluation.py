"""How MiniGPT4-Video is scored (arXiv 2404.03413, §4; official ``video_datasets.py``, ``eval_utils.py``): the held-out
episodes' questions, per kind (frames / subtitles / both / many_frames), each with and without the subtitles in the
prompt (``_subs`` / ``_nosubs``: the same trained model, as the paper's TVQA rows), three ways (``episodes.py``):
open-ended exact match and TVQA-style generation of the option's number, both in the code's inference template, and
ranking the five option texts by their answer loss (the code's ``multi_select``).

What reaches the LLM from one frame (``sight``), measured after each stage: stage 1's description of a single test
frame, scored by generation (are the clip's shape, colour, size among the words said?) and by ranking (of the
descriptions that differ from the true one in one attribute, does the true one have the lowest loss?), and a
linear read-out of the projected frame tokens, fitted on training frames: ranking tells sight from the format a
later stage taught the model to answer in, the read-out tells what the projection still carries. And
``caption_accuracy``: how many of the caption's facts a model writes for a held-out episode, with and without its
subtitles.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..data.dataset import clip_tensors, load_table
from ..data.episodes import ADVERBS
from ..data.world import APPEARANCE, MOTION
from ..engine.rng import rng
from ..eval.loop import evaluating
from ..nn.text import mean_answer_loss
from .prompt import assemble, collate
from .training import Episodes, appearance_of, frozen_tokens, prompt_batch
from .wording import CAPTION_INSTRUCTION, CAPTION_JOIN, image_prompt, interleaved_prompt, question_prompt

QUESTION_KINDS = ("frames", "subtitles", "both", "many_frames")
WAYS = ("open", "mcq_generation", "mcq_ranking")


@torch.no_grad()
def answer_losses(model, tokenizer, prompts: list[tuple[str, torch.Tensor, str]], device) -> torch.Tensor:
    """[(prompt, frozen visual tokens, candidate answer)] -> the mean token loss of each candidate after its prompt
    (the code's ``multi_select``): (len(prompts),)."""
    batch = prompt_batch(model, tokenizer, prompts, device)
    logits = model.llm(inputs_embeds=batch["inputs_embeds"], attention_mask=batch["attention_mask"]).logits
    return mean_answer_loss(logits, batch["labels"])


@torch.no_grad()
def generate(model, tokenizer, prompts: list[tuple[str, torch.Tensor]], device, penalty: float,
             max_new_tokens: int = 4) -> list[str]:
    """Greedy answers to a batch of (prompt, frozen visual tokens), left-padded so each continues its own prompt."""
    items = [assemble(tokenizer, model.embed, p, model.project(tokens.to(device)), None,
                      model.cfg.llm.context_length) for p, tokens in prompts]
    batch = collate(items, left=True)
    out = model.llm.generate(inputs_embeds=batch["inputs_embeds"], attention_mask=batch["attention_mask"],
                             max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
                             repetition_penalty=penalty, eos_token_id=tokenizer.eos_token_id,
                             pad_token_id=tokenizer.pad_token_id)
    return [tokenizer.decode(row, skip_special_tokens=True).strip() for row in out]


class FirstFrames:
    """The first frame of each of a split's first ``limit`` clips, as frozen visual tokens (1, K, D_merged) each, and
    the clips' rows: computed once per run, since the frame encoder never trains (``blank``: black frames)."""

    def __init__(self, model, split: str, limit: int, blank: bool = False):
        self.rows = load_table("clips", split).to_list()[:limit]
        video = clip_tensors(split, model.cfg.vision.image_size)["video"][:limit, :1]
        self.tokens = frozen_tokens(model, video, blank)  # (limit, 1, K, D_merged)

    def head(self, n: int) -> "FirstFrames":
        """The first ``n`` of them."""
        first = object.__new__(FirstFrames)
        first.rows, first.tokens = self.rows[:n], self.tokens[:n]
        return first


def description_accuracy(model, tokenizer, frames: FirstFrames, device="cpu") -> dict[str, float]:
    """What reaches the LLM from one frame: the description of each frame, asked with stage 1's own prompt, scored
    per attribute (is the clip's shape, colour, size among the words said?)."""
    n = len(frames.rows)
    prompts = [(image_prompt(), frames.tokens[i]) for i in range(n)]
    with evaluating(model):
        said = [generate(model, tokenizer, prompts[start:start + 50], device, 1.0, max_new_tokens=6)
                for start in range(0, n, 50)]
    said = [s.split() for chunk in said for s in chunk]
    return {a: round(sum(r[a] in words for r, words in zip(frames.rows, said)) / n, 4) for a in APPEARANCE}


def ranked_description_accuracy(model, tokenizer, frames: FirstFrames, device="cpu") -> dict[str, float]:
    """The same frames and prompt, scored by ranking: per attribute, the true description ("a large red circle")
    against the ones that change that attribute alone, by their answer loss; right when the true one is lowest."""
    out = {}
    with evaluating(model):
        for attribute, values in APPEARANCE.items():
            prompts = [(image_prompt(), frames.tokens[i], appearance_of({**row, attribute: value}))
                       for i, row in enumerate(frames.rows) for value in values]
            losses = torch.cat([answer_losses(model, tokenizer, prompts[s:s + 200], device)
                                for s in range(0, len(prompts), 200)]).view(len(frames.rows), len(values))
            truth = torch.tensor([values.index(row[attribute]) for row in frames.rows])
            out[attribute] = round((losses.argmin(1).cpu() == truth).float().mean().item(), 4)
    return out


def projected_readout(model, train: FirstFrames, test: FirstFrames, device="cpu", steps: int = 300,
                      seed: int = 0) -> dict[str, float]:
    """A frozen linear read-out of what the projection hands the LLM from one frame: a linear classifier per
    attribute on the projected tokens of the ``train`` frames (flattened), scored on the ``test`` frames."""
    with evaluating(model):
        feats = {name: model.project(frames.tokens.to(device))[:, 0].flatten(1).float().cpu()  # (n, K·D_llm)
                 for name, frames in (("train", train), ("test", test))}
    rows = {"train": train.rows, "test": test.rows}
    mean, std = feats["train"].mean(0), feats["train"].std(0) + 1e-6
    x = {split: (f - mean) / std for split, f in feats.items()}
    out = {}
    for attribute, values in APPEARANCE.items():
        y = {split: torch.tensor([values.index(r[attribute]) for r in rows[split]]) for split in rows}
        probe = torch.nn.Linear(x["train"].shape[1], len(values))
        torch.nn.init.zeros_(probe.weight), torch.nn.init.zeros_(probe.bias)  # the same start on every run
        opt = torch.optim.Adam(probe.parameters(), lr=1e-2, weight_decay=1e-4)
        order = rng(seed, 0, "readout")
        for _ in range(steps):
            pick = torch.randint(len(y["train"]), (256,), generator=order)
            opt.zero_grad()
            F.cross_entropy(probe(x["train"][pick]), y["train"][pick]).backward()
            opt.step()
        with torch.no_grad():
            out[attribute] = round((probe(x["test"]).argmax(1) == y["test"]).float().mean().item(), 4)
    return out


CAPTION_FACTS = {**APPEARANCE, "direction": MOTION["direction"], "speed": tuple(ADVERBS.values())}


def caption_accuracy(model, tokenizer, eps: Episodes, subtitles: bool, device, limit: int = 100) -> dict[str, float]:
    """Stage 2's task on held-out episodes: the caption the model writes (greedy) cut into its clips' captions, and
    per fact (shape, colour, size, direction, speed), the share of the episode's clips whose caption names it
    right. With ``subtitles`` the prompt carries them; a caption that names a fact the narration says can copy it."""
    rows = sorted(eps.rows, key=lambda r: (r["episode"], r["step"]))
    clips = {}
    for r in rows:
        clips.setdefault(r["episode"], []).append(r)
    episodes = eps.episodes[:limit]
    prompts = []
    for e in episodes:
        texts = eps.subtitles[e["episode"]]
        texts = texts if subtitles else [None] * len(texts)
        prompts.append((interleaved_prompt(texts, CAPTION_INSTRUCTION), eps.tokens[eps.position[e["episode"]]]))
    with evaluating(model):
        said = [s for start in range(0, len(prompts), 25)
                for s in generate(model, tokenizer, prompts[start:start + 25], device, 1.0, max_new_tokens=72)]
    hits = {fact: [] for fact in CAPTION_FACTS}
    for e, text in zip(episodes, said):
        parts = [p.split() for p in text.split(CAPTION_JOIN.strip())]
        for step, clip in enumerate(clips[e["episode"]]):
            words = set(parts[step]) if step < len(parts) else set()
            for fact, values in CAPTION_FACTS.items():
                truth = ADVERBS[clip["speed"]] if fact == "speed" else clip[fact]
                hits[fact].append(words & set(values) == {truth})
    return {fact: round(sum(h) / len(h), 4) for fact, h in hits.items()}


def answer_questions(model, tokenizer, eps: Episodes, questions: list[dict], subtitles: bool, device,
                     penalty: float) -> dict[str, list[bool]]:
    """Whether each question is answered right, per way: open-ended and multiple choice by generation (inference
    template), multiple choice by ranking the option texts (training string)."""
    prompts = {way: [] for way in WAYS}
    for qa in questions:
        texts, tokens = eps.subtitles[qa["episode"]], eps.tokens[eps.position[qa["episode"]]]
        texts = texts if subtitles else [None] * len(texts)
        prompts["open"].append((*question_prompt(texts, qa, multiple_choice=False, inference=True), tokens))
        prompts["mcq_generation"].append((*question_prompt(texts, qa, multiple_choice=True, inference=True), tokens))
        training = question_prompt(texts, qa, multiple_choice=False)[0]
        prompts["mcq_ranking"] += [(training, tokens, option) for option in qa["options"]]
    said = {way: generate(model, tokenizer, [(p, t) for p, _, t in prompts[way]], device, penalty)
            for way in ("open", "mcq_generation")}
    losses = answer_losses(model, tokenizer, prompts["mcq_ranking"], device).view(len(questions), -1)
    return {"open": [s == answer for s, (_, answer, _) in zip(said["open"], prompts["open"])],
            "mcq_generation": [s[:1] == index for s, (_, index, _) in zip(said["mcq_generation"],
                                                                          prompts["mcq_generation"])],
            "mcq_ranking": [pick == qa["answer_index"] for pick, qa in zip(losses.argmin(1).tolist(), questions)]}


def evaluate(model, tokenizer, eps: Episodes, cfg, device, batch_size: int = 40) -> dict:
    """Accuracy per way of answering, question kind and prompt (``_subs``: with the subtitles, ``_nosubs``: without
    them), on the first ``cfg.eval_limit`` questions (all when None)."""
    questions = eps.qa[: cfg.eval_limit] if cfg.eval_limit else eps.qa
    out = {}
    with evaluating(model):
        for subtitles, suffix in ((True, "subs"), (False, "nosubs")):
            right = {way: [] for way in WAYS}
            for start in range(0, len(questions), batch_size):
                chunk = questions[start:start + batch_size]
                for way, hits in answer_questions(model, tokenizer, eps, chunk, subtitles, device,
                                                  cfg.repetition_penalty).items():
                    right[way] += hits
            for way in WAYS:
                for kind in (*QUESTION_KINDS, *sorted({qa["kind"] for qa in questions} - set(QUESTION_KINDS))):
                    hits = [h for h, qa in zip(right[way], questions) if qa["kind"] == kind]
                    if hits:
                        out[f"{way}_{kind}_{suffix}"] = round(sum(hits) / len(hits), 4)
    return out
