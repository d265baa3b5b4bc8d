"""Generic Hugging Face builder: fixture hf/train.csv and tables written here (save_to_disk, parquet)."""

import json
from pathlib import Path

import datasets
import pytest

from instructerc.data_builders import load_corpus
from instructerc.schema import DataError, check_dialogue

FIXTURES = Path(__file__).parent / "fixtures" / "hf"
COLUMNS = {
    "dialogue_id": "conv_id",
    "turn": "utt_idx",
    "speaker": "speaker",
    "text": "utterance",
    "label": "emotion",
}
MELD_LABELS = "neutral, surprise, fear, sadness, joy, disgust, anger"


@pytest.fixture
def load(tmp_path):
    """load_corpus("hf", ...) with the datasets cache inside tmp_path."""

    def _load(source, split="train", **options):
        options.setdefault("label_set", "meld")
        return load_corpus("hf", source, split, cache_dir=str(tmp_path / "cache"), **options)

    return _load


def test_csv_with_turn_column(load):
    result = load(FIXTURES / "train.csv", columns=COLUMNS)
    assert [d.id for d in result.dialogues] == ["c1", "c2"]
    c1 = result.dialogues[0]
    assert [(u.turn, u.speaker, u.label) for u in c1.utterances] == [
        (0, "Lou", "sadness"),
        (1, "Kim", "neutral"),
        (2, "Kim", "joy"),
    ]
    assert c1.utterances[2].text == "Pepperoni, obviously!"
    for d in result.dialogues:
        assert d.split == "train"
        check_dialogue(d)
    assert [d.id for d in load(FIXTURES, columns=COLUMNS).dialogues] == ["c1", "c2"]  # folder: train.csv


def test_jsonl_without_turn_or_speaker_uses_row_order(load, tmp_path):
    rows = [
        {"cid": 7, "t": "First.", "why": "It starts."},
        {"cid": 8, "t": "Other."},
        {"cid": 7, "t": "Second."},
    ]
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    result = load(path, "test", columns={"dialogue_id": "cid", "text": "t", "rationale": "why"})
    assert [(d.id, [(u.turn, u.speaker, u.text) for u in d.utterances]) for d in result.dialogues] == [
        ("7", [(0, "Speaker", "First."), (1, "Speaker", "Second.")]),
        ("8", [(0, "Speaker", "Other.")]),
    ]
    assert result.dialogues[0].utterances[0].rationale == "It starts."
    assert result.dialogues[0].utterances[0].label is None


def test_save_to_disk_with_class_labels_and_split_names(load, tmp_path):
    features = datasets.Features(
        {
            "conv": datasets.Value("string"),
            "text": datasets.Value("string"),
            "emo": datasets.ClassLabel(names=["neutral", "happy", "angry"]),
        }
    )
    dev = datasets.Dataset.from_dict(
        {"conv": ["d1", "d1", "d2"], "text": ["Hi.", "Yay!", "Grr."], "emo": [0, 1, 2]}, features=features
    )
    datasets.DatasetDict({"train": dev, "dev": dev}).save_to_disk(str(tmp_path / "saved"))
    result = load(
        tmp_path / "saved",
        "validation",
        columns={"dialogue_id": "conv", "text": "text", "label": "emo"},
        split_names={"validation": "dev"},
    )
    assert [[u.label for u in d.utterances] for d in result.dialogues] == [["neutral", "joy"], ["anger"]]
    assert {d.split for d in result.dialogues} == {"validation"}
    with pytest.raises(DataError, match=r"has no split 'validation' \(splits: train, dev\); rename with split_names"):
        load(tmp_path / "saved", "validation", columns={"dialogue_id": "conv", "text": "text"})


def test_parquet_with_integer_labels_and_label_names(load, tmp_path):
    table = datasets.Dataset.from_dict(
        {"d": ["x", "x"], "u": ["Oh!", "Hm."], "y": [1, 0], "s": [0.5, 1.0], "e": [1.0, 2.5]}
    )
    table.to_parquet(str(tmp_path / "test.parquet"))
    columns = {"dialogue_id": "d", "text": "u", "label": "y", "start": "s", "end": "e"}
    result = load(tmp_path, "test", columns=columns, label_names=["neutral", "surprise"])
    utterances = result.dialogues[0].utterances
    assert [(u.label, u.start, u.end) for u in utterances] == [("surprise", 0.5, 1.0), ("neutral", 1.0, 2.5)]
    with pytest.raises(DataError, match=r"rows\[0\].y: label is the number 1 but no label names were given"):
        load(tmp_path, "test", columns=columns)


def test_missing_columns_are_all_listed(load):
    columns = {**COLUMNS, "text": "utt_text", "label": "emo"}
    with pytest.raises(DataError) as err:
        load(FIXTURES / "train.csv", columns=columns)
    assert "missing columns: utt_text, emo (found: conv_id, utt_idx, speaker, utterance, emotion)" in str(err.value)


def test_bad_column_mapping(load):
    with pytest.raises(ValueError, match="unknown keys: lable; missing keys: text"):
        load(FIXTURES / "train.csv", columns={"dialogue_id": "conv_id", "lable": "emotion"})
    with pytest.raises(ValueError, match="needs a column mapping"):
        load(FIXTURES / "train.csv")


def test_unknown_label_empty_text_duplicate_turn(load, tmp_path):
    text = (FIXTURES / "train.csv").read_text(encoding="utf-8")
    path = tmp_path / "train.csv"
    path.write_text(
        text.replace('obviously!",joy', 'obviously!",hungry').replace("Again?", "").replace("c2,1,Ned", "c2,0,Ned"),
        encoding="utf-8",
    )
    with pytest.raises(DataError) as err:
        load(path, columns=COLUMNS)
    # File lines (the header is line 1), and the duplicate turn id of the row with empty text is listed too.
    assert [str(p) for p in err.value.problems] == [
        f"{path}:4: emotion: unknown label 'hungry' (expected one of: {MELD_LABELS})",
        f"{path}:6: utterance: is empty",
        f"{path}:6: utt_idx: duplicate turn id 0 in dialogue 'c2' (first at line 5)",
    ]
    path.write_text(text.replace("c2,1,Ned", "c2,0,Ned"), encoding="utf-8")
    result = load(path, columns=COLUMNS, on_error="drop")
    assert [d.id for d in result.dialogues] == ["c1"] and result.dropped == 1
    assert (result.dropped_utterances, result.dropped_dialogues, result.dropped_dialogue_utterances) == (0, 1, 2)
    assert str(result.problems[0]) == f"{path}:6: utt_idx: duplicate turn id 0 in dialogue 'c2' (first at line 5)"


def test_problems_name_the_file_line_with_blank_lines_and_multiline_cells(load, tmp_path):
    path = tmp_path / "train.csv"
    path.write_text(
        "conv_id,utterance,emotion\n"
        'c1,"A cell on\ntwo lines",joy\n'  # lines 2-3
        "\n"  # line 4: blank, skipped
        "c1,Fine.,neutral\n"  # line 5
        "c1,   ,neutral\n",  # line 6: empty text
        encoding="utf-8",
    )
    columns = {"dialogue_id": "conv_id", "text": "utterance", "label": "emotion"}
    with pytest.raises(DataError) as err:
        load(path, columns=columns)
    assert [str(p) for p in err.value.problems] == [f"{path}:6: utterance: is empty"]
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"c": "a", "t": "Hi."}\n\n{"c": "a", "t": "Yo."}\n{"c": "a", "t": ""}\n', encoding="utf-8")
    with pytest.raises(DataError) as err:
        load(rows, columns={"dialogue_id": "c", "text": "t"})
    assert [str(p) for p in err.value.problems] == [f"{rows}:4: t: is empty"]


def test_a_single_table_says_it_holds_no_split_information(load, tmp_path):
    assert load(FIXTURES / "train.csv", columns=COLUMNS).shared_source == str(FIXTURES / "train.csv")
    assert load(FIXTURES, columns=COLUMNS).shared_source is None  # a folder: train.csv is the train split


def test_hub_failure_gives_a_clear_message(load, monkeypatch):
    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'someone/erc' on the Hub (OfflineModeIsEnabled)")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(DataError) as err:
        load(None, columns=COLUMNS, hub_name="someone/erc", config_name="full")
    message = str(err.value)
    assert "could not load Hub dataset 'someone/erc' (config 'full', split 'train'): ConnectionError" in message
    assert "point source at a local copy" in message


def test_missing_source(load, tmp_path):
    with pytest.raises(FileNotFoundError, match="for a Hub dataset pass hub_name"):
        load(tmp_path / "nope.csv", columns=COLUMNS)
    with pytest.raises(FileNotFoundError, match="no file for split 'test'"):
        load(FIXTURES, "test", columns=COLUMNS)
