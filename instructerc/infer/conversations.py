"""Read conversations to label from the forms people have them in, into canonical dialogues.

- canonical JSONL (one dialogue per line, `instructerc/schema.py`);
- JSON: one dialogue object, a list of them, a list of turns `[{"speaker": ..., "text": ...}]`, or
  `{"utterances": [...]}`;
- a plain-text transcript: `Speaker: text` lines; a blank line starts a new dialogue; `#` lines are comments;
- `-`: standard input, in any of the above (JSON is recognised by its first character).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from instructerc.schema import DataError, Dialogue, Problem, Utterance, dialogue_from_dict, validate_dialogue

_TURN = re.compile(r"^\s*([^:]{1,80}?)\s*:\s*(.+?)\s*$")


def read_conversations(source: str) -> list[Dialogue]:
    """Dialogues from a file path or `-` (stdin); errors name the source and line."""
    if source == "-":
        text, name = sys.stdin.read(), "<stdin>"
    else:
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file")
        try:
            text, name = path.read_text(encoding="utf-8"), str(path)
        except UnicodeDecodeError as err:
            raise DataError(
                Problem(str(path), None, None, f"not valid UTF-8 ({err.reason} at byte {err.start})")
            ) from None
    stripped = text.lstrip()
    if not stripped:
        raise DataError(Problem(name, None, None, "is empty: expected a conversation"))
    if stripped[0] in "[{":
        return _from_json(text, name)
    return _from_transcript(text, name)


def _from_json(text: str, name: str) -> list[Dialogue]:
    try:
        records: list[tuple[int | None, Any]] = [(None, json.loads(text))]
    except json.JSONDecodeError:
        records = []  # JSON lines: one dialogue per line
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    records.append((number, json.loads(line)))
                except json.JSONDecodeError as err:
                    raise DataError(Problem(name, number, None, f"invalid JSON: {err.msg}")) from None
    if len(records) == 1 and isinstance(records[0][1], list):
        items = records[0][1]
        if items and all(isinstance(i, dict) and "text" in i and "utterances" not in i for i in items):
            records = [(None, {"utterances": items})]  # a bare list of turns is one dialogue
        else:
            records = [(None, item) for item in items]
    dialogues, problems = [], []
    for index, (line, data) in enumerate(records):
        if isinstance(data, dict):
            data = {"id": data.get("id", f"conversation-{index + 1}"), **data}
            for turn, utt in enumerate(data.get("utterances") or []):
                if isinstance(utt, dict):
                    utt.setdefault("turn", turn)
                    utt.setdefault("speaker", "Speaker")
        found = validate_dialogue(data, name, line)
        problems += found
        if not found:
            dialogues.append(dialogue_from_dict(data))
    if problems:
        raise DataError(problems)
    return dialogues


def _from_transcript(text: str, name: str) -> list[Dialogue]:
    dialogues: list[Dialogue] = []
    current: list[Utterance] = []
    problems: list[Problem] = []

    def close() -> None:
        if current:
            dialogues.append(Dialogue(f"conversation-{len(dialogues) + 1}", list(current)))
            current.clear()

    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            close()
            continue
        if line.lstrip().startswith("#"):
            continue
        match = _TURN.match(line)
        if match is None:
            problems.append(Problem(name, number, None, f"expected 'Speaker: text', got {line.strip()[:60]!r}"))
            continue
        current.append(Utterance(turn=len(current), speaker=match.group(1), text=match.group(2)))
    close()
    if problems:
        raise DataError(problems)
    return dialogues
