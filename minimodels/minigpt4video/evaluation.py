"""How MiniGPT4-Video is scored (arXiv 2404.03413, §4; official ``video_datasets.py``, ``eval_utils.py``): the held-out
episodes' questions, per kind (frames / subtitles / both / many_frames), each with and without the subtitles in the
prompt (``_subs`` / ``_nosubs``: the same trained model, as the paper's TVQA rows), three ways (``episodes.py``):
open-ended exact match and TVQA-style generation of the option's number, both in the code's inference template, and
ranking the five option texts by their answer loss (the code's ``multi_select``). And ``describe_*``: how often
stage 1's description of a single test frame names its shape, colour and size — what reaches the LLM from one frame.
"""

from __future__ import annotations

import torch

from ..data.dataset import clip_tensors, load_table
from ..data.world import APPEARANCE
from ..eval.loop import evaluating
from ..nn.text import mean_answer_loss
from .prompt import assemble, collate
from .training import Episodes, frozen_tokens, prompt_batch
from .wording import image_prompt, question_prompt

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


def description_accuracy(model, tokenizer, split: str = "test", limit: int = 200, device="cpu") -> dict[str, float]:
    """What reaches the LLM from one frame: the description of the first frame of each clip, asked with stage 1's own
    prompt, scored per attribute (is the clip's shape, colour, size among the words said?)."""
    rows = load_table("clips", split).to_list()[:limit]
    tokens = frozen_tokens(model, clip_tensors(split, model.cfg.vision.image_size)["video"][:limit, :1])
    with evaluating(model):
        said = [generate(model, tokenizer, [(image_prompt(), tokens[i]) for i in range(start, min(start + 50, limit))],
                         device, 1.0, max_new_tokens=6) for start in range(0, limit, 50)]
    said = [s.split() for chunk in said for s in chunk]
    return {a: round(sum(r[a] in words for r, words in zip(rows, said)) / len(rows), 4)
            for a in APPEARANCE}


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
