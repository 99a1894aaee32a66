"""Subtitle files: WebVTT (.vtt) and SubRip (.srt) tracks read into timed cues, with webvtt-py.

A cue is (start, end, text) in seconds; line breaks inside a cue become spaces. Cue times are read to the
millisecond. A file that is missing, of another kind or malformed raises ``SubtitleError`` naming the file, and so
does a cue webvtt-py would silently drop (a timing line it cannot parse: the line number and the line are named) or
one that ends before it starts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import webvtt

from ..engine.errors import DataError

TIMING = re.compile(r"^\s*(?:\d+:)?\d{1,2}:\d{2}[.,]\d{3}\s+-->\s+(?:\d+:)?\d{1,2}:\d{2}[.,]\d{3}")  # VTT and SRT


class SubtitleError(DataError):
    """A subtitle file that is missing, of an unknown kind, or malformed."""


@dataclass(frozen=True)
class Cue:
    start: float  # seconds
    end: float
    text: str


def read_subtitles(path: str | Path) -> list[Cue]:
    """A WebVTT (.vtt) or SubRip (.srt) file -> its cues in file order, line breaks inside a cue made spaces."""
    path = Path(path)
    readers = {".vtt": webvtt.read, ".srt": webvtt.from_srt}
    if path.suffix.lower() not in readers:
        raise SubtitleError(f"{path}: unknown subtitle kind {path.suffix!r}; expected one of {', '.join(readers)}")
    if not path.is_file():
        raise SubtitleError(f"{path}: no such file")
    try:
        captions = readers[path.suffix.lower()](str(path))
    except Exception as err:  # webvtt-py raises its own MalformedFileError, and ValueError on bad timestamps
        raise SubtitleError(f"{path}: not a valid {path.suffix[1:].upper()} file ({err})") from err
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        if "-->" in line and not TIMING.match(line):  # webvtt-py skips such a cue without a word
            raise SubtitleError(f"{path}: line {number}: malformed cue timing {line.strip()!r}; expected "
                                f"HH:MM:SS.mmm --> HH:MM:SS.mmm")
    cues = [Cue(c.start_time.in_milliseconds() / 1000, c.end_time.in_milliseconds() / 1000,
                " ".join(c.text.split("\n"))) for c in captions]
    for cue in cues:
        if cue.end < cue.start:
            raise SubtitleError(f"{path}: the cue {cue.text!r} ends ({cue.end} s) before it starts ({cue.start} s)")
    return cues
