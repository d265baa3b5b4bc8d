"""Where an utterance's media is: a file of its own, or a span of a longer recording.

Two ways to say it:

- a folder and file-name patterns tried in order. A pattern with `{turn}` names one file per utterance
  (`{dialogue_id}_utt{turn}.wav` matches MELD's `dia0_utt3` clips once converted to WAV) and is used whole; a
  pattern without it names one recording per dialogue (`{dialogue_id}.wav`), cut at the utterance's
  `start` / `end` seconds, which must then be given in the data;
- an index file (CSV with a header, or JSONL) with `dialogue_id`, `turn`, `path` and optionally `start`,
  `end`; relative paths are read from the index file's folder.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from instructerc.schema import DataError, Dialogue, Problem, Utterance

AUDIO_PATTERNS = (
    "{dialogue_id}_utt{turn}.wav",
    "{dialogue_id}_{turn}.wav",
    "{dialogue_id}/{turn}.wav",
    "{dialogue_id}.wav",
)
OPENFACE_PATTERNS = tuple(p.removesuffix(".wav") + ".csv" for p in AUDIO_PATTERNS)
INDEX_COLUMNS = ("dialogue_id", "turn", "path")


@dataclass(frozen=True)
class MediaSpan:
    """A file and the span of it (seconds; None = from the start / to the end) that belongs to one utterance."""

    path: Path
    start: float | None = None
    end: float | None = None


class MediaNotFound(LookupError):
    """No media for an utterance; the message says where it was looked for."""


class MediaLocator:
    """Finds the MediaSpan of an utterance from a folder with patterns, or from an index file."""

    def __init__(
        self, directory: str | Path | None = None, patterns: Sequence[str] = (), index: str | Path | None = None
    ):
        if (directory is None) == (index is None):
            raise ValueError("give a media folder or an index file (one of them)")
        self.directory = Path(directory) if directory is not None else None
        if self.directory is not None and not self.directory.is_dir():
            raise FileNotFoundError(f"{self.directory}: media folder not found")
        self.patterns = list(patterns)
        self.index = read_index(index) if index is not None else None

    def locate(self, dialogue: Dialogue, utt: Utterance) -> MediaSpan:
        if self.index is not None:
            found = self.index.get((dialogue.id, utt.turn))
            if found is None:
                raise MediaNotFound(f"dialogue {dialogue.id!r} turn {utt.turn}: not in the index file")
            return found
        assert self.directory is not None
        tried = []
        for pattern in self.patterns:
            path = self.directory / pattern.format(dialogue_id=dialogue.id, turn=utt.turn)
            tried.append(path.name if path.parent == self.directory else str(path.relative_to(self.directory)))
            if not path.is_file():
                continue
            if "{turn}" in pattern:
                return MediaSpan(path)
            if utt.start is None or utt.end is None:
                raise MediaNotFound(
                    f"{path}: a recording of the whole dialogue, but utterance {utt.turn} has no start/end times"
                )
            return MediaSpan(path, utt.start, utt.end)
        raise MediaNotFound(
            f"dialogue {dialogue.id!r} turn {utt.turn}: no file in {self.directory} ({', '.join(tried)})"
        )


def read_index(path: str | Path) -> dict[tuple[str, int], MediaSpan]:
    """(dialogue id, turn) -> MediaSpan from a CSV or JSONL index; every bad row is reported with its line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: index file not found")
    rows = _index_rows(path)
    spans: dict[tuple[str, int], MediaSpan] = {}
    problems: list[Problem] = []
    for line, row in rows:
        missing = [c for c in INDEX_COLUMNS if row.get(c) in (None, "")]
        if missing:
            problems.append(Problem(str(path), line, ", ".join(missing), "missing (expected dialogue_id, turn, path)"))
            continue
        try:
            turn = int(row["turn"])
            start, end = (float(row[k]) if row.get(k) not in (None, "") else None for k in ("start", "end"))
        except (TypeError, ValueError) as err:
            problems.append(Problem(str(path), line, "turn/start/end", f"expected numbers ({err})"))
            continue
        media = Path(str(row["path"]))
        key = (str(row["dialogue_id"]), turn)
        if key in spans:
            problems.append(Problem(str(path), line, "turn", f"duplicate entry for dialogue {key[0]!r} turn {turn}"))
        spans[key] = MediaSpan(media if media.is_absolute() else path.parent / media, start, end)
    if problems:
        raise DataError(problems)
    return spans


def _index_rows(path: Path) -> list[tuple[int, dict]]:
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".jsonl", ".json"):
        rows = []
        for line, raw in enumerate(text.splitlines(), start=1):
            if raw.strip():
                try:
                    rows.append((line, json.loads(raw)))
                except json.JSONDecodeError as err:
                    raise DataError(Problem(str(path), line, None, f"invalid JSON: {err.msg}")) from None
        return rows
    reader = csv.DictReader(text.splitlines())
    missing = [c for c in INDEX_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise DataError(Problem(str(path), 1, None, f"missing columns {', '.join(missing)} in the header"))
    return [(line, row) for line, row in enumerate(reader, start=2)]
