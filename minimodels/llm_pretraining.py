"""Teaching the tiny LLM the world's language before MiniGPT4-Video freezes it.

MiniGPT4-Video starts from a chat LLM (Llama-2-7B-chat or Mistral-7B-Instruct) that already speaks English and
answers inside ``[INST] … [/INST]``. Our tiny Llama starts from nothing, so experiment ``tiny-llm`` trains all of its
weights, as a plain causal language model, on the text of the world's training split: the narration, the captions,
and the questions with their answers in the chat format (``[INST] question[/INST] answer``). It never sees a frame
and never sees a question together with its episode's narration, so it cannot answer a question about a video; it
only learns the words. Held-out loss per text kind is reported.

The shipped checkpoint (``data_small/checkpoints/tiny-llm``) is what MiniGPT4-Video loads, freezes, and adapts
with LoRA.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from safetensors.torch import load_model

from .bidirectional import IGNORE
from .data.dataset import load_table
from .minigpt4video import LLMConfig
from .paths import DATA_DIR
from .stage1 import load_tokenizer
from .train import TrainConfig, pick_device, seed_everything, train

CHECKPOINT = DATA_DIR / "checkpoints" / "tiny-llm"


def chat(instruction: str, answer: str = "") -> str:
    """The chat format of the official code's training prompt: ``[INST] …[/INST]`` then the answer."""
    return f"[INST] {instruction}[/INST] {answer}".rstrip()


def world_texts(split: str) -> dict[str, list[str]]:
    """{kind: texts} of one split: narration, captions, and questions with answers in the chat format."""
    clips = load_table("clips", split)
    qa = load_table("qa", split)
    return {"narration": list(clips["utterance"]), "caption": list(clips["caption"]),
            "question": [chat(q, a) for q, a in zip(qa["question"], qa["answer"])]}


def lm_tensors(tokenizer, texts: list[str], length: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """<s> text </s>, right-padded: ids (N, length), attention mask (N, length), labels (-100 on padding)."""
    rows = [[tokenizer.bos_token_id, *tokenizer(t, add_special_tokens=False)["input_ids"][: length - 2],
             tokenizer.eos_token_id] for t in texts]
    ids = torch.full((len(rows), length), tokenizer.pad_token_id, dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row)
    mask = torch.arange(length)[None] < torch.tensor([len(r) for r in rows])[:, None]
    return ids, mask.long(), ids.masked_fill(~mask, IGNORE)


@torch.no_grad()
def heldout_loss(model, tokenizer, texts: dict[str, list[str]], length: int, batch_size: int = 200) -> dict:
    model.eval()
    device = next(model.parameters()).device
    out = {}
    for kind, items in texts.items():
        ids, mask, labels = lm_tensors(tokenizer, items, length)
        losses = [model(input_ids=ids[i:i + batch_size].to(device), attention_mask=mask[i:i + batch_size].to(device),
                        labels=labels[i:i + batch_size].to(device)).loss.item()
                  for i in range(0, len(ids), batch_size)]
        out[f"loss_{kind}"] = round(sum(losses) / len(losses), 4)
    model.train()
    return out


def load_tiny_llm(cfg: LLMConfig, folder=CHECKPOINT):
    """The trained tiny LLM (a transformers model); a missing checkpoint names the command that makes it."""
    path = folder / "model.safetensors"
    if not path.is_file():
        raise FileNotFoundError(f"no tiny LLM at {folder}; make it with: "
                                f"python -m minimodels run tiny-llm --out {folder}")
    model = cfg.build()
    load_model(model, str(path))
    return model


@dataclass
class TinyLLMExperimentConfig:
    model: LLMConfig = field(default_factory=LLMConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(steps=600, batch_size=64, lr=2e-3, warmup=30))
    max_length: int = 40  # tokens per text, with <s> and </s>


def run_tiny_llm(cfg: TinyLLMExperimentConfig, seed: int = 0, out_dir=None, config_json: str = "{}") -> dict:
    seed_everything(seed)
    device = pick_device()
    tokenizer = load_tokenizer()
    texts = world_texts("train")
    ids, mask, labels = lm_tensors(tokenizer, [t for items in texts.values() for t in items], cfg.max_length)
    model = cfg.model.build().to(device)
    untrained = heldout_loss(model, tokenizer, world_texts("test"), cfg.max_length)

    def loss_fn(model, idx, step):
        return model(input_ids=ids[idx].to(device), attention_mask=mask[idx].to(device),
                     labels=labels[idx].to(device)).loss, {}

    history = train(model, loss_fn, len(ids), cfg.train, seed=seed, out_dir=out_dir, config_json=config_json,
                    desc="tiny LLM")
    trained = heldout_loss(model, tokenizer, world_texts("test"), cfg.max_length)
    return {**trained, **{f"{k}_untrained": v for k, v in untrained.items()},
            "final_loss": round(history[-1]["loss"], 4), "headline": [(k, f"{k}_untrained") for k in trained],
            "history": history}
