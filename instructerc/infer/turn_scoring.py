"""Score mode for the dialogue unit: every turn's label slot scored from one pass over the conversation.

The completion the model was trained to write is "1: neutral\\n2: joy\\n...<eos>". For each asked turn in order,
the turn's prefix ("2:") is fed, each label's continuation (" joy" then "\\n", or eos after the last turn) is
scored from the shared KV cache, the best label is chosen, and its tokens are fed before the next turn, so every
turn is read in the context of the labels chosen before it, as in generation, but always as a label of the set.
The prompt is read once; each turn costs two small forward passes.

`bias` adds a per-label log-offset before the choice (a label-prior correction fitted on dev, `calibration.py`).
Probabilities in the result are the model's own (the softmax of the log-likelihoods, without the bias). The
corrected choice is what later turns are conditioned on, so a correction also shifts later turns' scores a
little from those it was fitted on; the benchmark measures the corrected decoding itself.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from instructerc.answer_format import render_turn_answers, turn_label_text, turn_prefix
from instructerc.infer.scoring import LabelScores, Messages, prompt_ids, softmax, suffix_log_likelihoods


def _ids(tokenizer: Any, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def turn_pieces(
    tokenizer: Any, messages: Messages, numbers: Sequence[int], labels: Sequence[str]
) -> tuple[list[int], list[list[int]], int]:
    """(prompt ids, each turn's prefix ids without the newline that ends the line before, the newline's id).

    Scoring feeds the completion piece by piece, so the pieces must tokenize exactly like the training text (the
    chat template's rendering of prompt + completion) does, for every label; a tokenizer that merges across a
    piece boundary is refused rather than scored wrongly."""
    newline = _ids(tokenizer, "\n")
    if len(newline) != 1:
        raise ValueError("dialogue score mode needs a tokenizer with a single newline token")
    prefixes = [_ids(tokenizer, turn_prefix(n, first=True)) for n in numbers]

    def pieces(label: str) -> list[int]:
        ids: list[int] = []
        for k, prefix in enumerate(prefixes):
            ids += ([] if k == 0 else newline) + prefix + _ids(tokenizer, turn_label_text(label))
        return ids

    refused = ValueError("this tokenizer merges tokens across turn lines; use --mode generate for dialogue rows")
    for label in labels:
        if pieces(label) != _ids(tokenizer, render_turn_answers([(n, label) for n in numbers])):
            raise refused
    prompt = prompt_ids(tokenizer, messages)
    answer = render_turn_answers([(n, labels[0]) for n in numbers])
    training_text = tokenizer.apply_chat_template([*messages, {"role": "assistant", "content": answer}], tokenize=False)
    expected = prompt + pieces(labels[0]) + [tokenizer.eos_token_id]
    if _ids(tokenizer, training_text)[: len(expected)] != expected:
        raise refused
    return prompt, prefixes, newline[0]


def score_turns(
    model: Any,
    tokenizer: Any,
    messages: Messages,
    numbers: Sequence[int],
    labels: Sequence[str],
    *,
    bias: Mapping[str, float] | None = None,
    length_normalize: bool = False,
) -> list[LabelScores]:
    """One `LabelScores` per asked turn number, in order (see the module docstring)."""
    import torch

    labels = list(dict.fromkeys(labels))
    if not labels or not numbers:
        raise ValueError("dialogue score mode needs a non-empty label set and at least one turn")
    prompt, prefixes, newline = turn_pieces(tokenizer, messages, numbers, labels)
    label_ids = [_ids(tokenizer, turn_label_text(label)) for label in labels]
    offsets = [float((bias or {}).get(label, 0.0)) for label in labels]
    results: list[LabelScores] = []
    pending, cache, seen = prompt, None, 0
    with torch.inference_mode():
        for k, prefix in enumerate(prefixes):
            pending = pending + prefix
            out = model(
                input_ids=torch.tensor([pending], device=model.device),
                past_key_values=cache,
                use_cache=True,
                logits_to_keep=1,
            )
            cache, seen = out.past_key_values, seen + len(pending)
            head = torch.log_softmax(out.logits[0, -1].float(), dim=-1)
            end = newline if k + 1 < len(prefixes) else tokenizer.eos_token_id
            candidates = [ids + [end] for ids in label_ids]
            lls = suffix_log_likelihoods(model, copy.deepcopy(cache), seen, head, candidates)
            lengths = [len(c) for c in candidates]
            values = [ll / n for ll, n in zip(lls, lengths, strict=True)] if length_normalize else lls
            probabilities = dict(zip(labels, softmax(values), strict=True))
            best = max(range(len(labels)), key=lambda i: values[i] + offsets[i])
            results.append(LabelScores(labels, lls, lengths, probabilities, chosen=labels[best]))
            pending = candidates[best]  # the chosen label and its line end, fed before the next turn's prefix
    return results
