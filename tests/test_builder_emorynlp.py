"""EmoryNLP CSV builder: fixture files in tests/fixtures/emorynlp."""

from pathlib import Path

import pytest

from instructerc.data_builders import load_corpus
from instructerc.schema import DataError, check_dialogue

FIXTURES = Path(__file__).parent / "fixtures" / "emorynlp"
EMORY_LABELS = "neutral, joyful, peaceful, powerful, scared, mad, sad"


def edited_train(tmp_path: Path, *replacements: tuple[str, str]) -> Path:
    text = (FIXTURES / "emorynlp_train_final.csv").read_text(encoding="utf-8")
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / "emorynlp_train_final.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_scenes_speakers_labels_and_split():
    result = load_corpus("emorynlp", FIXTURES, "train")
    assert [d.id for d in result.dialogues] == ["s1_e2_c1", "s1_e2_c2", "s2_e7_c1"]
    assert [len(d.utterances) for d in result.dialogues] == [3, 2, 2]
    scene = result.dialogues[0]
    assert [u.turn for u in scene.utterances] == [1, 2, 3]
    assert [u.speaker for u in scene.utterances] == ["Nina Park", "Owen Reyes", "Nina Park"]
    assert [u.label for u in scene.utterances] == ["joyful", "neutral", "powerful"]
    assert scene.utterances[2].text == "Yes, and you’re coming."
    assert (scene.utterances[0].start, scene.utterances[0].end) == (1.0, 3.5)
    assert scene.metadata == {"season": 1, "episode": 2, "scene": 1}
    assert result.dialogues[1].utterances[1].speaker == "Owen Reyes and Nina Park"
    assert [u.label for d in result.dialogues[1:] for u in d.utterances] == [
        "mad",
        "sad",
        "scared",
        "peaceful",
    ]
    for dialogue in result.dialogues:
        assert dialogue.split == "train"
        check_dialogue(dialogue)


def test_dev_file_is_the_validation_split():
    result = load_corpus("emorynlp", FIXTURES, "validation")
    assert [(d.id, d.split) for d in result.dialogues] == [("s4_e1_c3", "validation")]
    assert [u.label for u in result.dialogues[0].utterances] == ["neutral", "joyful"]


def test_unknown_label(tmp_path):
    path = edited_train(tmp_path, ("['Max Bell'],Peaceful", "['Max Bell'],Bored"))
    with pytest.raises(DataError) as err:
        load_corpus("emorynlp", path, "train")
    assert f"{path}:8: Emotion: unknown label 'Bored' (expected one of: {EMORY_LABELS})" in str(err.value)


def test_malformed_speaker_literal(tmp_path):
    path = edited_train(tmp_path, ("['Dana Cole']", "\"['Dana Cole'\""), ("['Lena Fox']", "[]"))
    with pytest.raises(DataError) as err:
        load_corpus("emorynlp", path, "train")
    assert [(p.line, p.field) for p in err.value.problems] == [(5, "Speaker"), (7, "Speaker")]
    assert "expected a non-empty list literal such as ['Ross Geller'], got \"['Dana Cole'\"" in str(err.value)
    result = load_corpus("emorynlp", path, "train", on_error="drop")
    assert result.dropped == 2
    assert [len(d.utterances) for d in result.dialogues] == [3, 1, 1]


def test_missing_columns(tmp_path):
    path = tmp_path / "emorynlp_train_final.csv"
    path.write_text("Utterance,Speaker,Utterance_ID,Season,Episode\nHi,['A'],1,1,1\n", encoding="utf-8")
    with pytest.raises(
        DataError,
        match=r"missing columns: Emotion, Scene_ID \(found: Utterance, Speaker, "
        r"Utterance_ID, Season, Episode\)",
    ):
        load_corpus("emorynlp", path, "train")


def test_empty_utterance_and_duplicate_turn(tmp_path):
    path = edited_train(tmp_path, ("No way. In the musical?", '""'), (",Sad,2,2,1,2,", ",Sad,2,1,1,2,"))
    with pytest.raises(DataError) as err:
        load_corpus("emorynlp", path, "train")
    assert f"{path}:3: Utterance: is empty" in str(err.value)
    assert f"{path}:6: Utterance_ID: duplicate turn id 1 in dialogue 's1_e2_c2' (first at line 5)" in str(err.value)
    result = load_corpus("emorynlp", path, "train", on_error="drop")
    assert [(d.id, len(d.utterances)) for d in result.dialogues] == [("s1_e2_c1", 2), ("s2_e7_c1", 2)]
    assert result.dropped == 2  # one utterance, one dialogue


def test_non_utf8_line(tmp_path):
    path = tmp_path / "emorynlp_train_final.csv"
    path.write_bytes((FIXTURES / "emorynlp_train_final.csv").read_bytes().replace(b"Relax.", b"Relax\xe9."))
    with pytest.raises(DataError, match=r"emorynlp_train_final.csv:8: not valid UTF-8 \(byte 0xe9"):
        load_corpus("emorynlp", path, "train")
