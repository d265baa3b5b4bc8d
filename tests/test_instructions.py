from dataclasses import dataclass

import pytest

from instructerc.answer_format import render_answer
from instructerc.data_builders.instructions import BuildStats, build_examples
from instructerc.labels import get_label_set
from instructerc.prompts import get_template
from instructerc.schema import Dialogue, Utterance

MELD = get_label_set("meld")


@dataclass
class Demo:
    speaker: str
    text: str
    label: str


def _dialogue(n_turns=4, dialogue_id="d1"):
    speakers = ["Ross", "Rachel", "Monica"]
    labels = ["neutral", "joy", "anger", "surprise"]
    return Dialogue(
        dialogue_id,
        [
            Utterance(
                i,
                speakers[i % 3],
                f"Line number {i} about the coffee house and the couch.",
                labels[i % 4],
                rationale=f"reason {i}" if i == 1 else None,
                audio_cue="loud" if i == 1 else None,
            )
            for i in range(n_turns)
        ],
        split="train",
    )


def _build(template="emotion", dialogues=None, **kwargs):
    kwargs.setdefault("count_tokens", kwargs.pop("counter", None))
    return list(build_examples(dialogues or [_dialogue()], template=get_template(template), label_set=MELD, **kwargs))


def test_rows_are_trl_prompt_completion_with_metadata(count_tokens):
    rows = _build(count_tokens=count_tokens)
    assert len(rows) == 4
    row = rows[1]
    assert [m["role"] for m in row["prompt"]] == ["system", "user"]
    assert row["completion"] == [{"role": "assistant", "content": render_answer("joy", "think_answer", "reason 1")}]
    assert row["label"] == "joy" and row["label_set"] == list(MELD.labels)
    assert (row["dialogue_id"], row["turn"], row["speaker"], row["task"]) == ("d1", 1, "Rachel", "emotion")
    assert row["template"] == "emotion@v1" and row["template_version"] == 1
    assert row["rationale_source"] == "reference" and rows[0]["rationale_source"] == "none"
    assert row["prompt_tokens"] == count_tokens(row["prompt"])
    assert "Rachel: Line number 1 about the coffee house and the couch. [audio: loud]" in row["prompt"][1]["content"]
    # The dialogue lines shown in the prompt, as plain text for grounding checks: history, then the target.
    assert row["context"].splitlines() == [
        "Ross: Line number 0 about the coffee house and the couch.",
        "Rachel: Line number 1 about the coffee house and the couch. [audio: loud]",
    ]


def test_window_limits_history(count_tokens):
    rows = _build(count_tokens=count_tokens, dialogues=[_dialogue(10)], window=3)
    assert [r["n_history"] for r in rows] == [0, 1, 2, 3, 3, 3, 3, 3, 3, 3]
    user = rows[9]["prompt"][1]["content"]
    assert "Line number 6 " in user and "Line number 5 " not in user


def test_200_turn_dialogue_is_cut_from_the_oldest_turn_and_keeps_the_instruction(count_tokens):
    stats = BuildStats()
    demos = {("d1", 199): [Demo("Joey", "How you doin'?", "joy")]}
    rows = _build(
        count_tokens=count_tokens,
        dialogues=[_dialogue(200)],
        window=200,
        max_prompt_tokens=400,
        demonstrations=demos,
        stats=stats,
    )
    last = rows[-1]
    user = last["prompt"][1]["content"]
    assert 0 < last["n_history"] < 199
    assert last["prompt_tokens"] <= 400
    # The newest history turn is kept and the oldest ones are gone.
    assert "Line number 198 " in user and "Line number 0 " not in user
    # Instruction, target, label set and answer format are never cut; the demonstration fits too.
    assert "Target utterance:\nRachel: Line number 199" in user
    assert "Choose exactly one label from: neutral, surprise, fear, sadness, joy, disgust, anger." in user
    assert "<answer></answer>" in user and "How you doin'?" in user
    # Keeping one more turn would not fit: the search keeps as much history as possible.
    kept = last["n_history"]
    history = [{"speaker": u.speaker, "text": u.text, "cues": u.cues} for u in _dialogue(200).utterances[:199]]
    one_more = get_template("emotion").render(
        history=history[-(kept + 1) :],
        target={"speaker": "Rachel", "text": last["text"], "cues": {}},
        label_set=list(MELD.labels),
        demonstrations=[{"speaker": "Joey", "text": "How you doin'?", "label": "joy"}],
    )
    assert count_tokens(one_more) > 400
    assert stats.history_truncated > 0 and stats.over_budget == 0


def test_tiny_budget_drops_demos_then_reports_over_budget(count_tokens):
    demos = {("d1", 3): [Demo("Joey", "How you doin'? " * 20, "joy")]}
    stats = BuildStats()
    rows = _build(count_tokens=count_tokens, demonstrations=demos, max_prompt_tokens=60, stats=stats)
    assert rows[3]["n_demos"] == 0 and rows[3]["n_history"] == 0
    assert "Choose exactly one label" in rows[3]["prompt"][1]["content"]
    assert stats.over_budget == 4  # the protected parts alone exceed 60 tokens: kept, and counted


def test_unlabeled_utterances_are_skipped_unless_asked(count_tokens):
    dialogue = _dialogue()
    dialogue.utterances[2].label = None
    stats = BuildStats()
    assert len(_build(count_tokens=count_tokens, dialogues=[dialogue], stats=stats)) == 3
    assert stats.unlabeled_skipped == 1
    rows = _build(count_tokens=count_tokens, dialogues=[dialogue], include_unlabeled=True)
    assert rows[2]["label"] is None and rows[2]["completion"] == []


def test_auxiliary_tasks(count_tokens):
    speaker_rows = _build("speaker", count_tokens=count_tokens)
    assert [r["label"] for r in speaker_rows] == ["Ross", "Rachel", "Monica", "Ross"]
    assert speaker_rows[0]["label_set"] == ["Ross", "Rachel", "Monica"]
    assert speaker_rows[0]["completion"][0]["content"] == "<answer>Ross</answer>"
    impact_rows = _build("impact", count_tokens=count_tokens)
    assert [r["turn"] for r in impact_rows] == [1, 2, 3]  # nothing to predict the first turn from
    assert "Line number 2 " not in impact_rows[1]["prompt"][1]["content"]  # the target itself is hidden
    assert "Line number 2 " not in impact_rows[1]["context"]
    assert impact_rows[1]["label"] == "anger"
    monologue = Dialogue("m", [Utterance(0, "A", "hi", "joy"), Utterance(1, "A", "bye", "joy")])
    assert _build("speaker", count_tokens=count_tokens, dialogues=[monologue]) == []


def test_open_vocabulary_targets_use_the_labels_list(count_tokens):
    dialogue = _dialogue(2)
    dialogue.utterances[1].labels = ["amusement", "relief"]
    rows = _build("emotion_open_vocab", count_tokens=count_tokens, dialogues=[dialogue])
    assert rows[1]["labels"] == ["amusement", "relief"] and rows[1]["label"] == "amusement, relief"
    assert rows[1]["completion"][0]["content"].endswith("<answer>amusement, relief</answer>")
    assert rows[0]["labels"] == ["neutral"]


def test_training_prompt_equals_chat_template_rendering(tokenizer, count_tokens):
    row = _build(count_tokens=count_tokens)[1]
    text = tokenizer.apply_chat_template(row["prompt"], tokenize=False, add_generation_prompt=True)
    assert text.startswith("<|im_start|>system\nYou are an expert in emotion recognition")
    assert text.endswith("<|im_start|>assistant\n")
    # Our system message replaces the template's default one instead of being added to it.
    assert text.count("<|im_start|>system") == 1


@pytest.mark.parametrize("budget", [None, 10_000])
def test_no_budget_or_a_large_one_keeps_everything(count_tokens, budget):
    rows = _build(count_tokens=count_tokens, dialogues=[_dialogue(30)], window=30, max_prompt_tokens=budget)
    assert rows[-1]["n_history"] == 29


def test_clues_become_the_think_block_when_there_is_no_rationale(count_tokens):
    dialogue = _dialogue(4)
    dialogue.utterances[1].clues = ["She raises her voice", "she smiles."]  # turn 1 also has a rationale
    dialogue.utterances[2].clues = ["He slams the door", "  ", "his voice is loud."]
    dialogue.utterances[3].clues = []
    rows = _build(count_tokens=count_tokens, dialogues=[dialogue])
    assert [r["rationale_source"] for r in rows] == ["none", "reference", "clues", "none"]
    assert rows[2]["completion"][0]["content"] == render_answer(
        "anger", "think_answer", "He slams the door. his voice is loud."
    )
    assert rows[1]["completion"][0]["content"] == render_answer("joy", "think_answer", "reason 1")  # reference wins
    # The columns keep what the data said: the clues, and no reference rationale for the clue row.
    assert rows[2]["rationale"] == "" and rows[2]["clues"] == ["He slams the door", "  ", "his voice is loud."]
    assert rows[3]["completion"][0]["content"] == render_answer("surprise", "think_answer")
    # Only emotion targets get a think block; the label-only template has none to fill.
    label_only = _build("emotion_label_only", count_tokens=count_tokens, dialogues=[dialogue])[2]
    assert label_only["completion"][0]["content"] == render_answer("anger", "answer_only")
