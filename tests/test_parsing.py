"""Acceptance table of the output parser: tricky outputs with their exact reading in both modes."""

import pytest

from instructerc.answer_format import ANSWER_CLOSE, ANSWER_OPEN, THINK_CLOSE, THINK_OPEN, render_answer
from instructerc.labels import LABEL_SETS, get_label_set
from instructerc.parsing import ExactLabelSet, label_mentions, label_set_from_list, parse_many, parse_output

MELD = get_label_set("meld")
T = f"{THINK_OPEN}r{THINK_CLOSE}"


def A(text: str) -> str:
    return f"{ANSWER_OPEN}{text}{ANSWER_CLOSE}"


# (id, text, label set, extra kwargs, lenient expectation, strict expectation);
# an expectation is (label, valid, reason prefix, well_formed, lenient); "same" repeats the lenient one.
CASES = [
    ("well formed", T + A("joy"), MELD, {}, ("joy", True, None, True, False), "same"),
    ("wrong case", T + A("JOY"), MELD, {}, ("joy", True, None, True, False), "same"),
    (
        "tags case and spaces",
        "<Think>r</Think> <ANSWER > joy </answer>\n",
        MELD,
        {},
        ("joy", True, None, True, False),
        "same",
    ),
    ("synonym", T + A("happiness"), MELD, {}, ("joy", True, None, True, False), "same"),
    ("synonym bigram", T + A("no emotion"), MELD, {}, ("neutral", True, None, True, False), "same"),
    ("out of set", T + A("excited"), MELD, {}, (None, False, "out of set: excited", True, False), "same"),
    ("period and quotes", T + A('"Joy."'), MELD, {}, ("joy", True, None, True, False), "same"),
    ("emotion prefix", T + A("Emotion: Anger"), MELD, {}, ("anger", True, None, True, False), "same"),
    (
        "unclosed answer",
        T + "<answer>joy",
        MELD,
        {},
        ("joy", True, None, False, False),
        (None, False, "unclosed answer tag", False, False),
    ),
    (
        "garbled close",
        "<answer>joy</think>",
        MELD,
        {},
        ("joy", True, None, False, False),
        (None, False, "unclosed answer tag", False, False),
    ),
    (
        "label only in think",
        "<think>she is clearly happy</think>",
        MELD,
        {},
        (None, False, "no answer", False, False),
        "same",
    ),
    ("empty", "", MELD, {}, (None, False, "empty", False, False), "same"),
    ("whitespace", "  \n\t", MELD, {}, (None, False, "empty", False, False), "same"),
    ("gibberish", "blah", MELD, {}, (None, False, "no answer", False, False), "same"),
    ("unsure is not neutral", "I am not sure.", MELD, {}, (None, False, "no answer", False, False), "same"),
    (
        "the emotion is",
        "The emotion is joy.",
        MELD,
        {},
        ("joy", True, None, False, True),
        (None, False, "no answer", False, False),
    ),
    ("lone label", "Joy.", MELD, {}, ("joy", True, None, False, True), (None, False, "no answer", False, False)),
    (
        "untagged prefix",
        "Emotion: Anger",
        MELD,
        {},
        ("anger", True, None, False, True),
        (None, False, "no answer", False, False),
    ),
    (
        "final answer",
        "She smiles a lot.\nFinal answer: Sadness",
        MELD,
        {},
        ("sadness", True, None, False, True),
        (None, False, "no answer", False, False),
    ),
    (
        "negation",
        "not angry, just sad",
        MELD,
        {},
        ("sadness", True, None, False, True),
        (None, False, "no answer", False, False),
    ),
    (
        "no X",
        "There is no anger here, she is sad",
        MELD,
        {},
        ("sadness", True, None, False, True),
        (None, False, "no answer", False, False),
    ),
    (
        "don't think",
        "I don't think she's angry. She is sad.",
        MELD,
        {},
        ("sadness", True, None, False, True),
        (None, False, "no answer", False, False),
    ),
    ("all negated", "not angry, not sad", MELD, {}, (None, False, "no answer", False, False), "same"),
    (
        "untagged several labels",
        "She is angry and sad.",
        MELD,
        {},
        (None, False, "multiple answers: anger, sadness", False, False),
        (None, False, "no answer", False, False),
    ),
    (
        "think ignored by fallback",
        "<think>she is angry</think>She is sad.",
        MELD,
        {},
        ("sadness", True, None, False, True),
        (None, False, "no answer", False, False),
    ),
    (
        "untagged after think",
        T + "Answer: disgust",
        MELD,
        {},
        ("disgust", True, None, False, True),
        (None, False, "no answer", False, False),
    ),
    (
        "two labels in answer",
        T + A("joy or surprise"),
        MELD,
        {},
        (None, False, "multiple answers: joy, surprise", True, False),
        "same",
    ),
    (
        "prose in answer",
        T + A("I think it's not anger but joy"),
        MELD,
        {},
        ("joy", True, None, True, False),
        (None, False, "out of set: i think it's not anger but joy", True, False),
    ),
    ("negated answer", T + A("not angry"), MELD, {}, (None, False, "out of set: not angry", True, False), "same"),
    ("empty answer", T + A("  "), MELD, {}, (None, False, "empty answer", True, False), "same"),
    (
        "two answers differ",
        T + A("joy") + A("anger"),
        MELD,
        {},
        (None, False, "multiple answers: joy, anger", False, False),
        "same",
    ),
    (
        "two answers same",
        T + A("joy") + A("Joy"),
        MELD,
        {},
        ("joy", True, None, False, False),
        (None, False, "not well formed", False, False),
    ),
    (
        "text after answer",
        T + A("joy") + " Hope this helps!",
        MELD,
        {},
        ("joy", True, None, False, False),
        (None, False, "not well formed", False, False),
    ),
    (
        "nested answers",
        A(A("joy")),
        MELD,
        {},
        ("joy", True, None, False, False),
        (None, False, "unclosed answer tag", False, False),
    ),
    (
        "answer inside think",
        "<think>maybe <answer>anger</answer></think>" + A("joy"),
        MELD,
        {},
        ("joy", True, None, False, False),
        (None, False, "not well formed", False, False),
    ),
    (
        "unclosed think",
        "<think>she smiles " + A("joy"),
        MELD,
        {},
        ("joy", True, None, False, False),
        (None, False, "not well formed", False, False),
    ),
    (
        "no think block",
        A("fear"),
        MELD,
        {},
        ("fear", True, None, False, False),
        (None, False, "not well formed", False, False),
    ),
    (
        "think opened by template",
        "reasoning</think>" + A("fear"),
        MELD,
        {},
        ("fear", True, None, False, False),
        (None, False, "not well formed", False, False),
    ),
    (
        "answer only format",
        A("fear"),
        MELD,
        {"answer_format": "answer_only"},
        ("fear", True, None, True, False),
        "same",
    ),
    (
        "think in answer only format",
        T + A("fear"),
        MELD,
        {"answer_format": "answer_only"},
        ("fear", True, None, False, False),
        (None, False, "not well formed", False, False),
    ),
    ("emorynlp joy", T + A("joy"), get_label_set("emorynlp"), {}, ("joyful", True, None, True, False), "same"),
    ("iemocap happiness", T + A("Happiness"), get_label_set("iemocap"), {}, ("happy", True, None, True, False), "same"),
    (
        "speaker name",
        A("rachel"),
        ["Ross", "Rachel"],
        {"answer_format": "answer_only"},
        ("Rachel", True, None, True, False),
        "same",
    ),
    (
        "speaker out of set",
        A("Monica"),
        ["Ross", "Rachel"],
        {"answer_format": "answer_only"},
        (None, False, "out of set: monica", True, False),
        "same",
    ),
    (
        "custom list",
        T + A("Positive"),
        ["positive", "negative", "neutral"],
        {},
        ("positive", True, None, True, False),
        "same",
    ),
    # Two labels stated on two lines are two answers, not the last one.
    (
        "two bare labels on two lines",
        "joy\nanger",
        MELD,
        {},
        (None, False, "multiple answers: joy, anger", False, False),
        (None, False, "no answer", False, False),
    ),
    (
        "two stated answers",
        "Emotion: joy. Answer: anger",
        MELD,
        {},
        (None, False, "multiple answers: joy, anger", False, False),
        (None, False, "no answer", False, False),
    ),
    (
        "same label twice",
        "Joy.\nJoy.",
        MELD,
        {},
        ("joy", True, None, False, True),
        (None, False, "no answer", False, False),
    ),
    # A self-correction to one final answer is read as the corrected label.
    (
        "self-correction",
        "The emotion is joy. Actually no, it is anger.",
        MELD,
        {},
        ("anger", True, None, False, True),
        (None, False, "no answer", False, False),
    ),
    (
        "no wait",
        "Joy. No wait, anger.",
        MELD,
        {},
        ("anger", True, None, False, True),
        (None, False, "no answer", False, False),
    ),
    (
        "correction inside the answer",
        T + A("joy, actually anger"),
        MELD,
        {},
        ("anger", True, None, True, False),
        (None, False, "multiple answers: joy, anger", True, False),
    ),
    (
        "an addition is not a correction",
        "The emotion is joy. Actually, she is also a bit angry.",
        MELD,
        {},
        ("joy", True, None, False, True),
        (None, False, "no answer", False, False),
    ),
    (
        "actually inside a clause is no marker",
        "She is not actually angry.",
        MELD,
        {},
        (None, False, "no answer", False, False),
        "same",
    ),
]


@pytest.mark.parametrize("mode", ["lenient", "strict"])
@pytest.mark.parametrize(
    ("text", "label_set", "kwargs", "lenient_expected", "strict_expected"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_parse_table(mode, text, label_set, kwargs, lenient_expected, strict_expected):
    expected = lenient_expected if mode == "lenient" or strict_expected == "same" else strict_expected
    label, valid, reason, well_formed, lenient = expected
    parsed = parse_output(text, label_set, mode=mode, **kwargs)
    assert parsed.label == label
    assert parsed.valid is valid
    assert parsed.well_formed is well_formed
    assert parsed.lenient is lenient
    assert parsed.labels == ((label,) if valid else ())
    if reason is None:
        assert parsed.reason is None
    else:
        assert parsed.reason is not None and parsed.reason.startswith(reason), parsed.reason


def test_table_is_large_enough():
    assert len(CASES) >= 35


@pytest.mark.parametrize("text", ["blah", "", "<answer></answer>", "<think>neutral</think>", "I am not sure"])
def test_never_defaults_to_neutral(text):
    assert parse_output(text, MELD).label is None
    assert parse_output(text, MELD, mode="strict").label is None


def test_rationale_and_answer_text():
    parsed = parse_output('<think>  She laughs.  </think>\n<answer> "Joy." </answer>', MELD)
    assert (parsed.rationale, parsed.answer_text) == ("She laughs.", '"Joy."')
    assert parse_output(A("joy"), MELD).rationale is None
    assert parse_output("<think></think>" + A("joy"), MELD).rationale == ""
    assert parse_output("<think>maybe <answer>anger</answer></think>" + A("joy"), MELD).rationale == "maybe anger"
    assert parse_output("<think>she smiles " + A("joy"), MELD).rationale == "she smiles"


def test_rendered_targets_parse_strictly():
    for fmt in ("think_answer", "answer_only"):
        parsed = parse_output(render_answer("joy", fmt, "She laughs."), MELD, mode="strict", answer_format=fmt)
        assert (parsed.label, parsed.valid, parsed.well_formed) == ("joy", True, True)


OPEN = [
    ("list", T + A("Happy, relieved and  amused"), ("happy", "relieved", "amused"), None, True, False),
    ("separators and duplicates", T + A("Happy / sad; happy & amused"), ("happy", "sad", "amused"), None, True, False),
    ("single word", T + A("nostalgic."), ("nostalgic",), None, True, False),
    ("empty", T + A(" "), (), "empty answer", True, False),
    ("untagged", "happy and relieved", ("happy", "relieved"), None, False, True),
    (
        "untagged prose",
        "She seems to be feeling very happy about the whole situation today",
        (),
        "no answer",
        False,
        False,
    ),
]


@pytest.mark.parametrize(
    ("text", "labels", "reason", "well_formed", "lenient"), [o[1:] for o in OPEN], ids=[o[0] for o in OPEN]
)
def test_open_vocabulary(text, labels, reason, well_formed, lenient):
    parsed = parse_output(text, open_vocabulary=True)
    assert (parsed.labels, parsed.reason, parsed.well_formed, parsed.lenient) == (labels, reason, well_formed, lenient)
    assert parsed.valid is (reason is None)
    assert parsed.label == (", ".join(labels) if labels else None)


# (id, text, lenient (labels, reason prefix), strict (labels, reason prefix) or "same")
OPEN_MODES = [
    # untagged answers stated in a phrase (what the embedded model writes): lenient only
    (
        "emotion expressed is",
        "Ana: I finally got the job!\n\nThe emotion expressed is amusement.",
        (("amusement",), None),
        ((), "no answer"),
    ),
    ("emotions are", "The emotions are joy and surprise.", (("joy", "surprise"), None), ((), "no answer")),
    ("words in between", "The emotion expressed by Kim is surprise", (("surprise",), None), ((), "no answer")),
    ("feelings colon", "Feelings: relief, gratitude", (("relief", "gratitude"), None), ((), "no answer")),
    ("subject and verb", "Ben feels joy and pride.", (("joy", "pride"), None), ((), "no answer")),
    ("untagged none", "None.", ((), "no emotion"), ((), "no answer")),
    ("untagged refusal", "I'm sorry, I can't help with that.", ((), "no answer"), "same"),
    (
        "untagged garbage",
        "Ben: I'm so glad I got the job!\n\nThe conversation is:\n\nBen: I'm so glad I got the",
        ((), "no answer"),
        "same",
    ),
    # prose is not emotion words, even inside answer tags
    (
        "refusal in tags",
        T + A("I'm sorry, I can't help with that."),
        ((), "not emotion words: i'm sorry; i can't help with that"),
        "same",
    ),
    ("sentence in tags", T + A("happiness is the main emotion here"), ((), "not emotion words"), "same"),
    ("negated item dropped", T + A("not angry, just tired"), (("tired",), None), "same"),
    ("only negated", T + A("not angry"), ((), "no emotion: not angry"), "same"),
    ("negated verb", T + A("she doesn't feel angry, she is sad"), (("sad",), None), "same"),
    ("parenthetical", T + A("Happy (because she got the job)"), (("happy",), None), "same"),
    ("explanation", T + A("She is thrilled because she finally got the job"), (("thrilled",), None), "same"),
    ("bullets", T + A("- joy\n- surprise"), (("joy", "surprise"), None), "same"),
    ("numbered", T + A("1. Joy\n2. Excitement"), (("joy", "excitement"), None), "same"),
    ("none", T + A("None"), ((), "no emotion"), "same"),
    ("n/a", T + A("N/A"), ((), "no emotion"), "same"),
    ("none among words", T + A("joy, none"), (("joy",), None), "same"),
    ("hedges", T + A("the speaker feels a little bit of anxiety"), (("anxiety",), None), "same"),
    ("known multiword", T + A("on edge, fed up"), (("on edge", "fed up"), None), "same"),
    (
        "phrase inside a tagged sentence",
        T + A("I think the emotion Ana feels is joy"),
        (("joy",), None),
        ((), "not emotion words"),
    ),
]


@pytest.mark.parametrize("mode", ["lenient", "strict"])
@pytest.mark.parametrize(
    ("text", "lenient_expected", "strict_expected"), [o[1:] for o in OPEN_MODES], ids=[o[0] for o in OPEN_MODES]
)
def test_open_vocabulary_reads_emotion_words_not_prose(mode, text, lenient_expected, strict_expected):
    labels, reason = lenient_expected if mode == "lenient" or strict_expected == "same" else strict_expected
    parsed = parse_output(text, open_vocabulary=True, mode=mode)
    assert parsed.labels == labels
    assert parsed.valid is (reason is None)
    assert parsed.label == (", ".join(labels) if labels else None)
    if reason is None:
        assert parsed.reason is None
    else:
        assert parsed.reason is not None and parsed.reason.startswith(reason), parsed.reason


def test_open_vocabulary_strict_needs_tags():
    assert parse_output("happy and relieved", open_vocabulary=True, mode="strict").reason == "no answer"
    strict = parse_output(T + A("happy, relieved"), MELD, open_vocabulary=True, mode="strict")
    assert strict.labels == ("happy", "relieved")


def test_no_label_set_takes_the_answer_as_written():
    assert parse_output(T + A("Nostalgia."), None).label == "nostalgia"
    assert parse_output("Nostalgia", None).lenient is True


def test_label_set_from_list():
    assert label_set_from_list(LABEL_SETS["meld"].labels) is LABEL_SETS["meld"]
    assert label_set_from_list(tuple(LABEL_SETS["meld"].labels)) is label_set_from_list(LABEL_SETS["meld"].labels)
    speakers = label_set_from_list(("Ross", "Rachel"))
    assert isinstance(speakers, ExactLabelSet) and speakers.normalize(" RACHEL.") == "Rachel"
    assert speakers.normalize("happy") is None
    colliding = label_set_from_list(("happy", "joy"))  # one concept twice: no synonyms, exact matching
    assert isinstance(colliding, ExactLabelSet) and colliding.normalize("Joy") == "joy"
    assert label_set_from_list(("joy", "bob"), exact=True).normalize("happy") is None
    assert label_set_from_list(("joy", "anger")).normalize("happy") == "joy"


def test_label_mentions_reads_bigrams_and_negation():
    assert label_mentions("Grossed out, not angry; rather sad.", MELD) == ["disgust", "sadness"]
    assert label_mentions("none of them is calm", MELD) == []  # prose words are not labels


def test_parse_many_and_bad_arguments():
    parsed = parse_many([A("joy"), "blah"], list(MELD.labels))
    assert [p.label for p in parsed] == ["joy", None]
    with pytest.raises(ValueError, match="mode"):
        parse_output("joy", MELD, mode="loose")
    with pytest.raises(ValueError, match="answer format"):
        parse_output("joy", MELD, answer_format="xml")
