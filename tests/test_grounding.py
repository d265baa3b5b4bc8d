"""Rationale grounding: quotes checked against the dialogue, content overlap, and rationales naming another emotion."""

import pytest

from instructerc.labels import get_label_set
from instructerc.train.grounding import content_words, grounding, names_other_emotion, normalize_text, quoted_spans

CONTEXT = (
    "Ross: Hi Rachel, how was the interview? [audio: neutral tone; visual: smiling]\n"
    "Rachel: I got the job! I can't believe it! [audio: laughs, high pitch; visual: jumping]"
)


def test_quoted_spans():
    rationale = "She says \"I got the job!\" and “can’t believe it”, then 'wow' and 'really fine' but don't 'x'."
    assert quoted_spans(rationale) == ["I got the job!", "can’t believe it", "really fine"]
    assert quoted_spans("Ross' tone isn't 'angry at all' here") == ["angry at all"]
    assert quoted_spans("") == []


def test_normalize_text():
    assert normalize_text("  I CAN’T   believe it!! ") == "i can t believe it"


def test_found_quotes_are_rewarded():
    g = grounding('Rachel says "I got the job" while she laughs and jumps.', CONTEXT)
    assert g.quotes == g.quotes_found == ["I got the job"]
    assert g.quotes_invented == []
    # content words: rachel, job, laughs, jumps ("says", "got" are stopwords); "jumps" is not in the context
    assert g.content_overlap == pytest.approx(3 / 4)
    assert g.score == pytest.approx(0.5 * 1.0 + 0.5 * 3 / 4)


def test_invented_quotes_are_penalised():
    g = grounding('Rachel says "I hate my new boss" and laughs.', CONTEXT)
    assert g.quotes_invented == ["I hate my new boss"] and g.quotes_found == []
    assert g.score == 0.0  # 0 precision, overlap at most 0.5, minus 0.5: clipped at 0


def test_one_invented_quote_among_found_ones():
    g = grounding('"I got the job" and "I can\'t believe it" but also "you are fired".', CONTEXT)
    assert g.quotes_found == ["I got the job", "I can't believe it"]
    assert g.quotes_invented == ["you are fired"]
    assert g.content_overlap == pytest.approx(2 / 3)  # job, believe found; fired not
    assert g.score == pytest.approx(0.5 * 2 / 3 + 0.5 * 2 / 3 - 0.5)


def test_quotes_match_whole_words_and_typography():
    assert grounding("“I CAN’T believe it”", CONTEXT).quotes_found == ["I CAN’T believe it"]
    assert grounding("'ot the jo'", CONTEXT).quotes_invented == ["ot the jo"]


def test_no_quotes_scores_half_precision_plus_overlap():
    g = grounding("Rachel laughs about the job.", CONTEXT)
    assert (g.quotes, g.content_overlap) == ([], 1.0)
    assert g.score == pytest.approx(0.5 * 0.5 + 0.5 * 1.0)
    generic = grounding("The speaker seems to express an emotion.", CONTEXT)
    assert generic.content_overlap == 0.0 and generic.score == pytest.approx(0.25)


@pytest.mark.parametrize("rationale", ["", "   ", None])
def test_empty_rationale_scores_zero(rationale):
    g = grounding(rationale, CONTEXT)
    assert (g.score, g.quotes, g.content_overlap) == (0.0, [], 0.0)


def test_content_words_skip_stopwords_and_short_tokens():
    assert content_words("The speaker is so happy about it, really!") == {"happy"}


MELD = get_label_set("meld")


@pytest.mark.parametrize(
    ("rationale", "gold", "expected"),
    [
        ("She laughs, clearly happy.", "joy", None),
        ("She sounds furious about it.", "joy", "anger"),
        ("She is not angry, just delighted.", "joy", None),
        ("No fear here; she is surprised.", "joy", "surprise"),
        ("Grossed out by the food.", "anger", "disgust"),
        ("", "joy", None),
    ],
)
def test_names_other_emotion(rationale, gold, expected):
    assert names_other_emotion(rationale, gold, MELD) == expected


def test_names_other_emotion_with_a_label_list():
    emory = list(get_label_set("emorynlp").labels)
    assert names_other_emotion("She is happy, not scared.", "joyful", emory) is None
    assert names_other_emotion("She is terrified.", "joy", emory) == "scared"
