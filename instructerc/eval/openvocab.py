"""Open-vocabulary (OV-MER-style) set metrics: emotion words grouped through emotion wheels, then set P/R/F.

A word is grouped in three steps (docs/evaluation.md): word-form normalisation (lower case, the form table in
wheels/forms.yaml, then suffix rules), a wheel lookup at level 1 (core) or level 2 (middle ring), and, only for
words the wheel does not cover, the synonym groups (wheels/synonyms.yaml, then labels.SYNONYMS). A word that
nothing covers is its own group (its normalised form), so an unknown word still matches itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache
from importlib import resources
from typing import Any

import yaml

from instructerc.labels import SYNONYMS, clean_word

WHEELS = ("plutchik", "parrott", "willcox")
LEVELS = (1, 2)

# Suffix rules (suffix, replacement), tried in order; each yields a candidate form. Only candidates that some
# wheel or table knows are ever used, so a wrong stem ("lonely" -> "lone") is harmless.
_RULES = (
    ("iness", "y"),
    ("ily", "y"),
    ("ied", "y"),
    ("ness", ""),
    ("fully", ""),
    ("ful", ""),
    ("ment", ""),
    ("ation", "ate"),
    ("ed", ""),
    ("ed", "e"),
    ("ing", ""),
    ("ing", "e"),
    ("ly", ""),
)


class WheelError(ValueError):
    """A wheel or table file is malformed; the message names the file and the entry."""


def _load_yaml(name: str) -> dict:
    text = resources.files("instructerc.eval").joinpath("wheels", f"{name}.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise WheelError(f"wheels/{name}.yaml: expected a mapping")
    return data


def _word_lists(data: Any, where: str) -> dict[str, list[str]]:
    """A mapping head -> list of clean words, checked."""
    if not isinstance(data, dict) or not data:
        raise WheelError(f"{where}: expected a non-empty mapping")
    out = {}
    for head, words in data.items():
        if not isinstance(head, str) or not isinstance(words, list) or not all(isinstance(w, str) for w in words):
            raise WheelError(f"{where}: {head!r} must map to a list of words")
        for word in [head, *words]:
            if clean_word(word) != word or not word:
                raise WheelError(f"{where}: {word!r} is not a clean lower-case word")
        out[head] = words
    return out


def _unique_map(groups: dict[str, list[str]], where: str) -> dict[str, str]:
    """word -> head over every group; a word in two groups is an error."""
    out: dict[str, str] = {}
    for head, words in groups.items():
        for word in words:
            if out.get(word, head) != head:
                raise WheelError(f"{where}: {word!r} is in both {out[word]!r} and {head!r}")
            out[word] = head
    return out


@lru_cache(maxsize=1)
def form_heads() -> dict[str, str]:
    """Explicit form table: word form -> head form (angry -> anger)."""
    return _unique_map(_word_lists(_load_yaml("forms").get("forms"), "wheels/forms.yaml: forms"), "wheels/forms.yaml")


@lru_cache(maxsize=1)
def synonym_heads() -> dict[str, str]:
    """Near-synonym table: word -> group head (glad -> happy)."""
    groups = _word_lists(_load_yaml("synonyms").get("groups"), "wheels/synonyms.yaml: groups")
    return _unique_map(groups, "wheels/synonyms.yaml")


def forms(word: str) -> list[str]:
    """Candidate forms of a word, most specific first: itself, suffix-rule stems, then their table heads."""
    word = clean_word(word)
    out = [word]
    for suffix, repl in _RULES:
        if word.endswith(suffix) and len(word) - len(suffix) + len(repl) >= 3:
            stem = word[: -len(suffix)] + repl
            out.append(stem)
            if not repl and len(stem) > 3 and stem[-1] == stem[-2]:  # stunned -> stunn -> stun
                out.append(stem[:-1])
    heads = form_heads()
    out += [heads[f] for f in out if f in heads]
    return list(dict.fromkeys(out))


@dataclass(frozen=True)
class Wheel:
    """One emotion wheel: every covered word -> (level-1 node, level-2 node)."""

    name: str
    title: str
    source: str
    exact: dict[str, tuple[str, str]]
    stems: dict[str, tuple[str, str]] = field(default_factory=dict)  # unambiguous other forms of covered words

    def lookup(self, word: str) -> tuple[str, str] | None:
        """(level-1, level-2) nodes of a word or one of its forms; None when the wheel does not cover it."""
        candidates = forms(word)
        for table in (self.exact, self.stems):
            for form in candidates:
                if form in table:
                    return table[form]
        return None

    @property
    def words(self) -> set[str]:
        return set(self.exact)


@cache
def load_wheel(name: str) -> Wheel:
    """Load and validate wheels/<name>.yaml: a tree level-1 -> level-2 -> words (the outer ring)."""
    data = _load_yaml(name)
    where = f"wheels/{name}.yaml"
    if data.get("name") != name:
        raise WheelError(f"{where}: name is {data.get('name')!r}, expected {name!r}")
    tree = data.get("tree")
    if not isinstance(tree, dict) or not tree:
        raise WheelError(f"{where}: tree must map level-1 emotions to level-2 emotions")
    exact: dict[str, tuple[str, str]] = {}
    names: dict[str, tuple[str, str]] = {}  # node names: covered too, unless a list places the word elsewhere
    for top, middle in tree.items():
        groups = _word_lists(middle, f"{where}: {top}")
        names.setdefault(top, (top, f"{top}/{top}"))  # a core word is more general than its middle ring
        for mid, words in groups.items():
            node = (top, f"{top}/{mid}")
            names[mid] = node  # a middle-ring word names its own level-2 node
            for word in words:
                if exact.get(word, node) != node:
                    raise WheelError(f"{where}: {word!r} is under both {exact[word][1]!r} and {node[1]!r}")
                exact[word] = node
    exact = {**names, **exact}
    candidates: dict[str, set[tuple[str, str]]] = {}
    for word, node in exact.items():
        for form in forms(word)[1:]:
            candidates.setdefault(form, set()).add(node)
    stems = {f: next(iter(n)) for f, n in candidates.items() if len(n) == 1 and f not in exact}
    return Wheel(name, str(data.get("title", name)), " ".join(str(data.get("source", "")).split()), exact, stems)


@lru_cache(maxsize=1)
def vocabulary() -> frozenset[str]:
    """Every word a wheel or table covers."""
    words = set(form_heads()) | set(form_heads().values()) | set(synonym_heads()) | set(synonym_heads().values())
    for name in WHEELS:
        words |= load_wheel(name).words
    return frozenset(words)


def canonical(word: str) -> str:
    """The normalised form of a word: its form-table head, else its first form that a wheel or table knows, else
    the cleaned word (surprised -> surprise, sadly -> sad)."""
    candidates, heads, known = forms(word), form_heads(), vocabulary()
    table = [heads[f] for f in candidates if f in heads]
    return table[0] if table else next((f for f in candidates if f in known), candidates[0])


def group(word: str, wheel: str, level: int) -> str:
    """The group a word falls in: its wheel node at `level`, else its synonym head's node, else itself."""
    if level not in LEVELS:
        raise ValueError(f"level must be 1 or 2, got {level!r}")
    w = load_wheel(wheel)
    node = w.lookup(word)
    if node is None:
        heads: list[str] = []
        for form in forms(word):
            heads += [h for h in (synonym_heads().get(form), SYNONYMS.get(form)) if h is not None]
        heads += [SYNONYMS[h] for h in heads if h in SYNONYMS]  # scared -> fear, where a wheel only has "fear"
        for head in dict.fromkeys(heads):
            if (node := w.lookup(head)) is not None:
                break
        else:
            return canonical(heads[0] if heads else word)
    return node[level - 1]


def set_scores(gold: Iterable[str], predicted: Iterable[str], wheel: str, level: int) -> tuple[float, float] | None:
    """(precision, recall) of one sample after grouping; None when the gold set is empty (the sample is skipped)."""
    y = {group(w, wheel, level) for w in gold if clean_word(w)}
    if not y:
        return None
    y_hat = {group(w, wheel, level) for w in predicted if clean_word(w)}
    hit = len(y & y_hat)
    return (hit / len(y_hat) if y_hat else 0.0), hit / len(y)


def _prf(pairs: list[tuple[float, float]]) -> dict[str, float]:
    # F from the averaged P and R (as OV-MER does), not the mean of per-sample F scores.
    p = sum(x for x, _ in pairs) / len(pairs) if pairs else 0.0
    r = sum(y for _, y in pairs) / len(pairs) if pairs else 0.0
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0}


def open_vocab_scores(
    gold_sets: Sequence[Sequence[str]],
    predicted_sets: Sequence[Sequence[str]],
    *,
    wheels: Sequence[str] = WHEELS,
    levels: Sequence[int] = LEVELS,
) -> tuple[dict[str, Any], list[dict | None]]:
    """(summary, per-sample scores). Summary: n, skipped, wheels -> level<k> -> P/R/F, average -> level<k> -> the
    mean of each of P, R and F over wheels. Per sample: None when skipped, else wheel -> level<k> -> P/R."""
    if len(gold_sets) != len(predicted_sets):
        raise ValueError(f"{len(gold_sets)} gold sets but {len(predicted_sets)} predicted sets")
    per_sample: list[dict | None] = []
    pairs: dict[tuple[str, int], list[tuple[float, float]]] = {(w, k): [] for w in wheels for k in levels}
    for gold, predicted in zip(gold_sets, predicted_sets, strict=True):
        sample: dict[str, dict] = {}
        for w in wheels:
            for k in levels:
                scores = set_scores(gold, predicted, w, k)
                if scores is None:
                    break
                pairs[w, k].append(scores)
                sample.setdefault(w, {})[f"level{k}"] = {"precision": scores[0], "recall": scores[1]}
        per_sample.append(sample or None)
    n = sum(s is not None for s in per_sample)
    by_wheel = {w: {f"level{k}": _prf(pairs[w, k]) for k in levels} for w in wheels}
    average = (
        {
            f"level{k}": {
                m: sum(by_wheel[w][f"level{k}"][m] for w in wheels) / len(wheels) for m in ("precision", "recall", "f1")
            }
            for k in levels
        }
        if wheels
        else {}
    )
    return {"n": n, "skipped": len(per_sample) - n, "wheels": by_wheel, "average": average}, per_sample


__all__ = [
    "LEVELS",
    "WHEELS",
    "Wheel",
    "WheelError",
    "canonical",
    "form_heads",
    "forms",
    "group",
    "load_wheel",
    "open_vocab_scores",
    "set_scores",
    "synonym_heads",
    "vocabulary",
]
