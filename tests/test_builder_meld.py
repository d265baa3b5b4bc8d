"""MELD CSV builder: fixtures in tests/fixtures/meld (the MELD header, CRLF line ends, typographic quotes)."""

import shutil
from pathlib import Path

import pytest

from instructerc.data_builders import load_corpus
from instructerc.schema import DataError, check_dialogue

FIXTURES = Path(__file__).parent / "fixtures" / "meld"
MELD_LABELS = "neutral, surprise, fear, sadness, joy, disgust, anger"


def edited_train(tmp_path: Path, *replacements: tuple[str, str]) -> Path:
    """A copy of the train fixture with text replacements (each must match)."""
    text = (FIXTURES / "train_sent_emo.csv").read_text(encoding="utf-8")
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / "train_sent_emo.csv"
    path.write_text(text, encoding="utf-8", newline="")
    return path


def test_train_split_dialogues_order_labels_and_times():
    result = load_corpus("meld", FIXTURES, "train")
    assert [d.id for d in result.dialogues] == ["dia0", "dia1", "dia2"]
    assert [len(d.utterances) for d in result.dialogues] == [4, 3, 2]
    assert result.dropped == 0 and result.problems == []
    first = result.dialogues[0]
    # Rows are out of order in the file (Utterance_ID 3 before 2): turns follow Utterance_ID.
    assert [u.turn for u in first.utterances] == [0, 1, 2, 3]
    assert [u.text for u in first.utterances][2:] == ["Define “whole”.", "You ate the whole cake?!"]
    assert [u.label for u in first.utterances] == ["joy", "neutral", "fear", "anger"]  # "Anger" normalised
    assert first.utterances[0].text == "Okay, who’s ready for the “big” surprise?"
    assert (first.utterances[0].start, first.utterances[0].end) == (62.1, 64.25)
    assert first.utterances[0].metadata == {"sentiment": "positive", "sr_no": 1}
    assert first.metadata == {"season": 2, "episode": 5}
    second, third = result.dialogues[1], result.dialogues[2]
    assert second.utterances[0].start == 720.0  # one-digit hours as in the real files
    assert second.utterances[1].text == "Wait — what?"  # surrounding spaces stripped
    assert third.utterances[0].text == "Â It’s fine. Really."  # mojibake kept as is
    for dialogue in result.dialogues:
        assert dialogue.split == "train"
        check_dialogue(dialogue)


def test_validation_reads_dev_file_and_file_path_works():
    from_folder = load_corpus("meld", FIXTURES, "validation")
    assert [d.id for d in from_folder.dialogues] == ["dia0", "dia1"]
    assert {d.split for d in from_folder.dialogues} == {"validation"}
    assert from_folder.dialogues[0].utterances[1].label == "joy"
    from_file = load_corpus("meld", FIXTURES / "dev_sent_emo.csv", "validation")
    assert [d.to_dict() for d in from_file.dialogues] == [d.to_dict() for d in from_folder.dialogues]


def test_missing_split_file_names_the_conventional_file():
    with pytest.raises(FileNotFoundError, match="looked for: test_sent_emo.csv"):
        load_corpus("meld", FIXTURES, "test")


def test_unknown_label_names_file_line_column_and_expected_labels(tmp_path):
    path = edited_train(tmp_path, (",Tom,fear,", ",Tom,fearsome,"))
    with pytest.raises(DataError) as err:
        load_corpus("meld", path, "train")
    assert f"{path}:5: Emotion: unknown label 'fearsome' (expected one of: {MELD_LABELS})" in str(err.value)
    assert len(err.value.problems) == 1


def test_missing_columns_are_all_listed(tmp_path):
    path = tmp_path / "train_sent_emo.csv"
    path.write_text("Sr No.,Utterance,Sentiment,Dialogue_ID\n1,Hi.,neutral,0\n", encoding="utf-8")
    with pytest.raises(DataError) as err:
        load_corpus("meld", path, "train")
    assert (
        f"{path}:1: missing columns: Speaker, Emotion, Utterance_ID (found: Sr No., Utterance, Sentiment, Dialogue_ID)"
    ) in str(err.value)


def test_empty_utterance_is_reported(tmp_path):
    path = edited_train(tmp_path, ("I was born ready.", "   "))
    with pytest.raises(DataError, match=r"train_sent_emo.csv:3: Utterance: is empty"):
        load_corpus("meld", path, "train")


def test_duplicate_utterance_id_drops_the_dialogue(tmp_path):
    path = edited_train(tmp_path, (",Tom,fear,negative,0,2,", ",Tom,fear,negative,0,1,"))
    with pytest.raises(DataError) as err:
        load_corpus("meld", path, "train")
    assert f"{path}:5: Utterance_ID: duplicate turn id 1 in dialogue 'dia0' (first at line 3)" in str(err.value)
    result = load_corpus("meld", path, "train", on_error="drop")
    assert [d.id for d in result.dialogues] == ["dia1", "dia2"]
    assert result.dropped == 1
    assert [p.field for p in result.problems] == ["Utterance_ID"]


def test_a_bad_row_does_not_hide_its_duplicate_utterance_id(tmp_path):
    path = edited_train(tmp_path, (",Tom,fear,negative,0,2,", ",Tom,feared,negative,0,1,"))
    with pytest.raises(DataError) as err:
        load_corpus("meld", path, "train")
    assert [str(p) for p in err.value.problems] == [
        f"{path}:5: Emotion: unknown label 'feared' (expected one of: {MELD_LABELS})",
        f"{path}:5: Utterance_ID: duplicate turn id 1 in dialogue 'dia0' (first at line 3)",
    ]
    result = load_corpus("meld", path, "train", on_error="drop")
    assert [d.id for d in result.dialogues] == ["dia1", "dia2"]
    assert (result.dropped_utterances, result.dropped_dialogues, result.dropped_dialogue_utterances) == (1, 1, 3)


def test_a_single_csv_file_says_it_holds_no_split_information():
    # Any split asked for gets the rows of the file: build-data refuses to build two splits from it.
    for split in ("train", "validation"):
        result = load_corpus("meld", FIXTURES / "train_sent_emo.csv", split)
        assert result.shared_source == str(FIXTURES / "train_sent_emo.csv")
        assert {d.split for d in result.dialogues} == {split}
    assert load_corpus("meld", FIXTURES, "train").shared_source is None


def test_non_utf8_bytes_report_the_line_even_when_dropping(tmp_path):
    path = tmp_path / "train_sent_emo.csv"
    raw = (FIXTURES / "train_sent_emo.csv").read_bytes().replace(b"I was born ready.", b"I\x92m ready.")
    path.write_bytes(raw)
    for on_error in ("raise", "drop"):
        with pytest.raises(DataError) as err:
            load_corpus("meld", path, "train", on_error=on_error)
        assert f"{path}:3: not valid UTF-8 (byte 0x92 at column 4)" in str(err.value)


def test_raise_lists_every_problem_and_drop_keeps_the_rest(tmp_path):
    path = edited_train(
        tmp_path,
        (",Tom,fear,", ",Tom,bored,"),  # line 5, dialogue 0
        ("Is it?", ""),  # line 10: dialogue 2 keeps one utterance
        ('"0:12:03,000"', '"soon"'),  # line 7: bad time
    )
    with pytest.raises(DataError) as err:
        load_corpus("meld", path, "train")
    assert [(p.line, p.field) for p in err.value.problems] == [
        (5, "Emotion"),
        (7, "StartTime"),
        (10, "Utterance"),
    ]
    assert "StartTime: expected a time such as 00:16:16,059 or a number of seconds, got 'soon'" in str(err.value)
    result = load_corpus("meld", path, "train", on_error="drop")
    assert result.dropped == 3
    assert [len(d.utterances) for d in result.dialogues] == [3, 2, 1]
    assert [u.turn for u in result.dialogues[0].utterances] == [0, 1, 3]
    assert [p.line for p in result.problems] == [5, 7, 10]


def test_dialogue_with_every_utterance_dropped_disappears(tmp_path):
    path = edited_train(tmp_path, (",Sam,neutral,", ",Sam,??,"), (",Ana,surprise,", ",Ana,,"))
    result = load_corpus("meld", path, "train", on_error="drop")
    assert [d.id for d in result.dialogues] == ["dia0", "dia1"]
    assert result.dropped == 2
    assert f"missing label (expected one of: {MELD_LABELS})" in str(result.problems[1])


def test_a_file_where_everything_is_dropped_is_an_error(tmp_path):
    path = tmp_path / "dev_sent_emo.csv"
    shutil.copy(FIXTURES / "dev_sent_emo.csv", path)
    path.write_text(path.read_text(encoding="utf-8").replace(",Mara,", ",,").replace(",Jon,", ",,"), encoding="utf-8")
    with pytest.raises(DataError, match="no dialogues for split 'validation': every dialogue was dropped"):
        load_corpus("meld", path, "validation", on_error="drop")
