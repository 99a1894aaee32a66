"""A reader of the course's prose: does every sentence agree with the outputs beside it?

``check_notebook(path)`` reads every markdown cell of a notebook (and the comments of its code cells) and returns a
``Finding`` for each place a student could not check against what the notebook prints:

- ``number``: a decimal number or a percentage that appears in no output of the notebook, in none of its code (a
  typed setting), in no paper table (the papers' ``PAPER`` tables) and, with two decimals or more, in no
  ``results/`` file (rounded as the prose rounds it);
- ``duration``: a run time typed into the prose ("about a minute", "40 s"): times differ between machines, so a
  notebook prints its own (``ALLOWED`` lists durations of the data itself, such as a subtitle cue's length);
- ``outside``: a phrase that points outside the course ("the issue", "the claim asked", "not verified");
- ``notebook``: a reference to a notebook that does not exist, a number quoted from another notebook that it does
  not print, or "the course's last notebook" anywhere but in the last one;
- ``universal``: "whenever" or "on every seed" typed as prose: such a claim is computed from the per-seed numbers
  (a cell that writes the sentence) or not made;
- ``term``: a name a student meets without being told what it is (``GLOSSARY``: the first mention in a notebook
  comes with its explanation);
- ``shape``: a shape in a code comment, ``# (8, 16, 64)``, that the cell's own output contradicts;
- ``seeds``: seeds named in prose that no results file and no output of the notebook holds.

``check_readme`` applies ``number``-from-notebook and ``duration`` checks to README.md: a number said to be what a
notebook measures must be printed by that notebook; a time must come from ``results/timings.json``.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"


@dataclass(frozen=True)
class Finding:
    where: str
    rule: str
    text: str

    def __str__(self) -> str:
        return f"{self.where}: [{self.rule}] {self.text}"


# A decimal number or a percentage, as prose writes them ("0.84", "63.6", "35 %").
NUMBER = re.compile(r"(?<![\w.·^/\-])(\d+\.\d+|\d+(?=\s?%))(\s?%)?")
# what is not a quoted number: a section, an arXiv id, a link, a version
CITATION = re.compile(r"§\s?[\d.]+|arXiv:? ?\d{4}\.\d{4,5}|\(https?://[^)]*\)|\bv?\d+\.\d+\.\d+\b")
DURATION = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s?(s|sec|seconds?|min|minutes?|h|hours?)\b"
                      r"|\b(?:a|one|two|three|four|five|ten|half a|a few|under a|about a)\s+"
                      r"(?:minute|minutes|hour|hours)\b")
OUTSIDE = re.compile(r"\bthe issue\b|\bissue \d+|\bas (?:was )?asked\b|\bclaim asked\b|\bthe brief\b"
                     r"|\b(?:you|someone|the user|a reviewer) asked for\b|\bnot verified\b"
                     r"|\bwhat (?:someone|you) asked\b",
                     re.I)
NOTEBOOK_REF = re.compile(r"\bnotebooks? \*{0,2}(\d\d)\b")
UNIVERSAL = re.compile(r"\bwhenever\b|\bon every seed\b|\bevery seed\b", re.I)
LAST = re.compile(r"\b(?:the course's|this course's) last notebook\b|\bthe last notebook of the course\b", re.I)
SEEDS = re.compile(r"\bseeds? (\d+(?:\s*(?:,|and|to|–|-)\s*\d+)+)")
SHAPE_COMMENT = re.compile(r"#.*?\((\d+(?:,\s*\d+)+)\)")
SHAPE_OUTPUT = re.compile(r"\((\d+(?:,\s*\d+)+)\)|torch\.Size\(\[(\d+(?:,\s*\d+)+)\]\)")

# term -> what its first mention in a notebook must come with (any one of these words, in the same cell)
GLOSSARY = {
    "CMD": ("Condensed Movies",),
    "WebVid": ("web videos", "alt-text", "stock"),
    "FLIP": ("drop", "dropping"),
    "CoCa": ("Contrastive Captioner", "image-text model", "captioner"),
    "data2vec": ("self-distillation", "layer norm", "instance norm", "per-token", "per-clip"),
    "VideoGLUE": ("benchmark", "frozen"),
    "vocab_size": ("embedding rows", "rows of the embedding", "tokens the tokenizer"),
}

# (notebook prefix, snippet) -> why the snippet is fine although a rule would flag it
ALLOWED: dict[tuple[str, str], str] = {
    ("00", "a step lasts 8 frames at 4 frames per second, so 2 s"): "a step's length in the data, not a run time",
    ("05", "8 frames at 4 fps, so 8 s in all"): "an episode's length in the data, not a run time",
    ("03", "random span of 50–75 % of the frames"): "BEVT's temporal span (its code's MaskedPositionGenerate)",
}


def _cells(nb) -> list[dict]:
    return nb["cells"]


def _text(cell) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def outputs_text(nb) -> str:
    """Everything the notebook printed or displayed as text (stdout, plain text and Markdown outputs). Not stderr:
    there go the progress bars, whose step counters and rates would vouch for almost any whole number."""
    parts = []
    for cell in _cells(nb):
        for out in cell.get("outputs", []):
            if "text" in out and out.get("name") != "stderr":
                parts.append("".join(out["text"]))
            data = out.get("data", {})
            for kind in ("text/plain", "text/markdown"):
                if kind in data:
                    parts.append("".join(data[kind]))
    return "\n".join(parts)


def code_text(nb) -> str:
    return "\n".join(_text(c) for c in _cells(nb) if c["cell_type"] == "code")


def numbers_in(text: str) -> set[float]:
    """Every number in ``text``, as floats (thousands separators dropped)."""
    return {float(m.replace(",", "")) for m in re.findall(r"\d[\d,]*\.?\d*(?:e-?\d+)?", text)
            if re.fullmatch(r"\d{1,3}(,\d{3})*(\.\d+)?|\d+\.?\d*(e-?\d+)?", m)}


@functools.cache
def results_numbers() -> tuple[float, ...]:
    found: list[float] = []

    def walk(x):
        if isinstance(x, bool):
            return
        if isinstance(x, (int, float)):
            found.append(float(x))
        elif isinstance(x, dict):
            for k, v in x.items():
                walk(v)
                try:
                    found.append(float(k))
                except ValueError:
                    pass
        elif isinstance(x, list):
            for v in x:
                walk(v)
        elif isinstance(x, str):
            found.extend(numbers_in(x))

    for path in sorted((REPO / "results").rglob("*.json")):
        walk(json.loads(path.read_text()))
    return tuple(found)


@functools.cache
def paper_numbers() -> frozenset[float]:
    """The numbers of the papers' tables, as the packages keep them (``minimodels.<paper>.paper.PAPER``)."""
    found: set[float] = set()
    for paper in ("videoprism", "mvgpt", "minigpt4video"):
        module = __import__(f"minimodels.{paper}.paper", fromlist=["PAPER"])
        found |= numbers_in(json.dumps(module.PAPER))
    return frozenset(found)


def _decimals(text: str) -> int:
    return len(text.split(".")[1]) if "." in text else 0


def _known(value: float, text: str, percent: bool, printed: set[float]) -> bool:
    """Is the prose number ``text`` (``value``; a percentage when ``percent``) printed or typed in the notebook, a
    paper's, or (two decimals or more) a results file's number rounded as the prose rounds it?"""
    if value in printed or value in paper_numbers():
        return True
    if percent:
        return round(value / 100, 6) in {round(x, 6) for x in printed}
    d = _decimals(text)
    return d >= 2 and any(round(x, d) == value for x in results_numbers())


def _allowed(prefix: str, snippet: str) -> bool:
    return any(p == prefix and s in snippet for (p, s) in ALLOWED)


def _sentence(text: str, start: int, end: int) -> str:
    left = max(text.rfind(". ", 0, start), text.rfind("\n\n", 0, start))
    right = min([i for i in (text.find(". ", end), text.find("\n\n", end)) if i >= 0] or [len(text)])
    return text[left + 1:right + 1].strip()


@functools.cache
def _notebook(prefix: str):
    paths = sorted(NOTEBOOKS.glob(f"{prefix}_*.ipynb"))
    return json.loads(paths[0].read_text()) if paths else None


def _strip_html_images(text: str) -> str:
    return re.sub(r"data:image/[^)\"']+", "", text)


def check_cells(prefix: str, nb, where_prefix: str | None = None) -> list[Finding]:
    """Every rule on the notebook ``nb`` (its number ``prefix``, e.g. "03")."""
    where_prefix = where_prefix or f"notebook {prefix}"
    printed = numbers_in(outputs_text(nb)) | numbers_in(code_text(nb))
    out_text = outputs_text(nb)
    findings: list[Finding] = []
    last = max(p.name[:2] for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    markdown = [(i, CITATION.sub(" ", _strip_html_images(_text(c)))) for i, c in enumerate(_cells(nb))
                if c["cell_type"] == "markdown"]
    for i, text in markdown:
        where = f"{where_prefix}, cell {i}"
        for m in NUMBER.finditer(text):
            value, percent = float(m.group(1)), bool(m.group(2)) or text[m.end(1):m.end(1) + 2].strip() == "%"
            snippet = _sentence(text, m.start(), m.end())
            if not _known(value, m.group(1), percent, printed) and not _allowed(prefix, snippet):
                findings.append(Finding(where, "number", f"{m.group(0).strip()} in: {snippet}"))
        for m in DURATION.finditer(text):
            snippet = _sentence(text, m.start(), m.end())
            if not _allowed(prefix, snippet):
                findings.append(Finding(where, "duration", f"{m.group(0)} in: {snippet}"))
        for m in OUTSIDE.finditer(text):
            findings.append(Finding(where, "outside", _sentence(text, m.start(), m.end())))
        for m in UNIVERSAL.finditer(text):
            snippet = _sentence(text, m.start(), m.end())
            if not _allowed(prefix, snippet):
                findings.append(Finding(where, "universal", snippet))
        if LAST.search(text) and prefix != last:
            findings.append(Finding(where, "notebook", f"'the last notebook' in notebook {prefix}, not {last}"))
        for m in NOTEBOOK_REF.finditer(text):
            other = m.group(1)
            if _notebook(other) is None:
                findings.append(Finding(where, "notebook", f"notebook {other} does not exist"))
                continue
            if other == prefix:
                continue
            sentence = _sentence(text, m.start(), m.end())
            theirs = numbers_in(outputs_text(_notebook(other)))
            for n in NUMBER.finditer(sentence):
                value = float(n.group(1))
                if value not in theirs and value not in printed and not _allowed(prefix, sentence):
                    findings.append(Finding(where, "notebook", f"{n.group(0)} is not printed by notebook {other}: "
                                                               f"{sentence}"))
        for m in SEEDS.finditer(text):
            seeds = {int(s) for s in re.findall(r"\d+", m.group(1))}
            known = {int(x) for x in results_numbers() if x == int(x)} | {int(x) for x in numbers_in(out_text)}
            if not seeds <= known:
                findings.append(Finding(where, "seeds", _sentence(text, m.start(), m.end())))
    seen_terms: set[str] = set()
    for i, text in markdown:
        for term, explanations in GLOSSARY.items():
            if term in seen_terms or not re.search(rf"\b{re.escape(term)}\b", text):
                continue
            seen_terms.add(term)
            if not any(e.lower() in text.lower() for e in explanations):
                findings.append(Finding(f"{where_prefix}, cell {i}", "term",
                                        f"{term} is used without saying what it is (e.g. {explanations[0]!r})"))
    for i, cell in enumerate(_cells(nb)):
        if cell["cell_type"] != "code":
            continue
        shown = {tuple(int(x) for x in re.findall(r"\d+", a or b))
                 for a, b in SHAPE_OUTPUT.findall(outputs_text({"cells": [cell]}))}
        for m in SHAPE_COMMENT.finditer(_text(cell)):
            shape = tuple(int(x) for x in re.findall(r"\d+", m.group(1)))
            same_rank = {s for s in shown if len(s) == len(shape)}
            if same_rank and shape not in same_rank:
                findings.append(Finding(f"{where_prefix}, cell {i}", "shape",
                                        f"comment says {shape}, the output shows {sorted(same_rank)}"))
    return findings


def check_notebook(path: Path) -> list[Finding]:
    return check_cells(path.name[:2], json.loads(path.read_text()))


# README sentences whose durations are settings or lengths of data, not run times: (a words of the sentence, why)
README_SETTINGS = (("timeout", "a time limit the reader sets"), ("RuntimeMaxSec", "a time limit the reader sets"),
                   ("a 30 s clip", "the length of a video"))


def check_readme(path: Path = REPO / "README.md") -> list[Finding]:
    """README.md: numbers it attributes to a notebook are printed there; its run times come from a run."""
    text = path.read_text()
    timings_file = REPO / "results" / "timings.json"  # written by scripts/timings.py; until then no time is quoted
    timings = json.loads(timings_file.read_text()) if timings_file.is_file() else {}
    timed = numbers_in(json.dumps(timings))
    findings = []
    for m in NOTEBOOK_REF.finditer(text):
        other = _notebook(m.group(1))
        sentence = _sentence(text, m.start(), m.end())
        if other is None:
            findings.append(Finding("README.md", "notebook", f"notebook {m.group(1)} does not exist: {sentence}"))
            continue
        if not re.search(r"\b(measures|prints|shows|finds)\b", sentence):
            continue
        theirs = numbers_in(outputs_text(other))
        for n in NUMBER.finditer(sentence):
            if float(n.group(1)) not in theirs:
                findings.append(Finding("README.md", "notebook",
                                        f"{n.group(0)} is not printed by notebook {m.group(1)}: {sentence}"))
    for m in DURATION.finditer(text):
        number = m.group(1)
        line_text = text[text.rfind("\n", 0, m.start()) + 1:text.find("\n", m.end())]
        if any(words in line_text or words in _sentence(text, m.start(), m.end()) for words, _ in README_SETTINGS):
            continue
        if number is None or float(number) not in timed:
            line = text[:m.start()].count("\n") + 1
            findings.append(Finding(f"README.md line {line}", "duration",
                                    f"{m.group(0)}: not in results/timings.json"))
    return findings
