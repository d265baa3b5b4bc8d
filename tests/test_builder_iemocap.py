"""IEMOCAP pickle builder: pickles are written at test time (protocol 2 with numpy features, as upstream)."""

import pickle
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

from instructerc.data_builders import load_corpus
from instructerc.data_builders.iemocap import carve_validation
from instructerc.schema import DataError, check_dialogue

TRAIN_IDS = [f"Ses0{s}{g}_impro0{k}" for s in (1, 2) for g in ("F", "M") for k in (1, 2)] + [
    "Ses03F_script01",
    "Ses03M_script01",
]
TEST_IDS = ["Ses05F_impro01", "Ses05M_impro02"]


def make_tables(vids: list[str]) -> dict[str, dict]:
    """Per-dialogue tables: 3 utterances each, labels cycling through all six classes."""
    tables: dict[str, dict] = {
        "ids": {},
        "speakers": {},
        "labels": {},
        "sentences": {},
        "feat": OrderedDict(),
    }
    for n, vid in enumerate(vids):
        tables["ids"][vid] = [f"{vid}_{code}00{i}" for i, code in enumerate("FMF")]
        tables["speakers"][vid] = ["F", "M", "F"]
        tables["labels"][vid] = [(n + i) % 6 for i in range(3)]
        tables["sentences"][vid] = [f"Line {i} of {vid}. " for i in range(3)]
        tables["feat"][vid] = [np.arange(4, dtype=np.float32) + i for i in range(3)]
    return tables


def write(path: Path, data: tuple) -> Path:
    path.write_bytes(pickle.dumps(data, protocol=2))
    return path


def dialoguernn(tables: dict, train=TRAIN_IDS, test=TEST_IDS) -> tuple:
    t = tables
    return (
        t["ids"],
        t["speakers"],
        t["labels"],
        t["feat"],
        t["feat"],
        t["feat"],
        t["sentences"],
        list(train),
        set(test),
    )


@pytest.fixture
def pickle_path(tmp_path) -> Path:
    return write(tmp_path / "IEMOCAP_features.pkl", dialoguernn(make_tables(TRAIN_IDS + TEST_IDS)))


def test_splits_are_disjoint_and_deterministic(pickle_path):
    train = load_corpus("iemocap", pickle_path.parent, "train")
    valid = load_corpus("iemocap", pickle_path, "validation")
    test = load_corpus("iemocap", pickle_path, "test")
    # round(10 * 0.1) = 1 id, the middle one of the sorted train ids.
    assert [d.id for d in valid.dialogues] == [sorted(TRAIN_IDS)[5]] == ["Ses02F_impro02"]
    assert [d.id for d in train.dialogues] == sorted(set(TRAIN_IDS) - {"Ses02F_impro02"})
    assert [d.id for d in test.dialogues] == TEST_IDS
    assert {d.split for d in train.dialogues} == {"train"} and valid.dialogues[0].split == "validation"
    for dialogue in train.dialogues + valid.dialogues + test.dialogues:
        check_dialogue(dialogue)
    assert carve_validation(list(reversed(TRAIN_IDS)), 0.3) == carve_validation(TRAIN_IDS, 0.3)
    assert len(carve_validation(TRAIN_IDS, 0.3)) == 3


def test_utterances_labels_and_speakers(pickle_path):
    dialogue = load_corpus("iemocap", pickle_path, "train").dialogues[0]
    assert dialogue.id == "Ses01F_impro01"
    assert [u.turn for u in dialogue.utterances] == [0, 1, 2]
    assert [u.speaker for u in dialogue.utterances] == ["Female speaker", "Male speaker", "Female speaker"]
    assert [u.text for u in dialogue.utterances] == [f"Line {i} of Ses01F_impro01." for i in range(3)]
    assert [u.label for u in dialogue.utterances] == ["happy", "sad", "neutral"]
    assert dialogue.utterances[1].metadata == {"speaker_code": "M", "utterance_id": "Ses01F_impro01_M001"}
    labels = {u.label for d in load_corpus("iemocap", pickle_path, "train").dialogues for u in d.utterances}
    assert labels == {"happy", "sad", "neutral", "angry", "excited", "frustrated"}


def test_options_valid_ratio_and_speaker_names(pickle_path):
    result = load_corpus(
        "iemocap", pickle_path, "validation", valid_ratio=0.2, speaker_names={"F": "Woman", "M": "Man"}
    )
    assert len(result.dialogues) == 2
    assert result.dialogues[0].utterances[1].speaker == "Man"
    assert len(load_corpus("iemocap", pickle_path, "train", valid_ratio=0.0).dialogues) == 10
    with pytest.raises(ValueError, match=r"valid_ratio must be in \[0, 1\)"):
        load_corpus("iemocap", pickle_path, "train", valid_ratio=1.5)


def test_twelve_item_layout(tmp_path):
    t = make_tables(TRAIN_IDS + TEST_IDS)
    data = (t["ids"], t["speakers"], t["labels"], *[t["feat"]] * 6, t["sentences"], TRAIN_IDS, TEST_IDS)
    result = load_corpus("iemocap", write(tmp_path / "x.pkl", data), "test")
    assert [d.id for d in result.dialogues] == TEST_IDS


def test_cosmic_roberta_layout_uses_its_validation_ids(tmp_path):
    t = make_tables(TRAIN_IDS + TEST_IDS)
    valid_ids = TRAIN_IDS[:2]
    data = (t["speakers"], t["labels"], *[t["feat"]] * 4, t["sentences"], TRAIN_IDS[2:], TEST_IDS, valid_ids)
    path = write(tmp_path / "iemocap_features_roberta.pkl", data)
    assert [d.id for d in load_corpus("iemocap", tmp_path, "validation").dialogues] == sorted(valid_ids)
    train = load_corpus("iemocap", tmp_path, "train").dialogues
    assert len(train) == 8
    assert train[0].utterances[0].metadata["utterance_id"] == f"{train[0].id}_0"  # no ids in this layout
    assert path.is_file()


def test_bad_labels_text_and_lengths(tmp_path):
    t = make_tables(TRAIN_IDS + TEST_IDS)
    t["labels"]["Ses05F_impro01"][1] = 7
    t["sentences"]["Ses05F_impro01"][2] = "  "
    t["labels"]["Ses05M_impro02"] = [0, 1]  # one label short
    path = write(tmp_path / "IEMOCAP_features.pkl", dialoguernn(t))
    with pytest.raises(DataError) as err:
        load_corpus("iemocap", path, "test")
    message = str(err.value)
    assert (
        "Ses05F_impro01[1].label: label index 7 is out of range (0..5: happy, sad, neutral, angry, excited, frustrated)"
    ) in message
    assert "Ses05F_impro01[2].text: is empty" in message
    assert (
        "Ses05M_impro02: per-utterance lists have different lengths "
        "(videoIDs 3, videoSpeakers 3, videoLabels 2, videoSentence 3)"
    ) in message
    result = load_corpus("iemocap", path, "test", on_error="drop")
    assert [(d.id, [u.turn for u in d.utterances]) for d in result.dialogues] == [("Ses05F_impro01", [0])]
    assert result.dropped == 3  # two utterances and one dialogue


def test_dialogue_missing_from_a_table(tmp_path):
    t = make_tables(TRAIN_IDS + TEST_IDS)
    del t["sentences"]["Ses05M_impro02"]
    path = write(tmp_path / "IEMOCAP_features.pkl", dialoguernn(t))
    with pytest.raises(
        DataError, match=r"videoSentence\['Ses05M_impro02'\]: missing \(dialogue listed in the test ids\)"
    ):
        load_corpus("iemocap", path, "test")


class _RunsCode:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (eval, (f"open({str(self.marker)!r}, 'w').close()",))


def test_malicious_pickles_are_refused(tmp_path):
    marker = tmp_path / "pwned"
    classic = tmp_path / "os_system.pkl"
    classic.write_bytes(b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR.")
    with pytest.raises(DataError) as err:
        load_corpus("iemocap", classic, "train")
    assert f"{classic}: refusing to unpickle os.system: only plain containers and numbers are allowed" in str(err.value)
    reduced = tmp_path / "eval.pkl"
    reduced.write_bytes(pickle.dumps(({"a": _RunsCode(marker)},), protocol=2))
    with pytest.raises(DataError, match="refusing to unpickle builtins.eval"):
        load_corpus("iemocap", reduced, "train")
    assert not marker.exists()


def test_not_the_expected_layout(tmp_path):
    path = write(tmp_path / "x.pkl", ({}, {}, {}))
    with pytest.raises(
        DataError, match=r"expected a tuple of 9 \(DialogueRNN\), 12 or 10 \(COSMIC\) items, got tuple of 3"
    ):
        load_corpus("iemocap", path, "train")
    broken = tmp_path / "broken.pkl"
    broken.write_bytes(pickle.dumps(dialoguernn(make_tables(TEST_IDS)), protocol=2)[:40])
    with pytest.raises(DataError, match="not a readable pickle"):
        load_corpus("iemocap", broken, "train")
