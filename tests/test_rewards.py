"""Rewards with trl's calling convention: a table of tricky completions and the exact score of every reward."""

import pickle

import pytest

from instructerc.labels import get_label_set
from instructerc.train.rewards import (
    REWARDS,
    LabelAccuracyReward,
    LengthPenalty,
    build_rewards,
    completion_text,
    format_reward,
    label_accuracy_reward,
    label_in_set_reward,
    rationale_grounding_reward,
    required_columns,
)

MELD = list(get_label_set("meld").labels)
CONTEXT = (
    "Ross: Hi Rachel, how was the interview? [audio: neutral tone; visual: smiling]\n"
    "Rachel: I got the job! I can't believe it! [audio: laughs, high pitch; visual: jumping]"
)
ONE_LINE = CONTEXT.replace("\n", " ")  # the whole dialogue as one quote (a quote cannot span a line break)
T = "<think>Rachel laughs.</think>"  # grounding: no quote (0.5 * 0.5) + full overlap (0.5 * 1.0) = 0.75

# (id, completion, gold, label_accuracy, format, label_in_set, rationale_grounding)
TABLE = [
    (
        "exact with found quote",
        '<think>Rachel says "I got the job" and laughs.</think><answer>joy</answer>',
        "joy",
        1.0,
        1.0,
        1.0,
        1.0,
    ),
    (
        "invented quote",
        '<think>Rachel says "I hate this job" and laughs.</think><answer>joy</answer>',
        "joy",
        1.0,
        1.0,
        1.0,
        0.0,
    ),
    ("missing tags", "Joy.", "joy", 1.0, 0.0, 1.0, 0.0),
    ("two answers", T + "<answer>joy</answer><answer>anger</answer>", "joy", 0.0, 0.0, 0.0, 0.75),
    ("two equal answers", T + "<answer>joy</answer><answer>joy</answer>", "joy", 1.0, 0.0, 1.0, 0.75),
    ("wrong case", T + "<answer>JOY</answer>", "joy", 1.0, 1.0, 1.0, 0.75),
    ("synonym", T + "<answer>happiness</answer>", "joy", 0.5, 1.0, 1.0, 0.75),
    ("outside the set", T + "<answer>excited</answer>", "joy", 0.0, 1.0, 0.0, 0.75),
    ("wrong label", T + "<answer>anger</answer>", "joy", 0.0, 1.0, 1.0, 0.75),
    ("unclosed answer", T + "<answer>joy", "joy", 1.0, 0.0, 1.0, 0.75),
    ("untagged mention", "She is clearly happy", "joy", 0.5, 0.0, 1.0, 0.0),
    ("empty", "", "joy", 0.0, 0.0, 0.0, 0.0),
    # "happy" is not in the dialogue: a rationale without a single grounded content word scores 0
    ("label only in think", "<think>She is happy</think>", "joy", 0.0, 0.0, 0.0, 0.0),
    ("text after answer", T + "<answer>sadness</answer> Done.", "sadness", 1.0, 0.0, 1.0, 0.75),
    # Gaming the grounding reward: each of these scored 0.25 to 1.0 before and scores 0 now.
    ("quoted dialogue", f'<think>Rachel says "{ONE_LINE}"</think><answer>joy</answer>', "joy", 1.0, 1.0, 1.0, 0.0),
    ("only a quote", '<think>"I got the job! I can\'t believe it!"</think><answer>joy</answer>', "joy", 1, 1, 1, 0),
    ("pasted dialogue", f"<think>{CONTEXT}</think><answer>joy</answer>", "joy", 1.0, 1.0, 1.0, 0.0),
    ("one stopword", "<think>a</think><answer>joy</answer>", "joy", 1.0, 1.0, 1.0, 0.0),
    ("nonsense", "<think>zzz qqq</think><answer>joy</answer>", "joy", 1.0, 1.0, 1.0, 0.0),
    ("generic", "<think>The speaker seems to express an emotion.</think><answer>joy</answer>", "joy", 1, 1, 1, 0),
    ("other emotion", "<think>She is angry.</think><answer>joy</answer>", "joy", 1.0, 1.0, 1.0, 0.0),
    ("grounded other emotion", "<think>Rachel laughs but is angry.</think><answer>joy</answer>", "joy", 1, 1, 1, 0),
    # rachel, laughs found, angry not: 0.5 * 0.5 + 0.5 * 2/3; a negated other emotion is no argument for it
    ("negated other emotion", "<think>Rachel laughs, not angry.</think><answer>joy</answer>", "joy", 1, 1, 1, 7 / 12),
]
IDS = [row[0] for row in TABLE]


def call(reward, completions, **columns):
    """Call a reward the way trl does: keyword arguments, one entry per completion, plus trainer extras."""
    n = len(completions)
    columns = {"label_set": [MELD] * n, "context": [CONTEXT] * n, **columns}
    return reward(prompts=[[]] * n, completions=completions, completion_ids=[[]] * n, trainer_state=object(), **columns)


@pytest.mark.parametrize("conversational", [True, False], ids=["conversational", "plain"])
@pytest.mark.parametrize("row", TABLE, ids=IDS)
def test_reward_table(row, conversational):
    _, text, gold, accuracy, fmt, in_set, grounded = row
    completion = [{"role": "assistant", "content": text}] if conversational else text
    assert call(label_accuracy_reward, [completion], label=[gold]) == [accuracy]
    assert call(format_reward, [completion]) == [fmt]
    assert call(label_in_set_reward, [completion]) == [in_set]
    assert call(rationale_grounding_reward, [completion], label=[gold]) == [pytest.approx(grounded)]


def test_grounding_names_other_emotion_only_on_closed_set_emotion_rows():
    text = "<think>Rachel laughs but is angry.</think><answer>joy</answer>"
    grounded = pytest.approx(0.5 * 0.5 + 0.5 * 2 / 3)  # rachel, laughs found; angry not
    assert call(rationale_grounding_reward, [text]) == [grounded]  # no gold label: nothing to compare with
    assert call(rationale_grounding_reward, [text], label=[None]) == [grounded]
    assert call(rationale_grounding_reward, [text], label=["joy"]) == [0.0]
    assert call(rationale_grounding_reward, [text], label=["anger"]) == [grounded]
    assert call(rationale_grounding_reward, [text], label=["joy"], open_vocabulary=[True]) == [grounded]
    speakers = {"label": ["Rachel"], "label_set": [["Ross", "Rachel"]], "task": ["speaker"]}
    assert call(rationale_grounding_reward, [text], **speakers) == [grounded]


def test_batch_matches_rows():
    completions = [[{"role": "assistant", "content": row[1]}] for row in TABLE]
    scores = call(label_accuracy_reward, completions, label=[row[2] for row in TABLE])
    assert scores == [row[3] for row in TABLE]


def test_label_accuracy_parameters():
    synonym, unclosed, untagged = T + "<answer>happiness</answer>", T + "<answer>joy", "Joy."
    assert call(LabelAccuracyReward(synonym_credit=0.0), [synonym], label=["joy"]) == [0.0]
    assert call(LabelAccuracyReward(synonym_credit=1.0), [synonym], label=["joy"]) == [1.0]
    strict = LabelAccuracyReward(mode="strict")
    assert call(strict, [unclosed, untagged, T + "<answer>joy</answer>"], label=["joy"] * 3) == [0.0, 0.0, 1.0]


def test_label_accuracy_unlabeled_row_is_none():
    assert call(label_accuracy_reward, ["<answer>joy</answer>"], label=[None]) == [None]


def test_speaker_task_row():
    scores = call(
        label_accuracy_reward,
        ["<answer>rachel</answer>", "<answer>Monica</answer>"],
        label=["Rachel", "Rachel"],
        label_set=[["Ross", "Rachel"]] * 2,
        task=["speaker"] * 2,
        answer_format=["answer_only"] * 2,
    )
    assert scores == [1.0, 0.0]
    assert call(format_reward, ["<answer>Ross</answer>"], answer_format=["answer_only"]) == [1.0]


def test_emorynlp_row_accepts_corpus_synonyms():
    emory = list(get_label_set("emorynlp").labels)
    scores = call(
        label_accuracy_reward,
        ["<answer>joyful</answer>", "<answer>joy</answer>"],
        label=["joyful"] * 2,
        label_set=[emory] * 2,
    )
    assert scores == [1.0, 0.5]


def test_open_vocabulary_row_scores_concept_f1():
    scores = call(
        label_accuracy_reward,
        [T + "<answer>joyful, relieved and amused</answer>", T + "<answer>bored</answer>"],
        label=["happy, relieved"] * 2,
        labels=[["happy", "relieved"]] * 2,
        open_vocabulary=[True] * 2,
    )
    assert scores == [pytest.approx(2 * 2 / (3 + 2)), 0.0]


def test_grounding_without_context_is_none():
    assert call(rationale_grounding_reward, [T + "<answer>joy</answer>"], context=[None]) == [None]


def test_direct_call_with_one_label_set_for_all_rows():
    assert label_in_set_reward(["<answer>joy</answer>", "<answer>banana</answer>"], label_set=MELD) == [1.0, 0.0]
    assert label_accuracy_reward(["<answer>joy</answer>"], label="joy", label_set=get_label_set("meld")) == [1.0]


def test_length_penalty():
    penalty = LengthPenalty(target_words=3)
    completions = [
        "<think>one two three</think><answer>joy</answer>",
        "<think>one two three four</think>",
        "<think>" + "w " * 6 + "</think>",
        "<think>" + "w " * 60 + "</think>",
        "a b c d e",
    ]
    assert call(penalty, completions) == [0.0, pytest.approx(-1 / 3), -1.0, -1.0, pytest.approx(-2 / 3)]
    assert call(LengthPenalty(target_words=3, max_penalty=0.5, scale_words=6), ["a b c d e f"]) == [-0.25]
    with pytest.raises(ValueError):
        LengthPenalty(target_words=-1)


def test_names():
    assert label_accuracy_reward.__name__ == "label_accuracy"
    assert LabelAccuracyReward(name="label_accuracy_strict", mode="strict").__name__ == "label_accuracy_strict"
    assert format_reward.__name__ == "format_reward"
    assert label_in_set_reward.__name__ == "label_in_set_reward"
    assert rationale_grounding_reward.__name__ == "rationale_grounding_reward"
    assert LengthPenalty().__name__ == "length_penalty"


@pytest.mark.parametrize(
    "reward",
    [
        label_accuracy_reward,
        LabelAccuracyReward(0.25, "strict"),
        format_reward,
        label_in_set_reward,
        rationale_grounding_reward,
        LengthPenalty(target_words=2),
    ],
    ids=lambda r: r.__name__,
)
def test_rewards_are_picklable(reward):
    restored = pickle.loads(pickle.dumps(reward))
    assert restored.__name__ == reward.__name__
    completions = [row[1] for row in TABLE]
    labels = [row[2] for row in TABLE]
    assert call(restored, completions, label=labels) == call(reward, completions, label=labels)


def test_completion_text_forms():
    assert completion_text("plain") == "plain"
    assert completion_text([{"role": "assistant", "content": "a"}, {"role": "assistant", "content": "b"}]) == "ab"
    assert completion_text([{"role": "assistant", "content": [{"type": "text", "text": "parts"}]}]) == "parts"
    assert completion_text(None) == ""


def test_build_rewards(tmp_path, monkeypatch):
    (tmp_path / "my_rewards.py").write_text(
        "def politeness(completions, speaker, **kwargs):\n    return [0.0 for _ in completions]\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    funcs, weights = build_rewards(
        {"label_accuracy": 1.0, "format_reward": 0.5, "length_penalty": 0.1, "my_rewards:politeness": 0.25}
    )
    assert [f.__name__ for f in funcs] == ["label_accuracy", "format_reward", "length_penalty", "politeness"]
    assert weights == [1.0, 0.5, 0.1, 0.25]
    assert isinstance(funcs[2], LengthPenalty)
    funcs, weights = build_rewards(["format", "rationale_grounding", "instructerc.train.rewards:LengthPenalty"])
    assert [f.__name__ for f in funcs] == ["format_reward", "rationale_grounding_reward", "length_penalty"]
    assert weights == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="unknown reward"):
        build_rewards(["accuracy"])
    with pytest.raises(ValueError, match="cannot import"):
        build_rewards(["no_such_module:fn"])
    with pytest.raises(ValueError, match="at least one"):
        build_rewards([])


def test_required_columns():
    def custom(prompts, completions, completion_ids, label, speaker, scale=1.0, **kwargs):
        return []

    assert required_columns(label_accuracy_reward) == {"label", "label_set"}
    assert required_columns(LabelAccuracyReward) == {"label", "label_set"}
    assert required_columns(format_reward) == set()
    assert required_columns(label_in_set_reward) == {"label_set"}
    assert required_columns(rationale_grounding_reward) == {"context"}
    assert required_columns(LengthPenalty) == set()
    assert required_columns(custom) == {"label", "speaker"}
    assert set(REWARDS) == {"label_accuracy", "format", "label_in_set", "rationale_grounding", "length_penalty"}
