"""Turn canonical dialogues into instruction examples (trl's conversational prompt/completion rows).

For every target utterance and task, a prompt is rendered from a versioned template with a window of
dialogue history, retrieved demonstrations, the label set and the cue texts. When the prompt is over the
token budget, history is dropped from the oldest turn first, then demonstrations from the least similar;
the instruction, the target, the label set and the answer format are never cut.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from instructerc.answer_format import render_answer
from instructerc.eval.clues import reference_text
from instructerc.labels import LabelSet
from instructerc.prompts import PromptTemplate
from instructerc.schema import Dialogue, Utterance

Messages = list[dict[str, str]]
TokenCounter = Callable[[Messages], int]


class ChatTokenCounter:
    """Counts the tokens of a prompt exactly as the model will see it: through its chat template."""

    def __init__(self, tokenizer: Any):
        if not getattr(tokenizer, "chat_template", None):
            raise ValueError("the tokenizer has no chat template; instruction prompts need one to be measured")
        self.tokenizer = tokenizer

    def __call__(self, messages: Messages) -> int:
        text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])


@dataclass
class BuildStats:
    """Counts gathered while building, reported in the closing summary and build_info.json."""

    examples: int = 0
    unlabeled_skipped: int = 0
    history_truncated: int = 0
    demos_truncated: int = 0
    over_budget: int = 0
    prompt_tokens: list[int] = field(default_factory=list)

    def merge(self, other: BuildStats) -> None:
        self.examples += other.examples
        self.unlabeled_skipped += other.unlabeled_skipped
        self.history_truncated += other.history_truncated
        self.demos_truncated += other.demos_truncated
        self.over_budget += other.over_budget
        self.prompt_tokens += other.prompt_tokens


def turn_view(utt: Utterance, hide_text: bool = False) -> dict[str, Any]:
    """An utterance as the templates see it: speaker, text and cue texts."""
    return {"speaker": utt.speaker, "text": "" if hide_text else utt.text, "cues": {} if hide_text else utt.cues}


def think_target(utt: Utterance) -> tuple[str | None, str]:
    """The think text of an emotion target and its `rationale_source`: the utterance's reference rationale
    (`reference`), else its reference clues (EMER style) joined as sentences (`clues`, the same text the clue
    overlap metric compares with), else nothing (`none`: an empty think block)."""
    if utt.rationale and utt.rationale.strip():
        return utt.rationale, "reference"
    clues = reference_text(utt.clues, None)
    if clues:
        return clues, "clues"
    return None, "none"


def context_line(turn: dict[str, Any]) -> str:
    """A dialogue line as plain text (what a grounded rationale may quote), cues included."""
    cues = "; ".join(f"{kind}: {text}" for kind, text in turn["cues"].items())
    return f"{turn['speaker']}: {turn['text']}" + (f" [{cues}]" if cues else "")


def _fit(
    render: Callable[[int, int], Messages], n_history: int, n_demos: int, budget: int | None, count: TokenCounter
) -> tuple[Messages, int, int, int, bool]:
    """Find the most history (then demonstrations) that fits the budget.

    Returns messages, history kept, demonstrations kept, prompt tokens, and whether it fits at all.
    Token count grows with each kept turn, so a binary search over the number kept is exact.
    """
    messages = render(n_history, n_demos)
    tokens = count(messages)
    if budget is None or tokens <= budget:
        return messages, n_history, n_demos, tokens, True

    def largest_fitting(limit: int, make: Callable[[int], Messages]) -> tuple[int, Messages, int] | None:
        low, high, best = 0, limit - 1, None  # `limit` itself is known not to fit
        while low <= high:
            middle = (low + high) // 2
            candidate = make(middle)
            candidate_tokens = count(candidate)
            if candidate_tokens <= budget:
                best, low = (middle, candidate, candidate_tokens), middle + 1
            else:
                high = middle - 1
        return best

    found = largest_fitting(n_history, lambda kept: render(kept, n_demos)) if n_history else None
    if found is not None:
        kept, messages, tokens = found
        return messages, kept, n_demos, tokens, True
    found = largest_fitting(n_demos, lambda kept: render(0, kept)) if n_demos else None
    if found is not None:
        kept, messages, tokens = found
        return messages, 0, kept, tokens, True
    messages = render(0, 0)
    return messages, 0, 0, count(messages), False


def build_examples(
    dialogues: Sequence[Dialogue],
    *,
    template: PromptTemplate,
    label_set: LabelSet,
    count_tokens: TokenCounter,
    window: int = 12,
    max_prompt_tokens: int | None = 1024,
    demonstrations: dict[tuple[str, int], list[Any]] | None = None,
    include_unlabeled: bool = False,
    stats: BuildStats | None = None,
    progress: Callable[[int], None] | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield one example per target utterance of `template.task`.

    `demonstrations` maps (dialogue id, turn) to the retrieved demonstrations, most similar first.
    Utterances without gold are skipped (and counted) unless `include_unlabeled` (prediction on raw data).
    """
    stats = stats if stats is not None else BuildStats()
    demonstrations = demonstrations or {}
    for dialogue in dialogues:
        speakers = list(dict.fromkeys(u.speaker for u in dialogue.utterances))
        for index, utt in enumerate(dialogue.utterances):
            if progress:
                progress(1)
            target = _target_for_task(template, dialogue, index, speakers, label_set)
            if target is None:
                continue
            answer, labels, answer_set = target
            if answer is None and not include_unlabeled:
                stats.unlabeled_skipped += 1
                continue
            history = [turn_view(u) for u in dialogue.utterances[max(0, index - window) : index]]
            demos = (
                [
                    {"speaker": d.speaker, "text": d.text, "label": d.label}
                    for d in demonstrations.get((dialogue.id, utt.turn), [])
                ]
                if template.task == "emotion"
                else []
            )
            target_view = turn_view(utt, hide_text=template.task == "impact")

            def render(
                n_history: int,
                n_demos: int,
                history=history,
                demos=demos,
                target_view=target_view,
                answer_set=answer_set,
            ):
                return template.render(
                    history=history[len(history) - n_history :],
                    target=target_view,
                    label_set=list(answer_set),
                    demonstrations=demos[:n_demos],
                )

            messages, kept_history, kept_demos, tokens, fits = _fit(
                render, len(history), len(demos), max_prompt_tokens, count_tokens
            )
            stats.history_truncated += kept_history < len(history)
            stats.demos_truncated += kept_demos < len(demos)
            stats.over_budget += not fits
            stats.examples += 1
            stats.prompt_tokens.append(tokens)
            shown = history[len(history) - kept_history :] + ([] if template.task == "impact" else [target_view])
            think, rationale_source = think_target(utt) if template.task == "emotion" else (None, "none")
            completion = render_answer(labels or answer, template.answer_format, think) if answer else None
            yield {
                "prompt": messages,
                "completion": [{"role": "assistant", "content": completion}] if completion else [],
                "label": answer,
                "labels": labels or ([answer] if answer else []),
                "label_set": list(answer_set),
                "dialogue_id": dialogue.id,
                "turn": utt.turn,
                "speaker": utt.speaker,
                "text": utt.text,
                "split": dialogue.split or "",
                "task": template.task,
                "unit": "utterance",
                "targets": [],  # the dialogue unit's per-turn targets; an utterance row is its own target
                "template": template.id,
                "template_version": template.version,
                "answer_format": template.answer_format,
                "rationale_source": rationale_source,
                "n_history": kept_history,
                "n_demos": kept_demos,
                "prompt_tokens": tokens,
                "context": "\n".join(context_line(turn) for turn in shown),
                "open_vocabulary": template.open_vocabulary,
                "rationale": (utt.rationale or "") if template.task == "emotion" else "",
                "clues": list(utt.clues or []) if template.task == "emotion" else [],
            }


def _target_for_task(
    template: PromptTemplate, dialogue: Dialogue, index: int, speakers: list[str], label_set: LabelSet
) -> tuple[str | None, list[str] | None, Sequence[str]] | None:
    """(answer, open-vocabulary answers, answer set) for one utterance, or None when it is not a target."""
    utt = dialogue.utterances[index]
    if template.task == "speaker":
        # Identifying the speaker only makes sense when there is more than one to choose from.
        return (utt.speaker, None, speakers) if len(speakers) > 1 else None
    if template.task == "impact" and index == 0:
        return None  # nothing to predict from
    if template.open_vocabulary:
        labels = utt.labels or ([utt.label] if utt.label else None)
        return (", ".join(labels) if labels else None), labels, label_set.labels
    return utt.label, None, label_set.labels
