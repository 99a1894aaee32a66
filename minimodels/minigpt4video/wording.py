"""Every string MiniGPT4-Video's prompts are made of, each beside the official file it follows (arXiv 2404.03413;
``github.com/Vision-CAIR/MiniGPT4-video``). ``prompt.py`` splices embeddings into these strings; nothing else in the
package writes prompt text.

The training string (``minigpt4/datasets/datasets/video_datasets.py``; ``<Img>`` and ``<Cap>`` are plain text, not
special tokens; the paper's §3.2 writes ``<Sub>`` where the code writes ``<Cap>``):

    [INST] <Img><ImageHere><Cap>subtitle_1 <Img><ImageHere><Img><ImageHere><Cap>subtitle_3 ... \\n instruction[/INST]

At evaluation the same frames-and-instruction text goes into the conversation template (``CONV_VISION`` of
``minigpt4/conversation/conversation.py``: a literal "<s>", roles "[INST] " and " [/INST]"; the eval script's
``prepare_texts(template='')`` puts one space before the message):

    <s>[INST]  <Img><ImageHere><Cap>sub_1 ... \\ninstruction [/INST]

The tiny tokenizer has no newline token, so "\\n" becomes its one <unk> token (Llama's becomes <0x0A>).
"""

from __future__ import annotations

IMAGE = "<ImageHere>"  # where a frame's projected embeddings go (mini_gpt4_llama_v2.py splits the prompt on it)
IMG = "<Img>"  # opens each frame (video_datasets.py)
IMG_END = "</Img>"  # closes the one image of the image stage (the image datasets' prompts)
CAP = "<Cap>"  # opens a frame's subtitles (video_datasets.py)

# Stage 1, image–text alignment: the image datasets' prompt around one frame, and its instruction.
IMAGE_INSTRUCTION = "describe this image."
# Stage 2, video captioning: the caption datasets' instruction (WebVid, CMD), and how the course joins the captions
# of an episode's clips into the one caption of the video (ours: the world's episodes are captioned clip by clip).
CAPTION_INSTRUCTION = "describe this video."
CAPTION_JOIN = " then "


def interleaved_prompt(subtitles: list[str | None], instruction: str, inference: bool = False) -> str:
    """One ``<Img><ImageHere>`` per sampled frame, followed by ``<Cap>text`` when that frame has subtitles, then the
    instruction: in the training string, or (``inference``) in the evaluation's conversation template."""
    message = "".join(f"{IMG}{IMAGE}" + (f"{CAP}{text}" if text else "") for text in subtitles) + f"\n{instruction}"
    return f"<s>[INST]  {message} [/INST]" if inference else f"[INST] {message}[/INST]"


def image_prompt(instruction: str = IMAGE_INSTRUCTION) -> str:
    """Stage 1's prompt around one frame: ``[INST] <Img><ImageHere></Img> describe this image.[/INST]``."""
    return f"[INST] {IMG}{IMAGE}{IMG_END} {instruction}[/INST]"


def caption_of_video(clip_captions: list[str]) -> str:
    return CAPTION_JOIN.join(clip_captions)


def tvqa_instruction(question: str, options: list[str]) -> str:
    """The TVQA multiple-choice instruction (``TVQAEVAL`` in ``video_datasets.py``), in the tiny tokenizer's lower
    case: the code's string is in capitals, its "\\n" are kept (each one <unk>, like an unseen character)."""
    listed = "".join(f"option {i}: {option} \n\n" for i, option in enumerate(options))
    return (f"{question} \n\n as you watched in this video choose one suitable answer from these mutiple choices \n\n"
            f"{listed}\n your output should be the number of the correct answer from the choices from 0 to 4 inclusive")


def question_prompt(texts: list[str | None], qa: dict, multiple_choice: bool,
                    inference: bool = False) -> tuple[str, str]:
    """-> (the full prompt string, the answer string): the option's number for multiple choice, else the word.
    ``inference``: the evaluation's template, else the training string."""
    if multiple_choice:
        instruction, answer = tvqa_instruction(qa["question"], qa["options"]), str(qa["answer_index"])
    else:
        instruction, answer = qa["question"], qa["answer"]
    return interleaved_prompt(texts, instruction, inference), answer
