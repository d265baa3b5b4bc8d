import pytest

from instructerc.labels import LABEL_SETS, UNIFIED, custom_label_set, get_label_set, to_unified


@pytest.mark.parametrize(
    "corpus, word, expected",
    [
        ("meld", "Joyful", "joy"),
        ("meld", " ANGRY ", "anger"),
        ("meld", "mad", "anger"),
        ("meld", "Happiness.", "joy"),
        ("meld", "scared", "fear"),
        ("meld", "excited", None),
        ("meld", "banana", None),
        ("emorynlp", "joy", "joyful"),
        ("emorynlp", "Mad", "mad"),
        ("emorynlp", "anger", "mad"),
        ("emorynlp", "fear", "scared"),
        ("iemocap", "joy", "happy"),
        ("iemocap", "frustration", "frustrated"),
        ("iemocap", "fear", None),
        ("dailydialog", "no emotion", "neutral"),
        ("dailydialog", "happy", "happiness"),
    ],
)
def test_normalisation_maps_synonyms_to_the_sets_own_spelling(corpus, word, expected):
    assert get_label_set(corpus).normalize(word) == expected


def test_label_set_sizes_match_the_corpora():
    assert {name: len(ls) for name, ls in LABEL_SETS.items()} == {
        "meld": 7,
        "emorynlp": 7,
        "iemocap": 6,
        "dailydialog": 7,
    }


def test_every_corpus_label_maps_into_the_unified_taxonomy():
    for label_set in LABEL_SETS.values():
        for label in label_set.labels:
            assert to_unified(label, label_set) in UNIFIED.labels
    assert to_unified("frustrated", LABEL_SETS["iemocap"]) == "anger"
    assert to_unified("joyful", LABEL_SETS["emorynlp"]) == "joy"
    with pytest.raises(ValueError, match="not a label of meld"):
        to_unified("joyful", LABEL_SETS["meld"])


def test_custom_label_sets_and_unknown_names():
    custom = get_label_set("Happy, sad,calm")
    assert custom.labels == ("happy", "sad", "calm")
    assert custom.normalize("joyful") == "happy"
    with pytest.raises(KeyError, match="unknown label set 'meld2'"):
        get_label_set("meld2")
    with pytest.raises(ValueError, match="share concept"):
        custom_label_set(["happy", "joy"])
