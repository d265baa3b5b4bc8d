"""The dialogue unit: chunking, the per-turn parser, label-slot scoring, and predict rows like utterance rows."""

from __future__ import annotations

import shutil
from dataclasses import dataclass

import pytest
from examples_data import build_examples

from instructerc.answer_format import render_turn_answers
from instructerc.data_builders.dialogue_unit import build_dialogue_examples
from instructerc.data_builders.instructions import BuildStats
from instructerc.infer.predict import PredictConfig, TransformersBackend, predict
from instructerc.infer.scoring import prompt_ids
from instructerc.infer.sources import example_id, load_built_rows
from instructerc.infer.turn_scoring import score_turns, turn_pieces
from instructerc.infer.writer import read_jsonl
from instructerc.labels import get_label_set
from instructerc.parsing import parse_turn_answers
from instructerc.prompts import get_template
from instructerc.schema import Dialogue, Utterance

MELD = get_label_set("meld")
TEMPLATE = get_template("emotion_dialogue")


def _dialogue(n_turns: int, dialogue_id: str = "d1", unlabeled: tuple[int, ...] = ()) -> Dialogue:
    labels = ["neutral", "joy", "anger", "surprise", "sadness"]
    return Dialogue(
        dialogue_id,
        [
            Utterance(
                i,
                ["Ross", "Rachel"][i % 2],
                f"Line {i} about the couch and the coffee.",
                None if i in unlabeled else labels[i % 5],
            )
            for i in range(n_turns)
        ],
        split="train",
    )


# ---------------------------------------------------------------- parser


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1: neutral\n2: joy\n3: anger", [("neutral", None), ("joy", None), ("anger", None)]),
        # a missing turn is invalid on its own; its neighbours keep their labels (never shifted)
        ("1: neutral\n3: anger", [("neutral", None), (None, "missing turn"), ("anger", None)]),
        # shuffled lines are read by number, not position
        ("3: anger\n1: neutral\n2: joy", [("neutral", None), ("joy", None), ("anger", None)]),
        # a turn given twice with different labels is invalid; the same label twice is one answer (lenient)
        (
            "1: joy\n1: anger\n2: joy\n2: joy\n3: anger",
            [(None, "duplicated turn: joy, anger"), ("joy", None), ("anger", None)],
        ),
        # lines for turns that were not asked, and chatter, are ignored
        ("Sure!\n1: neutral\n2: joy\n3: anger\n4: fear", [("neutral", None), ("joy", None), ("anger", None)]),
        # an unreadable label is invalid for that turn only; a synonym reads as its label
        ("1: neutral\n2: banana\n3: happy", [("neutral", None), (None, "out of set: banana"), ("joy", None)]),
        ("", [(None, "empty")] * 3),
    ],
)
def test_turn_parser_reads_each_turn_on_its_own(text, expected):
    parsed = parse_turn_answers(text, [1, 2, 3], MELD, mode="lenient")
    assert [(p.label, p.reason) for p in parsed] == expected
    assert all(p.valid == (p.label is not None) for p in parsed)


def test_strict_turn_parser_needs_exactly_the_asked_lines():
    exact = parse_turn_answers("1: neutral\n2: joy", [1, 2], MELD, mode="strict")
    assert [p.label for p in exact] == ["neutral", "joy"] and all(p.well_formed for p in exact)
    for text in ("2: joy\n1: neutral", "1: neutral\n2: joy\n3: anger", "1: neutral\n2: happy", "1: neutral\n2. joy"):
        parsed = parse_turn_answers(text, [1, 2], MELD, mode="strict")
        assert not any(p.well_formed for p in parsed), text
        assert not all(p.valid for p in parsed), text


def test_turn_parser_reads_what_training_renders():
    answers = [(4, "neutral"), (5, "joy"), (7, "disgust")]
    parsed = parse_turn_answers(render_turn_answers(answers), [4, 5, 7], MELD, mode="strict")
    assert [p.label for p in parsed] == ["neutral", "joy", "disgust"] and all(p.well_formed for p in parsed)


# ---------------------------------------------------------------- chunking


def test_short_dialogue_is_one_example_with_every_turn(count_tokens):
    rows = list(build_dialogue_examples([_dialogue(5)], template=TEMPLATE, label_set=MELD, count_tokens=count_tokens))
    assert len(rows) == 1
    row = rows[0]
    assert [t["turn"] for t in row["targets"]] == [0, 1, 2, 3, 4] and [t["number"] for t in row["targets"]] == [
        1,
        2,
        3,
        4,
        5,
    ]
    assert row["completion"][0]["content"] == "1: neutral\n2: joy\n3: anger\n4: surprise\n5: sadness"
    assert row["labels"] == ["neutral", "joy", "anger", "surprise", "sadness"] and row["unit"] == "dialogue"
    assert row["prompt_tokens"] == count_tokens(row["prompt"])
    assert "5. Ross: Line 4 about the couch and the coffee." in row["prompt"][-1]["content"]


@pytest.mark.parametrize("budget", [170, 260, 400])
def test_long_dialogue_chunks_fit_and_ask_every_labeled_turn_once(count_tokens, budget):
    stats = BuildStats()
    dialogue = _dialogue(40, unlabeled=(3, 17))
    rows = list(
        build_dialogue_examples(
            [dialogue],
            template=TEMPLATE,
            label_set=MELD,
            count_tokens=count_tokens,
            max_prompt_tokens=budget,
            context_turns=2,
            stats=stats,
        )
    )
    assert len(rows) > 1
    asked = [t["turn"] for row in rows for t in row["targets"]]
    assert sorted(asked) == [i for i in range(40) if i not in (3, 17)]  # every labeled turn, exactly once
    assert all(row["prompt_tokens"] <= budget for row in rows) and stats.over_budget == 0
    assert stats.unlabeled_skipped == 2
    for row in rows[1:]:  # later chunks show 2 earlier turns as context (plus an unlabeled one), not asked
        assert row["n_history"] >= 2 and row["targets"][0]["number"] == row["n_history"] + 1
    for row in rows:  # the completion answers the numbers the prompt shows, in order
        numbers = [t["number"] for t in row["targets"]]
        parsed = parse_turn_answers(row["completion"][0]["content"], numbers, MELD, mode="strict")
        assert [p.label for p in parsed] == [t["label"] for t in row["targets"]]


@dataclass
class Demo:
    speaker: str
    text: str
    label: str


def test_demonstrations_are_shared_round_robin_without_repeats(count_tokens):
    same = Demo("Joey", "How you doin'?", "joy")
    demos = {
        ("d1", 0): [same, Demo("Phoebe", "Smelly cat!", "joy")],
        ("d1", 1): [same, Demo("Ross", "Pivot!", "anger")],
    }
    rows = list(
        build_dialogue_examples(
            [_dialogue(2)],
            template=TEMPLATE,
            label_set=MELD,
            count_tokens=count_tokens,
            n_demos=3,
            demonstrations=demos,
        )
    )
    user = rows[0]["prompt"][-1]["content"]
    assert rows[0]["n_demos"] == 3 and user.count("How you doin'?") == 1
    assert user.index("How you doin") < user.index("Smelly cat") < user.index("Pivot")


# ---------------------------------------------------------------- label-slot scoring


@pytest.fixture(scope="module")
def backend():
    return TransformersBackend.from_config(PredictConfig(output="-", dataset_dir="-", model_dtype="float32", threads=1))


def naive_turn_scores(model, tokenizer, messages, numbers, labels):
    """Reference: for each turn, a full forward pass over prompt + the answer so far + each candidate."""
    import torch

    chosen, out = [], []
    prompt = prompt_ids(tokenizer, messages)
    for k, number in enumerate(numbers):
        lls = []
        for label in labels:
            so_far = render_turn_answers(list(zip(numbers[:k], chosen, strict=True)) + [(number, label)])
            end = "\n" if k + 1 < len(numbers) else tokenizer.eos_token
            completion = tokenizer(so_far + end, add_special_tokens=False)["input_ids"]
            before = tokenizer(so_far.rsplit(" ", 1)[0], add_special_tokens=False)["input_ids"]  # up to "k:"
            ids = torch.tensor([prompt + completion])
            with torch.inference_mode():
                logp = torch.log_softmax(model(input_ids=ids).logits[0].float(), dim=-1)
            start = len(prompt) + len(before)
            positions = torch.arange(start - 1, len(prompt) + len(completion) - 1)
            lls.append(float(logp[positions, torch.tensor(completion[len(before) :])].sum()))
        out.append(lls)
        chosen.append(labels[max(range(len(labels)), key=lls.__getitem__)])
    return out, chosen


def test_turn_scores_equal_a_full_forward_per_slot(backend, count_tokens):
    row = next(build_dialogue_examples([_dialogue(3)], template=TEMPLATE, label_set=MELD, count_tokens=count_tokens))
    labels = ["neutral", "joy", "surprise"]
    numbers = [t["number"] for t in row["targets"]]
    scores = score_turns(backend.model, backend.tokenizer, row["prompt"], numbers, labels)
    reference, chosen = naive_turn_scores(backend.model, backend.tokenizer, row["prompt"], numbers, labels)
    assert [s.best for s in scores] == chosen
    for got, want in zip(scores, reference, strict=True):
        assert got.log_likelihoods == pytest.approx(want, abs=2e-3)
        assert sum(got.probabilities.values()) == pytest.approx(1.0)


def test_turn_pieces_tokenize_like_the_training_text(tokenizer):
    messages = [{"role": "user", "content": "Label these."}]
    prompt, prefixes, newline = turn_pieces(tokenizer, messages, [1, 2, 10, 11], MELD.labels)
    assert prompt == prompt_ids(tokenizer, messages)
    assert tokenizer.decode(prefixes[2]) == "10:" and tokenizer.decode([newline]) == "\n"


def test_bias_moves_the_choice_not_the_probabilities(backend, count_tokens):
    row = next(build_dialogue_examples([_dialogue(2)], template=TEMPLATE, label_set=MELD, count_tokens=count_tokens))
    plain = score_turns(backend.model, backend.tokenizer, row["prompt"], [1, 2], MELD.labels)
    pushed = score_turns(backend.model, backend.tokenizer, row["prompt"], [1, 2], MELD.labels, bias={"disgust": 50.0})
    assert [s.best for s in pushed] == ["disgust", "disgust"]
    assert pushed[0].probabilities == plain[0].probabilities


# ---------------------------------------------------------------- predict


@pytest.fixture(scope="module")
def dialogue_data(tmp_path_factory):
    return build_examples(
        tmp_path_factory.mktemp("dialogue") / "data", splits=["validation"], template="emotion_dialogue"
    )


@pytest.fixture(scope="module")
def utterance_data(tmp_path_factory):
    return build_examples(tmp_path_factory.mktemp("utterance") / "data", splits=["validation"])


def _config(output, data, **kwargs) -> PredictConfig:
    defaults = {"max_new_tokens": 48, "threads": 1, "model_dtype": "float32", "show_progress": False}
    return PredictConfig(output=str(output), dataset_dir=str(data), **{**defaults, **kwargs})


@pytest.mark.parametrize("mode", ["generate", "score"])
def test_dialogue_rows_predict_the_same_rows_as_utterance_rows(dialogue_data, utterance_data, backend, tmp_path, mode):
    summary = predict(_config(tmp_path / "d.jsonl", dialogue_data, mode=mode), backend)
    dialogue = read_jsonl(tmp_path / "d.jsonl")
    assert summary.written == len(dialogue) == 7
    utterance_rows = load_built_rows(utterance_data, "validation")
    assert [r["id"] for r in dialogue] == [example_id(r) for r in utterance_rows]
    assert all(r["unit"] == "dialogue" and r["mode"] == mode for r in dialogue)
    assert [r["gold"] for r in dialogue] == [r["label"] for r in utterance_rows]
    assert [r["text"] for r in dialogue] == [r["text"] for r in utterance_rows]
    utterance = predict(_config(tmp_path / "u.jsonl", utterance_data, mode="score", limit=1), backend)
    assert utterance.written == 1
    assert set(read_jsonl(tmp_path / "u.jsonl")[0]) == set(dialogue[0])  # the same fields
    for row in dialogue:
        assert row["valid"] == (row["predicted"] is not None) and (row["predicted"] in (None, *row["label_set"]))
    if mode == "score":
        assert all(r["valid"] and r["probabilities"] for r in dialogue)


def test_dialogue_predict_resumes_a_half_written_file(dialogue_data, backend, tmp_path):
    full = tmp_path / "full.jsonl"
    predict(_config(full, dialogue_data, mode="score"), backend)
    rows = full.read_text().splitlines(keepends=True)
    part = tmp_path / "part.jsonl"
    part.write_text("".join(rows[:3]) + rows[3][:20])  # three rows, then a torn line, mid-dialogue
    summary = predict(_config(part, dialogue_data, mode="score"), backend)
    assert summary.skipped == 3 and summary.written == len(rows) - 3
    assert [r["id"] for r in read_jsonl(part)] == [r["id"] for r in read_jsonl(full)]
    assert [r["predicted"] for r in read_jsonl(part)] == [r["predicted"] for r in read_jsonl(full)]
    shutil.copy(part, tmp_path / "again.jsonl")
    assert predict(_config(tmp_path / "again.jsonl", dialogue_data, mode="score")).written == 0


def test_structured_answers_of_dialogue_rows_hold_every_asked_turn():
    import json
    import re

    from instructerc.infer.structured import row_constraint

    row = {
        "unit": "dialogue",
        "label_set": ["neutral", "joy"],
        "targets": [{"number": 3}, {"number": 4}],
        "answer_format": "turn_labels",
    }
    regex = row_constraint("answer_format", row, 64)["regex"]
    assert re.fullmatch(regex, "3: joy\n4: neutral") and not re.fullmatch(regex, "3: joy")
    schema = row_constraint("json", row, 64)["json"]
    assert schema["required"] == ["3", "4"] and schema["properties"]["3"]["enum"] == ["neutral", "joy"]
    parsed = parse_turn_answers(json.dumps({"3": "joy", "4": "neutral"}), [3, 4], MELD, mode="strict")
    assert [p.label for p in parsed] == ["joy", "neutral"] and all(p.well_formed for p in parsed)
    with pytest.raises(ValueError, match="one per turn"):
        row_constraint("choice", row, 64)


def test_rewards_score_dialogue_rows_per_turn():
    from instructerc.train.rewards import (
        format_reward,
        label_accuracy_reward,
        label_in_set_reward,
        rationale_grounding_reward,
    )

    targets = [{"number": 1, "label": "joy"}, {"number": 2, "label": "anger"}, {"number": 3, "label": "neutral"}]
    columns = {
        "label": ["1: joy\n2: anger\n3: neutral"] * 4,
        "label_set": [list(MELD.labels)] * 4,
        "answer_format": ["turn_labels"] * 4,
        "targets": [targets] * 4,
        "task": ["emotion"] * 4,
    }
    completions = [
        [{"role": "assistant", "content": "1: joy\n2: anger\n3: neutral"}],  # all right, well formed
        [{"role": "assistant", "content": "1: joy\n2: sadness\n3: neutral"}],  # one wrong
        [{"role": "assistant", "content": "1: happy\n3: neutral"}],  # a synonym, a missing turn
        [{"role": "assistant", "content": "no idea"}],
    ]
    assert label_accuracy_reward(completions, **columns) == pytest.approx([1.0, 2 / 3, 0.5 / 3 + 1 / 3, 0.0])
    assert label_in_set_reward(completions, **columns) == pytest.approx([1.0, 1.0, 2 / 3, 0.0])
    assert format_reward(completions, **columns) == [1.0, 1.0, 0.0, 0.0]
    context = ["Ross: hi"] * 4
    assert rationale_grounding_reward(completions, context=context, **columns) == [None] * 4


@pytest.mark.slow
def test_dialogue_unit_train_predict_evaluate(tmp_path):
    """The loop on the bundled examples with the dialogue unit: SFT (fast CPU loss), score-mode predictions,
    calibration, evaluation; dev scores in the model card read dialogue answers per turn."""
    import json

    from examples_data import FAST

    from instructerc.cli import main
    from instructerc.config import load_config
    from instructerc.train.configs import SFTTrainConfig
    from instructerc.train.sft import run_sft

    data = build_examples(tmp_path / "data", template="emotion_dialogue")
    settings = {
        **FAST,
        "dataset_dir": str(data),
        "output_dir": str(tmp_path / "sft"),
        "max_steps": 6,
        "per_device_train_batch_size": 2,
        "learning_rate": 2e-3,
        "logging_steps": 1,
        "eval_steps": 6,
        "save_steps": 6,
        "dev_eval_samples": 2,
        "dev_max_new_tokens": 8,
    }
    run_sft(load_config(SFTTrainConfig, None, settings))
    meta = json.loads((tmp_path / "sft" / "instructerc_train.json").read_text())
    assert {"weighted_f1", "well_formed_rate"} <= set(meta["dev_scores"])
    log = [json.loads(line) for line in (tmp_path / "sft" / "training_log.jsonl").read_text().splitlines()]
    losses = [e["loss"] for e in log if "loss" in e]
    assert losses[-1] < losses[0]
    predictions = tmp_path / "dev.jsonl"
    common = [
        "--dataset_dir",
        str(data),
        "--split",
        "validation",
        "--adapter",
        str(tmp_path / "sft"),
        "--threads",
        "1",
        "--model_dtype",
        "float32",
        "--no-show_progress",
    ]
    assert main(["predict", *common, "--mode", "score", "--output", str(predictions)]) == 0
    rows = read_jsonl(predictions)
    assert len(rows) == 7 and all(r["valid"] and r["unit"] == "dialogue" for r in rows)
    calibration = tmp_path / "sft" / "calibration.json"
    assert main(["calibrate", "--predictions", str(predictions), "--output", str(calibration)]) == 0
    fitted = json.loads(calibration.read_text())
    assert fitted["weighted_f1_after_in_sample"] >= fitted["weighted_f1_before"]
    calibrated = tmp_path / "calibrated.jsonl"
    assert main(["predict", *common, "--mode", "score", "--calibration", "auto", "--output", str(calibrated)]) == 0
    assert {r["calibration"] for r in read_jsonl(calibrated)} == {str(calibration)}
    assert main(["evaluate", "--predictions", str(calibrated), "--output_dir", str(tmp_path / "eval")]) == 0
    assert (tmp_path / "eval" / "report.md").is_file()


def test_label_a_transcript_with_the_dialogue_unit(tmp_path, capsys):
    from instructerc.cli import main

    chat = tmp_path / "chat.txt"
    chat.write_text("Ana: I finally got the job!\nBen: No way, that is amazing!\nAna: I start Monday.\n")
    out = tmp_path / "labels.jsonl"
    argv = [
        "label",
        "--input",
        str(chat),
        "--labels",
        "meld",
        "--template",
        "emotion_dialogue",
        "--mode",
        "score",
        "--threads",
        "1",
        "--no-show_progress",
        "--output",
        str(out),
    ]
    assert main(argv) == 0
    rows = read_jsonl(out)
    assert [r["text"] for r in rows] == ["I finally got the job!", "No way, that is amazing!", "I start Monday."]
    assert all(r["unit"] == "dialogue" and r["valid"] and r["predicted"] in MELD.labels for r in rows)
    assert "I start Monday." in capsys.readouterr().out


def test_stages_that_keep_few_columns_still_read_dialogue_rows_per_turn():
    """GRPO keeps only reward columns: a row without `unit` is still read per turn (answer format), and a
    reward batch may mix dialogue rows with utterance rows."""
    from instructerc.infer.predict import rows_from_texts
    from instructerc.train.rewards import label_accuracy_reward

    targets = [
        {"turn": 0, "number": 1, "speaker": "A", "text": "hi", "label": "joy"},
        {"turn": 1, "number": 2, "speaker": "B", "text": "yo", "label": None},
    ]
    row = {
        "prompt": [],
        "label_set": list(MELD.labels),
        "answer_format": "turn_labels",
        "targets": targets,
        "task": "emotion",
        "split": "train",
        "dialogue_id": "d",
    }
    rows = rows_from_texts([row], ["1: joy\n2: anger"], PredictConfig(output="-", dataset_dir="-"))
    assert [(r["turn"], r["predicted"], r["gold_labels"]) for r in rows] == [(0, "joy", ["joy"]), (1, "anger", [])]
    mixed = label_accuracy_reward(
        ["1: joy\n2: anger", "<answer>Ross</answer>"],
        label=["1: joy\n2: anger", "Ross"],
        label_set=[list(MELD.labels), ["Ross", "Rachel"]],
        answer_format=["turn_labels", "answer_only"],
        targets=[[t | {"label": "joy"} for t in targets], []],
        task=["emotion", "speaker"],
    )
    assert mixed == [0.5, 1.0]


def test_calibration_refuses_rows_it_cannot_fit(tmp_path):
    import json

    from instructerc.config import ConfigError
    from instructerc.eval.calibration import CalibrateConfig, run_calibrate

    rows = [
        {"id": "a", "dialogue_id": "d", "gold": "joy", "probabilities": {"joy": 0.6, "neutral": 0.4}},
        {"id": "b", "dialogue_id": "d", "gold": "anger", "probabilities": {"joy": 0.6, "neutral": 0.4}},
    ]
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(ConfigError, match="row b has gold 'anger'"):
        run_calibrate(CalibrateConfig(predictions=str(path), output=str(tmp_path / "c.json")))
