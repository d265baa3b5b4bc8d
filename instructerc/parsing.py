"""The one parser of model output: rewards, predictions and metrics all read answers through `parse_output`.

The tags come from `answer_format`, so what training renders and what is parsed cannot drift apart. Rules and
the invalid reasons are documented in docs/parsing.md. An unparsable output is invalid: it never defaults to a
label (in particular not to "neutral", which would inflate the majority class).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from instructerc.answer_format import (
    ANSWER_CLOSE,
    ANSWER_OPEN,
    OPEN_VOCAB_SEPARATOR,
    THINK_CLOSE,
    THINK_OPEN,
    render_answer,
)
from instructerc.labels import LABEL_SETS, UNIFIED, LabelSet, clean_word, custom_label_set


@dataclass(frozen=True)
class ParsedOutput:
    label: str | None  # closed set: the set's spelling; open vocabulary: the words joined like the gold `label`
    labels: tuple[str, ...]  # open vocabulary: cleaned words; closed set: (label,) or ()
    rationale: str | None  # the think block's content (stripped), None when there is none
    valid: bool
    reason: str | None  # why invalid: a stable code, optionally ": detail"
    well_formed: bool  # the strict format of the answer format, nothing but whitespace outside the tags
    answer_text: str | None  # the raw answer text that was read
    lenient: bool  # the label came from a lenient fallback, not from an answer tag


@dataclass(frozen=True)
class ExactLabelSet(LabelSet):
    """A label set of names (speakers): case-insensitive exact match, no synonyms, the set's own spelling kept."""

    def __post_init__(self) -> None:  # names have no emotion concepts to collide
        pass

    def normalize(self, word: str) -> str | None:
        cleaned = clean_word(word)
        return next((label for label in self.labels if clean_word(label) == cleaned), None)


@lru_cache(maxsize=256)
def label_set_from_list(labels: tuple[str, ...], exact: bool = False) -> LabelSet:
    """The LabelSet for a dataset row's `label_set` list: the corpus set when it matches one (so its synonyms
    work), else a custom set; names, mixed case or colliding concepts get exact matching instead."""
    labels = tuple(labels)
    if not exact:
        for known in [*LABEL_SETS.values(), UNIFIED]:
            if known.labels == labels:
                return known
        if all(clean_word(label) == label for label in labels):
            try:
                return custom_label_set(list(labels))
            except ValueError:  # two labels share a concept: synonyms would be ambiguous
                pass
    return ExactLabelSet("exact", labels)


def as_label_set(label_set: LabelSet | Sequence[str] | None) -> LabelSet | None:
    if label_set is None or isinstance(label_set, LabelSet):
        return label_set
    return label_set_from_list(tuple(label_set))


def _tag(literal: str) -> str:
    """A case-insensitive, whitespace-tolerant regex for a tag literal such as "</answer>"."""
    name = literal.strip("<>/ ")
    slash = r"/\s*" if literal.startswith("</") else ""
    return rf"<\s*{slash}{re.escape(name)}\s*>"


_THINK_OPEN, _THINK_CLOSE, _ANSWER_OPEN, _ANSWER_CLOSE = (
    re.compile(_tag(t), re.I) for t in (THINK_OPEN, THINK_CLOSE, ANSWER_OPEN, ANSWER_CLOSE)
)
_ANY_TAG = re.compile("|".join(_tag(t) for t in (THINK_OPEN, THINK_CLOSE, ANSWER_OPEN, ANSWER_CLOSE)), re.I)
_WELL_FORMED = {
    "think_answer": re.compile(
        rf"\s*{_tag(THINK_OPEN)}.*?{_tag(THINK_CLOSE)}\s*{_tag(ANSWER_OPEN)}.*?"
        rf"{_tag(ANSWER_CLOSE)}\s*",
        re.I | re.S,
    ),
    "answer_only": re.compile(rf"\s*{_tag(ANSWER_OPEN)}.*?{_tag(ANSWER_CLOSE)}\s*", re.I | re.S),
}
_PREFIX = re.compile(
    r"^\s*(?:the\s+)?(?:final\s+|predicted\s+)?(?:answer|emotions?|label|speaker|prediction)(?:\s*[:=-]|\s+is\b)\s*",
    re.I,
)
_PHRASE = re.compile(r"\b(?:answer|emotions?|label|prediction)\s*(?:[:=]|\bis\b)\s*([^.,;:!?\n]+)", re.I)
_OPEN_SPLIT = re.compile(r"\s*(?:[,;/&]|\band\b)\s*", re.I)
_TOKEN = re.compile(r"[A-Za-z][A-Za-z'’-]*|[.,;:!?\n]")
_NEGATORS = set("not no never nor neither without hardly isnt wasnt arent dont doesnt didnt cannot lacks".split())
# Words that end a negation's scope: "not anger but joy", "not angry, just sad".
_SCOPE_BREAKS = set("but just rather instead though although yet however only".split())
# Emotion synonyms that are ordinary words in prose ("none of them", "the content"): whole answers only.
_AMBIGUOUS = {"none", "content", "peace", "calm", "shock", "rage"}


def clean_answer(text: str) -> str:
    """The answer text without tags, quotes, surrounding punctuation and an "Emotion:"-style prefix."""
    text = _ANY_TAG.sub(" ", text)
    for _ in range(2):  # `"Emotion: anger"` and `Answer: "anger"` both need quotes and prefix peeled
        text = _PREFIX.sub("", clean_word(text))
    return clean_word(text)


def label_mentions(text: str, label_set: LabelSet | Sequence[str]) -> list[str]:
    """Distinct labels named in `text` (bigrams before words), in order, skipping negated ones ("not angry")."""
    ls = as_label_set(label_set)
    tokens = [t.lower().replace("’", "'") for t in _TOKEN.findall(text)]
    found: list[str] = []
    i = 0
    while i < len(tokens):
        for width in (2, 1):
            words = tokens[i : i + width]
            if len(words) < width or any(not w[0].isalpha() for w in words):
                continue
            phrase = " ".join(words)
            label = None if phrase in _AMBIGUOUS else ls.normalize(phrase)
            if label is None:
                continue
            # Negated when a negator precedes it in the same clause, within three words.
            before = []
            for prev in reversed(tokens[max(0, i - 3) : i]):
                if not prev[0].isalpha() or prev in _SCOPE_BREAKS:
                    break
                before.append(prev)
            if not any(w in _NEGATORS or w.endswith("n't") for w in before) and label not in found:
                found.append(label)
            i += width - 1
            break
        i += 1
    return found


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


def _read(content: str, ls: LabelSet | None, search: bool) -> tuple[str | None, str | None]:
    """(label, None) or (None, reason) for one answer's content in a closed set."""
    cleaned = clean_answer(content)
    if not cleaned:
        return None, "empty answer"
    if ls is None:
        return cleaned, None
    label = ls.normalize(cleaned)
    if label is not None:
        return label, None
    mentions = label_mentions(cleaned, ls)
    if len(mentions) > 1:
        return None, f"multiple answers: {', '.join(mentions)}"
    if len(mentions) == 1 and search:
        return mentions[0], None
    return None, f"out of set: {cleaned}"


def _read_open(content: str) -> tuple[str, ...]:
    words = (clean_answer(w) for w in _OPEN_SPLIT.split(_ANY_TAG.sub(" ", content)))
    return tuple(dict.fromkeys(w for w in words if w))


def _lenient_fallback(outside: str, ls: LabelSet | None, open_vocabulary: bool) -> tuple[str, str | None, str | None]:
    """(answer text, label or None, reason or None) read from untagged text. Open vocabulary: label is None."""
    text = _ANY_TAG.sub(" ", outside).strip()
    if not text:
        return "", None, "no answer"
    lines = [line for line in text.splitlines() if line.strip()]
    if open_vocabulary or ls is None:  # no set to search: accept a short last line ("happy, relieved")
        words = _read_open(lines[-1])
        ok = words and all(len(w.split()) <= 3 for w in words) and (open_vocabulary or len(words) == 1)
        label = None if open_vocabulary else clean_answer(lines[-1])
        return (lines[-1].strip(), label, None) if ok else ("", None, "no answer")
    sentences = [s for s in re.split(r"(?<=[.!?])\s+|\n", text) if s.strip()]
    candidates = [text, sentences[-1]] + [m.group(1) for m in reversed(list(_PHRASE.finditer(text)))]
    for candidate in candidates:  # the whole output, its last sentence, then "the emotion is X" phrases
        if (label := ls.normalize(clean_answer(candidate))) is not None:
            return candidate.strip(), label, None
    mentions = label_mentions(text, ls)
    if len(mentions) == 1:  # the answer read is the whole text: it is not the label as written
        return text, mentions[0], None
    return "", None, (f"multiple answers: {', '.join(mentions)}" if mentions else "no answer")


def _from_json(text: str, answer_format: str) -> str | None:
    """A JSON answer object (structured outputs: {"rationale": ..., "label": ...} or "labels": [...]) rendered
    in the tagged answer format, so that it is read by the same rules; None when `text` is not one."""
    stripped = text.strip()
    if not (stripped.startswith("{") and stripped.endswith("}")):
        return None
    try:
        data = json.loads(stripped)
    except ValueError:
        return None
    if not isinstance(data, dict):
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
        answer, label, reason = _lenient_fallback(outside, ls, open_vocabulary)
        if reason:
            return result(reason=reason)
        if open_vocabulary:
            words = _read_open(answer)
            return result(OPEN_VOCAB_SEPARATOR.join(words), words, answer=answer, lenient=True)
        return result(label, (label,), answer=answer, lenient=True)
    if mode == "strict" and not all(closed for _, closed in blocks):
        return result(reason="unclosed answer tag")
    filled = [content for content, _ in blocks if clean_answer(content)] or [blocks[0][0]]
    answer = filled[0].strip()
    if open_vocabulary:
        readings = list(dict.fromkeys(_read_open(content) for content in filled))
        if len(readings) > 1:
            return result(reason=f"multiple answers: {'; '.join(OPEN_VOCAB_SEPARATOR.join(r) for r in readings)}")
        words = readings[0]
        if not words:
            return result(reason="empty answer", answer=answer)
        return result(OPEN_VOCAB_SEPARATOR.join(words), words, answer=answer)
    readings = [_read(content, ls, search=mode == "lenient") for content in filled]
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
]
