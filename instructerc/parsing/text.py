"""What both readers share: the answer-format tags, answer cleaning, label mentions and row label sets."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from instructerc.answer_format import ANSWER_CLOSE, ANSWER_OPEN, THINK_CLOSE, THINK_OPEN
from instructerc.labels import LABEL_SETS, UNIFIED, LabelSet, clean_word, custom_label_set


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


def json_object(text: str) -> dict | None:
    """The JSON object that `text` is (structured outputs answer with one), or None when it is not one."""
    stripped = text.strip()
    if not (stripped.startswith("{") and stripped.endswith("}")):
        return None
    try:
        data = json.loads(stripped)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None
