"""Verifiable rationale grounding: does a rationale quote and talk about the dialogue it was given?

A rationale is checked against the `context` column (the dialogue lines shown in the prompt). Quotes are the
verifiable part: a quote that is not in the dialogue is invented and penalised hard, because a model rewarded
for quoting would otherwise learn to quote anything. Content-word overlap is a softer signal that the rationale
talks about this dialogue rather than being a generic template. The formula is in docs/rewards.md.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from instructerc.labels import LabelSet
from instructerc.parsing import as_label_set, label_mentions

# "..." and “...” need no care; '...' must not start or end inside a word, so apostrophes ("don't", "Ross'")
# are not read as quote marks, while an apostrophe between letters inside a quote is kept.
_QUOTES = re.compile(r"\"([^\"\n]+)\"|“([^”\n]+)”|(?<!\w)'((?:[^'\n]|(?<=\w)'(?=\w))+)'(?!\w)")
_WORD = re.compile(r"[a-z]+")
# Function words plus the vocabulary every rationale uses ("the speaker seems..."): neither says anything about
# whether the rationale refers to this dialogue.
STOPWORDS = frozenset(
    """
    the and for are but not you all any can had her was one our out has him his how its may new now own she
    too use who why yes did get got let put say says said that this with have from they will would there their
    what when where which while into than then them these those been being were some such only also just very
    more most much over about after before again because could should does doing each both few other same here
    your yours ours hers lot really like well even still though yet
    speaker speakers utterance utterances dialogue conversation context emotion emotions seems seem suggests
    suggest indicates indicate express expresses expressed expressing tone line lines feel feels feeling
    """.split()
)


@dataclass(frozen=True)
class Grounding:
    quotes: list[str] = field(default_factory=list)
    quotes_found: list[str] = field(default_factory=list)
    quotes_invented: list[str] = field(default_factory=list)
    content_overlap: float = 0.0  # fraction of the rationale's distinct content words found in the context
    score: float = 0.0  # in [0, 1]; see `grounding`


def normalize_text(text: str) -> str:
    """Lower case, typographic apostrophes unified, punctuation dropped, whitespace collapsed."""
    text = text.lower().replace("’", "'").replace("‘", "'")
    return " ".join(re.sub(r"[^\w\s]|_", " ", text).split())


def quoted_spans(rationale: str) -> list[str]:
    """Text inside "...", “...” or '...' that is more than one word or at least four characters long."""
    spans = [next(g for g in m.groups() if g is not None).strip() for m in _QUOTES.finditer(rationale or "")]
    return [s for s in spans if len(s.split()) > 1 or len(s) >= 4]


def content_words(text: str) -> set[str]:
    """Lower-case alphabetic tokens of three letters or more that are not stopwords."""
    return {w for w in _WORD.findall((text or "").lower()) if len(w) >= 3 and w not in STOPWORDS}


def grounding(rationale: str, context: str) -> Grounding:
    """Quotes found/invented and content overlap of a rationale against the dialogue context.

    score = 0.5 * quote precision (found / quotes; 0.5 when nothing is quoted) + 0.5 * content_overlap
            - 0.5 * invented quotes, clipped to [0, 1]. An empty rationale scores 0.
    """
    if not (rationale or "").strip():
        return Grounding()
    context_norm = f" {normalize_text(context or '')} "
    quotes = quoted_spans(rationale)
    # Padded with spaces so a quote must match whole words ("hat" is not found in "that").
    found = [q for q in quotes if normalize_text(q) and f" {normalize_text(q)} " in context_norm]
    invented = [q for q in quotes if q not in found]
    words = content_words(rationale)
    overlap = len(words & content_words(context)) / len(words) if words else 0.0
    precision = len(found) / len(quotes) if quotes else 0.5
    score = min(1.0, max(0.0, 0.5 * precision + 0.5 * overlap - 0.5 * len(invented)))
    return Grounding(quotes, found, invented, overlap, score)


def names_other_emotion(rationale: str, gold_label: str, label_set: LabelSet | Sequence[str]) -> str | None:
    """The first label other than the gold one that the rationale names without negating it, else None.

    A rationale that argues for another emotion ("she sounds furious") does not support the gold label; "she is
    not angry" does not count. Bigrams are read before words, through the label set's normalisation.
    """
    ls = as_label_set(label_set)
    gold = ls.normalize(gold_label) or gold_label
    return next((label for label in label_mentions(rationale or "", ls) if label != gold), None)


__all__ = [
    "STOPWORDS",
    "Grounding",
    "content_words",
    "grounding",
    "names_other_emotion",
    "normalize_text",
    "quoted_spans",
]
