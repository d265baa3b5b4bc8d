"""Clue overlap: lexical bag F1 plus embedding cosine, with the package's embedded encoder."""

from __future__ import annotations

import pytest

from instructerc.eval.clues import ClueScorer, clue_bag, clue_overlap, lexical_overlap, reference_text

CLUES = ["Ross shouts and slams the door", "he is furious that Rachel read his diary"]
MATCHING = "Ross is enraged: he slams the door and shouts because Rachel read his diary."
UNRELATED = "Monica calmly describes the recipe for lasagna she cooked yesterday."


def test_lexical_bag_groups_emotion_words_and_drops_stopwords():
    assert clue_bag("He is FURIOUS, and the doors...") == {"emo:anger/rage": 1, "door": 1}
    assert clue_bag("enraged") == clue_bag("furious")
    assert lexical_overlap("furious about the door", "enraged by the doors") == 1.0
    assert lexical_overlap("", "anything") == 0.0
    # pred {anger/rage, diary}, ref {anger/rage, door, slam}: overlap 1, P 1/2, R 1/3
    assert lexical_overlap("furious diary", "furious door slam") == pytest.approx(2 * (1 / 2) * (1 / 3) / (5 / 6))
    assert reference_text(["a clue.", " ", "another"], "ignored") == "a clue. another."
    assert reference_text([], " the rationale ") == "the rationale" and reference_text(None, None) is None


@pytest.fixture(scope="module")
def scorer():
    return ClueScorer()  # the embedded encoder is installed by `make install`: a missing one must fail, not skip


def test_matching_rationale_beats_unrelated_and_identical_is_one(scorer):
    matching, unrelated = scorer.score(MATCHING, CLUES), scorer.score(UNRELATED, CLUES)
    assert matching["score"] > unrelated["score"] + 0.3
    assert matching["lexical"] > unrelated["lexical"] == 0.0
    assert matching["semantic"] > unrelated["semantic"]
    same = scorer.score(MATCHING, MATCHING)
    assert same["lexical"] == 1.0 and same["score"] == pytest.approx(1.0, abs=1e-5)
    assert set(same) == {"lexical", "semantic", "score"}


def test_deterministic_across_calls_and_batches(scorer):
    first = scorer.score_many([MATCHING, UNRELATED], [reference_text(CLUES, None)] * 2)
    again = scorer.score_many([MATCHING, UNRELATED], [reference_text(CLUES, None)] * 2)
    assert first == again
    assert clue_overlap(MATCHING, CLUES)["score"] == pytest.approx(first[0]["score"], abs=1e-6)
    with pytest.raises(ValueError, match="2 rationales but 1 references"):
        scorer.score_many([MATCHING, UNRELATED], ["x"])
