"""Optional LLM judge of predicted rationales over any OpenAI-compatible endpoint.

The model is pinned by name, sampling is greedy (temperature 0), the prompt below is versioned and published in
docs/evaluation.md, replies are cached, and the score is parsed strictly: a reply that is not exactly
"Score: N" (N = 0..10) is an invalid judgement, never a 0, so a chatty judge cannot drag the mean down silently.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from instructerc.infer.openai_client import OpenAIClient
from instructerc.io import sha256_json

JUDGE_PROMPT_VERSION = "emer-judge@v1"  # bump whenever the text below changes: it is part of every cache key
JUDGE_SYSTEM = "You are a strict, impartial judge of explanations of emotions in conversations."
JUDGE_TEMPLATE = """Rate how well the explanation identifies the clues behind the target speaker's emotion.

Conversation:
{context}

Target utterance ({speaker}): "{text}"
Gold emotion: {gold}
Predicted emotion: {predicted}

Explanation to rate:
{rationale}

Reference clues (may be empty):
{reference}

Score from 0 to 10: 10 = the explanation names the real clues (the reference clues when given), invents nothing
that is not in the conversation and supports the gold emotion; 0 = it is unsupported or explains a wrong emotion.
Reply with exactly one line, "Score: N", where N is an integer from 0 to 10."""

_SCORE = re.compile(r"\s*score\s*:\s*(10|[0-9])\s*\.?\s*", re.I)
_FIELDS = ("context", "speaker", "text", "gold", "predicted", "rationale", "reference")


def parse_score(reply: str | None) -> int | None:
    """The score of a reply that is exactly "Score: N" (case and surrounding spaces aside), else None."""
    match = _SCORE.fullmatch(reply or "")
    return int(match.group(1)) if match else None


def judge_inputs(row: Mapping[str, Any], reference: str | None) -> dict[str, str]:
    """The fields of a predictions row the judge sees (these, with model and version, are the cache key)."""
    gold = row.get("gold") if row.get("gold") is not None else ", ".join(row.get("gold_labels") or [])
    predicted = row.get("predicted") if not row.get("open_vocabulary") else ", ".join(row.get("predicted_labels") or [])
    values = {
        "context": row.get("context") or "",
        "speaker": row.get("speaker") or "",
        "text": row.get("text") or "",
        "gold": gold or "(unknown)",
        "predicted": predicted or "(invalid)",
        "rationale": row.get("rationale") or "",
        "reference": reference or "",
    }
    return {k: str(values[k]) for k in _FIELDS}


def judge_messages(inputs: Mapping[str, str]) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": JUDGE_SYSTEM},
        {"role": "user", "content": JUDGE_TEMPLATE.format(**inputs)},
    ]


class LLMJudge:
    """Judges rationales with a pinned model; replies are cached in a JSONL file keyed by
    sha256(model, prompt version, inputs), so a re-run sends no request for what was judged before."""

    def __init__(
        self, client: OpenAIClient, cache_path: str | os.PathLike, *, concurrency: int = 4, max_tokens: int = 16
    ) -> None:
        self.client, self.cache_path = client, Path(cache_path)
        self.concurrency, self.max_tokens = concurrency, max_tokens
        self._lock = threading.Lock()
        self.requests_sent = 0

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], default_cache: str | os.PathLike) -> LLMJudge:
        """From {"base_url", "model", optional "api_key", "cache_path", "concurrency", "timeout_s", "retries"}."""
        missing = [k for k in ("base_url", "model") if not settings.get(k)]
        if missing:
            raise ValueError(f"the judge needs {' and '.join(missing)} (an OpenAI-compatible server and a model)")
        client = OpenAIClient(
            settings["base_url"],
            settings["model"],
            settings.get("api_key"),
            float(settings.get("timeout_s", 60.0)),
            int(settings.get("retries", 3)),
        )
        cache = settings.get("cache_path") or default_cache
        return cls(client, cache, concurrency=int(settings.get("concurrency", 4)))

    def key(self, inputs: Mapping[str, str]) -> str:
        return sha256_json({"model": self.client.model, "prompt_version": JUDGE_PROMPT_VERSION, "inputs": inputs})

    def _load_cache(self) -> dict[str, str]:
        cache: dict[str, str] = {}
        if self.cache_path.is_file():
            for line in self.cache_path.read_text(encoding="utf-8").splitlines():
                try:
                    entry = json.loads(line)
                    cache[entry["key"]] = entry["raw"]
                except (ValueError, KeyError, TypeError):  # a line torn by a crash: judge that item again
                    continue
        return cache

    def judge_many(self, inputs: Sequence[Mapping[str, str]]) -> list[dict[str, Any]]:
        """Per item: score (int or None), valid, raw reply, cached."""
        cache = self._load_cache()
        keys = [self.key(item) for item in inputs]
        first: dict[str, Mapping[str, str]] = {}  # each distinct uncached input is asked once
        for k, item in zip(keys, inputs, strict=True):
            if k not in cache:
                first.setdefault(k, item)
        new_keys = list(first)
        self.requests_sent += len(new_keys)
        if new_keys:
            replies = self.client.chat_many(
                [judge_messages(first[k]) for k in new_keys], self.concurrency, 0.0, self.max_tokens
            )
            # Appended, not rewritten: the cache only grows, and a torn last line is skipped when read.
            self.cache_path.parent.mkdir(parents=True, exist_ok=True)
            with self._lock, self.cache_path.open("a", encoding="utf-8") as handle:
                for k, raw in zip(new_keys, replies, strict=True):
                    entry = {"key": k, "model": self.client.model, "prompt_version": JUDGE_PROMPT_VERSION, "raw": raw}
                    handle.write(json.dumps(entry, ensure_ascii=False) + "\n")
                    cache[k] = raw
        out = []
        for k in keys:
            score = parse_score(cache[k])
            out.append({"score": score, "valid": score is not None, "raw": cache[k], "cached": k not in new_keys})
        return out

    def summary(self, judgements: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """n, valid, invalid, invalid_rate and the mean score over valid judgements (None when none is valid)."""
        scores = [j["score"] for j in judgements if j["valid"]]
        n = len(judgements)
        return {
            "model": self.client.model,
            "base_url": self.client.base_url,
            "prompt_version": JUDGE_PROMPT_VERSION,
            "n": n,
            "valid": len(scores),
            "invalid": n - len(scores),
            "invalid_rate": (n - len(scores)) / n if n else 0.0,
            "mean_score": sum(scores) / len(scores) if scores else None,
            "requests": self.requests_sent,
        }


__all__ = [
    "JUDGE_PROMPT_VERSION",
    "JUDGE_SYSTEM",
    "JUDGE_TEMPLATE",
    "LLMJudge",
    "judge_inputs",
    "judge_messages",
    "parse_score",
]
