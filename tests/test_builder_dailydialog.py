"""DailyDialog builder: fixtures train.json (a JSON list) and validation.jsonl (JSON lines)."""

import json
from pathlib import Path

import pytest

from instructerc.data_builders import load_corpus
from instructerc.schema import DataError, check_dialogue

FIXTURES = Path(__file__).parent / "fixtures" / "dailydialog"
DD_LABELS = "neutral, anger, disgust, fear, happiness, sadness, surprise"


def write_records(path: Path, records: list, lines: bool) -> Path:
    text = "".join(json.dumps(r) + "\n" for r in records) if lines else json.dumps(records, indent=1)
    path.write_text(text, encoding="utf-8")
    return path


def test_json_list_layout_labels_speakers_and_ids():
    result = load_corpus("dailydialog", FIXTURES, "train")
    assert [d.id for d in result.dialogues] == ["train_0", "train_1", "train_2"]
    first = result.dialogues[0]
    assert [u.speaker for u in first.utterances] == ["A", "B", "A"]
    assert [u.turn for u in first.utterances] == [0, 1, 2]
    assert first.utterances[0].text == "Hey , did you finish the report ?"  # upstream tokenisation, stripped
    assert [u.metadata["act"] for u in first.utterances] == ["question", "inform", "commissive"]
    labels = [[u.label for u in d.utterances] for d in result.dialogues]
    assert labels == [
        ["neutral", "neutral", "happiness"],
        ["sadness", "surprise"],
        ["disgust", "anger", "neutral"],
    ]
    for dialogue in result.dialogues:
        assert dialogue.split == "train"
        check_dialogue(dialogue)


def test_json_lines_layout_with_ids():
    result = load_corpus("dailydialog", FIXTURES, "validation")
    assert [(d.id, d.split) for d in result.dialogues] == [("v-a", "validation"), ("v-b", "validation")]
    assert [u.label for u in result.dialogues[1].utterances] == ["fear", "fear"]


def test_length_mismatch_drops_the_dialogue(tmp_path):
    records = json.loads((FIXTURES / "train.json").read_text())
    records[1]["emotion"] = [5, 6, 0]
    path = write_records(tmp_path / "train.json", records, lines=False)
    with pytest.raises(DataError, match=r"train.json: \[1\].emotion: has 3 items for 2 utterances in 'dialog'"):
        load_corpus("dailydialog", path, "train")
    result = load_corpus("dailydialog", path, "train", on_error="drop")
    assert [d.id for d in result.dialogues] == ["train_0", "train_2"]
    assert result.dropped == 1


def test_bad_labels_and_empty_text_are_located(tmp_path):
    records = [json.loads(line) for line in (FIXTURES / "validation.jsonl").read_text().splitlines()]
    records[0]["emotion"] = [0, 9]
    records[1]["emotion"] = ["bored", 3]
    records[1]["dialog"][1] = " "
    path = write_records(tmp_path / "validation.jsonl", records, lines=True)
    with pytest.raises(DataError) as err:
        load_corpus("dailydialog", path, "validation")
    assert [str(p) for p in err.value.problems] == [
        f"{path}:1: emotion[1]: label index 9 is out of range "
        "(0..6: no emotion, anger, disgust, fear, happiness, sadness, surprise)",
        f"{path}:2: emotion[0]: unknown label 'bored' (expected one of: {DD_LABELS})",
        f"{path}:2: dialog[1]: is empty",
    ]
    result = load_corpus("dailydialog", path, "validation", on_error="drop")
    assert [(d.id, [u.turn for u in d.utterances]) for d in result.dialogues] == [("v-a", [0])]
    assert result.dropped == 3


def test_duplicate_ids_and_non_utf8(tmp_path):
    records = [
        {"id": "x", "dialog": ["Hi ."], "emotion": [0]},
        {"id": "x", "dialog": ["Yo ."], "emotion": [0]},
    ]
    path = write_records(tmp_path / "test.jsonl", records, lines=True)
    result = load_corpus("dailydialog", tmp_path, "test", on_error="drop")
    assert [d.id for d in result.dialogues] == ["x"] and result.dropped == 1
    assert str(result.problems[0]) == f"{path}:2: id: duplicate dialogue id 'x'"
    path.write_bytes(path.read_bytes().replace(b"Yo", b"Y\xff"))
    with pytest.raises(DataError, match=r"test.jsonl:2: not valid UTF-8 \(byte 0xff"):
        load_corpus("dailydialog", path, "test")


def test_every_invalid_json_line_is_listed(tmp_path):
    path = tmp_path / "test.jsonl"
    path.write_text('{"dialog": ["Hi ."], "emotion": [0]}\n{"dialog": [\n{"dialog": ["Ok ."], "emotion": [0]}\n{,\n')
    with pytest.raises(DataError) as err:
        load_corpus("dailydialog", path, "test")
    assert [p.line for p in err.value.problems] == [2, 4]
    assert all(p.message.startswith("invalid JSON") for p in err.value.problems)


def test_counts_whole_dialogues_and_single_utterances_apart(tmp_path):
    records = [
        {"id": "a", "dialog": ["Hi .", "Bye ."], "emotion": [0, 9]},  # one bad label
        {"id": "b", "dialog": ["One .", "Two .", "Three ."], "emotion": [0, 0]},  # lengths differ
        {"id": "c", "dialog": ["Ok ."], "emotion": [0]},
    ]
    path = write_records(tmp_path / "test.jsonl", records, lines=True)
    result = load_corpus("dailydialog", path, "test", on_error="drop")
    assert [d.id for d in result.dialogues] == ["a", "c"] and result.dropped == 2
    assert (result.dropped_utterances, result.dropped_dialogues, result.dropped_dialogue_utterances) == (1, 1, 3)
    assert result.shared_source == str(path)  # a single file: no split information
