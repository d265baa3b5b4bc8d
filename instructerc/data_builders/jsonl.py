"""Canonical JSONL builder (the format of instructerc.schema: one dialogue per line).

Source: a folder holding {train,validation,test}.jsonl, or a single file.
Split rule:
  * folder: the file name decides the split; a dialogue whose "split" field names another split is a problem.
  * single file: if ANY dialogue in it has a "split" field, only dialogues whose split equals the requested
    one are loaded (dialogues without one are ignored); if NO dialogue has a split field, every dialogue
    belongs to whatever split is asked for, and the result is marked `shared_source`: build-data refuses to
    build two splits (e.g. train and validation) from it, since they would be the same dialogues.
Gold `label`s are normalised through the user's label set (unknown label -> problem at file:line, field
utterances[i].label); open-vocabulary `labels` are kept as given. Utterances keep the file's order.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

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
from instructerc.schema import OnError, Problem, Utterance, iter_jsonl, validate_dialogue

SPLITS = ("train", "validation", "test")
_UTTERANCE_FIELD = re.compile(r"utterances\[(\d+)\]")


def partition(problems: list[Problem]) -> tuple[list[Problem], dict[int, list[Problem]], list[Problem]]:
    """Split schema problems into dialogue-level ones, per-utterance ones (by utterance index) and duplicate
    turn ids (which the assembler reports itself, unless the whole dialogue is rejected)."""
    dialogue_level: list[Problem] = []
    per_utterance: dict[int, list[Problem]] = {}
    duplicates: list[Problem] = []
    for problem in problems:
        match = _UTTERANCE_FIELD.match(problem.field or "")
        if match is None:
            dialogue_level.append(problem)
        elif problem.message.startswith("duplicate turn id"):
            duplicates.append(problem)
        else:
            per_utterance.setdefault(int(match.group(1)), []).append(problem)
    return dialogue_level, per_utterance, duplicates


def _turn(utt: Any) -> int | None:
    turn = utt.get("turn") if isinstance(utt, dict) else None
    return turn if isinstance(turn, int) and not isinstance(turn, bool) else None


def load(source: SourceLike, split: str, *, label_set: LabelSet, on_error: OnError = "raise") -> LoadResult:
    """Load one split of canonical JSONL dialogues (see the module docstring for the split rule)."""
    single_file = Path(source).is_file()
    path = resolve_source(SPEC, source, split)
    records: list[tuple[int, Any]] = list(iter_jsonl(path))
    filter_by_split = single_file and any(isinstance(d, dict) and d.get("split") is not None for _, d in records)
    shared_source = str(path) if single_file and not filter_by_split else None
    assembler = DialogueAssembler(str(path), split, on_error, sort_by_turn=False)
    first_line: dict[str, int] = {}
    for number, data in records:
        given_split = data.get("split") if isinstance(data, dict) else None
        if filter_by_split and given_split != split:
            continue
        dialogue_level, per_utterance, duplicates = partition(validate_dialogue(data, str(path), number))
        if not single_file and isinstance(given_split, str) and given_split != split:
            dialogue_level.append(
                Problem(str(path), number, "split", f"is {given_split!r} but {path.name} holds split {split!r}")
            )
        dialogue_id = (
            str(data["id"]) if isinstance(data, dict) and data.get("id") not in (None, "") else f"<line {number}>"
        )
        utterances = data.get("utterances") if isinstance(data, dict) else None
        size = len(utterances) if isinstance(utterances, list) else 0
        if dialogue_id in first_line:
            where = first_line[dialogue_id]
            problem = Problem(str(path), number, "id", f"duplicate dialogue id {dialogue_id!r} (first on line {where})")
            assembler.drop([problem], dialogue=True, utterances=size)
            continue
        first_line[dialogue_id] = number
        if dialogue_level:
            per_utterance_problems = [p for ps in per_utterance.values() for p in ps]
            assembler.reject(dialogue_id, [*dialogue_level, *per_utterance_problems, *duplicates], utterances=size)
            continue
        for index, utt in enumerate(data["utterances"]):
            loc = Loc(str(path), number, f"utterances[{index}]")
            found = list(per_utterance.get(index, []))
            utterance = None
            if not found:
                utterance = Utterance(**utt)
            if isinstance(utt, dict) and not any(p.field == f"{loc.prefix}.label" for p in found):
                # The label is checked even when the utterance has other problems, so that all are listed.
                label = normalize_label(utt.get("label"), label_set, loc, "label", found, required=False)
                if utterance is not None:
                    utterance.label = label
            assembler.add(dialogue_id, utterance, loc, found, metadata=data.get("metadata"), turn=_turn(utt))
    return assembler.result(shared_source=shared_source)


SPEC = CorpusSpec(
    name="jsonl",
    label_set=None,
    splits=SPLITS,
    description="canonical instructerc JSONL (one dialogue per line); labels checked against a label set",
    load=load,
    file_names={split: (f"{split}.jsonl",) for split in SPLITS},
)
