"""The answer formats a model is asked to produce, written in one place.

Training targets are rendered here and the output parser reads the same tags, so the two cannot drift apart.
"""

from __future__ import annotations

from typing import Literal

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"
OPEN_VOCAB_SEPARATOR = ", "

AnswerFormat = Literal["think_answer", "answer_only"]
ANSWER_FORMATS: tuple[str, ...] = ("think_answer", "answer_only")


def render_answer(answer: str | list[str], answer_format: str, rationale: str | None = None) -> str:
    """Render a target completion: `<think>rationale</think><answer>label</answer>` or `<answer>label</answer>`.

    A list of answers (open vocabulary) is joined with ", ". In the think format a missing rationale gives an
    empty think block, so the structure the parser and the format reward expect is still there.
    """
    if answer_format not in ANSWER_FORMATS:
        raise ValueError(f"unknown answer format {answer_format!r}; expected one of {', '.join(ANSWER_FORMATS)}")
    text = OPEN_VOCAB_SEPARATOR.join(answer) if isinstance(answer, list) else answer
    tagged = f"{ANSWER_OPEN}{text}{ANSWER_CLOSE}"
    if answer_format == "answer_only":
        return tagged
    return f"{THINK_OPEN}{(rationale or '').strip()}{THINK_CLOSE}{tagged}"
