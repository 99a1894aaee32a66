"""Teaching the tiny LLM the world's language, and to read, before MiniGPT4-Video freezes it.

MiniGPT4-Video starts from a chat LLM (Llama-2-7B-chat or Mistral-7B-Instruct) that already speaks English, answers
inside ``[INST] … [/INST]`` and looks facts up in the text it is given. Our tiny Llama starts from nothing, so
experiment ``minigpt4video-tiny-llm`` trains all of its weights, as a plain causal language model, in two parts:

1. drills (``drill_texts``): short look-up exercises, an episode's two spoken quantities and a remark naming each
   object's colour and shape, shuffled, then a question about one of them. Every drill is a look-up by name or by
   colour, at a fifth of a full prompt's length;
2. the world's text (``generated_texts``): narration, captions, and every question asked in the video prompt's own
   layout with the frames left out (``text_question``), in the training string or the inference template, open-ended
   or (one time in three) TVQA-style multiple choice:
   ``[INST] <Img><Img><Cap>we need five spoons of salt … \\nhow many spoons of salt do we need?[/INST] five``.

The text comes from freshly generated episodes (``data.episodes.make_episode``, no rendering, on a random stream of
its own): a chat LLM has read far more text than our 600 training episodes, and looking up has to be learned, not
memorised. Reported: held-out loss per text kind, and reading accuracy per question kind on the test episodes' text
prompts: the five option texts ranked by their loss (``read_rank_*``, the code's ``multi_select``), open-ended
generation (``read_open_*``) and the option's number generated from the TVQA prompt (``read_mcq_*``); chance 0.2.

What it reads (seed 0, 2,800 drill steps and 350 on full prompts, about 7 minutes on 2 cores): ranked, the spoon
count of the named ingredient 0.66, the shape of an object of a given colour 0.47 (the remarks name colour and shape
together in about half the episodes), the many-frame questions 0.36. It does not map an answer to its option number
(TVQA-style generation stays at chance): that is a second look-up, through the option list, on top of the first. What
did not work: width 64 (the course's first tiny LLM) read counts at 0.60 and shapes at chance, with or without the
drills, and 4 layers of width 64 did no better; frames written out as words, and loss on the answers only, read
counts at chance.

The shipped checkpoint (``data_small/checkpoints/minigpt4video-tiny-llm``) is what MiniGPT4-Video loads, freezes,
and adapts with LoRA.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..data.build import WorldSpec
from ..data.dataset import load_table
from ..data.episodes import REMARK_LEADS, make_episode
from ..data.subtitles import Cue
from ..engine.checkpoint import load_weights
from ..engine.config import require, whole
from ..engine.device import pick_device
from ..engine.errors import CheckpointError
from ..engine.experiment import NO_FOLDER, RunFolder
from ..engine.paths import DATA_DIR
from ..engine.results import ExperimentResult, rounded
from ..engine.rng import py_rng, seed_everything
from ..engine.train import TrainConfig, train
from ..eval.loop import batched, evaluating
from ..nn.text import IGNORE, load_tokenizer, mean_answer_loss
from .model import LLMConfig
from .sampling import sample_with_subtitles
from .wording import IMAGE, question_prompt

CHECKPOINT = DATA_DIR / "checkpoints" / "minigpt4video-tiny-llm"


def text_question(episode: dict, qa: dict, num_frames: int, multiple_choice: bool, max_words: float,
                  inference: bool = False) -> tuple[str, str]:
    """The video prompt of one question with its frames left out -> (prompt, answer): the subtitles sit where the
    video model will see them, between the ``<Img>`` markers of the sampled frames."""
    cues = [Cue(c["start"], c["end"], c["text"]) for c in episode["cues"]]
    _, texts = sample_with_subtitles(episode["steps"] * WorldSpec.frames, episode["fps"], num_frames, cues, max_words)
    prompt, answer = question_prompt(texts, qa, multiple_choice, inference)
    return prompt.replace(IMAGE, ""), answer


def generated_texts(episodes: int, seed: int, num_frames: int, max_words: float) -> list[str]:
    """Text of freshly generated episodes: per episode one narration, one caption, and its eight questions with their
    answers, each in the training string or the inference template, open-ended or (one time in three) multiple
    choice as the TVQA prompt asks."""
    rng = py_rng(seed, 0, "llm-text")
    texts = []
    for i in range(episodes):
        ep = make_episode(rng, rng, rng, i, WorldSpec.steps, WorldSpec.frames)  # one stream for all
        clip = rng.choice(ep["clips"])
        texts += [clip["utterance"], clip["caption"]]
        for qa in ep["qa"]:
            prompt, answer = text_question(ep["episode"], qa, num_frames, rng.random() < 1 / 3, max_words,
                                           inference=rng.random() < 0.5)
            texts.append(f"{prompt} {answer}")
    return texts


def drill_texts(episodes: int, seed: int) -> list[str]:
    """Short look-up exercises, the curriculum's first part: an episode's two spoken quantities and a remark naming
    each object's colour and shape, shuffled, each after its own ``<Img>``, then a question about one of them
    ("[INST] <Img><Cap>we need five spoons of salt <Img><Cap>look the red circle ... \\nhow many spoons of salt do
    we need?[/INST] five"). A fifth of the full prompts' length, and every one is a look-up by name or colour."""
    rng = py_rng(seed, 1, "llm-text")
    texts = []
    for i in range(episodes):
        ep = make_episode(rng, rng, rng, i, WorldSpec.steps, WorldSpec.frames)
        facts = []
        for ing in ep["episode"]["ingredients"]:
            spoons = "spoon" if ing["count"] == "one" else "spoons"
            facts += [f"we need {ing['count']} {spoons} of {ing['name']} ",
                      f"{rng.choice(REMARK_LEADS)} the {ing['colour']} {ing['shape']} "]
        rng.shuffle(facts)
        qa = rng.choice([q for q in ep["qa"] if q["kind"] in ("frames", "subtitles")])
        prompt, answer = question_prompt(facts, qa, multiple_choice=False, inference=rng.random() < 0.5)
        texts.append(f"{prompt.replace(IMAGE, '')} {answer}")
    return texts


def lm_tensors(tokenizer, texts: list[str], length: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """<s> text </s>, right-padded: ids (N, length), attention mask (N, length), labels (-100 on padding)."""
    rows = [[tokenizer.bos_token_id, *tokenizer(t, add_special_tokens=False)["input_ids"][: length - 2],
             tokenizer.eos_token_id] for t in texts]
    ids = torch.full((len(rows), length), tokenizer.pad_token_id, dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row)
    mask = torch.arange(length)[None] < torch.tensor([len(r) for r in rows])[:, None]
    return ids, mask.long(), ids.masked_fill(~mask, IGNORE)


def heldout_texts(split: str = "test") -> dict[str, list[str]]:
    """{kind: texts} of a split's narration, captions and open-ended questions with their answers."""
    clips = load_table("clips", split).to_list()
    return {"narration": [c["utterance"] for c in clips], "caption": [c["caption"] for c in clips],
            "question": [f"{q['prompt']} {q['answer']}" for q in reading_prompts(split, multiple_choice=False)]}


def reading_prompts(split: str, multiple_choice: bool, num_frames: int = 8, max_words: float = 60,
                    inference: bool = False) -> list[dict]:
    """Every question of a split as text: {"prompt", "answer", "kind", "options", "answer_index"}."""
    episodes = {e["episode"]: e for e in load_table("episodes", split).to_list()}
    out = []
    for qa in load_table("qa", split).to_list():
        prompt, answer = text_question(episodes[qa["episode"]], qa, num_frames, multiple_choice, max_words, inference)
        out.append({"prompt": prompt, "answer": answer, "kind": qa["kind"], "options": qa["options"],
                    "answer_index": qa["answer_index"]})
    return out


def lm_loss(model, ids, mask, labels, rows) -> torch.Tensor:
    """The LLM's mean token loss on the texts ``rows``, cut to the longest of them (the rest is padding)."""
    device = next(model.parameters()).device
    used = int(mask[rows].sum(1).max())
    return model(input_ids=ids[rows, :used].to(device), attention_mask=mask[rows, :used].to(device),
                 labels=labels[rows, :used].to(device)).loss


def heldout_loss(model, tokenizer, texts: dict[str, list[str]], length: int, batch_size: int = 200) -> dict:
    """Mean token loss per kind of held-out text (the mean of the batches' means)."""
    out = {}
    with evaluating(model):
        for kind, items in texts.items():
            tensors = lm_tensors(tokenizer, items, length)
            losses = batched(lambda rows: lm_loss(model, *tensors, rows).reshape(1), len(items), batch_size)
            out[f"loss_{kind}"] = round(losses.mean().item(), 4)
    return out


def _by_kind(hits: list[bool], questions: list[dict]) -> dict[str, float]:
    kinds = sorted({q["kind"] for q in questions})
    return {k: round(sum(h for h, q in zip(hits, questions) if q["kind"] == k)
                     / sum(q["kind"] == k for q in questions), 4) for k in kinds}


@torch.no_grad()
def reading_accuracy(model, tokenizer, questions: list[dict], batch_size: int = 50) -> dict[str, float]:
    """Greedy answer == the answer word (or option number), per question kind."""
    device = next(model.parameters()).device
    hits = []
    tokenizer.padding_side = "left"  # generation continues each row from its own last token
    with evaluating(model):
        for start in range(0, len(questions), batch_size):
            chunk = questions[start:start + batch_size]
            batch = tokenizer([tokenizer.bos_token + q["prompt"] for q in chunk], add_special_tokens=False,
                              return_tensors="pt", padding=True).to(device)
            out = model.generate(**batch, max_new_tokens=3, do_sample=False, pad_token_id=tokenizer.pad_token_id,
                                 eos_token_id=tokenizer.eos_token_id)
            said = tokenizer.batch_decode(out[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)
            hits += [s.strip() == q["answer"] for s, q in zip(said, chunk)]
    tokenizer.padding_side = "right"
    return _by_kind(hits, questions)


@torch.no_grad()
def ranking_accuracy(model, tokenizer, questions: list[dict], length: int, batch_size: int = 40) -> dict[str, float]:
    """The option text with the lowest mean answer loss after the prompt == the answer, per question kind (the
    code's ``multi_select``, text only)."""
    device = next(model.parameters()).device
    picks = []
    with evaluating(model):
        for start in range(0, len(questions), batch_size):
            chunk = questions[start:start + batch_size]
            prompts = [len(tokenizer(q["prompt"], add_special_tokens=False)["input_ids"]) + 1 for q in chunk]
            ids, mask, labels = lm_tensors(tokenizer, [f"{q['prompt']} {o}" for q in chunk for o in q["options"]],
                                           length)
            labels[torch.arange(length)[None] < torch.tensor(prompts).repeat_interleave(5)[:, None]] = IGNORE
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
            picks += mean_answer_loss(logits, labels.to(device)).view(len(chunk), 5).argmin(1).tolist()
    return _by_kind([p == q["answer_index"] for p, q in zip(picks, questions)], questions)


def load_tiny_llm(cfg: LLMConfig, folder=CHECKPOINT):
    """The trained tiny LLM (a transformers model); a missing checkpoint names the command that makes it."""
    path = folder / "model.safetensors"
    if not path.is_file():
        raise CheckpointError(f"no tiny LLM at {folder}; make it with: "
                              f"python -m minimodels run minigpt4video-tiny-llm --out {folder}")
    model = cfg.build()
    load_weights(model, path)
    return model


@dataclass
class TinyLLMConfig:
    model: LLMConfig = field(default_factory=LLMConfig)
    drills: TrainConfig = field(default_factory=lambda: TrainConfig(steps=2800, batch_size=64, lr=1e-3, warmup=50))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(steps=350, batch_size=64, lr=1e-3, warmup=50))
    episodes: int = 20_000  # freshly generated episodes of text (10 texts each)
    num_frames: int = 8  # <Img> markers per question, as the video model samples frames
    max_subtitle_words: int = 60
    max_length: int = 256  # tokens per text, with <s> and </s> (a TVQA multiple-choice question: about 230)
    eval_questions: int = 400  # held-out questions read per way (of 800)

    def __post_init__(self):
        require(self, {
            "episodes": (whole(self.episodes), "a whole number >= 1"),
            "num_frames": (whole(self.num_frames), "a whole number >= 1"),
            "max_subtitle_words": (whole(self.max_subtitle_words, 0), "a whole number >= 0 (0: no subtitles)"),
            "max_length": (whole(self.max_length, 2), "a whole number of tokens >= 2"),
            "eval_questions": (whole(self.eval_questions), "a whole number >= 1")})


def run(cfg: TinyLLMConfig, seed: int = 0, folder: RunFolder = NO_FOLDER) -> ExperimentResult:
    seed_everything(seed)
    device = pick_device()
    tokenizer = load_tokenizer()
    texts = generated_texts(cfg.episodes, seed, cfg.num_frames, cfg.max_subtitle_words)
    model = cfg.model.build().to(device)
    held_out = heldout_texts("test")
    untrained = heldout_loss(model, tokenizer, held_out, cfg.max_length)

    def loss_on(tensors):
        return lambda model, batch, step: (lm_loss(model, *tensors, batch.idx), {})

    drills = lm_tensors(tokenizer, drill_texts(cfg.episodes, seed), cfg.max_length)
    history = {"drills": train(model, loss_on(drills), len(drills[0]), cfg.drills, seed=seed, log=folder.log,
                               desc="drills")}
    full = lm_tensors(tokenizer, texts, cfg.max_length)
    history["train"] = train(model, loss_on(full), len(full[0]), cfg.train, seed=seed, checkpoints=folder.path,
                             resume=folder.resume, log=folder.log, desc="minigpt4video-tiny-llm")
    metrics = heldout_loss(model, tokenizer, held_out, cfg.max_length)
    chance = dict(untrained)  # an untrained LLM guesses every token uniformly: loss ≈ ln(vocabulary)
    read = {"rank": ranking_accuracy(model, tokenizer, reading_prompts("test", False)[: cfg.eval_questions],
                                     cfg.max_length),
            "open": reading_accuracy(model, tokenizer, reading_prompts("test", False, inference=True)
                                     [: cfg.eval_questions]),
            "mcq": reading_accuracy(model, tokenizer, reading_prompts("test", True, inference=True)
                                    [: cfg.eval_questions])}
    for way, by_kind in read.items():
        for kind, acc in by_kind.items():
            metrics[f"read_{way}_{kind}"], chance[f"read_{way}_{kind}"] = acc, 0.2  # five options or answer words
    metrics["final_loss"] = rounded(history["train"].final_loss)
    return ExperimentResult(metrics, chance, headline=[*untrained, "read_rank_subtitles", "read_rank_frames"],
                            history=history)
