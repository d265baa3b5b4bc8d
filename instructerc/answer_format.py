"""The answer formats a model is asked to produce, written in one place.

Training targets are rendered here and the output parser reads the same tags, so the two cannot drift apart.
"""

from __future__ import annotations

from typing import Literal

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"
OPEN_VOCAB_SEPARATOR = ", "

AnswerFormat = Literal["think_answer", "answer_only", "turn_labels"]
# `turn_labels` is the dialogue unit's answer: one "k: label" line per target turn k of the conversation.
ANSWER_FORMATS: tuple[str, ...] = ("think_answer", "answer_only", "turn_labels")
TURN_SEPARATOR = ": "


def render_answer(answer: str | list[str], answer_format: str, rationale: str | None = None) -> str:
    """Render a target completion: `<think>rationale</think><answer>label</answer>` or `<answer>label</answer>`.

    A list of answers (open vocabulary) is joined with ", ". In the think format a missing rationale gives an
    empty think block, so the structure the parser and the format reward expect is still there.
    """
    if answer_format not in ANSWER_FORMATS:
        raise ValueError(f"unknown answer format {answer_format!r}; expected one of {', '.join(ANSWER_FORMATS)}")
    if answer_format == "turn_labels":
        raise ValueError("turn_labels answers list several turns: render them with render_turn_answers")
    text = OPEN_VOCAB_SEPARATOR.join(answer) if isinstance(answer, list) else answer
    tagged = f"{ANSWER_OPEN}{text}{ANSWER_CLOSE}"
    if answer_format == "answer_only":
        return tagged
    return f"{THINK_OPEN}{(rationale or '').strip()}{THINK_CLOSE}{tagged}"


def turn_prefix(number: int, first: bool) -> str:
    """The text that opens turn `number`'s line in a `turn_labels` answer (a newline ends the line before)."""
    return f"{'' if first else chr(10)}{number}{TURN_SEPARATOR.rstrip()}"


def turn_label_text(label: str) -> str:
    """A label as it follows its turn prefix (the separator's space belongs to the label: it is one token with it
    in byte-level BPE vocabularies, which is what makes label slots cheap to score)."""
    return f" {label}"


def render_turn_answers(answers: list[tuple[int, str]]) -> str:
    """The `turn_labels` completion: "1: neutral\n2: joy" for [(1, "neutral"), (2, "joy")]."""
    if not answers:
        raise ValueError("a turn_labels answer needs at least one turn")
    return "".join(
        turn_prefix(number, first=k == 0) + turn_label_text(label) for k, (number, label) in enumerate(answers)
    )
