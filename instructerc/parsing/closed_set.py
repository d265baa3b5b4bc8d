"""Reading a closed-set answer: one label of the set, self-corrections, and labels stated in untagged text."""

from __future__ import annotations

import re

from instructerc.labels import LabelSet
from instructerc.parsing.text import clean_answer, label_mentions

_PHRASE = re.compile(r"\b(?:answer|emotions?|label|prediction)\s*(?:[:=]|\bis\b)\s*([^.,;:!?\n]+)", re.I)
# A self-correction: the answer after the last of these (at a clause start) is the one meant.
_CORRECTION = re.compile(
    r"(?:^|[.!?;,:(\n]|\bno\b|\boh\b)\s*(?:actually|wait|on\s+second\s+thought|on\s+reflection|correction|i\s+mean"
    r"|scratch\s+that|let\s+me\s+correct(?:\s+(?:that|myself))?|no\s+wait|final\s+(?:answer|emotion|label|prediction)s?)\b",
    re.I,
)


def _corrected(text: str, ls: LabelSet) -> str | None:
    """The label of a self-correction ("joy. Actually, anger"): what the text after the last correction marker
    names, when it names exactly one label and adds to nothing ("actually also angry" is not a correction)."""
    marks = list(_CORRECTION.finditer(text))
    if not marks:
        return None
    tail = text[marks[-1].end() :]
    if re.search(r"\b(?:also|too|as\s+well|both)\b", tail, re.I):
        return None
    if (label := ls.normalize(clean_answer(tail))) is not None:
        return label
    mentions = label_mentions(tail, ls)
    return mentions[0] if len(mentions) == 1 else None


def read_closed_answer(content: str, ls: LabelSet | None, search: bool) -> tuple[str | None, str | None]:
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
    if search and len(mentions) > 1 and (label := _corrected(cleaned, ls)) is not None:
        return label, None
    if len(mentions) > 1:
        return None, f"multiple answers: {', '.join(mentions)}"
    if len(mentions) == 1 and search:
        return mentions[0], None
    return None, f"out of set: {cleaned}"


def read_untagged_closed(text: str, ls: LabelSet) -> tuple[str, str | None, str | None, tuple[str, ...]]:
    """(answer text, label or None, reason or None, ()) for a closed-set output without answer tags."""
    if (label := ls.normalize(clean_answer(text))) is not None:  # the whole output is a label ("Joy.")
        return text, label, None, ()
    if (label := _corrected(text, ls)) is not None:  # "The emotion is joy. Actually no, it is anger."
        return text, label, None, ()
    # Stated answers: sentences or lines that are a label by themselves, and "the emotion is X" phrases. Two
    # that disagree ("joy\nanger") are multiple answers, not the last one.
    sentences = [s for s in re.split(r"(?<=[.!?])\s+|\n", text) if s.strip()]
    stated = [(s, ls.normalize(clean_answer(s))) for s in reversed(sentences)]
    stated += [(m.group(1), ls.normalize(clean_answer(m.group(1)))) for m in reversed(list(_PHRASE.finditer(text)))]
    stated = [(s, label) for s, label in stated if label is not None]
    labels = list(dict.fromkeys(label for _, label in reversed(stated)))
    if len(labels) == 1:
        return stated[0][0].strip(), labels[0], None, ()
    if len(labels) > 1:
        return "", None, f"multiple answers: {', '.join(labels)}", ()
    mentions = label_mentions(text, ls)
    if len(mentions) == 1:  # the answer read is the whole text: it is not the label as written
        return text, mentions[0], None, ()
    return "", None, (f"multiple answers: {', '.join(mentions)}" if mentions else "no answer"), ()
