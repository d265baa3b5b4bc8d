"""`predict`: run a model over a built dataset or raw dialogues and write predictions JSONL.

Rows follow docs/predictions_format.md. Writing is resumable (see `writer`): each batch is on disk before the
next one starts, and the same command re-run skips the ids already written. Two modes:

- generate: the model writes an answer (batched `generate_chat`), read by `parsing.parse_output`;
- score: no generation, the label whose answer is most likely wins (see `scoring`); closed sets only.

The model runs behind a small `Backend` protocol so other engines (vLLM, an OpenAI-compatible endpoint) can
plug in later; "transformers" is the only one for now.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from tqdm.auto import tqdm

from instructerc.config import ConfigError, option
from instructerc.infer.scoring import LabelScores, Messages
from instructerc.infer.sources import Row, example_id, load_built_rows, load_raw_rows
from instructerc.infer.writer import ResumableJsonlWriter
from instructerc.parsing import ParsedOutput, label_set_from_list, parse_output

BACKENDS = ("transformers",)


@dataclasses.dataclass
class PredictConfig:
    """`instructerc predict`: predictions JSONL for a built dataset split or raw dialogues."""

    output: str = option("predictions JSONL (appended to and resumed: ids already in it are skipped)")
    model: str = option(
        "model: `embedded`, a local folder or a hub id (the base model with --adapter)", default="embedded"
    )
    adapter: str | None = option(
        "peft adapter folder (from `instructerc train`) loaded on top of --model", default=None
    )
    dataset_dir: str | None = option("built dataset folder (`build-data` output); or give --dataset", default=None)
    split: str = option("split to predict", default="validation")
    tasks: list[str] = option("tasks to predict (rows of other tasks are skipped)", default_factory=lambda: ["emotion"])
    dataset: str | None = option("raw corpus format (as in build-data) instead of --dataset_dir", default=None)
    data_dir: str | None = option("raw corpus folder or file (with --dataset)", default=None)
    label_set: str | None = option("raw corpus: label set name or comma-separated labels", default=None)
    template: str = option("raw corpus: template of the emotion task", default="emotion")
    window: int = option("raw corpus: dialogue history turns shown", default=12)
    n_demos: int = option("raw corpus: retrieved demonstrations (> 0 reads the train split)", default=0)
    max_prompt_tokens: int | None = option("raw corpus: prompt token budget", default=1024)
    builder_options: dict = option("raw corpus: options for the corpus builder", default_factory=dict)
    mode: Literal["generate", "score"] = option(
        "generate answers, or score each label's answer (closed sets)", default="generate"
    )
    length_normalize: bool = option(
        "score mode: divide log-likelihoods by token count before the softmax", default=False
    )
    batch_size: int = option("prompts per generation batch (and per write)", default=8)
    max_new_tokens: int = option("generation length limit", default=128)
    do_sample: bool = option("sample instead of greedy decoding", default=False)
    temperature: float = option("sampling temperature", default=1.0)
    top_p: float = option("nucleus sampling", default=1.0)
    seed: int = option("random seed (sampling)", default=0)
    limit: int | None = option("predict only the first N examples", default=None)
    threads: int | None = option("torch CPU threads (default: torch's)", default=None)
    model_dtype: str = option("auto | bfloat16 | float16 | float32", default="auto")
    backend: str = option(f"inference engine: {' | '.join(BACKENDS)}", default="transformers")
    cache_dir: str | None = option("cache for converted models", default=None)
    show_progress: bool = option("show a progress bar", default=True)

    def validate(self) -> None:
        if (self.dataset_dir is None) == (self.dataset is None):
            raise ConfigError("give either dataset_dir (a built dataset) or dataset + data_dir (raw dialogues)")
        if self.dataset is not None and self.data_dir is None:
            raise ConfigError("--dataset needs --data_dir")
        if self.backend not in BACKENDS:
            raise ConfigError(f"backend: unknown {self.backend!r} (available: {', '.join(BACKENDS)})")
        if self.mode not in ("generate", "score"):
            raise ConfigError(f"mode: expected generate or score, got {self.mode!r}")
        if self.batch_size < 1 or self.max_new_tokens < 1 or (self.limit is not None and self.limit < 0):
            raise ConfigError("batch_size and max_new_tokens must be >= 1 and limit >= 0")

    def tokenizer_source(self) -> str:
        """The adapter's folder when it saved a tokenizer (training may change it), else the base model's."""
        if self.adapter and (Path(self.adapter) / "tokenizer_config.json").is_file():
            return self.adapter
        return self.model


class Backend(Protocol):
    """An inference engine. `score` may raise NotImplementedError where the engine exposes no log-probs."""

    name: str

    def generate(self, prompts: Sequence[Messages], config: PredictConfig) -> list[str]: ...

    def score(
        self, prompt: Messages, labels: Sequence[str], answer_format: str, config: PredictConfig
    ) -> LabelScores: ...


class TransformersBackend:
    """A local transformers model (optionally with a peft adapter); build it with `from_config`."""

    name = "transformers"

    def __init__(self, model: Any, tokenizer: Any):
        self.model = model.eval()
        self.tokenizer = tokenizer

    @classmethod
    def from_config(cls, config: PredictConfig) -> TransformersBackend:
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

    def generate(self, prompts: Sequence[Messages], config: PredictConfig) -> list[str]:
        from instructerc.infer.generation import generate_chat

        return generate_chat(
            self.model,
            self.tokenizer,
            list(prompts),
            max_new_tokens=config.max_new_tokens,
            batch_size=config.batch_size,
            do_sample=config.do_sample,
            temperature=config.temperature,
            top_p=config.top_p,
        )

    def score(self, prompt: Messages, labels: Sequence[str], answer_format: str, config: PredictConfig) -> LabelScores:
        from instructerc.infer.scoring import score_labels

        return score_labels(
            self.model, self.tokenizer, prompt, labels, answer_format, length_normalize=config.length_normalize
        )


@dataclass
class PredictSummary:
    output: str
    written: int  # rows written by this run
    skipped: int  # rows already in the output file (resumed)
    invalid: int  # rows written by this run whose lenient parse failed
    seconds: float  # model loading + prediction
    predict_seconds: float  # prediction only

    @property
    def utterances_per_s(self) -> float:
        return self.written / self.predict_seconds if self.predict_seconds else 0.0

    def summary(self) -> str:
        resumed = f", {self.skipped} already there" if self.skipped else ""
        return (
            f"predicted {self.written} rows{resumed} in {self.seconds:.1f} s "
            f"({self.utterances_per_s:.2f} utterances/s); {self.invalid} invalid -> {self.output}"
        )


def load_examples(config: PredictConfig) -> list[Row]:
    """The examples to predict, in dataset order, cut to `limit`."""
    if config.dataset_dir is not None:
        rows = load_built_rows(config.dataset_dir, config.split, config.tasks)
    else:
        rows = load_raw_rows(
            config.dataset,  # type: ignore[arg-type]
            config.data_dir,  # type: ignore[arg-type]
            config.split,
            label_set=config.label_set,
            tasks=config.tasks,
            template=config.template,
            window=config.window,
            n_demos=config.n_demos,
            max_prompt_tokens=config.max_prompt_tokens,
            builder_options=config.builder_options,
            cache_dir=config.cache_dir,
        )
    return rows if config.limit is None else rows[: config.limit]


def _label_set(row: Row) -> Any:
    # Speaker names are matched exactly: emotion synonyms and concept folding make no sense for them.
    return label_set_from_list(tuple(row["label_set"]), exact=row["task"] == "speaker")


def prediction_row(
    row: Row, raw: str, config: PredictConfig, *, scores: LabelScores | None = None, backend: str = "transformers"
) -> dict[str, Any]:
    """One predictions-JSONL row (docs/predictions_format.md) for a dataset row and the model's text."""
    open_vocab = bool(row.get("open_vocabulary"))
    if scores is not None:  # score mode: the argmax label, by construction an exact answer
        best = scores.best
        lenient = strict = ParsedOutput(best, (best,), None, True, None, True, best, False)
    else:
        kwargs = {"open_vocabulary": open_vocab, "answer_format": row["answer_format"]}
        label_set = None if open_vocab else _label_set(row)
        lenient = parse_output(raw, label_set, mode="lenient", **kwargs)
        strict = parse_output(raw, label_set, mode="strict", **kwargs)
    gold = row.get("label")
    return {
        "id": example_id(row),
        "split": row["split"],
        "dialogue_id": row["dialogue_id"],
        "turn": row["turn"],
        "task": row["task"],
        "speaker": row["speaker"],
        "text": row["text"],
        "gold": gold,
        "gold_labels": list(row.get("labels") or ([gold] if gold else [])),
        "label_set": list(row["label_set"]),
        "open_vocabulary": open_vocab,
        "predicted": lenient.label,
        "predicted_labels": list(lenient.labels),
        "rationale": lenient.rationale,
        "raw": raw,
        "valid": lenient.valid,
        "invalid_reason": lenient.reason,
        "valid_strict": strict.valid,
        "well_formed": strict.well_formed,
        "probabilities": scores.probabilities if scores is not None else None,
        "context": row.get("context") or "",
        "reference_rationale": row.get("rationale") or None,
        "reference_clues": list(row.get("clues") or []),
        "model": config.model,
        "adapter": config.adapter,
        "template": row.get("template"),
        "mode": config.mode,
        "backend": backend,
    }


def _predict_batch(batch: list[Row], backend: Backend, config: PredictConfig) -> list[dict[str, Any]]:
    if config.mode == "generate":
        texts = backend.generate([row["prompt"] for row in batch], config)
        return [prediction_row(row, text, config, backend=backend.name) for row, text in zip(batch, texts, strict=True)]
    out = []
    for row in batch:  # one prompt at a time: its forward pass dominates, and batching would cost exactness
        if row.get("open_vocabulary"):
            raise ValueError(f"score mode needs a closed label set; {example_id(row)} is open vocabulary")
        scores = backend.score(row["prompt"], row["label_set"], row["answer_format"], config)
        out.append(prediction_row(row, scores.best, config, scores=scores, backend=backend.name))
    return out


def predict(config: PredictConfig, backend: Backend | None = None) -> PredictSummary:
    """Predict every example not yet in `config.output`, writing each batch before the next."""
    config.validate()
    started = time.perf_counter()
    rows = load_examples(config)
    with ResumableJsonlWriter(config.output) as writer:
        pending, seen = [], set()
        for row in rows:
            row_id = example_id(row)
            if not writer.done(row_id) and row_id not in seen:
                seen.add(row_id)
                pending.append(row)
        skipped = len(rows) - len(pending)
        written = invalid = 0
        predict_started = time.perf_counter()
        if pending:
            if backend is None:
                backend = TransformersBackend.from_config(config)
            import torch

            torch.manual_seed(config.seed)  # sampling runs repeat (from the same starting point)
            predict_started = time.perf_counter()
            with tqdm(total=len(pending), desc="predict", unit="utt", disable=not config.show_progress) as bar:
                for start in range(0, len(pending), config.batch_size):
                    batch = pending[start : start + config.batch_size]
                    out = _predict_batch(batch, backend, config)
                    written += writer.append(out)
                    invalid += sum(not r["valid"] for r in out)
                    bar.update(len(batch))
        finished = time.perf_counter()
    return PredictSummary(
        config.output, written, skipped, invalid, finished - started, finished - predict_started if written else 0.0
    )
