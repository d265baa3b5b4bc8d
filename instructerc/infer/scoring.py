"""Score mode: closed-set prediction by the likelihood of each label's answer, without generating.

For a prompt and the K labels of its label set, each candidate is the completion the model was trained to
write for that label (`answer_format.render_answer`; the think format is scored with an EMPTY think block,
`<think></think><answer>LABEL</answer>`) followed by the end-of-turn token. Its log-likelihood is the sum of
its token log-probabilities given the prompt (chat template + generation prompt).

Exact and cheap: the prompt (plus the token prefix every candidate shares, e.g. `<answer>`) is run once with
a KV cache; the cache is then repeated K times and the candidates' differing suffixes run as one right-padded
batch that continues the positions of the prompt. Full-vocabulary log-softmax is computed only at the
positions that predict a candidate token. The result equals a separate full forward pass per candidate
(tests/test_scoring.py checks it) at a fraction of the cost, since the prompt dominates.

Probabilities are a softmax over the K summed log-likelihoods: a distribution over the label set, not the
model's probability of writing that text. Summing favours short labels slightly (every token costs
probability); `length_normalize` divides each log-likelihood by its token count before the softmax instead.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from instructerc.answer_format import render_answer

Messages = list[dict[str, str]]


@dataclass(frozen=True)
class LabelScores:
    labels: list[str]
    log_likelihoods: list[float]  # summed token log-probs of each label's completion (eos included)
    n_tokens: list[int]
    probabilities: dict[str, float]  # softmax over the label set (see module doc)
    chosen: str | None = None  # the label picked after a calibration bias, when one was applied

    @property
    def best(self) -> str:
        """The predicted label: the most probable one, or the calibrated choice."""
        return self.chosen or max(self.probabilities, key=self.probabilities.__getitem__)


def candidate_text(label: str, answer_format: str) -> str:
    """The completion text scored for `label`: the training target with an empty rationale."""
    return render_answer(label, answer_format, rationale=None)


def prompt_ids(tokenizer: Any, messages: Messages) -> list[int]:
    """The prompt's token ids exactly as generation sees them: chat template with the generation prompt."""
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def candidate_ids(tokenizer: Any, labels: Sequence[str], answer_format: str) -> list[list[int]]:
    """Each label's completion tokens followed by eos (the chat turn terminator the model ends an answer with)."""
    texts = [candidate_text(label, answer_format) for label in labels]
    return [ids + [tokenizer.eos_token_id] for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]


def _common_prefix(sequences: list[list[int]]) -> int:
    # Stop one short of the shortest: every candidate keeps at least one token of its own to score.
    limit = min(len(s) for s in sequences) - 1
    n = 0
    while n < limit and all(s[n] == sequences[0][n] for s in sequences):
        n += 1
    return n


def cached_log_likelihoods(model: Any, prompt: list[int], candidates: list[list[int]]) -> list[float]:
    """Sum of log p(candidate tokens | prompt) for every candidate: one prompt pass, one batched suffix pass."""
    import torch

    shared = _common_prefix(candidates)
    context = prompt + candidates[0][:shared]
    with torch.inference_mode():
        # Keep logits for the positions predicting the shared tokens and the first token of each suffix only.
        out = model(input_ids=torch.tensor([context], device=model.device), use_cache=True, logits_to_keep=shared + 1)
        head = torch.log_softmax(out.logits[0].float(), dim=-1)  # (shared + 1, vocab)
        shared_ll = float(head[torch.arange(shared), torch.tensor(candidates[0][:shared])].sum()) if shared else 0.0
        suffixes = [c[shared:] for c in candidates]
        totals = suffix_log_likelihoods(model, out.past_key_values, len(context), head[-1], suffixes)
    return [shared_ll + t for t in totals]


def suffix_log_likelihoods(
    model: Any, cache: Any, context_len: int, head: Any, suffixes: list[list[int]]
) -> list[float]:
    """log p(suffix | context) for each suffix, given the context's KV `cache` (consumed: it is repeated in place)
    and `head`, the log-probabilities the context's last position gives the next token."""
    import torch

    device = model.device
    totals = [float(head[s[0]]) for s in suffixes]
    width = max(len(s) for s in suffixes) - 1  # the last token of a suffix is only ever predicted, never fed
    if width == 0:
        return totals
    k = len(suffixes)
    cache.batch_repeat_interleave(k)  # the same context cache for each of the k rows
    inputs = torch.zeros((k, width), dtype=torch.long, device=device)
    mask = torch.zeros((k, width), dtype=torch.long, device=device)
    for i, s in enumerate(suffixes):
        inputs[i, : len(s) - 1] = torch.tensor(s[:-1])
        mask[i, : len(s) - 1] = 1
    attention = torch.cat([torch.ones((k, context_len), dtype=torch.long, device=device), mask], dim=1)
    positions = torch.arange(context_len, context_len + width, device=device).expand(k, width)
    logits = model(
        input_ids=inputs,
        attention_mask=attention,
        position_ids=positions,
        past_key_values=cache,
        use_cache=True,
    ).logits
    logp = torch.log_softmax(logits.float(), dim=-1)  # (k, width, vocab): candidate positions only
    for i, s in enumerate(suffixes):
        if len(s) == 1:
            continue  # a one-token suffix was scored from the context's last position alone
        targets = torch.tensor(s[1:], dtype=torch.long, device=device)
        totals[i] += float(logp[i, torch.arange(len(s) - 1, device=device), targets].sum())
    return totals


def naive_log_likelihoods(model: Any, prompt: list[int], candidates: list[list[int]]) -> list[float]:
    """Reference implementation: a full forward pass over prompt + candidate for each candidate."""
    import torch

    totals = []
    with torch.inference_mode():
        for cand in candidates:
            ids = torch.tensor([prompt + cand], device=model.device)
            logp = torch.log_softmax(model(input_ids=ids).logits[0].float(), dim=-1)
            positions = torch.arange(len(prompt) - 1, len(prompt) + len(cand) - 1)
            totals.append(float(logp[positions, torch.tensor(cand)].sum()))
    return totals


def softmax(values: Sequence[float]) -> list[float]:
    top = max(values)
    exps = [math.exp(v - top) for v in values]
    total = sum(exps)
    return [e / total for e in exps]


def score_labels(
    model: Any,
    tokenizer: Any,
    messages: Messages,
    labels: Sequence[str],
    answer_format: str,
    *,
    length_normalize: bool = False,
    bias: Mapping[str, float] | None = None,
) -> LabelScores:
    """Log-likelihood of every label's answer to one chat prompt, and a distribution over the labels.

    `bias` (a label-prior correction, `calibration.py`) shifts the choice, not the reported probabilities."""
    labels = list(dict.fromkeys(labels))
    if not labels:
        raise ValueError("score mode needs a non-empty label set")
    candidates = candidate_ids(tokenizer, labels, answer_format)
    lls = cached_log_likelihoods(model, prompt_ids(tokenizer, messages), candidates)
    lengths = [len(c) for c in candidates]
    logits = [ll / n for ll, n in zip(lls, lengths, strict=True)] if length_normalize else lls
    probs = softmax(logits)
    chosen = max(labels, key=lambda label: logits[labels.index(label)] + bias.get(label, 0.0)) if bias else None
    return LabelScores(labels, lls, lengths, dict(zip(labels, probs, strict=True)), chosen)
