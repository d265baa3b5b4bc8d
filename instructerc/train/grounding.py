"""Verifiable rationale grounding: does a rationale quote and talk about the dialogue it was given?

A rationale is checked against the `context` column (the dialogue lines shown in the prompt). Quotes are the
verifiable part: a quote that is not in the dialogue is invented and penalised hard, because a model rewarded
for quoting would otherwise learn to quote anything. Content-word overlap is a softer signal that the rationale
talks about this dialogue rather than being a generic template. Rationales that game the formula score 0:
an echo of the dialogue (an unquoted run of COPY_RUN_WORDS words, or a quote running across dialogue lines),
nothing but quotes, no content word found in the dialogue (nonsense, a generic template), and, when the gold
label is given, a rationale that names another emotion. The formula is in docs/rewards.md.
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
# "Name:" at the start of a context line: the speaker of that line (up to four words, "Mr. Geller"; checked in
# `split_speakers`, so that a sentence with a colon is not taken for a name).
_SPEAKER = re.compile(r"^\s*([^:\n]{1,40}?)\s*:", re.MULTILINE)
# An unquoted run this long copied from the dialogue (or the prompt) is an echo, not an explanation; small models
# do this a lot. Quoted spans are exempt: quoting is what a rationale is asked to do.
COPY_RUN_WORDS = 8
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
    rejected: str | None = None  # why the score was set to 0 ("code" or "code: detail"), see `grounding`


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


def split_speakers(context: str) -> tuple[set[str], str]:
    """(the words of the speaker names that prefix the context's lines, the context without those prefixes)."""
    names: set[str] = set()

    def strip(match: re.Match) -> str:
        if len(match.group(1).split()) > 4:  # a sentence with a colon, not a name
            return match.group(0)
        names.update(_WORD.findall(match.group(1).lower()))
        return ""

    return names, _SPEAKER.sub(strip, context or "")


def unspoken_names(context: str) -> tuple[set[str], set[str]]:
    """(speaker-name words never said in the utterances themselves, content words of what was said).

    Every line starts with its speaker's name, so naming a speaker is always "found" in the dialogue: "Rachel
    frowns." would have half its words grounded. Such names are content words of neither side. A name that is
    also said ("Hi Rachel", "Is the doctor in?" in a dialogue with a Doctor) counts like any other word.
    """
    names, spoken = split_speakers(context)
    said = content_words(spoken)
    return names - said, said


def copied_text(rationale: str, context: str, extra: str = "") -> str | None:
    """An echo of the dialogue in a rationale, else None.

    The first unquoted run of COPY_RUN_WORDS words that also occurs in `context` or `extra` (e.g. the prompt;
    runs may not span a quote), or else the first quote that occurs in the context only across a line break:
    quoting one utterance is what a rationale should do, quoting several lines at once is pasting the dialogue.
    """
    haystack = f" {normalize_text(' '.join((context or '', extra or '')))} "
    for piece in _QUOTES.sub("\n", rationale or "").split("\n"):
        words = normalize_text(piece).split()
        for start in range(len(words) - COPY_RUN_WORDS + 1):
            run = " ".join(words[start : start + COPY_RUN_WORDS])
            if f" {run} " in haystack:
                return run
    lines = [f" {normalize_text(line)} " for line in (context or "").splitlines()]
    joined = f" {normalize_text(context or '')} "
    for quote in quoted_spans(rationale):
        norm = f" {normalize_text(quote)} "
        if norm.strip() and norm in joined and not any(norm in line for line in lines):
            return quote
    return None


def grounding(
    rationale: str,
    context: str,
    gold_label: str | None = None,
    label_set: LabelSet | Sequence[str] | None = None,
) -> Grounding:
    """Quotes found/invented and content overlap of a rationale against the dialogue context, and its score.

    score = 0.5 * quote precision (found / quotes; 0.5 when nothing is quoted) + 0.5 * content_overlap
            - 0.5 * invented quotes, clipped to [0, 1].
    Speaker names (the "Name:" line prefixes) are not content words unless the utterances say them too
    (`unspoken_names`).
    The score is 0, with the reason in `rejected`, for: an empty rationale (`empty`); an echo of the dialogue
    (`copied`, see `copied_text`); no content word at all (`no_content`: "a", "The speaker seems to express an
    emotion."); no content word that occurs in the dialogue (`ungrounded`: "zzz qqq", "Rachel frowns."); no
    content word outside the quotes (`only_quotes`: quoting without explaining); and, when `gold_label` and
    `label_set` are given, naming another emotion without negating it (`other_emotion`, see
    `names_other_emotion`).
    """
    if not (rationale or "").strip():
        return Grounding(rejected="empty")
    context_norm = f" {normalize_text(context or '')} "
    quotes = quoted_spans(rationale)
    # Padded with spaces so a quote must match whole words ("hat" is not found in "that").
    found = [q for q in quotes if normalize_text(q) and f" {normalize_text(q)} " in context_norm]
    invented = [q for q in quotes if q not in found]
    ignored, said = unspoken_names(context)
    words = content_words(rationale) - ignored
    overlap = len(words & said) / len(words) if words else 0.0
    precision = len(found) / len(quotes) if quotes else 0.5
    score = min(1.0, max(0.0, 0.5 * precision + 0.5 * overlap - 0.5 * len(invented)))
    rejected = _rejection(rationale, context, words, ignored, overlap, gold_label, label_set)
    return Grounding(quotes, found, invented, overlap, 0.0 if rejected else score, rejected)


def _rejection(
    rationale: str,
    context: str,
    words: set[str],
    ignored: set[str],
    overlap: float,
    gold_label: str | None,
    label_set: LabelSet | Sequence[str] | None,
) -> str | None:
    copied = copied_text(rationale, context)
    if copied:
        return f"copied: {copied}"
    if not words:
        return "no_content"
    if not overlap:
        return "ungrounded"
    if not content_words(_QUOTES.sub(" ", rationale)) - ignored:
        return "only_quotes"
    if gold_label and label_set is not None:
        other = names_other_emotion(rationale, gold_label, label_set)
        if other is not None:
            return f"other_emotion: {other}"
    return None


def names_other_emotion(rationale: str, gold_label: str, label_set: LabelSet | Sequence[str]) -> str | None:
    """The first label other than the gold one that the rationale names without negating it, else None.

    A rationale that argues for another emotion ("she sounds furious") does not support the gold label; "she is
    not angry" does not count. Bigrams are read before words, through the label set's normalisation.
    """
    ls = as_label_set(label_set)
    gold = ls.normalize(gold_label) or gold_label
    return next((label for label in label_mentions(rationale or "", ls) if label != gold), None)


__all__ = [
    "COPY_RUN_WORDS",
    "STOPWORDS",
    "Grounding",
    "content_words",
    "copied_text",
    "grounding",
    "names_other_emotion",
    "normalize_text",
    "quoted_spans",
    "split_speakers",
    "unspoken_names",
]
