"""Corpus builders: turn MELD, EmoryNLP, IEMOCAP, DailyDialog, canonical JSONL or any Hugging Face table into
canonical `Dialogue`s.

    result = load_corpus("meld", "data/meld", "validation")          # folder: conventional file names
    result = load_corpus("jsonl", "my.jsonl", "train", label_set="meld")
    result.dialogues, result.dropped, result.problems

See `base` for the on_error semantics shared by every builder.
"""

from __future__ import annotations

import inspect
from typing import Any

from instructerc.data_builders import dailydialog, emorynlp, hf, iemocap, jsonl, meld
from instructerc.data_builders.base import CorpusSpec, LoadResult, SourceLike, resolve_source
from instructerc.labels import LabelSet, get_label_set
from instructerc.schema import OnError

CORPORA: dict[str, CorpusSpec] = {
    module.SPEC.name: module.SPEC for module in (meld, emorynlp, iemocap, dailydialog, jsonl, hf)
}

__all__ = [
    "CORPORA",
    "CorpusSpec",
    "LoadResult",
    "get_corpus",
    "load_corpus",
    "resolve_label_set",
    "resolve_source",
]


def get_corpus(name: str) -> CorpusSpec:
    """The spec of a registered corpus (case-insensitive), or of a user builder named `package.module:attr`
    (a CorpusSpec, or a load function with the builders' signature: any split, label set from the user)."""
    if ":" in name:
        from instructerc.registry import resolve_dotted

        target = resolve_dotted(name)
        if isinstance(target, CorpusSpec):
            return target
        if not callable(target):
            raise ValueError(f"{name!r} is neither a CorpusSpec nor a load function")
        return CorpusSpec(name, None, (), f"user builder {name}", target)
    spec = CORPORA.get(name.strip().lower())
    if spec is None:
        known = ", ".join(CORPORA)
        raise ValueError(f"unknown corpus {name!r}; known corpora: {known} (or package.module:load)")
    return spec


def resolve_label_set(spec: CorpusSpec, label_set: LabelSet | str | None) -> LabelSet:
    """The user's label set (object, name or comma-separated list), else the corpus default."""
    if isinstance(label_set, LabelSet):
        return label_set
    if label_set is not None:
        return get_label_set(label_set)
    if spec.label_set is None:
        raise ValueError(
            f"corpus {spec.name!r} has no built-in label set: pass label_set= (a label set name such "
            "as 'meld', or a comma-separated list of labels)"
        )
    return get_label_set(spec.label_set)


def _check_options(spec: CorpusSpec, options: dict[str, Any]) -> None:
    params = inspect.signature(spec.load).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return  # the builder takes any option
    accepted = [n for n, p in params.items() if p.kind is p.KEYWORD_ONLY and n not in ("label_set", "on_error")]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(
            f"corpus {spec.name!r} does not take option(s) {', '.join(unknown)} "
            f"(it takes: {', '.join(accepted) or 'none'})"
        )


def load_corpus(
    name: str,
    source: SourceLike | None,
    split: str,
    *,
    label_set: LabelSet | str | None = None,
    on_error: OnError = "raise",
    **options: Any,
) -> LoadResult:
    """Load one split of a registered corpus as canonical dialogues (options: see each builder)."""
    spec = get_corpus(name)
    if spec.splits and split not in spec.splits:  # a user builder (no splits listed) takes any split
        raise ValueError(f"corpus {spec.name!r} has no split {split!r}; choose one of: {', '.join(spec.splits)}")
    if on_error not in ("raise", "drop"):
        raise ValueError(f"on_error must be 'raise' or 'drop', got {on_error!r}")
    _check_options(spec, options)
    return spec.load(source, split, label_set=resolve_label_set(spec, label_set), on_error=on_error, **options)
