"""MELD (Friends) CSV builder: train_sent_emo.csv, dev_sent_emo.csv (split "validation"), test_sent_emo.csv.

Columns: Sr No., Utterance, Speaker, Emotion, Sentiment, Dialogue_ID, Utterance_ID, Season, Episode,
StartTime, EndTime. A dialogue is the rows sharing Dialogue_ID, ordered by Utterance_ID (the turn id); its id
is "dia<Dialogue_ID>", the prefix of MELD's clip names (dia0_utt3.mp4). Times such as 00:16:16,059 become
seconds.
Sentiment and Sr No. go to utterance metadata, Season and Episode to dialogue metadata. Text is kept as is
(MELD's typographic quotes and occasional mojibake included) apart from stripping surrounding whitespace.
"""

from __future__ import annotations

from typing import Any

from instructerc.data_builders.assembler import DialogueAssembler, utterance_from_row
from instructerc.data_builders.base import (
    CorpusSpec,
    LoadResult,
    Loc,
    SourceLike,
    is_single_file,
    parse_int,
    read_csv,
    resolve_source,
)
from instructerc.labels import LabelSet
from instructerc.schema import OnError, Problem

REQUIRED_COLUMNS = ("Utterance", "Speaker", "Emotion", "Dialogue_ID", "Utterance_ID")
# Canonical utterance field -> MELD column.
COLUMNS = {
    "turn": "Utterance_ID",
    "speaker": "Speaker",
    "text": "Utterance",
    "label": "Emotion",
    "start": "StartTime",
    "end": "EndTime",
}


def optional_ints(row: dict[str, str], names: dict[str, str], loc: Loc, problems: list[Problem]) -> dict[str, Any]:
    """Metadata from optional integer columns (metadata key -> column) that are present and not blank."""
    values = {key: parse_int(row[col], loc, col, problems) for key, col in names.items() if row.get(col, "").strip()}
    return {key: value for key, value in values.items() if value is not None}


def load(source: SourceLike, split: str, *, label_set: LabelSet, on_error: OnError = "raise") -> LoadResult:
    """Load one MELD split from a folder (conventional file names) or a CSV file."""
    path = resolve_source(SPEC, source, split)
    assembler = DialogueAssembler(str(path), split, on_error, columns=COLUMNS)
    for loc, row, problems in read_csv(path, REQUIRED_COLUMNS):
        dialogue = parse_int(row["Dialogue_ID"], loc, "Dialogue_ID", problems)
        metadata = {"sentiment": row["Sentiment"].strip()} if row.get("Sentiment", "").strip() else {}
        metadata |= optional_ints(row, {"sr_no": "Sr No."}, loc, problems)
        scene = optional_ints(row, {"season": "Season", "episode": "Episode"}, loc, problems)
        # Optional columns (StartTime, EndTime) absent from the header read as None, i.e. not given.
        utterance = utterance_from_row(row, COLUMNS, loc, label_set, problems, metadata=metadata)
        assembler.add(None if dialogue is None else f"dia{dialogue}", utterance, loc, problems, metadata=scene)
    # A single CSV file has no split information: any split asked for gets the same rows.
    return assembler.result(shared_source=str(path) if is_single_file(source) else None)


SPEC = CorpusSpec(
    name="meld",
    label_set="meld",
    splits=("train", "validation", "test"),
    description="MELD (Friends TV transcripts) CSV files *_sent_emo.csv; 7 emotions",
    load=load,
    file_names={
        "train": ("train_sent_emo.csv",),
        "validation": ("dev_sent_emo.csv",),
        "test": ("test_sent_emo.csv",),
    },
)
