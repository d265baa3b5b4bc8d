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
# Open vocabulary: "The emotion expressed by Kim is surprise", "The emotions are joy and surprise", "Feelings: X";
# up to four words between the noun and the verb, and the answer runs to the end of the sentence (commas kept).
_OPEN_PHRASE = re.compile(
    r"\b(?:answer|emotions?|feelings?|labels?|prediction)\b(?:\s+[\w'’-]+){0,4}?\s*"
    r"(?:[:=]|\s(?:is|are|was|were|includes?|would\s+be|could\s+be|might\s+be|seems?\s+to\s+be|appears?\s+to\s+be)\b)"
    r"\s*([^.;:!?\n]+)",
    re.I,
)
# Items of an open-vocabulary answer: separated by newlines (bullets), commas, semicolons, slashes, &, sentence
# ends and the words and / or / but / plus.
_OPEN_SPLIT = re.compile(r"\s*(?:[,;/&|]|(?<=\w)[.!?]+(?=\s|$)|\b(?:and|or|but|plus|as well as|along with)\b)\s*", re.I)
_BULLET = re.compile(r"^\s*(?:[-*•·▪‣–—+>]|\d+[.)])\s*")
_PARENTHETICAL = re.compile(r"\([^()]*(?:\)|$)|\[[^\[\]]*(?:\]|$)", re.M)
# Leading words that are not the emotion, stripped repeatedly: a subject and verb ("Ben feels", "she seems to
# be"; not when the subject is an emotion word: "joy is evident"), hedges and intensifiers ("just", "very", "a
# bit"), "a sense of". A word of the vocabulary is kept whole.
_OPEN_SUBJECT_VERB = re.compile(
    r"^(?P<subject>(?:[a-z][\w'’-]*\s+){0,2}?)(?:feels?|felt|feeling|seems?|seemed|appears?|appeared|sounds?|looks?"
    r"|is|are|was|were|expresses|expressed|expressing|shows?|showing|displays?|experiences?|experiencing)"
    r"(?:\s+(?:to\s+(?:be|feel)|like))?\s+",
    re.I,
)
_OPEN_FILLER = re.compile(
    r"^(?:(?:he|she|it|they|that)['’](?:s|re)\s+"
    r"|(?:bit|lot|lots|sense|feeling|feelings|hint|touch|mix|mixture|kind|sort|state)\s+of(?:\s+|$)"
    r"|(?:just|very|really|so|quite|rather|mostly|mainly|slightly|somewhat|extremely|deeply|mildly|highly|truly"
    r"|genuinely|clearly|definitely|probably|possibly|maybe|perhaps|likely|also|still|too|more|some|overall|actually"
    r"|pure|sheer|intense|strong|mild|slight|little|bit|the|a|an)(?:\s+|$))",
    re.I,
)
# A trailing explanation: "happy because she got the job", "proud of her", "angry at him".
_OPEN_TRAIL = re.compile(
    r"\s+(?:because|since|as|due|given|after|when|while|about|over|at|with|for|toward|towards|that|which|who|from|of"
    r"|to|by)\b.*$",
    re.I,
)
# Answers that say there is no emotion: not emotion words themselves.
_NO_EMOTION = {
    "none", "nothing", "n/a", "na", "nil", "no emotion", "no emotions", "no feeling", "no feelings",
    "no particular emotion", "no specific emotion", "no clear emotion", "no strong emotion", "not applicable",
    "nothing in particular", "none in particular", "unknown",
}  # fmt: skip
# Words of a sentence, not of an emotion name: pronouns, auxiliaries, articles ("I'm sorry, I can't help").
_SENTENCE_WORDS = set(
    """i i'm im i'd i'll i've me my mine you you're your yours we we're our us let's he he's him his she she's her
    it it's its they they're them their this that that's these those there here what which who whom whose
    am is are was were be been being do does did have has had can could will would shall should may might must
    the a an if then than because since please thank""".split()
)
_FIRST_PERSON = set("i i'm im i'd i'll i've me my you you're your we we're us our let's please".split())
# A self-correction: the answer after the last of these (at a clause start) is the one meant.
_CORRECTION = re.compile(
    r"(?:^|[.!?;,:(\n]|\bno\b|\boh\b)\s*(?:actually|wait|on\s+second\s+thought|on\s+reflection|correction|i\s+mean"
    r"|scratch\s+that|let\s+me\s+correct(?:\s+(?:that|myself))?|no\s+wait|final\s+(?:answer|emotion|label|prediction)s?)\b",
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
    if search and len(mentions) > 1 and (label := _corrected(cleaned, ls)) is not None:
        return label, None
    if len(mentions) > 1:
        return None, f"multiple answers: {', '.join(mentions)}"
    if len(mentions) == 1 and search:
        return mentions[0], None
    return None, f"out of set: {cleaned}"


_WORD = re.compile(r"[a-z][a-z'’-]*")


def _open_item(piece: str, explained: bool) -> tuple[str, str]:
    """(kind, text) of one item of an open-vocabulary answer. kind: "word" (text: the emotion word), "none" (says
    there is no emotion), "negated" ("not angry"), "prose" (not an emotion word: text is the item), "" (nothing)."""
    from instructerc.eval.openvocab import canonical, vocabulary

    known = vocabulary()
    raw = clean_answer(piece)
    item = clean_word(raw.rsplit(":", 1)[-1])  # "Ana: happy" (a speaker or a heading before a colon)
    if not item or item in known:
        return ("word", item) if item else ("", "")
    if item in _NO_EMOTION or item.split()[0] in ("none", "nothing"):  # "nothing else", "none at all"
        return "none", item
    if item.split()[0] in _FIRST_PERSON:  # the model talking ("I'm sorry", "I can't help with that")
        return "prose", raw
    rest = item
    while rest not in known:
        m = _OPEN_FILLER.match(rest) or _OPEN_SUBJECT_VERB.match(rest)
        if m is None or (m.groupdict().get("subject") and any(canonical(w) in known for w in m["subject"].split())):
            break
        rest = rest[m.end() :]
    lead = item[: len(item) - len(rest)]
    if explained and rest not in known:  # "happy because she got the job" -> "happy"
        rest = clean_word(_OPEN_TRAIL.sub("", rest))
    if not rest:  # only filler ("actually")
        return "", ""
    if rest in _NO_EMOTION:
        return "none", rest
    if any(w in _NEGATORS or w.endswith(("n't", "n’t")) for w in f"{lead} {rest}".split()):
        return "negated", item
    tokens = rest.split()
    if rest not in known and (len(tokens) > 3 or any(t in _SENTENCE_WORDS or not _WORD.fullmatch(t) for t in tokens)):
        return "prose", raw
    return "word", rest


def _read_open(content: str, explained: bool = True) -> tuple[tuple[str, ...], str | None]:
    """(emotion words, None) or ((), reason) for an open-vocabulary answer: items split on newlines, bullets,
    commas, semicolons, slashes, &, sentence ends and and / or / but; parentheticals dropped; each item cleaned
    of a leading subject and verb, hedges and (`explained`: a stated answer) a trailing explanation; negated items
    and "none" dropped."""
    text = _PARENTHETICAL.sub(" ", _ANY_TAG.sub(" ", content))
    text = re.sub(r"\bn\s*/\s*a\b", "none", text, flags=re.I)
    found: dict[str, list[str]] = {"word": [], "none": [], "negated": [], "prose": []}
    for line in text.splitlines():
        for piece in _OPEN_SPLIT.split(_BULLET.sub("", line)):
            kind, item = _open_item(piece, explained)
            if kind:
                found[kind].append(item)
    if found["prose"]:
        return (), f"not emotion words: {'; '.join(dict.fromkeys(found['prose']))}"
    if found["word"]:
        return tuple(dict.fromkeys(found["word"])), None
    if found["none"]:
        return (), "no emotion"
    if found["negated"]:
        return (), f"no emotion: {', '.join(dict.fromkeys(found['negated']))}"
    return (), "empty answer"


def _read_open_answer(content: str, lenient: bool) -> tuple[tuple[str, ...], str | None]:
    """`_read_open` of a tagged answer; lenient: prose in the answer may still state the emotion in a phrase
    ("I think the emotion Ana feels is joy")."""
    words, reason = _read_open(content)
    if lenient and reason and reason.startswith("not emotion words"):
        for m in reversed(list(_OPEN_PHRASE.finditer(_ANY_TAG.sub(" ", content)))):
            if (phrase := _read_open(m.group(1)))[0]:
                return phrase
    return words, reason


def _lenient_fallback(
    outside: str, ls: LabelSet | None, open_vocabulary: bool
) -> tuple[str, str | None, str | None, tuple[str, ...]]:
    """(answer text, label or None, reason or None, open-vocabulary words) read from untagged text."""
    text = _ANY_TAG.sub(" ", outside).strip()
    if not text:
        return "", None, "no answer", ()
    lines = [line for line in text.splitlines() if line.strip()]
    if open_vocabulary:
        # "The emotion expressed by Kim is surprise" (the last such phrase first), then the last line.
        # A bare last line is read without cutting explanations: "she is happy about the whole situation" is prose.
        candidates = [(m.group(1), True) for m in reversed(list(_OPEN_PHRASE.finditer(text)))] + [(lines[-1], False)]
        reasons = []
        for candidate, explained in candidates:
            words, reason = _read_open(candidate, explained)
            if words:
                return candidate.strip(), None, None, words
            reasons.append(reason)
        return "", None, ("no emotion" if "no emotion" in reasons else "no answer"), ()
    if ls is None:  # no set to search: accept a short last line naming one thing ("nostalgia")
        words, _ = _read_open(lines[-1], explained=False)
        return (lines[-1].strip(), words[0], None, ()) if len(words) == 1 else ("", None, "no answer", ())
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
        readings = list(dict.fromkeys(_read_open_answer(content, mode == "lenient") for content in filled))
        if len(readings) > 1:
            read = (OPEN_VOCAB_SEPARATOR.join(words) or str(reason) for words, reason in readings)
            return result(reason=f"multiple answers: {'; '.join(read)}")
        words, reason = readings[0]
        if reason:
            return result(reason=reason, answer=answer)
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
