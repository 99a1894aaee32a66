"""Subtitle files: WebVTT (.vtt) and SubRip (.srt) tracks read into timed cues, with webvtt-py.

A cue is (start, end, text) in seconds; line breaks inside a cue become spaces. Cue times are read to the
millisecond. A file that is missing, of another kind or malformed raises ``SubtitleError`` naming the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import webvtt

from ..engine.errors import DataError


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
    return [Cue(c.start_time.in_milliseconds() / 1000, c.end_time.in_milliseconds() / 1000,
                " ".join(c.text.split("\n"))) for c in captions]
