"""Batched chat generation with transformers (left padding, greedy by default)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

Messages = list[dict[str, str]]


def generate_chat(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Messages],
    *,
    max_new_tokens: int = 128,
    batch_size: int = 8,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_p: float = 1.0,
    progress: Callable[[int], None] | None = None,
) -> list[str]:
    """Generate one completion per chat prompt; returns the decoded new text only."""
    import torch

    texts = [tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True) for p in prompts]
    padding_side = tokenizer.padding_side
    tokenizer.padding_side = "left"  # decoder-only models continue from the right edge
    outputs: list[str] = []
    try:
        model.eval()
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(
                texts[start : start + batch_size], return_tensors="pt", padding=True, add_special_tokens=False
            ).to(model.device)
            sampling = (
                {"do_sample": True, "temperature": temperature, "top_p": top_p}
                if do_sample
                else {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
            )
            with torch.inference_mode():
                generated = model.generate(
                    **batch, max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id, **sampling
                )
            new_tokens = generated[:, batch["input_ids"].shape[1] :]
            outputs += tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
            if progress:
                progress(len(new_tokens))
    finally:
        tokenizer.padding_side = padding_side
    return outputs
