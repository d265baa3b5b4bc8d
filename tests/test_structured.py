"""Structured-output constraints and the parser's reading of JSON answers (no server needed)."""

import json
import re

import pytest

from instructerc.infer.structured import constraint, json_schema, request_fields
from instructerc.parsing import parse_output

LABELS = ["neutral", "joy", "anger"]


def test_answer_format_regex_accepts_exactly_well_formed_answers_of_the_set():
    spec = constraint("answer_format", LABELS, "think_answer", max_new_tokens=64)
    pattern = re.compile(spec["regex"])
    assert pattern.fullmatch("<think>She says 'great'.</think><answer>joy</answer>")
    assert not pattern.fullmatch("<think>x</think><answer>happy</answer>")  # not in the set
    assert not pattern.fullmatch("<answer>joy</answer>")  # the rationale is required
    assert not pattern.fullmatch("<think>" + "x" * 200 + "</think><answer>joy</answer>")  # over the token budget
    only = re.compile(constraint("answer_format", LABELS, "answer_only", 64)["regex"])
    assert only.fullmatch("<answer>anger</answer>") and not only.fullmatch("<answer>anger</answer>!")
    open_vocab = re.compile(constraint("answer_format", None, "think_answer", 64, open_vocabulary=True)["regex"])
    assert open_vocab.fullmatch("<think>y</think><answer>relief, gratitude</answer>")


def test_choice_and_json_specs_and_their_request_fields():
    assert constraint("none", LABELS, "think_answer", 64) is None
    assert request_fields(constraint("choice", LABELS, "think_answer", 64)) == {
        "structured_outputs": {"choice": LABELS}
    }
    fields = request_fields(constraint("json", LABELS, "think_answer", 64))
    schema = fields["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["label"]["enum"] == LABELS and schema["required"] == ["rationale", "label"]
    assert json_schema(None, open_vocabulary=True)["required"] == ["rationale", "labels"]
    with pytest.raises(ValueError, match="closed label set"):
        constraint("choice", None, "think_answer", 64, open_vocabulary=True)
    with pytest.raises(ValueError, match="unknown"):
        constraint("grammar", LABELS, "think_answer", 64)


@pytest.mark.parametrize(
    ("answer", "label", "rationale"),
    [
        ({"rationale": 'She says "great".', "label": "Joy"}, "joy", 'She says "great".'),
        ({"label": "anger"}, "anger", ""),  # an empty think block, as the tagged format gives
        ({"rationale": "x", "label": "happy"}, "joy", "x"),  # synonyms as in the tagged format
    ],
)
def test_json_answers_are_read_like_the_tagged_format(answer, label, rationale):
    parsed = parse_output(json.dumps(answer, indent=1), LABELS, mode="strict")
    assert parsed.valid and parsed.well_formed and parsed.label == label and parsed.rationale == rationale


@pytest.mark.parametrize(
    "text", ['{"rationale": "x", "label": "pride"}', '{"rationale": "x"}', '{"label": 3}', "{not json}", "[1, 2]"]
)
def test_json_that_is_not_an_answer_of_the_set_is_invalid(text):
    assert not parse_output(text, LABELS, mode="lenient").valid


def test_open_vocabulary_json():
    parsed = parse_output('{"rationale": "r", "labels": ["relief", "hope"]}', None, open_vocabulary=True)
    assert parsed.valid and parsed.labels == ("relief", "hope")
