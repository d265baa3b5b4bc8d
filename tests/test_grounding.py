"""Rationale grounding: quotes checked against the dialogue, content overlap, and rationales naming another emotion."""

import pytest

from instructerc.labels import get_label_set
from instructerc.train.grounding import (
    content_words,
    copied_text,
    grounding,
    names_other_emotion,
    normalize_text,
    quoted_spans,
    split_speakers,
    unspoken_names,
)

MELD = get_label_set("meld")
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
    # ("rachel" counts: Ross says "Hi Rachel", so the name is more than a line prefix)
    assert g.content_overlap == pytest.approx(3 / 4)
    assert g.score == pytest.approx(0.5 * 1.0 + 0.5 * 3 / 4)


def test_invented_quotes_are_penalised():
    g = grounding('Rachel says "I hate my new boss" and laughs.', CONTEXT)
    assert g.quotes_invented == ["I hate my new boss"] and g.quotes_found == []
    assert g.score == 0.0  # 0 precision, overlap at most 0.5, minus 0.5: clipped at 0


def test_one_invented_quote_among_found_ones():
    g = grounding('Rachel laughs: "I got the job" and "I can\'t believe it" but also "you are fired".', CONTEXT)
    assert g.quotes_found == ["I got the job", "I can't believe it"]
    assert g.quotes_invented == ["you are fired"]
    assert g.content_overlap == pytest.approx(4 / 5)  # rachel, laughs, job, believe found; fired not
    assert g.score == pytest.approx(0.5 * 2 / 3 + 0.5 * 4 / 5 - 0.5)


def test_quotes_match_whole_words_and_typography():
    assert grounding("“I CAN’T believe it”", CONTEXT).quotes_found == ["I CAN’T believe it"]
    assert grounding("'ot the jo'", CONTEXT).quotes_invented == ["ot the jo"]


def test_no_quotes_scores_half_precision_plus_overlap():
    g = grounding("Rachel laughs about the job.", CONTEXT)
    assert (g.quotes, g.content_overlap) == ([], 1.0)
    assert g.score == pytest.approx(0.5 * 0.5 + 0.5 * 1.0)


@pytest.mark.parametrize("rationale", ["", "   ", None])
def test_empty_rationale_scores_zero(rationale):
    g = grounding(rationale, CONTEXT)
    assert (g.score, g.quotes, g.content_overlap, g.rejected) == (0.0, [], 0.0, "empty")


ONE_LINE = CONTEXT.replace("\n", " ")


@pytest.mark.parametrize(
    ("rationale", "rejected", "old_score"),
    [
        # an echo of the dialogue: quoted across lines, or pasted unquoted (a run of 8 words)
        (f'Rachel says "{ONE_LINE}"', f"copied: {ONE_LINE}", 1.0),
        (f'"{ONE_LINE}"', f"copied: {ONE_LINE}", 1.0),
        (CONTEXT, "copied: ross hi rachel how was the interview audio", 0.75),
        ("a", "no_content", 0.25),
        ("it is so", "no_content", 0.25),
        ("zzz qqq", "ungrounded", 0.25),
        ("The speaker seems to express an emotion.", "no_content", 0.25),  # a generic template
        ("She is happy.", "ungrounded", 0.25),
        ('"I got the job! I can\'t believe it!"', "only_quotes", 1.0),  # quoting without explaining
    ],
)
def test_gamed_rationales_score_zero(rationale, rejected, old_score):
    g = grounding(rationale, CONTEXT)
    assert (g.score, g.rejected) == (0.0, rejected)
    assert 0.5 * (len(g.quotes_found) / len(g.quotes) if g.quotes else 0.5) + 0.5 * g.content_overlap == old_score


def test_speaker_names_count_only_when_the_utterances_say_them():
    """Every context line starts with its speaker's name, so a name that is only a line prefix proves nothing
    about the dialogue; a name (or role noun) that someone says is a word of the dialogue like any other."""
    context = "Mr. Geller: Is the doctor in?\nDoctor: Yes. The nurse knows.\nNurse: He left at noon. Monica: hi"
    assert split_speakers(context)[0] == {"mr", "geller", "doctor", "nurse"}  # "Monica: hi" is inside a line
    assert unspoken_names(context)[0] == {"mr", "geller"}
    for rationale in ("Mr. Geller frowns.", "Geller speaks to Mr. Geller."):
        g = grounding(rationale, context)
        assert (g.score, g.rejected, g.content_overlap) == (0.0, "ungrounded", 0.0), rationale
    g = grounding("Geller asks whether the doctor is in; the nurse knows.", context)
    assert g.rejected is None and g.content_overlap == pytest.approx(3 / 5)  # doctor nurse knows; geller ignored
    assert grounding('Geller: "Is the doctor in?"', context).rejected == "only_quotes"


def test_naming_another_emotion_scores_zero_only_with_the_gold_label():
    rationale = "Rachel laughs at the job news but is angry."
    assert grounding(rationale, CONTEXT).score == pytest.approx(0.5 * 0.5 + 0.5 * 3 / 5)  # rachel laughs job
    g = grounding(rationale, CONTEXT, "joy", MELD)
    assert (g.score, g.rejected) == (0.0, "other_emotion: anger")
    assert grounding(rationale, CONTEXT, "anger", MELD).rejected is None
    assert grounding("Rachel laughs at the job news, not angry.", CONTEXT, "joy", MELD).rejected is None


def test_copied_text():
    assert copied_text("Rachel laughs about the job.", CONTEXT) is None
    assert copied_text('She says "I got the job! I can\'t believe it!" and laughs.', CONTEXT) is None  # one line
    assert copied_text("'interview smiling Rachel'", CONTEXT) is None  # not in the dialogue: invented, not copied
    assert copied_text('"smiling Rachel I got"', CONTEXT) == "smiling Rachel I got"  # across a line break
    assert copied_text("so: I got the job I can't believe it", CONTEXT) == "i got the job i can t believe"
    prompt = "In one or two sentences, explain which words show this emotion."
    assert copied_text("Here: in one or two sentences explain which words show it", CONTEXT) is None
    assert copied_text("Here: in one or two sentences explain which words show it", CONTEXT, prompt)


def test_content_words_skip_stopwords_and_short_tokens():
    assert content_words("The speaker is so happy about it, really!") == {"happy"}


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
