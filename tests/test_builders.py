"""The corpus registry and load_corpus, plus the real MELD / EmoryNLP splits when ../shared/data exists."""

from pathlib import Path

import pytest

from instructerc.data_builders import CORPORA, get_corpus, load_corpus
from instructerc.data_builders.base import LoadResult
from instructerc.labels import get_label_set
from instructerc.schema import Dialogue, Utterance, check_dialogue

FIXTURES = Path(__file__).parent / "fixtures"
REAL_DATA = Path(__file__).parents[2] / "shared" / "data"


def test_registry_lists_every_builder_with_its_label_set():
    assert list(CORPORA) == ["meld", "emorynlp", "iemocap", "dailydialog", "jsonl", "hf"]
    assert {name: spec.label_set for name, spec in CORPORA.items()} == {
        "meld": "meld",
        "emorynlp": "emorynlp",
        "iemocap": "iemocap",
        "dailydialog": "dailydialog",
        "jsonl": None,
        "hf": None,
    }
    for spec in CORPORA.values():
        assert spec.splits == ("train", "validation", "test")
        assert spec.description
    assert get_corpus(" MELD ") is CORPORA["meld"]


def test_unknown_corpus_lists_the_known_ones():
    with pytest.raises(
        ValueError,
        match="unknown corpus 'friends'; known corpora: meld, emorynlp, iemocap, dailydialog, jsonl, hf",
    ):
        load_corpus("friends", FIXTURES, "train")


def test_unsupported_split_option_and_on_error():
    with pytest.raises(ValueError, match="corpus 'meld' has no split 'dev'; choose one of: train, validation, test"):
        load_corpus("meld", FIXTURES / "meld", "dev")
    with pytest.raises(ValueError, match=r"corpus 'meld' does not take option\(s\) columns \(it takes: none\)"):
        load_corpus("meld", FIXTURES / "meld", "train", columns={})
    with pytest.raises(ValueError, match="does not take option.*it takes: valid_ratio, speaker_names"):
        load_corpus("iemocap", FIXTURES, "train", ratio=0.1)
    with pytest.raises(ValueError, match="on_error must be 'raise' or 'drop', got 'skip'"):
        load_corpus("meld", FIXTURES / "meld", "train", on_error="skip")


def test_label_set_by_name_object_or_list():
    by_default = load_corpus("meld", FIXTURES / "meld", "validation")
    unified = load_corpus("meld", FIXTURES / "meld", "validation", label_set="unified")
    custom = load_corpus("meld", FIXTURES / "meld", "validation", label_set=get_label_set("happy,scared,neutral"))
    assert [u.label for u in by_default.dialogues[0].utterances + by_default.dialogues[1].utterances] == [
        "neutral",
        "joy",
        "fear",
        "neutral",
    ]
    assert [u.label for d in unified.dialogues for u in d.utterances] == ["neutral", "joy", "fear", "neutral"]
    assert [u.label for d in custom.dialogues for u in d.utterances] == [
        "neutral",
        "happy",
        "scared",
        "neutral",
    ]


def user_builder(source, split, *, label_set, on_error="raise", greeting="Hi."):
    """A user-defined builder, reached through load_corpus("tests.test_builders:user_builder", ...)."""
    utterance = Utterance(0, "Me", greeting, label=label_set.normalize("joy"))
    return LoadResult([Dialogue(f"{source}-{split}", [utterance], split)])


def test_user_builder_by_dotted_path(monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).parents[1]))
    result = load_corpus("tests.test_builders:user_builder", "src", "dev", label_set="meld", greeting="Hey.")
    assert [(d.id, d.utterances[0].text, d.utterances[0].label) for d in result.dialogues] == [
        ("src-dev", "Hey.", "joy")
    ]
    with pytest.raises(ValueError, match="has no built-in label set"):
        load_corpus("tests.test_builders:user_builder", "src", "dev")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("corpus", "split", "n_dialogues", "n_utterances"),
    [
        ("meld", "train", 1038, 9989),
        ("meld", "validation", 114, 1109),
        ("emorynlp", "train", 659, 7551),
        ("emorynlp", "validation", 89, 954),
    ],
)
def test_real_corpora_counts(corpus, split, n_dialogues, n_utterances):
    folder = REAL_DATA / corpus
    if not folder.is_dir():
        pytest.skip(f"real {corpus} data not found at {folder} (optional; see ../shared/data/README.md)")
    result = load_corpus(corpus, folder, split)
    assert result.dropped == 0 and result.problems == []
    assert len(result.dialogues) == n_dialogues
    assert sum(len(d.utterances) for d in result.dialogues) == n_utterances
    label_set = get_label_set(corpus)
    for dialogue in result.dialogues:
        assert dialogue.split == split
        assert [u.turn for u in dialogue.utterances] == sorted(u.turn for u in dialogue.utterances)
        assert all(u.label in label_set for u in dialogue.utterances)
        check_dialogue(dialogue)
