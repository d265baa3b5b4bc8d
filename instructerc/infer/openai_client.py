"""A minimal client for OpenAI-compatible chat servers (vLLM, TGI, llama.cpp, hosted APIs): urllib plus a thread
pool, so talking to a server needs no new dependency. Used by rationale writing and the LLM judge.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

Messages = Sequence[dict[str, Any]]

# Worth another try: the server is overloaded, restarting or briefly unreachable.
RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


class EndpointError(RuntimeError):
    """The endpoint could not be reached or gave an unusable answer; the message says which and why."""


class OpenAIClient:
    """POST {base_url}/chat/completions for one pinned model.

    Connection errors, timeouts, 429 and 5xx are retried `retries` times with exponential backoff; a server that
    stays unreachable raises EndpointError("cannot reach <url>: is the server running?"). The API key defaults to
    $OPENAI_API_KEY (local servers accept anything, hence "EMPTY").
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        retries: int = 3,
        *,
        backoff_s: float = 1.0,
    ) -> None:
        self.base_url, self.model = base_url.rstrip("/"), model
        self.url = self.base_url + "/chat/completions"
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY", "EMPTY")
        self.timeout_s, self.retries, self.backoff_s = timeout_s, max(0, retries), backoff_s

    def __repr__(self) -> str:  # never shows the key
        return f"OpenAIClient({self.base_url!r}, {self.model!r})"

    def chat(
        self, messages: Messages, temperature: float = 0.0, max_tokens: int = 256, extra: dict[str, Any] | None = None
    ) -> str:
        """One chat completion's text, with retries. `extra` adds request fields (seed, structured outputs)."""
        request = {
            "model": self.model,
            "messages": list(messages),
            "max_tokens": max_tokens,
            "temperature": temperature,
        }
        body = json.dumps(request | (extra or {})).encode("utf-8")
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {self.api_key}"}
        last_error, reached = "", False
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    raw = response.read().decode("utf-8")
                return message_text(raw, self.url)
            except urllib.error.HTTPError as err:  # before URLError: it is a subclass
                detail = err.read().decode("utf-8", "replace")[:300]
                if err.code not in RETRY_STATUS:
                    raise EndpointError(f"{self.url} answered HTTP {err.code}: {detail}") from err
                last_error, reached = f"HTTP {err.code}: {detail}", True
            except (urllib.error.URLError, ConnectionError, TimeoutError) as err:
                last_error, reached = str(getattr(err, "reason", err)), False
        attempts = f"gave up after {self.retries + 1} attempts; last error: {last_error}"
        if reached:  # the server is up but keeps failing: "is it running?" would mislead
            raise EndpointError(f"{self.url} kept failing ({attempts})")
        raise EndpointError(f"cannot reach {self.url}: is the server running? ({attempts})")

    def chat_many(
        self,
        prompts: Sequence[Messages],
        concurrency: int = 4,
        temperature: float = 0.0,
        max_tokens: int = 256,
        extras: Sequence[dict[str, Any] | None] | None = None,
    ) -> list[str]:
        """`chat` over many prompts, `concurrency` requests at a time; results in input order. `extras` gives
        each prompt's additional request fields."""
        jobs = list(zip(prompts, extras if extras is not None else [None] * len(prompts), strict=True))
        if len(jobs) <= 1:
            return [self.chat(p, temperature, max_tokens, e) for p, e in jobs]
        with ThreadPoolExecutor(max_workers=min(max(1, concurrency), len(jobs))) as pool:
            return list(pool.map(lambda job: self.chat(job[0], temperature, max_tokens, job[1]), jobs))


def message_text(raw: str, url: str) -> str:
    """choices[0].message.content of a response body, or EndpointError."""
    try:
        return json.loads(raw)["choices"][0]["message"]["content"] or ""
    except (ValueError, KeyError, IndexError, TypeError) as err:
        raise EndpointError(f"{url} gave no choices[0].message.content: {raw[:300]}") from err


__all__ = ["RETRY_STATUS", "EndpointError", "Messages", "OpenAIClient", "message_text"]
