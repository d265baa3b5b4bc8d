"""Structured outputs: constrain what a vLLM (or OpenAI-compatible) server may generate for an emotion prompt.

Three constraints, chosen with `--structured`:

- `answer_format`: a regular expression of the template's own answer format with the label set inside the
  answer tags, `<think>...</think><answer>(joy|anger|...)</answer>`: the output is always well formed and in
  the set, and still carries a rationale (open vocabulary: free emotion words inside the answer tags);
- `choice`: exactly one label of the set, nothing else (no rationale; read leniently by the parser);
- `json`: a JSON object `{"rationale": "...", "label": "joy"}` (open vocabulary: `"labels": [...]`), the label
  an enum of the set; `parsing.parse_output` reads such objects like the tagged format.

The spec is backend-neutral (`{"regex": ...}`, `{"choice": [...]}`, `{"json": schema}`); `request_fields`
turns it into the fields of an OpenAI-compatible chat request, the vLLM worker into `StructuredOutputsParams`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Literal

from instructerc.answer_format import ANSWER_CLOSE, ANSWER_OPEN, THINK_CLOSE, THINK_OPEN, turn_prefix

Structured = Literal["none", "answer_format", "choice", "json"]
STRUCTURED: tuple[str, ...] = ("none", "answer_format", "choice", "json")
# Characters of rationale the regex allows per token of the generation budget (a token is ~3-4 characters);
# the tags and the label need the rest. A rationale the budget cannot finish would leave the answer unwritten.
CHARS_PER_TOKEN, RESERVED_TOKENS = 3, 24
OPEN_WORDS = r"[A-Za-z][A-Za-z ,'-]{0,120}"


def _alternatives(labels: Sequence[str]) -> str:
    return "(" + "|".join(re.escape(label) for label in labels) + ")"


def constraint(
    kind: str,
    labels: Sequence[str] | None,
    answer_format: str,
    max_new_tokens: int,
    open_vocabulary: bool = False,
) -> dict[str, Any] | None:
    """The backend-neutral spec for one prompt (None for `none`); raises ValueError when it cannot apply."""
    if kind == "none":
        return None
    if kind not in STRUCTURED:
        raise ValueError(f"structured: unknown {kind!r} (expected one of {', '.join(STRUCTURED)})")
    if not open_vocabulary and not labels:
        raise ValueError(f"structured {kind} needs the prompt's label set")
    if kind == "choice":
        if open_vocabulary:
            raise ValueError(
                "structured choice needs a closed label set; use answer_format or json for open vocabulary"
            )
        return {"choice": list(labels or [])}
    if kind == "json":
        return {"json": json_schema(labels, open_vocabulary)}
    answer = OPEN_WORDS if open_vocabulary else _alternatives(labels or [])
    tagged = re.escape(ANSWER_OPEN) + answer + re.escape(ANSWER_CLOSE)
    if answer_format == "answer_only":
        return {"regex": tagged}
    room = max(16, CHARS_PER_TOKEN * (max_new_tokens - RESERVED_TOKENS))
    return {"regex": re.escape(THINK_OPEN) + rf"[^<>]{{1,{room}}}" + re.escape(THINK_CLOSE) + tagged}


def turn_constraint(kind: str, labels: Sequence[str], numbers: Sequence[int]) -> dict[str, Any] | None:
    """The spec of a dialogue-unit answer: exactly the asked "k: label" lines (`answer_format`), or a JSON object
    with one enum per asked turn (`json`, keys are the turn numbers); `choice` cannot hold several turns."""
    if kind == "none":
        return None
    if kind == "choice":
        raise ValueError("structured choice is one label; a dialogue-unit answer has one per turn (use answer_format)")
    if kind == "json":
        properties = {str(n): {"type": "string", "enum": list(labels)} for n in numbers}
        return {
            "json": {
                "type": "object",
                "properties": properties,
                "required": list(properties),
                "additionalProperties": False,
            }
        }
    if kind not in STRUCTURED:
        raise ValueError(f"structured: unknown {kind!r} (expected one of {', '.join(STRUCTURED)})")
    lines = [re.escape(turn_prefix(n, first=k == 0)) + " " + _alternatives(labels) for k, n in enumerate(numbers)]
    return {"regex": "".join(lines)}


def row_constraint(kind: str, row: dict[str, Any], max_new_tokens: int) -> dict[str, Any] | None:
    """The spec for one dataset row (its label set, answer format and open-vocabulary flag)."""
    if row.get("unit") == "dialogue":
        return turn_constraint(kind, row["label_set"], [t["number"] for t in row["targets"]])
    return constraint(
        kind, row["label_set"], row["answer_format"], max_new_tokens, bool(row.get("open_vocabulary", False))
    )


def json_schema(labels: Sequence[str] | None, open_vocabulary: bool = False) -> dict[str, Any]:
    """JSON schema of an explained answer: rationale first (so the model reasons before it commits), then the
    label (an enum of the set) or, for open vocabulary, a list of emotion words."""
    answer: dict[str, Any] = (
        {"labels": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 8}}
        if open_vocabulary
        else {"label": {"type": "string", "enum": list(labels or [])}}
    )
    return {
        "type": "object",
        "properties": {"rationale": {"type": "string", "maxLength": 600}, **answer},
        "required": ["rationale", *answer],
        "additionalProperties": False,
    }


def request_fields(spec: dict[str, Any] | None) -> dict[str, Any]:
    """Extra fields of an OpenAI-compatible chat request: the standard `response_format` for JSON schemas,
    vLLM's `structured_outputs` for choices and regular expressions."""
    if spec is None:
        return {}
    if "json" in spec:
        return {"response_format": {"type": "json_schema", "json_schema": {"name": "emotion", "schema": spec["json"]}}}
    return {"structured_outputs": spec}
