"""DailyDialog builder for the Hugging Face `daily_dialog` record layout, as JSON lines or one JSON list.

Record: {"dialog": [str, ...], "act": [int, ...], "emotion": [int, ...]} (optional "id"). Emotion ints are
0 no emotion (-> neutral), 1 anger, 2 disgust, 3 fear, 4 happiness, 5 sadness, 6 surprise; label words are
accepted too. Speakers alternate "A" / "B" (DailyDialog has no names). Dialogue id: the record's "id", else
f"{split}_{index}" (index of the record in its file). Dialogue acts go to utterance metadata as words.
Files in a folder: {train,validation,test}.json or .jsonl. Lists of different lengths drop the dialogue.
Text is kept as tokenised upstream (" , " and " ?"), only stripped.
"""

from __future__ import annotations

from typing import Any

from instructerc.data_builders.assembler import DialogueAssembler
from instructerc.data_builders.base import (
    CorpusSpec,
    LoadResult,
    Loc,
    SourceLike,
    is_single_file,
    normalize_label,
    read_json_records,
    resolve_source,
)
from instructerc.labels import LabelSet
from instructerc.schema import OnError, Problem, Utterance

EMOTION_NAMES = ("no emotion", "anger", "disgust", "fear", "happiness", "sadness", "surprise")
ACT_NAMES = {1: "inform", 2: "question", 3: "directive", 4: "commissive"}
SPLITS = ("train", "validation", "test")


def record_problems(record: Any, loc: Loc) -> list[Problem]:
    """Dialogue-level problems of one record: wrong types or per-utterance lists of different lengths."""
    if not isinstance(record, dict):
        return [loc.problem(None, f"expected an object with 'dialog' and 'emotion' lists, got {type(record).__name__}")]
    turns = record.get("dialog")
    if not isinstance(turns, list) or not turns:
        return [loc.problem("dialog", f"expected a non-empty list of utterances, got {turns!r}")]
    problems = []
    for key in ("emotion", "act"):
        values = record.get(key)
        if values is None and key == "act":
            continue
        if not isinstance(values, list):
            problems.append(loc.problem(key, f"expected a list, got {values!r}"))
        elif len(values) != len(turns):
            problems.append(loc.problem(key, f"has {len(values)} items for {len(turns)} utterances in 'dialog'"))
    return problems


def load(source: SourceLike, split: str, *, label_set: LabelSet, on_error: OnError = "raise") -> LoadResult:
    """Load one DailyDialog split from a folder ({split}.json / .jsonl) or a JSON / JSON lines file."""
    path = resolve_source(SPEC, source, split)
    assembler = DialogueAssembler(str(path), split, on_error, sort_by_turn=False)
    for index, (loc, record) in enumerate(read_json_records(path)):
        given = record.get("id") if isinstance(record, dict) else None
        dialogue_id = str(given) if given not in (None, "") else f"{split}_{index}"
        turns = record.get("dialog") if isinstance(record, dict) else None
        size = len(turns) if isinstance(turns, list) else 0
        if dialogue_id in assembler.groups:
            assembler.drop(
                [loc.problem("id", f"duplicate dialogue id {dialogue_id!r}")], dialogue=True, utterances=size
            )
            continue
        if problems := record_problems(record, loc):
            assembler.reject(dialogue_id, problems, utterances=size)
            continue
        acts = record.get("act") or [None] * len(record["dialog"])
        for turn, (text, emotion, act) in enumerate(zip(record["dialog"], record["emotion"], acts, strict=True)):
            columns = {"text": f"dialog[{turn}]", "label": f"emotion[{turn}]"}
            found: list[Problem] = []
            label = normalize_label(emotion, label_set, loc, columns["label"], found, names=EMOTION_NAMES)
            metadata = {"act": ACT_NAMES.get(act, act) if isinstance(act, int) else act} if act is not None else {}
            utterance = Utterance(
                turn, "A" if turn % 2 == 0 else "B", str(text).strip(), label=label, metadata=metadata
            )
            assembler.add(dialogue_id, utterance, loc, found, columns=columns)
    # A single file has no split information: any split asked for gets the same records.
    return assembler.result(shared_source=str(path) if is_single_file(source) else None)


SPEC = CorpusSpec(
    name="dailydialog",
    label_set="dailydialog",
    splits=SPLITS,
    description="DailyDialog in the Hugging Face daily_dialog layout (JSON / JSON lines); 7 classes",
    load=load,
    file_names={split: (f"{split}.json", f"{split}.jsonl") for split in SPLITS},
)
