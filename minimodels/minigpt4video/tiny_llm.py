"""Teaching the tiny LLM the world's language, and to read subtitles, before MiniGPT4-Video freezes it.

MiniGPT4-Video starts from a chat LLM (Llama-2-7B-chat or Mistral-7B-Instruct) that already speaks English, answers
inside ``[INST] … [/INST]`` and looks facts up in the text it is given. Our tiny Llama starts from nothing, so
experiment ``minigpt4video-tiny-llm`` trains all of its weights, as a plain causal language model, on

- narration and captions, the world's sentences, and
- questions asked in the video prompt's own layout with the frames left out (``text_question``):
  ``[INST] <Img><Img><Cap>we need five spoons of salt … \nhow many spoons of salt do we need?[/INST] five``,
  open-ended, or multiple choice one time in three.

The text comes from freshly generated episodes (``data.episodes.make_episode``, no rendering, on a random stream of
its own): a chat LLM has read far more text than our 600 training episodes, and looking up has to be learned, not
memorised. Reported: held-out loss per text kind, and reading accuracy per question kind on the test episodes' text
prompts, open-ended and multiple choice (greedy, chance 0.2; frames and both questions cannot be answered from
text, so they stay near chance or 0.5 when two shapes are said).

What the tiny LLM reads, and what it does not (seed 0, 2,000 steps, 3 min on 2 cores): the spoon count of the named
ingredient 0.58 open-ended: it answers with a count that was said, but only about half the time the named
ingredient's (an episode says two counts). Binding the count to the name behind it ("five spoons of *salt*") and
the answer to its option number ("option 2: five") are look-ups in the awkward direction for a 2-layer causal model;
at this size and budget it does not learn them, so multiple choice stays at chance. Two other recipes were tried
first and read counts at chance: frames written out as words in the prompts, and loss on the answers only.

The shipped checkpoint (``data_small/checkpoints/minigpt4video-tiny-llm``) is what MiniGPT4-Video loads, freezes,
and adapts with LoRA.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from safetensors.torch import load_model

from ..data.build import WorldSpec
from ..data.dataset import load_table
from ..data.episodes import make_episode
from ..data.subtitles import Cue
from ..engine.errors import CheckpointError
from ..engine.paths import DATA_DIR
from ..engine.results import ExperimentResult
from ..engine.rng import py_rng, seed_everything
from ..engine.train import TrainConfig, pick_device, train
from ..eval.loop import batched, evaluating
from ..nn.text import IGNORE, load_tokenizer
from .episodes import question_prompt
from .model import LLMConfig
from .prompt import IMAGE
from .sampling import sample_with_subtitles

CHECKPOINT = DATA_DIR / "checkpoints" / "minigpt4video-tiny-llm"


def text_question(episode: dict, qa: dict, num_frames: int, multiple_choice: bool, max_words: float) -> tuple[str, str]:
    """The video prompt of one question with its frames left out -> (prompt, answer): the subtitles sit where the
    video model will see them, between the ``<Img>`` markers of the sampled frames."""
    cues = [Cue(c["start"], c["end"], c["text"]) for c in episode["cues"]]
    _, texts = sample_with_subtitles(episode["steps"] * WorldSpec.frames, episode["fps"], num_frames, cues, max_words)
    prompt, answer = question_prompt(texts, qa, multiple_choice)
    return prompt.replace(IMAGE, ""), answer


def generated_texts(episodes: int, seed: int, num_frames: int, max_words: float) -> list[str]:
    """Text of freshly generated episodes: per episode one narration, one caption, and its six questions (multiple
    choice one time in three)."""
    rng = py_rng(seed, 0, "llm-text")
    texts = []
    for i in range(episodes):
        ep = make_episode(rng, rng, i, WorldSpec.steps, WorldSpec.frames)  # one stream for all
        clip = rng.choice(ep["clips"])
        texts += [clip["utterance"], clip["caption"]]
        for qa in ep["qa"]:
            texts.append(" ".join(text_question(ep["episode"], qa, num_frames, rng.random() < 1 / 3, max_words)))
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
            "question": [f"{p} {a}" for p, a, _ in reading_prompts(split, multiple_choice=False)]}


def reading_prompts(split: str, multiple_choice: bool, num_frames: int = 8,
                    max_words: float = 60) -> list[tuple[str, str, str]]:
    """[(text prompt, answer, question kind)] for every question of a split."""
    episodes = {e["episode"]: e for e in load_table("episodes", split).to_list()}
    out = []
    for qa in load_table("qa", split).to_list():
        prompt, answer = text_question(episodes[qa["episode"]], qa, num_frames, multiple_choice, max_words)
        out.append((prompt, answer, qa["kind"]))
    return out


def heldout_loss(model, tokenizer, texts: dict[str, list[str]], length: int, batch_size: int = 200) -> dict:
    """Mean token loss per kind of held-out text (the mean of the batches' means)."""
    device = next(model.parameters()).device
    out = {}
    with evaluating(model):
        for kind, items in texts.items():
            ids, mask, labels = lm_tensors(tokenizer, items, length)
            losses = batched(lambda rows: model(input_ids=ids[rows].to(device), attention_mask=mask[rows].to(device),
                                                labels=labels[rows].to(device)).loss.reshape(1), len(ids), batch_size)
            out[f"loss_{kind}"] = round(losses.mean().item(), 4)
    return out


def reading_accuracy(model, tokenizer, prompts: list[tuple[str, str, str]]) -> dict[str, float]:
    """Greedy answer == the answer word (or option number), per question kind."""
    device = next(model.parameters()).device
    hits: dict[str, list[bool]] = {}
    with evaluating(model):
        for prompt, answer, kind in prompts:
            ids = torch.tensor([[tokenizer.bos_token_id, *tokenizer(prompt, add_special_tokens=False)["input_ids"]]])
            out = model.generate(ids.to(device), max_new_tokens=3, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
            said = tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip()
            hits.setdefault(kind, []).append(said == answer)
    return {kind: round(sum(h) / len(h), 4) for kind, h in sorted(hits.items())}


def load_tiny_llm(cfg: LLMConfig, folder=CHECKPOINT):
    """The trained tiny LLM (a transformers model); a missing checkpoint names the command that makes it."""
    path = folder / "model.safetensors"
    if not path.is_file():
        raise CheckpointError(f"no tiny LLM at {folder}; make it with: "
                              f"python -m minimodels run minigpt4video-tiny-llm --out {folder}")
    model = cfg.build()
    load_model(model, str(path))
    return model


@dataclass
class TinyLLMConfig:
    model: LLMConfig = field(default_factory=LLMConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(steps=2000, batch_size=64, lr=2e-3, warmup=50))
    episodes: int = 20_000  # freshly generated episodes of text (8 texts each)
    num_frames: int = 8  # <Img> markers per question, as the video model samples frames
    max_subtitle_words: int = 60
    max_length: int = 128  # tokens per text, with <s> and </s> (a multiple-choice question: about 100)
    eval_questions: int = 300  # held-out questions read per format (of 600)


def run(cfg: TinyLLMConfig, seed: int = 0, out_dir=None) -> ExperimentResult:
    seed_everything(seed)
    device = pick_device()
    tokenizer = load_tokenizer()
    texts = generated_texts(cfg.episodes, seed, cfg.num_frames, cfg.max_subtitle_words)
    ids, mask, labels = lm_tensors(tokenizer, texts, cfg.max_length)
    model = cfg.model.build().to(device)
    held_out = heldout_texts("test")
    untrained = heldout_loss(model, tokenizer, held_out, cfg.max_length)

    def loss_fn(model, idx, step):
        return model(input_ids=ids[idx].to(device), attention_mask=mask[idx].to(device),
                     labels=labels[idx].to(device)).loss, {}

    history = train(model, loss_fn, len(ids), cfg.train, seed=seed, out_dir=out_dir, desc="minigpt4video-tiny-llm")
    metrics = heldout_loss(model, tokenizer, held_out, cfg.max_length)
    chance = dict(untrained)  # an untrained LLM guesses every token uniformly: loss ≈ ln(vocabulary)
    for multiple_choice in (False, True):
        prompts = reading_prompts("test", multiple_choice, cfg.num_frames, cfg.max_subtitle_words)
        for kind, acc in reading_accuracy(model, tokenizer, prompts[: cfg.eval_questions]).items():
            name = f"read_{'mcq' if multiple_choice else 'open'}_{kind}"
            metrics[name], chance[name] = acc, 0.2  # five options, or five possible answer words
    metrics["final_loss"] = round(history.final_loss, 4)
    return ExperimentResult(metrics, chance, headline=[*untrained, "read_open_subtitles"], history={"train": history})
