"""The one parser of model output: rewards, predictions and metrics all read answers through `parse_output`.

The tags come from `answer_format`, so what training renders and what is parsed cannot drift apart. Rules and
the invalid reasons are documented in docs/parsing.md. An unparsable output is invalid: it never defaults to a
label (in particular not to "neutral", which would inflate the majority class).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

from instructerc.answer_format import OPEN_VOCAB_SEPARATOR, render_answer
from instructerc.labels import LabelSet
from instructerc.parsing.closed_set import read_closed_answer, read_untagged_closed
from instructerc.parsing.open_vocab import read_open, read_open_answer, read_untagged_open
from instructerc.parsing.result import ParsedOutput
from instructerc.parsing.text import (
    _ANSWER_CLOSE,
    _ANSWER_OPEN,
    _ANY_TAG,
    _THINK_CLOSE,
    _THINK_OPEN,
    _WELL_FORMED,
    ExactLabelSet,
    as_label_set,
    clean_answer,
    json_object,
    label_mentions,
    label_set_from_list,
)
from instructerc.parsing.turns import parse_turn_answers


def _split_think(text: str) -> tuple[str | None, str]:
    """(think content or None, the text outside think blocks). An unclosed think block ends at the next answer
    tag; a leading `</think>` without an opening tag closes a think block the chat template opened."""
    parts, outside, pos = [], [], 0
    first_close, first_open = _THINK_CLOSE.search(text), _THINK_OPEN.search(text)
    first_answer = _ANSWER_OPEN.search(text)
    if (
        first_close
        and (not first_open or first_close.start() < first_open.start())
        and (not first_answer or first_answer.start() > first_close.start())
    ):
        parts.append(text[: first_close.start()])
        pos = first_close.end()
    while (m := _THINK_OPEN.search(text, pos)) is not None:
        outside.append(text[pos : m.start()])
        close, answer = _THINK_CLOSE.search(text, m.end()), _ANSWER_OPEN.search(text, m.end())
        end = close.start() if close else (answer.start() if answer else len(text))
        if answer and close and answer.start() < close.start() and not _THINK_CLOSE.search(text, answer.end()):
            end = answer.start()
        parts.append(text[m.end() : end])
        pos = close.end() if close and end == close.start() else end
    outside.append(text[pos:])
    parts = [re.sub(r"[ \t]+", " ", _ANY_TAG.sub(" ", p)).strip() for p in parts]
    rationale = "\n".join(parts).strip() if parts else None
    return rationale, _THINK_CLOSE.sub(" ", _THINK_OPEN.sub(" ", "".join(outside)))


def _answer_blocks(text: str) -> list[tuple[str, bool]]:
    """(content, closed) for every answer opening tag: a block ends at its closing tag or the next opening."""
    blocks = []
    opens = list(_ANSWER_OPEN.finditer(text))
    for k, m in enumerate(opens):
        stop = opens[k + 1].start() if k + 1 < len(opens) else len(text)
        close = _ANSWER_CLOSE.search(text, m.end(), stop)
        blocks.append((text[m.end() : close.start() if close else stop], close is not None))
    return blocks


def _lenient_fallback(
    outside: str, ls: LabelSet | None, open_vocabulary: bool
) -> tuple[str, str | None, str | None, tuple[str, ...]]:
    """(answer text, label or None, reason or None, open-vocabulary words) read from untagged text."""
    text = _ANY_TAG.sub(" ", outside).strip()
    if not text:
        return "", None, "no answer", ()
    lines = [line for line in text.splitlines() if line.strip()]
    if open_vocabulary:
        return read_untagged_open(text, lines)
    if ls is None:  # no set to search: accept a short last line naming one thing ("nostalgia")
        words, _ = read_open(lines[-1], explained=False)
        return (lines[-1].strip(), words[0], None, ()) if len(words) == 1 else ("", None, "no answer", ())
    return read_untagged_closed(text, ls)


def _from_json(text: str, answer_format: str) -> str | None:
    """A JSON answer object (structured outputs: {"rationale": ..., "label": ...} or "labels": [...]) rendered
    in the tagged answer format, so that it is read by the same rules; None when `text` is not one."""
    data = json_object(text)
    if data is None:
        return None
    answer = data.get("label", data.get("labels"))
    rationale = data.get("rationale")
    if isinstance(answer, list) and all(isinstance(a, str) for a in answer):
        answer = [a for a in answer if a.strip()]
    if not (isinstance(answer, str) or (isinstance(answer, list) and answer)) or not isinstance(rationale, str | None):
        return None
    return render_answer(answer, answer_format, rationale)


def parse_output(
    text: str,
    label_set: LabelSet | Sequence[str] | None = None,
    *,
    mode: Literal["strict", "lenient"] = "lenient",
    open_vocabulary: bool = False,
    answer_format: str = "think_answer",
) -> ParsedOutput:
    """Parse one model output. See docs/parsing.md for the rules, the two modes and the invalid reasons."""
    if mode not in ("strict", "lenient"):
        raise ValueError(f"mode must be 'strict' or 'lenient', got {mode!r}")
    if answer_format not in _WELL_FORMED:
        raise ValueError(f"unknown answer format {answer_format!r}; expected one of {', '.join(_WELL_FORMED)}")
    ls = None if open_vocabulary else as_label_set(label_set)
    text = text or ""
    text = _from_json(text, answer_format) or text
    rationale, outside = _split_think(text)
    n_tags = [len(p.findall(text)) for p in (_THINK_OPEN, _THINK_CLOSE, _ANSWER_OPEN, _ANSWER_CLOSE)]
    expected = [1, 1, 1, 1] if answer_format == "think_answer" else [0, 0, 1, 1]
    well_formed = n_tags == expected and _WELL_FORMED[answer_format].fullmatch(text) is not None

    def result(label=None, labels=(), reason=None, answer=None, lenient=False) -> ParsedOutput:
        if reason is None and mode == "strict" and not well_formed:
            reason = "not well formed"
        if reason is not None:
            label, labels, lenient = None, (), False
        return ParsedOutput(label, tuple(labels), rationale, reason is None, reason, well_formed, answer, lenient)

    if not text.strip():
        return result(reason="empty")
    blocks = _answer_blocks(outside)
    if not blocks:
        if mode == "strict":
            return result(reason="no answer")
        answer, label, reason, words = _lenient_fallback(outside, ls, open_vocabulary)
        if reason:
            return result(reason=reason)
        if open_vocabulary:
            return result(OPEN_VOCAB_SEPARATOR.join(words), words, answer=answer, lenient=True)
        return result(label, (label,), answer=answer, lenient=True)
    if mode == "strict" and not all(closed for _, closed in blocks):
        return result(reason="unclosed answer tag")
    filled = [content for content, _ in blocks if clean_answer(content)] or [blocks[0][0]]
    answer = filled[0].strip()
    if open_vocabulary:
        readings = list(dict.fromkeys(read_open_answer(content, mode == "lenient") for content in filled))
        if len(readings) > 1:
            read = (OPEN_VOCAB_SEPARATOR.join(words) or str(reason) for words, reason in readings)
            return result(reason=f"multiple answers: {'; '.join(read)}")
        words, reason = readings[0]
        if reason:
            return result(reason=reason, answer=answer)
        return result(OPEN_VOCAB_SEPARATOR.join(words), words, answer=answer)
    readings = [read_closed_answer(content, ls, search=mode == "lenient") for content in filled]
    labels = list(
        dict.fromkeys(label if label else clean_answer(c) for (label, _), c in zip(readings, filled, strict=True))
    )
    if len(labels) > 1:
        return result(reason=f"multiple answers: {', '.join(labels)}", answer=answer)
    label, reason = readings[0]
    return result(label, (label,), reason=reason, answer=answer)


def parse_many(texts: Sequence[str], label_set: LabelSet | Sequence[str] | None = None, **kwargs) -> list[ParsedOutput]:
    """`parse_output` over many outputs sharing one label set (converted once)."""
    ls = as_label_set(label_set)
    return [parse_output(text, ls, **kwargs) for text in texts]


__all__ = [
    "ExactLabelSet",
    "ParsedOutput",
    "as_label_set",
    "clean_answer",
    "label_mentions",
    "label_set_from_list",
    "parse_many",
    "parse_output",
    "parse_turn_answers",
]
