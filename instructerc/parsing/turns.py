"""Reading a dialogue-unit answer (`turn_labels`): one "k: label" line per target turn, into per-turn answers.

A turn whose line is missing, given twice with different labels, or unreadable is invalid on its own: its label
is never guessed, and a line is never shifted onto a neighbour (numbers, not positions, say which turn a line
is for). Lines for turns that were not asked for, and text that is not a turn line, are ignored; they only make
the answer not well formed. A JSON object of turn numbers to labels (structured outputs) is read by the same rules.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

from instructerc.answer_format import render_turn_answers
from instructerc.labels import LabelSet
from instructerc.parsing.closed_set import read_closed_answer
from instructerc.parsing.result import ParsedOutput
from instructerc.parsing.text import as_label_set, json_object

# "3: joy", "3. joy", "3) joy", "Utterance 3: joy", "- 3: joy"; the label is the rest of the line.
_TURN_LINE = re.compile(r"^\s*(?:[-*]\s*)?(?:utterance\s*|turn\s*)?(\d+)\s*[:.)=-]\s*(.*?)\s*$", re.I)


def _from_json(text: str) -> str | None:
    """A structured-output answer {"1": "joy", "2": "neutral"} as turn lines, so the same rules read it."""
    data = json_object(text)
    if data is None or not all(str(k).strip().isdigit() and isinstance(v, str) for k, v in data.items()):
        return None
    return render_turn_answers([(int(k), v) for k, v in data.items()]) if data else None


def _turn_lines(text: str) -> dict[int, list[str]]:
    """Every turn line's content, by turn number, in order of appearance."""
    lines: dict[int, list[str]] = {}
    for line in text.splitlines():
        if m := _TURN_LINE.match(line):
            lines.setdefault(int(m.group(1)), []).append(m.group(2))
    return lines


def parse_turn_answers(
    text: str,
    numbers: Sequence[int],
    label_set: LabelSet | Sequence[str] | None,
    *,
    mode: Literal["strict", "lenient"] = "lenient",
) -> list[ParsedOutput]:
    """One `ParsedOutput` per asked turn number, in the order of `numbers` (see the module docstring).

    Lenient mode finds a single label named inside a longer line ("3: she is happy"); strict mode needs the line to
    be the label and the whole answer to be exactly the asked lines.
    """
    if mode not in ("strict", "lenient"):
        raise ValueError(f"mode must be 'strict' or 'lenient', got {mode!r}")
    if not numbers:
        return []
    ls = as_label_set(label_set)
    text = text or ""
    text = _from_json(text) or text
    lines = _turn_lines(text)
    results = []
    readings: dict[int, str] = {}
    for number in numbers:
        contents = lines.get(number, [])
        reason, label = None, None
        if not text.strip():
            reason = "empty"
        elif not contents:
            reason = "missing turn"
        else:
            read = [read_closed_answer(c, ls, search=mode == "lenient") for c in contents]
            labels = list(dict.fromkeys(lab if lab else f"({why})" for lab, why in read))
            if len(labels) > 1:
                reason = f"duplicated turn: {', '.join(labels)}"
            elif len(contents) > 1 and mode == "strict":
                reason = "duplicated turn"
            else:
                label, reason = read[0]
        if label is not None:
            readings[number] = label
        answer = contents[0] if contents else None
        results.append((label, reason, answer))
    # Well formed: exactly the asked lines, in order, each naming its label in the set's spelling, nothing else.
    well_formed = (
        len(readings) == len(numbers)
        and all(len(lines[n]) == 1 for n in numbers)
        and text.strip() == render_turn_answers([(n, readings[n]) for n in numbers])
    )
    out = []
    for label, reason, answer in results:
        if reason is None and mode == "strict" and not well_formed:
            reason = "not well formed"
        if reason is not None:
            label = None
        out.append(
            ParsedOutput(label, (label,) if label else (), None, reason is None, reason, well_formed, answer, False)
        )
    return out
