"""EmoryNLP (Friends scenes) CSV builder: `emorynlp_{train,dev,test}_final.csv` (dev -> split "validation").

Columns: Utterance, Speaker, Emotion, Scene_ID, Utterance_ID, Season, Episode, Start_Time, End_Time.
A dialogue is a scene, keyed by Season+Episode+Scene_ID with id "s<season>_e<episode>_c<scene>", ordered by
Utterance_ID (the turn id). `Speaker` is a Python list literal such as ['Ross Geller']; several speakers
talking together are joined with " and ". Labels (Neutral, Joyful, Scared, Mad, Peaceful, Powerful, Sad) are
normalised to the lower-case "emorynlp" label set.
"""

from __future__ import annotations

import ast

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

REQUIRED_COLUMNS = ("Utterance", "Speaker", "Emotion", "Scene_ID", "Utterance_ID", "Season", "Episode")
COLUMNS = {
    "turn": "Utterance_ID",
    "speaker": "Speaker",
    "text": "Utterance",
    "label": "Emotion",
    "start": "Start_Time",
    "end": "End_Time",
}
SCENE_COLUMNS = {"season": "Season", "episode": "Episode", "scene": "Scene_ID"}


def parse_speakers(value: str, loc: Loc, problems: list[Problem]) -> str | None:
    """ "['Monica Geller', 'Phoebe Buffay']" -> "Monica Geller and Phoebe Buffay"; a problem if malformed."""
    try:
        # literal_eval only builds literals (no calls), so it is safe on untrusted text.
        parsed = ast.literal_eval(value.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        parsed = None
    if isinstance(parsed, list | tuple) and parsed and all(isinstance(s, str) and s.strip() for s in parsed):
        return " and ".join(s.strip() for s in parsed)
    problems.append(loc.problem("Speaker", f"expected a non-empty list literal such as ['Ross Geller'], got {value!r}"))
    return None


def load(source: SourceLike, split: str, *, label_set: LabelSet, on_error: OnError = "raise") -> LoadResult:
    """Load one EmoryNLP split from a folder (conventional file names) or a CSV file."""
    path = resolve_source(SPEC, source, split)
    assembler = DialogueAssembler(str(path), split, on_error, columns=COLUMNS)
    for loc, row, problems in read_csv(path, REQUIRED_COLUMNS):
        scene = {key: parse_int(row[col], loc, col, problems) for key, col in SCENE_COLUMNS.items()}
        row["Speaker"] = parse_speakers(row["Speaker"], loc, problems) or ""
        utterance = utterance_from_row(row, COLUMNS, loc, label_set, problems)
        dialogue_id = None if None in scene.values() else "s{season}_e{episode}_c{scene}".format(**scene)
        assembler.add(dialogue_id, utterance, loc, problems, metadata=scene)
    # A single CSV file has no split information: any split asked for gets the same rows.
    return assembler.result(shared_source=str(path) if is_single_file(source) else None)


SPEC = CorpusSpec(
    name="emorynlp",
    label_set="emorynlp",
    splits=("train", "validation", "test"),
    description="EmoryNLP (Friends scenes) CSV files emorynlp_*_final.csv; Willcox's 7 core emotions",
    load=load,
    file_names={
        "train": ("emorynlp_train_final.csv",),
        "validation": ("emorynlp_dev_final.csv",),
        "test": ("emorynlp_test_final.csv",),
    },
)
