"""The dialogue unit: one instruction example per conversation (or chunk of one), every target turn labeled in
one completion.

The prompt numbers the turns it shows ("3. Monica: ...") and asks for the targets' labels; the completion is
one "k: label" line per target (`answer_format.render_turn_answers`). Each utterance sees the whole chunk, before
and after it, and a label costs a few tokens instead of a whole prompt.

A conversation longer than the token budget is cut into chunks: each labeled turn is a target in exactly one
chunk, and a chunk after the first also shows up to `context_turns` earlier turns as context, without asking for
their labels. Demonstrations retrieved for the targets are shared by the chunk: the most similar of each target
in turn, without repeats, up to `n_demos`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from instructerc.answer_format import render_turn_answers
from instructerc.data_builders.instructions import BuildStats, Messages, TokenCounter, context_line, turn_view
from instructerc.labels import LabelSet
from instructerc.prompts import PromptTemplate
from instructerc.schema import Dialogue


def _shared_demos(per_target: list[list[Any]], limit: int) -> list[dict[str, str]]:
    """Round-robin over the targets' demonstrations (most similar first), without repeats, up to `limit`."""
    chosen: list[dict[str, str]] = []
    seen: set[tuple[str, str]] = set()
    depth = max((len(d) for d in per_target), default=0)
    for rank in range(depth):
        for demos in per_target:
            if len(chosen) >= limit:
                return chosen
            if rank < len(demos):
                d = demos[rank]
                if (d.speaker, d.text) not in seen:
                    seen.add((d.speaker, d.text))
                    chosen.append({"speaker": d.speaker, "text": d.text, "label": d.label})
    return chosen


def build_dialogue_examples(
    dialogues: Sequence[Dialogue],
    *,
    template: PromptTemplate,
    label_set: LabelSet,
    count_tokens: TokenCounter,
    context_turns: int = 12,
    max_prompt_tokens: int | None = 1024,
    n_demos: int = 0,
    demonstrations: dict[tuple[str, int], list[Any]] | None = None,
    include_unlabeled: bool = False,
    stats: BuildStats | None = None,
    progress: Callable[[int], None] | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield one example per conversation chunk (see the module docstring).

    Turns without gold are shown but not asked for, unless `include_unlabeled` (prediction on raw data).
    """
    if template.unit != "dialogue" or template.task != "emotion":
        raise ValueError(f"template {template.id} is not a dialogue-unit emotion template")
    stats = stats if stats is not None else BuildStats()
    demonstrations = demonstrations or {}
    labels = list(label_set.labels)
    for dialogue in dialogues:
        utterances = dialogue.utterances
        if progress:
            progress(len(utterances))
        is_target = [include_unlabeled or u.label is not None for u in utterances]
        stats.unlabeled_skipped += sum(not t for t in is_target)
        start = 0
        while start < len(utterances):
            if not any(is_target[start:]):
                break

            def render(
                first_shown: int,
                end: int,
                with_demos: bool,
                start=start,
                dialogue=dialogue,
                utterances=utterances,
                is_target=is_target,
            ) -> tuple[Messages, list[int], list[int], int]:
                shown = list(range(first_shown, end))
                asked = [i for i in range(start, end) if is_target[i]]
                demos = (
                    _shared_demos([demonstrations.get((dialogue.id, utterances[i].turn), []) for i in asked], n_demos)
                    if with_demos
                    else []
                )
                turns = [turn_view(utterances[i]) | {"number": k + 1} for k, i in enumerate(shown)]
                numbers = [i - first_shown + 1 for i in asked]
                messages = template.render(turns=turns, targets=numbers, label_set=labels, demonstrations=demos)
                return messages, shown, asked, len(demos)

            # The wanted chunk first; when not even one target fits, without context, then without demonstrations.
            wanted = max(0, start - context_turns)
            for first_shown, with_demos in ((wanted, True), (start, True), (start, False)):
                end, fits = _largest_chunk(
                    render, first_shown, with_demos, start, len(utterances), max_prompt_tokens, count_tokens, is_target
                )
                if fits:
                    break
            messages, shown, asked, kept_demos = render(first_shown, end, with_demos)
            tokens = count_tokens(messages)
            yield _row(dialogue, template, labels, messages, shown, asked, first_shown, tokens, kept_demos)
            stats.examples += 1
            stats.prompt_tokens.append(tokens)
            stats.history_truncated += first_shown > wanted
            stats.demos_truncated += kept_demos < n_demos
            stats.over_budget += not fits
            start = end


def _largest_chunk(
    render: Callable[[int, int, bool], tuple[Messages, list[int], list[int], int]],
    first_shown: int,
    with_demos: bool,
    start: int,
    n: int,
    budget: int | None,
    count: TokenCounter,
    is_target: list[bool],
) -> tuple[int, bool]:
    """(end, fits): the largest chunk end whose prompt fits. Tokens grow with every turn shown, so a binary search
    over the end is exact. A chunk always reaches its first target, so it asks for at least one label."""
    least = next(i for i in range(start, n) if is_target[i]) + 1
    if budget is None or count(render(first_shown, n, with_demos)[0]) <= budget:
        return n, True
    low, high, best = least, n - 1, None
    while low <= high:
        middle = (low + high) // 2
        if count(render(first_shown, middle, with_demos)[0]) <= budget:
            best, low = middle, middle + 1
        else:
            high = middle - 1
    return (best, True) if best is not None else (least, False)


def _row(
    dialogue: Dialogue,
    template: PromptTemplate,
    labels: list[str],
    messages: Messages,
    shown: list[int],
    asked: list[int],
    first_shown: int,
    tokens: int,
    n_demos: int,
) -> dict[str, Any]:
    utterances = dialogue.utterances
    targets = [
        {
            "turn": utterances[i].turn,
            "number": i - first_shown + 1,
            "speaker": utterances[i].speaker,
            "text": utterances[i].text,
            "label": utterances[i].label,
        }
        for i in asked
    ]
    gold = [t["label"] for t in targets]
    answer = render_turn_answers([(t["number"], t["label"]) for t in targets]) if all(gold) else None
    first = utterances[asked[0]]
    return {
        "prompt": messages,
        "completion": [{"role": "assistant", "content": answer}] if answer else [],
        "label": answer,
        "labels": [g or "" for g in gold],
        "label_set": labels,
        "dialogue_id": dialogue.id,
        "turn": first.turn,
        "speaker": first.speaker,
        "text": first.text,
        "split": dialogue.split or "",
        "task": template.task,
        "unit": "dialogue",
        "targets": targets,
        "template": template.id,
        "template_version": template.version,
        "answer_format": template.answer_format,
        "rationale_source": "none",
        "n_history": asked[0] - first_shown,
        "n_demos": n_demos,
        "prompt_tokens": tokens,
        "context": "\n".join(context_line(turn_view(utterances[i])) for i in shown),
        "open_vocabulary": False,
        "rationale": "",
        "clues": [],
    }
