"""The inference engines behind `predict` and `label`. Each takes the same dataset rows and returns the model's
text, so the prediction rows are identical whatever the engine:

- `transformers` (default): the model in this process, batched `generate`; the only one with score mode;
- `vllm`: offline `vllm.LLM` in the vLLM environment's own process (`vllm_offline.py`), LoRA as a request;
- `openai`: any OpenAI-compatible server (`instructerc serve`, vLLM, TGI, a hosted API), `--model` naming the
  model or LoRA module on the server; concurrent requests, retries with backoff, timeouts.

`vllm` and `openai` can constrain closed-set answers with structured outputs (`structured.py`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol

from instructerc.config import ConfigError, option
from instructerc.infer.scoring import LabelScores, Messages
from instructerc.infer.structured import STRUCTURED, request_fields, row_constraint

BACKENDS = ("transformers", "vllm", "openai")
Bias = Mapping[str, float] | None  # a label-prior correction (calibration.py)
Row = dict[str, Any]


@dataclasses.dataclass
class EngineOptions:
    """Options of the inference engine, shared by `predict` and `label`."""

    backend: Literal["transformers", "vllm", "openai"] = option(
        "inference engine: transformers (in process), vllm (offline vLLM in .venv-vllm), openai (a server at "
        "--base_url)",
        default="transformers",
    )
    structured: Literal["none", "answer_format", "choice", "json"] = option(
        "vllm/openai: constrain answers to the template's answer format with a label of the set, to one label "
        "(choice), or to a JSON object with rationale and label",
        default="none",
    )
    base_url: str | None = option("openai: the server's URL, e.g. http://127.0.0.1:8000/v1", default=None)
    api_key: str | None = option("openai: API key (default: $OPENAI_API_KEY, or EMPTY for local servers)", default=None)
    concurrency: int = option("openai: requests in flight at once", default=8)
    request_timeout: float = option("openai: seconds to wait for one answer", default=120.0)
    retries: int = option("openai: retries of a failed request (exponential backoff)", default=3)
    vllm_python: str | None = option(
        "vllm: Python of the vLLM environment (default: $INSTRUCTERC_VLLM_PYTHON or .venv-vllm)", default=None
    )
    enforce_eager: bool | None = option(
        "vllm: eager mode (default: on for CPU, where compiling takes minutes; off on GPU)", default=None
    )
    kv_cache_gib: float | None = option("vllm on CPU: KV cache size in GiB (default 1)", default=None)
    tensor_parallel_size: int = option("vllm on GPU: GPUs to split the model over", default=1)
    max_model_len: int | None = option("vllm: context length (default: the model's)", default=None)

    def validate_engine(self, mode: str = "generate") -> None:
        if self.backend not in BACKENDS:
            raise ConfigError(f"backend: unknown {self.backend!r} (available: {', '.join(BACKENDS)})")
        if self.structured not in STRUCTURED:
            raise ConfigError(f"structured: expected one of {', '.join(STRUCTURED)}, got {self.structured!r}")
        if self.backend == "transformers" and self.structured != "none":
            raise ConfigError("structured outputs need --backend vllm or --backend openai")
        if self.backend != "transformers" and mode == "score":
            raise ConfigError("--mode score needs --backend transformers (it reads the model's logits directly)")
        if self.backend == "openai":
            if not self.base_url:
                raise ConfigError("--backend openai needs --base_url (e.g. http://127.0.0.1:8000/v1)")
            if getattr(self, "adapter", None):
                raise ConfigError(
                    "--backend openai: the server holds the adapters; request one by its name with --model NAME"
                )
        if self.concurrency < 1 or self.retries < 0 or self.request_timeout <= 0:
            raise ConfigError("concurrency must be >= 1, retries >= 0 and request_timeout > 0")


def engine_options(config: Any) -> dict[str, Any]:
    """The EngineOptions values of a config, to pass them on (label -> predict)."""
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(EngineOptions)}


class Backend(Protocol):
    """An inference engine: `generate` one text per row; `score` only where the engine exposes logits."""

    name: str

    def generate(self, rows: Sequence[Row], config: Any) -> list[str]: ...

    def score(
        self, prompt: Messages, labels: Sequence[str], answer_format: str, config: Any, bias: Bias = None
    ) -> LabelScores: ...

    def score_turns(
        self, prompt: Messages, numbers: Sequence[int], labels: Sequence[str], config: Any, bias: Bias = None
    ) -> list[LabelScores]: ...

    def close(self) -> None: ...


class TransformersBackend:
    """A local transformers model (optionally with a peft adapter); build it with `from_config`."""

    name = "transformers"

    def __init__(self, model: Any, tokenizer: Any):
        self.model = model.eval()
        self.tokenizer = tokenizer

    @classmethod
    def from_config(cls, config: Any) -> TransformersBackend:
        import torch
        import transformers

        from instructerc.models import load_causal_lm, load_tokenizer

        transformers.utils.logging.disable_progress_bar()  # our bar and summary line say what matters
        tokenizer = load_tokenizer(config.tokenizer_source(), config.cache_dir)
        model = load_causal_lm(
            config.model, dtype=config.model_dtype, cache_dir=config.cache_dir, threads=config.threads
        )
        if config.adapter:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, config.adapter)
        if torch.cuda.is_available():
            model = model.to("cuda")
        return cls(model, tokenizer)

    def generate(self, rows: Sequence[Row], config: Any) -> list[str]:
        from instructerc.infer.generation import generate_chat

        return generate_chat(
            self.model,
            self.tokenizer,
            [row["prompt"] for row in rows],
            max_new_tokens=config.max_new_tokens,
            batch_size=config.batch_size,
            do_sample=config.do_sample,
            temperature=config.temperature,
            top_p=config.top_p,
        )

    def score(
        self, prompt: Messages, labels: Sequence[str], answer_format: str, config: Any, bias: Bias = None
    ) -> LabelScores:
        from instructerc.infer.scoring import score_labels

        return score_labels(
            self.model,
            self.tokenizer,
            prompt,
            labels,
            answer_format,
            length_normalize=config.length_normalize,
            bias=bias,
        )

    def score_turns(
        self, prompt: Messages, numbers: Sequence[int], labels: Sequence[str], config: Any, bias: Bias = None
    ) -> list[LabelScores]:
        from instructerc.infer.turn_scoring import score_turns

        return score_turns(
            self.model, self.tokenizer, prompt, numbers, labels, bias=bias, length_normalize=config.length_normalize
        )

    def close(self) -> None:
        pass


class OpenAIBackend:
    """An OpenAI-compatible chat server; the server applies the model's chat template to the messages."""

    name = "openai"

    def __init__(self, client: Any):
        self.client = client

    @classmethod
    def from_config(cls, config: Any) -> OpenAIBackend:
        from instructerc.infer.openai_client import OpenAIClient

        return cls(
            OpenAIClient(
                config.base_url, config.model, config.api_key, timeout_s=config.request_timeout, retries=config.retries
            )
        )

    def generate(self, rows: Sequence[Row], config: Any) -> list[str]:
        sampling: dict[str, Any] = {"seed": config.seed} | ({"top_p": config.top_p} if config.do_sample else {})
        extras = [
            sampling | request_fields(row_constraint(config.structured, row, config.max_new_tokens)) for row in rows
        ]
        return self.client.chat_many(
            [row["prompt"] for row in rows],
            concurrency=config.concurrency,
            temperature=config.temperature if config.do_sample else 0.0,
            max_tokens=config.max_new_tokens,
            extras=extras,
        )

    def score(self, *args: Any, **kwargs: Any) -> LabelScores:
        raise ValueError("score mode needs --backend transformers (it reads the model's logits directly)")

    def close(self) -> None:
        pass


def make_backend(config: Any) -> Backend:
    """The engine a predict config asks for, ready to generate (the caller closes it)."""
    if config.backend == "openai":
        return OpenAIBackend.from_config(config)
    if config.backend == "vllm":
        from instructerc.infer.vllm_offline import VLLMBackend

        return VLLMBackend.from_config(config)
    return TransformersBackend.from_config(config)
