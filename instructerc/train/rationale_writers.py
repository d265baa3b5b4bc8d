"""Who writes rationales: a local transformers model, or any OpenAI-compatible endpoint (vLLM, TGI, a hosted API).

Both take chat prompts and return raw text, one per prompt, in order. The endpoint writer delegates the HTTP work
to instructerc.infer.openai_client.OpenAIClient (plain urllib plus a thread pool, no new dependency).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from instructerc.infer.generation import Messages
from instructerc.infer.openai_client import RETRY_STATUS, EndpointError, OpenAIClient  # noqa: F401 (re-exported)


class RationaleWriter(Protocol):
    """Turns chat prompts into raw rationale texts (one per prompt, same order)."""

    @property
    def identity(self) -> str:
        """What the cache key depends on: the same identity and settings give the same texts."""
        ...

    @property
    def model_id(self) -> str:
        """The model name recorded in `rationale_source` ("rationalized:<model_id>")."""
        ...

    @property
    def chunk_size(self) -> int:
        """Prompts per `write` call: results are cached after each call, so a crash loses at most one chunk."""
        ...

    def write(self, prompts: Sequence[Messages]) -> list[str]: ...


class LocalWriter:
    """A transformers causal LM (`embedded`, a folder or a hub id); greedy when temperature is 0.

    The model is loaded on the first `write`, so a run served entirely from the cache never loads it.
    """

    def __init__(
        self,
        model: str = "embedded",
        *,
        max_new_tokens: int = 96,
        batch_size: int = 8,
        temperature: float = 0.0,
        cache_dir: str | None = None,
        threads: int | None = None,
    ) -> None:
        self.model = model
        self.max_new_tokens, self.batch_size, self.temperature = max_new_tokens, batch_size, temperature
        self.cache_dir, self.threads = cache_dir, threads
        self._loaded: tuple[Any, Any] | None = None

    @property
    def identity(self) -> str:
        from instructerc.models import resolve_model

        # The resolved path, not the name: two different folders called "model" must not share a cache.
        return f"local:{resolve_model(self.model, self.cache_dir)}"

    @property
    def model_id(self) -> str:
        return self.model

    @property
    def chunk_size(self) -> int:
        return self.batch_size

    def write(self, prompts: Sequence[Messages]) -> list[str]:
        from instructerc.infer.generation import generate_chat
        from instructerc.models import load_causal_lm, load_tokenizer

        if self._loaded is None:
            self._loaded = (
                load_causal_lm(self.model, cache_dir=self.cache_dir, threads=self.threads),
                load_tokenizer(self.model, cache_dir=self.cache_dir),
            )
        model, tokenizer = self._loaded
        sample = self.temperature > 0
        return generate_chat(
            model,
            tokenizer,
            prompts,
            max_new_tokens=self.max_new_tokens,
            batch_size=self.batch_size,
            do_sample=sample,
            temperature=self.temperature if sample else 1.0,
        )


class EndpointWriter:
    """POST /chat/completions on an OpenAI-compatible server, `concurrency` requests at a time.

    Connection errors, timeouts, 429 and 5xx are retried `retries` times with exponential backoff; a server that
    stays unreachable raises EndpointError("cannot reach <url>: is the server running?").
    """

    def __init__(
        self,
        base_url: str,
        api_model: str,
        *,
        api_key: str | None = None,
        max_new_tokens: int = 96,
        temperature: float = 0.0,
        concurrency: int = 4,
        timeout_s: float = 60.0,
        retries: int = 3,
        backoff_s: float = 1.0,
    ) -> None:
        self.client = OpenAIClient(base_url, api_model, api_key, timeout_s, retries, backoff_s=backoff_s)
        self.url, self.base_url, self.api_model = self.client.url, self.client.base_url, api_model
        self.api_key = self.client.api_key
        self.max_new_tokens, self.temperature = max_new_tokens, temperature
        self.concurrency, self.timeout_s = max(1, concurrency), timeout_s
        self.retries, self.backoff_s = self.client.retries, backoff_s

    @property
    def identity(self) -> str:
        return f"endpoint:{self.base_url}|{self.api_model}"

    @property
    def model_id(self) -> str:
        return self.api_model

    @property
    def chunk_size(self) -> int:
        return self.concurrency * 4

    def write(self, prompts: Sequence[Messages]) -> list[str]:
        return self.client.chat_many(prompts, self.concurrency, self.temperature, self.max_new_tokens)

    def complete(self, messages: Messages) -> str:
        """One chat completion's text, with retries."""
        return self.client.chat(messages, self.temperature, self.max_new_tokens)


def make_writer(config: Any) -> RationaleWriter:
    """The writer a RationalesConfig asks for: the endpoint when base_url is set, else the local model."""
    if config.base_url:
        return EndpointWriter(
            config.base_url,
            config.api_model,
            api_key=config.api_key,
            max_new_tokens=config.max_new_tokens,
            temperature=config.temperature,
            concurrency=config.concurrency,
            timeout_s=config.timeout_s,
            retries=config.retries,
        )
    return LocalWriter(
        config.model,
        max_new_tokens=config.max_new_tokens,
        batch_size=config.batch_size,
        temperature=config.temperature,
        threads=config.threads,
    )


__all__ = ["EndpointError", "EndpointWriter", "LocalWriter", "RationaleWriter", "make_writer"]
