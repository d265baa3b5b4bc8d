"""Canonical JSONL builder: tests/fixtures/jsonl/{train,validation}.jsonl and single files made here."""

import json
from pathlib import Path

import pytest

from instructerc.data_builders import load_corpus
from instructerc.schema import DataError, check_dialogue

FIXTURES = Path(__file__).parent / "fixtures" / "jsonl"
MELD_LABELS = "neutral, surprise, fear, sadness, joy, disgust, anger"


def dialogue(id_: str, *labels: str | None, split: str | None = None) -> dict:
    utterances = [{"turn": i, "speaker": "S" if i % 2 else "R", "text": f"Line {i}."} for i in range(len(labels))]
    for utt, label in zip(utterances, labels, strict=True):
        if label is not None:
            utt["label"] = label
    return {"id": id_, **({"split": split} if split else {}), "utterances": utterances}


def write_lines(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_folder_labels_normalised_open_fields_kept():
    result = load_corpus("jsonl", FIXTURES, "train", label_set="meld")
    assert [d.id for d in result.dialogues] == ["t1", "t2"]
    first = result.dialogues[0]
    assert [u.label for u in first.utterances] == ["joy", "surprise", "neutral"]
    assert first.utterances[0].labels == ["elated", "proud"]  # open vocabulary: as given
    assert first.utterances[1].rationale == "Ben did not expect the news."
    assert (first.utterances[2].start, first.utterances[2].end) == (1.5, 2.0)
    assert first.metadata == {"source": "invented"}
    assert [u.label for u in result.dialogues[1].utterances] == ["anger", "fear"]
    for d in result.dialogues:
        assert d.split == "train"
        check_dialogue(d)
    valid = load_corpus("jsonl", FIXTURES, "validation", label_set="meld")
    assert [(d.id, d.split) for d in valid.dialogues] == [("v1", "validation")]


def test_other_label_set_changes_the_spelling():
    result = load_corpus("jsonl", FIXTURES, "train", label_set="happy,surprised,neutral,angry,scared")
    assert [u.label for u in result.dialogues[0].utterances] == ["happy", "surprised", "neutral"]
    assert [u.label for u in result.dialogues[1].utterances] == ["angry", "scared"]


def test_label_set_is_required():
    with pytest.raises(ValueError, match="corpus 'jsonl' has no built-in label set: pass label_set="):
        load_corpus("jsonl", FIXTURES, "train")


def test_single_file_with_split_fields_selects_by_split(tmp_path):
    path = write_lines(
        tmp_path / "all.jsonl",
        [
            dialogue("a", "joy", split="train"),
            dialogue("b", "fear", split="test"),
            dialogue("c", "joy"),
            dialogue("d", "anger", split="train"),
        ],
    )
    assert [d.id for d in load_corpus("jsonl", path, "train", label_set="meld").dialogues] == ["a", "d"]
    assert [d.id for d in load_corpus("jsonl", path, "test", label_set="meld").dialogues] == ["b"]
    with pytest.raises(DataError, match="no dialogues for split 'validation': it contains none"):
        load_corpus("jsonl", path, "validation", label_set="meld")


def test_single_file_without_split_fields_is_one_split_and_says_so(tmp_path):
    path = write_lines(tmp_path / "all.jsonl", [dialogue("a", "joy", None), dialogue("b", "fear")])
    result = load_corpus("jsonl", path, "test", label_set="meld")
    assert [(d.id, d.split) for d in result.dialogues] == [("a", "test"), ("b", "test")]
    assert result.dialogues[0].utterances[1].label is None  # unlabelled utterances are allowed
    # The file does not say which split its dialogues belong to: marked, so that build-data refuses to use
    # it for two splits (tests/test_build.py).
    assert result.shared_source == str(path)
    with_splits = write_lines(tmp_path / "split.jsonl", [dialogue("a", "joy", split="train")])
    assert load_corpus("jsonl", with_splits, "train", label_set="meld").shared_source is None
    assert load_corpus("jsonl", FIXTURES, "train", label_set="meld").shared_source is None


def test_folder_file_with_a_foreign_split_field(tmp_path):
    write_lines(tmp_path / "train.jsonl", [dialogue("a", "joy"), dialogue("b", "joy", split="test")])
    with pytest.raises(DataError, match=r"train.jsonl:2: split: is 'test' but train.jsonl holds split 'train'"):
        load_corpus("jsonl", tmp_path, "train", label_set="meld")


def test_unknown_label_empty_text_duplicate_turns(tmp_path):
    bad_turns = dialogue("c", "joy", "joy")
    bad_turns["utterances"][1]["turn"] = 0
    empty = dialogue("b", "joy", "sadness")
    empty["utterances"][0]["text"] = " "
    path = write_lines(tmp_path / "train.jsonl", [dialogue("a", "joy", "bored"), empty, bad_turns])
    with pytest.raises(DataError) as err:
        load_corpus("jsonl", path, "train", label_set="meld")
    assert [str(p) for p in err.value.problems] == [
        f"{path}:1: utterances[1].label: unknown label 'bored' (expected one of: {MELD_LABELS})",
        f"{path}:2: utterances[0].text: is empty",
        f"{path}:3: utterances[1].turn: duplicate turn id 0 in dialogue 'c' (first at utterances[0])",
    ]
    result = load_corpus("jsonl", path, "train", label_set="meld", on_error="drop")
    assert [(d.id, len(d.utterances)) for d in result.dialogues] == [("a", 1), ("b", 1)]
    assert result.dropped == 3
    # Two utterances on their own, and dialogue c whole (its two utterances).
    assert (result.dropped_utterances, result.dropped_dialogues, result.dropped_dialogue_utterances) == (2, 1, 2)


def test_a_bad_utterance_does_not_hide_a_duplicate_turn_id(tmp_path):
    both = dialogue("a", "joy", "bored", "anger")
    both["utterances"][1]["turn"] = 0  # unknown label AND the turn id of utterance 0
    empty = dialogue("b", "joy", "joy")
    empty["utterances"][1].update(turn=0, text="")  # schema problem AND duplicate turn id
    path = write_lines(tmp_path / "train.jsonl", [both, empty, dialogue("c", "joy")])
    with pytest.raises(DataError) as err:
        load_corpus("jsonl", path, "train", label_set="meld")
    assert [str(p) for p in err.value.problems] == [
        f"{path}:1: utterances[1].label: unknown label 'bored' (expected one of: {MELD_LABELS})",
        f"{path}:1: utterances[1].turn: duplicate turn id 0 in dialogue 'a' (first at utterances[0])",
        f"{path}:2: utterances[1].text: is empty",
        f"{path}:2: utterances[1].turn: duplicate turn id 0 in dialogue 'b' (first at utterances[0])",
    ]
    # Dropping follows the same rule: the turn ids are ambiguous, so the whole dialogues go.
    result = load_corpus("jsonl", path, "train", label_set="meld", on_error="drop")
    assert [d.id for d in result.dialogues] == ["c"]
    assert (result.dropped_utterances, result.dropped_dialogues, result.dropped_dialogue_utterances) == (2, 2, 3)


def test_dialogue_level_problems_and_duplicate_ids(tmp_path):
    path = write_lines(
        tmp_path / "train.jsonl",
        [
            dialogue("a", "joy"),
            {"id": "b", "utterances": [], "lable": 1},
            dialogue("a", "fear"),
        ],
    )
    result = load_corpus("jsonl", path, "train", label_set="meld", on_error="drop")
    assert [d.id for d in result.dialogues] == ["a"] and result.dropped == 2
    assert (result.dropped_utterances, result.dropped_dialogues, result.dropped_dialogue_utterances) == (0, 2, 1)
    messages = [str(p) for p in result.problems]
    assert f"{path}:2: utterances: expected a non-empty list of utterances" in messages
    assert f"{path}:3: id: duplicate dialogue id 'a' (first on line 1)" in messages
    assert any(m.startswith(f"{path}:2: lable: unknown field") for m in messages)


def test_non_utf8_line(tmp_path):
    path = write_lines(tmp_path / "train.jsonl", [dialogue("a", "joy"), dialogue("b", "joy")])
    path.write_bytes(path.read_bytes().replace(b'"b"', b'"\xc3"'))
    with pytest.raises(DataError, match=r"train.jsonl:2: not valid UTF-8"):
        load_corpus("jsonl", path, "train", label_set="meld")


def test_every_unreadable_line_is_listed(tmp_path):
    rows = [dialogue(name, "joy") for name in "abcde"]
    path = write_lines(tmp_path / "train.jsonl", rows)
    lines = path.read_bytes().split(b"\n")
    lines[1] = lines[1].replace(b'"b"', b'"\xff"')
    lines[2] = lines[2][:-1]  # truncated JSON
    lines[4] = lines[4].replace(b'"e"', b'"\xc3"')
    path.write_bytes(b"\n".join(lines))
    for on_error in ("raise", "drop"):
        with pytest.raises(DataError) as err:
            load_corpus("jsonl", path, "train", label_set="meld", on_error=on_error)
        assert [(p.line, p.message.split(" ")[0]) for p in err.value.problems] == [
            (2, "not"),
            (3, "invalid"),
            (5, "not"),
        ]
