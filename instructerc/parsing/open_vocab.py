"""Reading an open-vocabulary answer: every emotion word named, with prose, negations and "none" told apart."""

from __future__ import annotations

import re

from instructerc.labels import clean_word
from instructerc.parsing.text import _ANY_TAG, _NEGATORS, clean_answer

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


def read_open(content: str, explained: bool = True) -> tuple[tuple[str, ...], str | None]:
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


def read_open_answer(content: str, lenient: bool) -> tuple[tuple[str, ...], str | None]:
    """`read_open` of a tagged answer; lenient: prose in the answer may still state the emotion in a phrase
    ("I think the emotion Ana feels is joy")."""
    words, reason = read_open(content)
    if lenient and reason and reason.startswith("not emotion words"):
        for m in reversed(list(_OPEN_PHRASE.finditer(_ANY_TAG.sub(" ", content)))):
            if (phrase := read_open(m.group(1)))[0]:
                return phrase
    return words, reason


def read_untagged_open(text: str, lines: list[str]) -> tuple[str, str | None, str | None, tuple[str, ...]]:
    """(answer text, None, reason or None, emotion words) for an open-vocabulary output without answer tags."""
    # "The emotion expressed by Kim is surprise" (the last such phrase first), then the last line.
    # A bare last line is read without cutting explanations: "she is happy about the whole situation" is prose.
    candidates = [(m.group(1), True) for m in reversed(list(_OPEN_PHRASE.finditer(text)))] + [(lines[-1], False)]
    reasons = []
    for candidate, explained in candidates:
        words, reason = read_open(candidate, explained)
        if words:
            return candidate.strip(), None, None, words
        reasons.append(reason)
    return "", None, ("no emotion" if "no emotion" in reasons else "no answer"), ()
