"""Reward functions for trl's GRPOTrainer, all reading completions through `instructerc.parsing.parse_output`.

trl calls `reward(prompts=..., completions=..., completion_ids=..., **dataset_columns)` with one list entry per
completion and logs the result under `reward.__name__`. A reward returns one float per completion, or None
where it does not apply (trl ignores those). Formulas and how to add your own: docs/rewards.md.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any, Literal

from instructerc.labels import LabelSet, clean_word, concept_of
from instructerc.parsing import ParsedOutput, clean_answer, label_set_from_list, parse_output, parse_turn_answers
from instructerc.registry import resolve_dotted
from instructerc.train.grounding import grounding

Reward = Callable[..., list[float | None]]
# Arguments trl always passes; everything else a reward names is a dataset column.
TRL_ARGUMENTS = frozenset({"prompts", "completions", "completion_ids", "self"})


def completion_text(completion: Any) -> str:
    """The text of a completion: a plain string or trl's conversational form (a list of messages)."""
    if completion is None:
        return ""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        completion = [completion]
    texts = []
    for message in completion:
        content = message.get("content", "") if isinstance(message, dict) else message
        if isinstance(content, list):  # multimodal content parts: keep the text parts
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        texts.append(content or "")
    return "".join(texts)


def _column(kwargs: dict[str, Any], name: str, n: int) -> list[Any]:
    """A dataset column as one value per completion; a scalar (a direct call) is broadcast."""
    value = kwargs.get(name)
    if isinstance(value, (list, tuple)) and len(value) == n and name != "label_set":
        return list(value)
    if name == "label_set" and isinstance(value, (list, tuple)) and value and not isinstance(value[0], str):
        return list(value)  # one label set per row; a flat list of strings is one set for every row
    return [value] * n


def _row_label_set(value: Any, task: Any) -> LabelSet | None:
    if value is None or isinstance(value, LabelSet):
        return value
    # Speaker names get exact matching: a speaker called "Joy" must not be read as an emotion.
    return label_set_from_list(tuple(value), exact=task == "speaker")


def _turn_parses(
    completions: Sequence[Any], kwargs: dict[str, Any], mode: str = "lenient"
) -> list[list[ParsedOutput] | None]:
    """Per-turn answers of dialogue-unit rows (answer format `turn_labels`, needs the `targets` column); None for
    every other row. Dialogue rewards average over the asked turns."""
    n = len(completions)
    rows = zip(completions, *(_column(kwargs, c, n) for c in ("label_set", "answer_format", "targets")), strict=True)
    out: list[list[ParsedOutput] | None] = []
    for completion, label_set, answer_format, targets in rows:
        if answer_format != "turn_labels":
            out.append(None)
            continue
        if not targets:
            raise ValueError("dialogue-unit rewards need the dataset's `targets` column")
        numbers = [t["number"] for t in targets]
        out.append(parse_turn_answers(completion_text(completion), numbers, _row_label_set(label_set, None), mode=mode))
    return out


def _parse_rows(completions: Sequence[Any], kwargs: dict[str, Any], mode: str = "lenient") -> list[ParsedOutput]:
    """Parse every completion with its row's label set, task, answer format and open-vocabulary flag. A
    dialogue-unit row reads as one answer: valid and well formed when every asked turn is (no rationale)."""
    n = len(completions)
    rows = zip(
        completions,
        *(_column(kwargs, c, n) for c in ("label_set", "task", "answer_format", "open_vocabulary")),
        _turn_parses(completions, kwargs, mode) if "targets" in kwargs else [None] * n,
        strict=True,
    )
    parsed = []
    for completion, label_set, task, answer_format, open_vocabulary, turns in rows:
        if answer_format == "turn_labels":
            if turns is None:
                raise ValueError("dialogue-unit rewards need the dataset's `targets` column")
            valid, formed = all(t.valid for t in turns), all(t.well_formed for t in turns)
            reason = None if valid else next(t.reason for t in turns if not t.valid)
            parsed.append(ParsedOutput(None, (), None, valid, reason, formed, None, False))
            continue
        parsed.append(
            parse_output(
                completion_text(completion),
                _row_label_set(label_set, task),
                mode=mode,
                open_vocabulary=bool(open_vocabulary),
                answer_format=answer_format or "think_answer",
            )
        )
    return parsed


def _concepts(words: Sequence[str]) -> set[str]:
    return {concept_of(w) or clean_word(w) for w in words}


class LabelAccuracyReward:
    """1.0 when the answer is the gold label as written, `synonym_credit` when it only normalises to it
    (gold "joy", answer "happiness"), 0.0 otherwise. Open-vocabulary rows: F1 of the answer's emotion concepts
    against the gold `labels`."""

    def __init__(
        self, synonym_credit: float = 0.5, mode: Literal["strict", "lenient"] = "lenient", name: str = "label_accuracy"
    ):
        self.synonym_credit, self.mode, self.__name__ = synonym_credit, mode, name

    def __repr__(self) -> str:
        return f"LabelAccuracyReward(synonym_credit={self.synonym_credit}, mode={self.mode!r})"

    def __call__(self, completions: list, label: list, label_set: list, **kwargs: Any) -> list[float | None]:
        kwargs = {**kwargs, "label_set": label_set}
        n = len(completions)
        per_turn = self._per_turn(completions, kwargs) if "targets" in kwargs else [None] * n
        parsed = _parse_rows(completions, kwargs, self.mode)
        golds, gold_lists = _column({"label": label}, "label", n), _column(kwargs, "labels", n)
        row_sets = zip(_column(kwargs, "label_set", n), _column(kwargs, "task", n), strict=True)
        sets = [_row_label_set(value, task) for value, task in row_sets]
        open_vocab = _column(kwargs, "open_vocabulary", n)
        scores: list[float | None] = []
        rows = zip(parsed, golds, gold_lists, sets, open_vocab, per_turn, strict=True)
        for p, gold, gold_list, ls, ov, turns in rows:
            if turns is not None:  # a dialogue-unit row: the mean over its asked turns
                scores.append(turns)
            elif gold is None:
                scores.append(None)  # unlabeled row: nothing to reward
            elif not p.valid:
                scores.append(0.0)
            elif ov or len(p.labels) > 1:  # open vocabulary
                predicted, wanted = _concepts(p.labels), _concepts(gold_list or [gold])
                hits = len(predicted & wanted)
                scores.append(2 * hits / (len(predicted) + len(wanted)) if hits else 0.0)
            elif p.label != ((ls.normalize(gold) if ls is not None else None) or gold):
                scores.append(0.0)
            else:
                exact = clean_answer(p.answer_text or "") == clean_word(p.label or "")
                scores.append(1.0 if exact else float(self.synonym_credit))
        return scores

    def _per_turn(self, completions: list, kwargs: dict[str, Any]) -> list[float | None]:
        """Dialogue-unit rows: the mean over asked turns of the utterance score (1, synonym credit or 0); None for
        other rows."""
        n = len(completions)
        scores: list[float | None] = []
        turn_rows = _turn_parses(completions, kwargs, self.mode)
        for turns, targets, label_set in zip(
            turn_rows, _column(kwargs, "targets", n), _column(kwargs, "label_set", n), strict=True
        ):
            if turns is None:
                scores.append(None)
                continue
            ls = _row_label_set(label_set, None)
            per_turn = []
            for p, target in zip(turns, targets, strict=True):
                gold = (ls.normalize(target["label"]) if ls is not None else None) or target["label"]
                if not p.valid or p.label != gold:
                    per_turn.append(0.0)
                else:
                    exact = clean_answer(p.answer_text or "") == clean_word(p.label or "")
                    per_turn.append(1.0 if exact else float(self.synonym_credit))
            scores.append(sum(per_turn) / len(per_turn) if per_turn else None)
        return scores


label_accuracy_reward = LabelAccuracyReward()


def format_reward(completions: list, **kwargs: Any) -> list[float | None]:
    """1.0 when the completion is exactly the row's answer format (think then answer, by default), else 0.0."""
    return [1.0 if p.well_formed else 0.0 for p in _parse_rows(completions, kwargs)]


def label_in_set_reward(completions: list, label_set: list, **kwargs: Any) -> list[float | None]:
    """1.0 when a (lenient) answer can be read and it is a label of the row's set, else 0.0; dialogue-unit rows:
    the share of asked turns with such an answer."""
    kwargs = {**kwargs, "label_set": label_set}
    turns = _turn_parses(completions, kwargs) if "targets" in kwargs else [None] * len(completions)
    return [
        (sum(p.valid for p in per_turn) / len(per_turn) if per_turn else 0.0)
        if per_turn is not None
        else (1.0 if p.valid else 0.0)
        for p, per_turn in zip(_parse_rows(completions, kwargs), turns, strict=True)
    ]


def rationale_grounding_reward(completions: list, context: list, **kwargs: Any) -> list[float | None]:
    """`grounding(think block, context, gold, label set).score`; 0.0 without a think block, None without context.

    The gold label and label set (when the row has them) let `grounding` give 0 to a rationale that argues for
    another emotion; speaker and open-vocabulary rows are scored without that check.
    """
    n = len(completions)
    rows = zip(
        _parse_rows(completions, {}),
        _column({"context": context}, "context", n),
        *(_column(kwargs, c, n) for c in ("label", "label_set", "task", "open_vocabulary")),
        strict=True,
    )
    scores: list[float | None] = []
    formats = _column(kwargs, "answer_format", n)
    for (p, ctx, gold, label_set, task, open_vocabulary), answer_format in zip(rows, formats, strict=True):
        if ctx is None or answer_format == "turn_labels":  # dialogue-unit answers carry no rationale
            scores.append(None)
        elif not p.rationale:
            scores.append(0.0)
        else:
            closed_emotion = gold and label_set is not None and task in (None, "emotion") and not open_vocabulary
            labels = _row_label_set(label_set, task) if closed_emotion else None
            scores.append(grounding(p.rationale, ctx, gold if closed_emotion else None, labels).score)
    return scores


class LengthPenalty:
    """0.0 up to `target_words` words of rationale, then down linearly to -`max_penalty` at
    `target_words + scale_words` (default: twice the target). Without a think block the whole completion counts."""

    def __init__(self, target_words: int = 200, max_penalty: float = 1.0, scale_words: int | None = None):
        if target_words < 0 or (scale_words is not None and scale_words <= 0):
            raise ValueError("target_words must be >= 0 and scale_words > 0")
        self.target_words, self.max_penalty = target_words, max_penalty
        self.scale_words = scale_words or max(target_words, 1)
        self.__name__ = "length_penalty"

    def __repr__(self) -> str:
        return f"LengthPenalty(target_words={self.target_words}, max_penalty={self.max_penalty})"

    def __call__(self, completions: list, **kwargs: Any) -> list[float | None]:
        scores: list[float | None] = []
        for completion, p in zip(completions, _parse_rows(completions, {}), strict=True):
            words = len((p.rationale if p.rationale is not None else completion_text(completion)).split())
            excess = max(0, words - self.target_words) / self.scale_words
            scores.append(-self.max_penalty * min(1.0, excess) if excess else 0.0)  # no -0.0 in the logs
        return scores


# CLI names. A class is instantiated with its defaults; parametrise by pointing a dotted path at an instance.
REWARDS: dict[str, Reward | type] = {
    "label_accuracy": label_accuracy_reward,
    "format": format_reward,
    "label_in_set": label_in_set_reward,
    "rationale_grounding": rationale_grounding_reward,
    "length_penalty": LengthPenalty,
}


def get_reward(name: str) -> Reward:
    """A registry name (with or without a `_reward` suffix) or a dotted path `package.module:name`."""
    key = name.strip()
    obj = REWARDS.get(key, REWARDS.get(key.removesuffix("_reward")))
    if obj is None and ":" in key:
        obj = resolve_dotted(key)
    if obj is None:
        raise ValueError(f"unknown reward {name!r}; known: {', '.join(REWARDS)} (or a dotted path pkg.module:name)")
    if isinstance(obj, type):
        obj = obj()
    if not callable(obj):
        raise ValueError(f"reward {name!r} is not callable")
    return obj


def build_rewards(names_and_weights: dict[str, float] | Sequence[str]) -> tuple[list[Reward], list[float]]:
    """(reward functions, weights) for GRPOTrainer's `reward_funcs` and `GRPOConfig.reward_weights`.

    A list gives every reward weight 1.0.
    """
    items = (
        list(names_and_weights.items())
        if isinstance(names_and_weights, dict)
        else [(name, 1.0) for name in names_and_weights]
    )
    if not items:
        raise ValueError("at least one reward is needed")
    return [get_reward(name) for name, _ in items], [float(weight) for _, weight in items]


def required_columns(func: Reward | type) -> set[str]:
    """Dataset columns a reward needs: its parameters without defaults, other than trl's own arguments."""
    target = func.__call__ if isinstance(func, type) else func
    parameters = inspect.signature(target).parameters.values()
    return {
        p.name
        for p in parameters
        if p.name not in TRL_ARGUMENTS
        and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
        and p.default is inspect.Parameter.empty
    }


__all__ = [
    "REWARDS",
    "LabelAccuracyReward",
    "LengthPenalty",
    "build_rewards",
    "completion_text",
    "format_reward",
    "get_reward",
    "label_accuracy_reward",
    "label_in_set_reward",
    "rationale_grounding_reward",
    "required_columns",
]
