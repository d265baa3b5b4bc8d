import pytest

from instructerc.answer_format import render_answer
from instructerc.prompts import get_template, list_templates

TURN = {"speaker": "Ross", "text": "We were on a break!", "cues": {"audio": "loud, fast", "visual": "brow lowerer"}}
HISTORY = [{"speaker": "Rachel", "text": "You slept with her?", "cues": {}}]
DEMOS = [{"speaker": "Joey", "text": "How you doin'?", "label": "joy"}]
LABELS = ["neutral", "joy", "anger"]


def _user(name, **overrides):
    variables = {"history": HISTORY, "target": TURN, "label_set": LABELS, "demonstrations": DEMOS}
    variables.update(overrides)
    messages = get_template(name).render(**variables)
    assert [m["role"] for m in messages] == ["system", "user"]
    return messages[1]["content"]


def test_every_template_in_the_index_renders_messages_without_special_tokens():
    for name in list_templates():
        variables = dict(
            history=HISTORY,
            target=TURN,
            label_set=LABELS,
            demonstrations=DEMOS,
            context="Rachel: You slept with her?",
            label="joy",
            turns=[HISTORY[0] | {"number": 1}, TURN | {"number": 2}],
            targets=[1, 2],
        )
        for message in get_template(name).render(**variables):
            assert "<|im_start|>" not in message["content"] and message["content"].strip()
            assert "\n\n\n" not in message["content"]


def test_emotion_template_shows_history_target_cues_labels_demos_and_format():
    text = _user("emotion")
    assert "Rachel: You slept with her?" in text
    assert "Ross: We were on a break! [audio: loud, fast; visual: brow lowerer]" in text
    assert "Choose exactly one label from: neutral, joy, anger." in text
    assert '- Joey: "How you doin\'?" -> joy' in text
    assert "<think></think>" in text and "<answer></answer>" in text


def test_dialogue_template_numbers_turns_and_asks_for_the_targets():
    turns = [HISTORY[0] | {"number": 1}, TURN | {"number": 2}, TURN | {"number": 3}]
    user = get_template("emotion_dialogue").render(turns=turns, targets=[2, 3], label_set=LABELS, demonstrations=[])[
        -1
    ]["content"]
    assert "1. Rachel: You slept with her?" in user
    assert "2. Ross: We were on a break! [audio: loud, fast; visual: brow lowerer]" in user
    assert 'from 2 to 3, one line each, as "number: label". Labels: neutral, joy, anger.' in user
    gaps = get_template("emotion_dialogue").render(turns=turns, targets=[1, 3], label_set=LABELS, demonstrations=[])
    assert "utterances 1, 3, one line each" in gaps[-1]["content"]


def test_variants_differ_only_where_they_should():
    assert "<think>" not in _user("emotion_label_only")
    open_vocab = _user("emotion_open_vocab")
    assert "Name every emotion" in open_vocab and "Choose exactly one label" not in open_vocab
    impact = _user("impact")
    assert "We were on a break!" not in impact and "Ross speaks next" in impact
    speaker = _user("speaker", label_set=["Ross", "Rachel"])
    assert '"We were on a break!"' in speaker and "Ross: We were" not in speaker
    assert "Choose exactly one speaker from: Ross, Rachel." in speaker


def test_first_utterance_and_no_demos_render_cleanly():
    text = _user("emotion", history=[], demonstrations=[])
    assert "(this is the first utterance)" in text and "Labeled examples" not in text


def test_missing_variable_is_an_error_not_an_empty_string():
    with pytest.raises(ValueError, match="needs variables: demonstrations"):
        get_template("emotion").render(history=HISTORY, target=TURN, label_set=LABELS)


def test_template_ids_carry_versions_and_user_templates_extend_the_builtins(tmp_path):
    assert get_template("emotion").id == "emotion@v1"
    (tmp_path / "mine.j2").write_text(
        "{% block system %}S{% endblock %}{% block user %}U {{ target.text }}{% endblock %}"
    )
    (tmp_path / "index.yaml").write_text(
        "templates:\n  mine:\n    version: 3\n    file: mine.j2\n    task: emotion\n    answer_format: answer_only\n"
    )
    templates = list_templates(tmp_path)
    assert "emotion" in templates and templates["mine"].id == "mine@v3"
    assert templates["mine"].render(target=TURN)[1]["content"] == "U We were on a break!"
    (tmp_path / "index.yaml").write_text(
        "templates:\n  bad:\n    version: 1\n    file: mine.j2\n    task: poetry\n    answer_format: answer_only\n"
    )
    with pytest.raises(ValueError, match="templates.bad.task: expected one of"):
        list_templates(tmp_path)


@pytest.mark.parametrize(
    "answer, fmt, rationale, expected",
    [
        ("joy", "think_answer", "She laughs.", "<think>She laughs.</think><answer>joy</answer>"),
        ("joy", "think_answer", None, "<think></think><answer>joy</answer>"),
        ("joy", "answer_only", "ignored", "<answer>joy</answer>"),
        (["joy", "relief"], "think_answer", "x", "<think>x</think><answer>joy, relief</answer>"),
    ],
)
def test_render_answer(answer, fmt, rationale, expected):
    assert render_answer(answer, fmt, rationale) == expected
