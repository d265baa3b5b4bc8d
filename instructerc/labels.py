"""Label sets of the supported corpora, normalisation of label words, and a unified taxonomy.

This module is the one place where label sets live. Normalisation is two-step: a word is lower-cased and
stripped, mapped through SYNONYMS to an emotion *concept* (joyful -> joy, mad -> anger), and the concept is
mapped to the label set's own spelling (MELD says "joy", EmoryNLP "joyful", IEMOCAP "happy"). Words that
name no label of the set normalise to None: callers decide whether that is an error or an invalid answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Word (lower case) -> emotion concept. Concepts are the MELD/Ekman names plus the extra classes of
# IEMOCAP and EmoryNLP. Only near-synonyms belong here; broader grouping is the emotion wheels' job.
SYNONYMS: dict[str, str] = {
    # neutral
    "neutral": "neutral",
    "neu": "neutral",
    "no emotion": "neutral",
    "none": "neutral",
    "calm": "neutral",
    "neutrality": "neutral",
    # joy
    "joy": "joy",
    "joyful": "joy",
    "joyous": "joy",
    "happy": "joy",
    "happiness": "joy",
    "hap": "joy",
    "glad": "joy",
    "delighted": "joy",
    "cheerful": "joy",
    "pleased": "joy",
    # sadness
    "sadness": "sadness",
    "sad": "sadness",
    "sorrow": "sadness",
    "unhappy": "sadness",
    "unhappiness": "sadness",
    "upset": "sadness",
    "depressed": "sadness",
    # anger
    "anger": "anger",
    "angry": "anger",
    "mad": "anger",
    "ang": "anger",
    "furious": "anger",
    "rage": "anger",
    "irritated": "anger",
    "annoyed": "anger",
    "annoyance": "anger",
    # fear
    "fear": "fear",
    "fearful": "fear",
    "scared": "fear",
    "afraid": "fear",
    "frightened": "fear",
    "terrified": "fear",
    "anxious": "fear",
    "anxiety": "fear",
    # surprise
    "surprise": "surprise",
    "surprised": "surprise",
    "astonished": "surprise",
    "amazed": "surprise",
    "shocked": "surprise",
    "shock": "surprise",
    # disgust
    "disgust": "disgust",
    "disgusted": "disgust",
    "revulsion": "disgust",
    "grossed out": "disgust",
    # IEMOCAP extras
    "excited": "excitement",
    "excitement": "excitement",
    "exc": "excitement",
    "frustrated": "frustration",
    "frustration": "frustration",
    "fru": "frustration",
    # EmoryNLP extras
    "peaceful": "peaceful",
    "peace": "peaceful",
    "serene": "peaceful",
    "content": "peaceful",
    "powerful": "powerful",
    "confident": "powerful",
    "proud": "powerful",
}


def clean_word(word: str) -> str:
    """Lower-case, trim, and drop surrounding quotes/punctuation and inner runs of spaces."""
    word = re.sub(r"\s+", " ", word.strip().lower())
    return word.strip(" \t\"'`.,;:!?()[]{}*_")


def concept_of(word: str) -> str | None:
    """The emotion concept a word names, or None if the word is not a known emotion word."""
    return SYNONYMS.get(clean_word(word))


@dataclass(frozen=True)
class LabelSet:
    """A corpus's closed label set: its own spellings, in its conventional order, with their concepts."""

    name: str
    labels: tuple[str, ...]
    concepts: dict[str, str] = field(default_factory=dict)  # label -> concept; a missing entry means itself
    description: str = ""

    def __post_init__(self) -> None:
        seen: dict[str, str] = {}
        for label in self.labels:
            concept = self.concept(label)
            if concept in seen:
                raise ValueError(f"label set {self.name}: {label!r} and {seen[concept]!r} share concept {concept!r}")
            seen[concept] = label

    def concept(self, label: str) -> str:
        return self.concepts.get(label, label)

    def normalize(self, word: str) -> str | None:
        """Map a word to this set's spelling of the same label (case, synonyms), or None when it names none."""
        cleaned = clean_word(word)
        if cleaned in self.labels:
            return cleaned
        concept = SYNONYMS.get(cleaned)
        for label in self.labels:
            if concept is not None and self.concept(label) == concept:
                return label
        return None

    def __contains__(self, label: object) -> bool:
        return label in self.labels

    def __len__(self) -> int:
        return len(self.labels)


LABEL_SETS: dict[str, LabelSet] = {
    "meld": LabelSet(
        "meld",
        ("neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger"),
        description="MELD (Friends), Ekman's six basic emotions plus neutral",
    ),
    "emorynlp": LabelSet(
        "emorynlp",
        ("neutral", "joyful", "peaceful", "powerful", "scared", "mad", "sad"),
        concepts={"joyful": "joy", "scared": "fear", "mad": "anger", "sad": "sadness"},
        description="EmoryNLP (Friends scenes), Willcox's feeling wheel core emotions plus neutral",
    ),
    "iemocap": LabelSet(
        "iemocap",
        ("happy", "sad", "neutral", "angry", "excited", "frustrated"),
        concepts={
            "happy": "joy",
            "sad": "sadness",
            "angry": "anger",
            "excited": "excitement",
            "frustrated": "frustration",
        },
        description="IEMOCAP six-class setting (COSMIC / DialogueRNN order)",
    ),
    "dailydialog": LabelSet(
        "dailydialog",
        ("neutral", "anger", "disgust", "fear", "happiness", "sadness", "surprise"),
        concepts={"happiness": "joy"},
        description="DailyDialog; 'no emotion' is called neutral",
    ),
}

# A unified 7-class taxonomy (Ekman's six plus neutral) for training or evaluating across corpora.
# Corpus-specific classes are folded in by valence and arousal: excitement and powerful are positive (joy),
# peaceful is low-arousal non-negative (neutral), frustration is negative high-arousal (anger).
UNIFIED = LabelSet(
    "unified",
    ("neutral", "joy", "sadness", "anger", "fear", "surprise", "disgust"),
    description="Ekman's six basic emotions plus neutral, shared by every corpus",
)
UNIFIED_CONCEPT: dict[str, str] = {
    "excitement": "joy",
    "powerful": "joy",
    "peaceful": "neutral",
    "frustration": "anger",
}


def get_label_set(name: str) -> LabelSet:
    """Look up a label set by corpus name (case-insensitive), or build one from a comma-separated list."""
    key = name.strip().lower()
    if key == "unified":
        return UNIFIED
    if key in LABEL_SETS:
        return LABEL_SETS[key]
    if "," in name:
        return custom_label_set(name.split(","))
    raise KeyError(
        f"unknown label set {name!r}; known: {', '.join([*LABEL_SETS, 'unified'])} (or a comma-separated list)"
    )


def custom_label_set(labels: list[str], name: str = "custom") -> LabelSet:
    """A label set from user-given words; each word keeps its own spelling (cleaned)."""
    cleaned = tuple(dict.fromkeys(clean_word(label) for label in labels if clean_word(label)))
    if not cleaned:
        raise ValueError("a label set needs at least one label")
    concepts = {label: SYNONYMS.get(label, label) for label in cleaned}
    return LabelSet(name, cleaned, concepts=concepts)


def to_unified(label: str, label_set: LabelSet) -> str:
    """Map a label of `label_set` to the unified taxonomy."""
    if label not in label_set:
        raise ValueError(f"{label!r} is not a label of {label_set.name} ({', '.join(label_set.labels)})")
    concept = label_set.concept(label)
    return UNIFIED_CONCEPT.get(concept, concept)
