"""Canonical dialogues: the one in-memory and on-disk (JSONL) form that every builder produces.

One JSONL line holds one dialogue:

    {"id": "d1", "split": "train", "metadata": {...},
     "utterances": [{"turn": 0, "speaker": "Ross", "text": "Hi.", "label": "joy", ...}, ...]}

Utterance fields: `turn` (int, unique in its dialogue), `speaker`, `text`, and optionally `label` (closed set),
`labels` (open vocabulary), `rationale`, `clues`, `audio_cue`, `visual_cue`, `other_cue`, `start`, `end`
(seconds) and `metadata`. Unknown fields are errors, so that a typo such as `lable` is caught, not ignored.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from instructerc.io import atomic_write_jsonl

OnError = Literal["raise", "drop"]
CUE_FIELDS = ("audio_cue", "visual_cue", "other_cue")
MAX_LISTED_PROBLEMS = 20


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input, located as precisely as the format allows."""

    source: str
    line: int | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = self.source if self.line is None else f"{self.source}:{self.line}"
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class DataError(ValueError):
    """Raised for bad input data; lists every problem found (up to a limit), each with file, line and field."""

    def __init__(self, problems: list[Problem] | Problem | str, hint: str | None = None):
        if isinstance(problems, str | Problem):
            problems = [problems if isinstance(problems, Problem) else Problem("<input>", None, None, problems)]
        self.problems = list(problems)
        shown = "\n  ".join(str(p) for p in self.problems[:MAX_LISTED_PROBLEMS])
        more = len(self.problems) - MAX_LISTED_PROBLEMS
        tail = f"\n  ... and {more} more" if more > 0 else ""
        noun = "problem" if len(self.problems) == 1 else "problems"
        advice = f"\n{hint}" if hint else ""
        super().__init__(f"{len(self.problems)} {noun} in the input data:\n  {shown}{tail}{advice}")


@dataclass
class Utterance:
    turn: int
    speaker: str
    text: str
    label: str | None = None
    labels: list[str] | None = None
    rationale: str | None = None
    clues: list[str] | None = None
    audio_cue: str | None = None
    visual_cue: str | None = None
    other_cue: str | None = None
    start: float | None = None
    end: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def cues(self) -> dict[str, str]:
        """The cue texts that are present, keyed by kind (audio, visual, other)."""
        return {name.removesuffix("_cue"): getattr(self, name) for name in CUE_FIELDS if getattr(self, name)}

    def to_dict(self) -> dict[str, Any]:
        """Dict form without empty optional fields, so the JSONL stays readable."""
        data = asdict(self)
        return {k: v for k, v in data.items() if v is not None and not (k == "metadata" and not v)}


@dataclass
class Dialogue:
    id: str
    utterances: list[Utterance]
    split: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id}
        if self.split is not None:
            data["split"] = self.split
        if self.metadata:
            data["metadata"] = self.metadata
        data["utterances"] = [u.to_dict() for u in self.utterances]
        return data


_UTTERANCE_FIELDS = {f.name for f in fields(Utterance)}
_DIALOGUE_FIELDS = {f.name for f in fields(Dialogue)}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value)


def validate_utterance(data: Any, where: tuple[str, int | None], prefix: str) -> list[Problem]:
    """Check one utterance dict; returns the problems (empty when valid)."""
    source, line = where
    problems: list[Problem] = []

    def bad(name: str, message: str) -> None:
        problems.append(Problem(source, line, f"{prefix}.{name}" if name else prefix, message))

    if not isinstance(data, dict):
        bad("", f"expected an object, got {type(data).__name__}")
        return problems
    for unknown in sorted(set(data) - _UTTERANCE_FIELDS):
        bad(unknown, f"unknown field (expected one of: {', '.join(sorted(_UTTERANCE_FIELDS))})")
    if not isinstance(data.get("turn"), int) or isinstance(data.get("turn"), bool):
        bad("turn", f"expected an integer turn id, got {data.get('turn')!r}")
    for name in ("speaker", "text"):
        value = data.get(name)
        if not isinstance(value, str):
            bad(name, f"expected a string, got {type(value).__name__}")
        elif not value.strip():
            bad(name, "is empty")
    for name in ("label", "rationale", *CUE_FIELDS):
        value = data.get(name)
        if value is not None and not (isinstance(value, str) and value.strip()):
            bad(name, f"expected a non-empty string or null, got {value!r}")
    for name in ("labels", "clues"):
        value = data.get(name)
        if value is not None and not _check_str_list(value):
            bad(name, f"expected a list of non-empty strings, got {value!r}")
    for name in ("start", "end"):
        value = data.get(name)
        if value is not None and (not _is_number(value) or value < 0):
            bad(name, f"expected a non-negative number of seconds, got {value!r}")
    start, end = data.get("start"), data.get("end")
    if _is_number(start) and _is_number(end) and end < start:
        bad("end", f"ends ({end}) before it starts ({start})")
    if not isinstance(data.get("metadata", {}), dict):
        bad("metadata", "expected an object")
    return problems


def validate_dialogue(data: Any, source: str, line: int | None = None) -> list[Problem]:
    """Check one dialogue dict (as read from JSON); returns every problem found."""
    if not isinstance(data, dict):
        return [Problem(source, line, None, f"expected a JSON object, got {type(data).__name__}")]
    problems: list[Problem] = []
    for unknown in sorted(set(data) - _DIALOGUE_FIELDS):
        problems.append(
            Problem(source, line, unknown, f"unknown field (expected one of: {', '.join(sorted(_DIALOGUE_FIELDS))})")
        )
    if not (isinstance(data.get("id"), str | int) and str(data.get("id")).strip()):
        problems.append(Problem(source, line, "id", f"expected a non-empty dialogue id, got {data.get('id')!r}"))
    if data.get("split") is not None and not isinstance(data.get("split"), str):
        problems.append(Problem(source, line, "split", "expected a string"))
    if not isinstance(data.get("metadata", {}), dict):
        problems.append(Problem(source, line, "metadata", "expected an object"))
    utterances = data.get("utterances")
    if not isinstance(utterances, list) or not utterances:
        problems.append(Problem(source, line, "utterances", "expected a non-empty list of utterances"))
        return problems
    seen_turns: set[int] = set()
    for index, utt in enumerate(utterances):
        problems += validate_utterance(utt, (source, line), f"utterances[{index}]")
        turn = utt.get("turn") if isinstance(utt, dict) else None
        if isinstance(turn, int):
            if turn in seen_turns:
                problems.append(Problem(source, line, f"utterances[{index}].turn", f"duplicate turn id {turn}"))
            seen_turns.add(turn)
    return problems


def dialogue_from_dict(data: dict[str, Any]) -> Dialogue:
    """Build a Dialogue from an already validated dict."""
    utterances = [Utterance(**utt) for utt in data["utterances"]]
    return Dialogue(
        id=str(data["id"]), utterances=utterances, split=data.get("split"), metadata=dict(data.get("metadata") or {})
    )


def check_dialogue(dialogue: Dialogue, source: str = "<dialogue>", line: int | None = None) -> None:
    """Validate a Dialogue built in code (builders call this) and raise DataError when it is wrong."""
    problems = validate_dialogue(dialogue.to_dict(), source, line)
    if problems:
        raise DataError(problems)


def read_jsonl(path: str | os.PathLike) -> list[tuple[int, Any]]:
    """(line number, parsed JSON) for each non-blank line.

    Raises one DataError listing every line that is not UTF-8 or not valid JSON: such a file cannot be read
    meaningfully, so nothing is returned, but all of its bad lines are named at once."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    records: list[tuple[int, Any]] = []
    problems: list[Problem] = []
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                problems.append(
                    Problem(
                        str(path),
                        number,
                        None,
                        f"not valid UTF-8 ({err.reason} at byte {err.start}); re-encode the file as UTF-8",
                    )
                )
                continue
            if number == 1:
                text = text.removeprefix("\ufeff")
            if not text.strip():
                continue
            try:
                records.append((number, json.loads(text)))
            except json.JSONDecodeError as err:
                problems.append(Problem(str(path), number, None, f"invalid JSON: {err.msg} (column {err.colno})"))
    if problems:
        raise DataError(problems)
    return records


def iter_jsonl(path: str | os.PathLike) -> Iterator[tuple[int, Any]]:
    """Yield (line number, parsed JSON) for each non-blank line; raises DataError (before yielding anything)
    listing every line with bytes that are not UTF-8 or invalid JSON."""
    yield from read_jsonl(path)


def read_dialogues(path: str | os.PathLike, on_error: OnError = "raise") -> tuple[list[Dialogue], int]:
    """Read canonical dialogues from JSONL.

    Returns the dialogues and the number dropped. With on_error="raise" every problem in the file is collected
    and reported together; with "drop" invalid dialogues are skipped and counted.
    """
    dialogues: list[Dialogue] = []
    problems: list[Problem] = []
    dropped = 0
    seen_ids: dict[tuple[str | None, str], int] = {}
    for number, data in iter_jsonl(path):
        found = validate_dialogue(data, str(path), number)
        if not found:
            key = (data.get("split"), str(data["id"]))
            if key in seen_ids:
                found = [
                    Problem(
                        str(path), number, "id", f"duplicate dialogue id {key[1]!r} (first on line {seen_ids[key]})"
                    )
                ]
            else:
                seen_ids[key] = number
        if found:
            dropped += 1
            problems += found
            continue
        dialogues.append(dialogue_from_dict(data))
    if problems and on_error == "raise":
        raise DataError(problems)
    if not dialogues and not problems:
        raise DataError(Problem(str(path), None, None, "contains no dialogues"))
    return dialogues, dropped


def write_dialogues(path: str | os.PathLike, dialogues: Iterable[Dialogue]) -> int:
    """Write dialogues as canonical JSONL, atomically; returns the number written."""
    return atomic_write_jsonl(path, (d.to_dict() for d in dialogues))
