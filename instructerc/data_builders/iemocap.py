"""IEMOCAP builder for the DialogueRNN / COSMIC feature pickles (text and labels only; features are ignored).

Accepted layouts, detected by the tuple's length (`pickle.load(f, encoding="latin1")`):
  9  DialogueRNN IEMOCAP_features.pkl: videoIDs, videoSpeakers, videoLabels, videoText, videoAudio,
     videoVisual, videoSentence, trainVid, testVid
  12 the same with four text feature dicts: videoIDs, videoSpeakers, videoLabels, videoText1..4, videoAudio,
     videoVisual, videoSentence, trainVid, testVid
  10 COSMIC iemocap_features_roberta.pkl: speakers, labels, roberta1..4, sentences, trainIds, testIds,
     validIds
Each dict is keyed by dialogue id (e.g. "Ses01F_impro01"). Labels are ints in the order
0 happy, 1 sad, 2 neutral, 3 angry, 4 excited, 5 frustrated (strings are accepted too).

Splits: "test" is testVid. IEMOCAP has no official validation set, so unless the pickle has validIds (the
10-item layout) "validation" is carved from trainVid: the train ids are sorted and round(n * valid_ratio) of
them, evenly spaced through the sorted list, are taken; "train" is the rest. The choice depends only on the
ids, so it is the same on every run and machine.

Speakers: 'M' and 'F' (one male and one female actor per session) become "Male speaker" / "Female speaker",
readable in a prompt; the code is kept in utterance metadata ("speaker_code"). turn = utterance index.

The pickle is loaded with a restricted unpickler: only plain containers, numbers and numpy arrays can be
built, so a crafted file cannot run code.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy

from instructerc.data_builders.assembler import DialogueAssembler
from instructerc.data_builders.base import (
    CorpusSpec,
    LoadResult,
    Loc,
    SourceLike,
    normalize_label,
    resolve_source,
)
from instructerc.labels import LabelSet
from instructerc.schema import DataError, OnError, Problem, Utterance

LABEL_NAMES = ("happy", "sad", "neutral", "angry", "excited", "frustrated")
SPEAKER_NAMES = {"M": "Male speaker", "F": "Female speaker"}
FILE_NAMES = ("IEMOCAP_features.pkl", "IEMOCAP_features_raw.pkl", "iemocap_features_roberta.pkl")

# (module, name) globals the unpickler may resolve.
# _codecs.encode is how protocol-2 pickles written by Python 3 store bytes (e.g. numpy array buffers).
ALLOWED_GLOBALS = {
    *(("builtins", name) for name in ("set", "frozenset", "list", "dict", "tuple", "complex")),
    ("collections", "OrderedDict"),
    ("_codecs", "encode"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    *(
        (mod, name)
        for mod in ("numpy.core.multiarray", "numpy._core.multiarray")
        for name in ("_reconstruct", "scalar")
    ),
}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that refuses every global outside ALLOWED_GLOBALS."""

    source = "<pickle>"

    def find_class(self, module: str, name: str) -> Any:
        # Protocol <= 2 pickles (all Python 2 ones) call the builtins module "__builtin__".
        module = "builtins" if module == "__builtin__" else module
        if (module, name) not in ALLOWED_GLOBALS:
            message = f"refusing to unpickle {module}.{name}: only plain containers and numbers are allowed"
            raise DataError(Problem(self.source, None, None, message))
        if module == "numpy.core.multiarray" and hasattr(numpy, "_core"):
            # numpy >= 2 moved the module; importing the old name would only add a deprecation warning.
            module = "numpy._core.multiarray"
        return super().find_class(module, name)


def safe_load_pickle(path: Path) -> Any:
    """Load a pickle through RestrictedUnpickler (latin1 for Python 2 pickles); any failure is a DataError."""
    with open(path, "rb") as handle:
        unpickler = RestrictedUnpickler(handle, encoding="latin1")
        unpickler.source = str(path)
        try:
            return unpickler.load()
        except DataError:
            raise
        except Exception as err:  # a truncated or foreign file can fail in many ways
            raise DataError(
                Problem(str(path), None, None, f"not a readable pickle: {type(err).__name__}: {err}")
            ) from None


def _unpack(data: Any, source: str) -> tuple[dict[str, Any], list[Any], list[Any], list[Any] | None]:
    """(per-dialogue dicts by their upstream names, train ids, test ids, valid ids or None) of a layout.

    The dicts are, in order: utterance ids (not in the 10-item layout), speakers, labels, sentences."""
    if not isinstance(data, tuple | list) or len(data) not in (9, 10, 12):
        got = f"{type(data).__name__} of {len(data)} items" if isinstance(data, tuple | list) else type(data).__name__
        raise DataError(
            Problem(source, None, None, f"expected a tuple of 9 (DialogueRNN), 12 or 10 (COSMIC) items, got {got}")
        )
    if len(data) == 10:
        speakers, labels, *_, sentences, train, test, valid = data
        return {"speakers": speakers, "labels": labels, "sentences": sentences}, train, test, valid
    ids, speakers, labels, *_, sentences, train, test = data
    fields = {"videoIDs": ids, "videoSpeakers": speakers, "videoLabels": labels, "videoSentence": sentences}
    return fields, train, test, None


def carve_validation(train_ids: Sequence[str], valid_ratio: float) -> set[str]:
    """round(n * valid_ratio) ids evenly spaced through the sorted train ids (deterministic)."""
    if not 0 <= valid_ratio < 1:
        raise ValueError(f"valid_ratio must be in [0, 1), got {valid_ratio}")
    ordered = sorted(train_ids)
    count = round(len(ordered) * valid_ratio)
    return {ordered[int((k + 0.5) * len(ordered) / count)] for k in range(count)} if count else set()


def split_ids(train: Any, test: Any, valid: Any, split: str, valid_ratio: float) -> list[str]:
    """The dialogue ids of `split`, in sorted order."""
    train_ids, test_ids = [str(v) for v in train], [str(v) for v in test]
    if split == "test":
        return sorted(test_ids)
    held_out = {str(v) for v in valid} if valid is not None else carve_validation(train_ids, valid_ratio)
    if split == "validation":
        return sorted(held_out)
    return sorted(set(train_ids) - held_out)


def _dialogue(vid: str, fields: Mapping[str, Any], source: str, split: str) -> tuple[list[Any], list[Problem], int]:
    """Per-utterance (utterance id, speaker, label, text) of one dialogue, or dialogue-level problems; and the
    number of utterances (the longest per-utterance list, for counting what a rejected dialogue held)."""
    columns: dict[str, list[Any]] = {}
    problems = []
    for key, table in fields.items():
        value = table.get(vid) if isinstance(table, Mapping) else None
        if value is None:
            problems.append(Problem(source, None, f"{key}[{vid!r}]", f"missing (dialogue listed in the {split} ids)"))
        else:
            columns[key] = list(value)
    lengths = {key: len(values) for key, values in columns.items()}
    size = max(lengths.values(), default=0)
    if problems:
        return [], problems, size
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{key} {n}" for key, n in lengths.items())
        return [], [Problem(source, None, vid, f"per-utterance lists have different lengths ({detail})")], size
    tables = list(columns.values())
    if len(tables) == 3:  # no utterance ids in this layout
        tables.insert(0, [f"{vid}_{i}" for i in range(len(tables[0]))])
    return list(zip(*tables, strict=True)), [], size


def load(
    source: SourceLike,
    split: str,
    *,
    label_set: LabelSet,
    on_error: OnError = "raise",
    valid_ratio: float = 0.1,
    speaker_names: Mapping[str, str] | None = None,
) -> LoadResult:
    """Load one split of an IEMOCAP pickle (a file, or a folder holding one of FILE_NAMES)."""
    path = resolve_source(SPEC, source, split)
    fields, train, test, valid = _unpack(safe_load_pickle(path), str(path))
    names = dict(SPEAKER_NAMES) | dict(speaker_names or {})
    assembler = DialogueAssembler(str(path), split, on_error, sort_by_turn=False)
    for vid in split_ids(train, test, valid, split, valid_ratio):
        rows, problems, size = _dialogue(vid, fields, str(path), split)
        if problems:
            assembler.reject(vid, problems, utterances=size)
            continue
        for turn, (utt_id, code, raw_label, text) in enumerate(rows):
            loc = Loc(str(path), None, f"{vid}[{turn}]")
            found: list[Problem] = []
            label = normalize_label(raw_label, label_set, loc, "label", found, names=LABEL_NAMES)
            speaker = names.get(str(code).strip(), str(code).strip())
            metadata = {"speaker_code": str(code).strip(), "utterance_id": str(utt_id)}
            utterance = Utterance(turn, speaker, str(text).strip(), label=label, metadata=metadata)
            assembler.add(vid, utterance, loc, found)
    return assembler.result()


SPEC = CorpusSpec(
    name="iemocap",
    label_set="iemocap",
    splits=("train", "validation", "test"),
    description="IEMOCAP, DialogueRNN/COSMIC feature pickle (text, 6 emotions); validation carved from train",
    load=load,
    file_names={split: FILE_NAMES for split in ("train", "validation", "test")},
)
