"""`predict`: run a model over a built dataset or raw dialogues and write predictions JSONL.

Rows follow docs/predictions_format.md. Writing is resumable (see `writer`): each batch is on disk before the
next one starts, and the same command re-run skips the ids already written. Two modes:

- generate: the model writes an answer (batched `generate_chat`), read by `parsing.parse_output`;
- score: no generation, the label whose answer is most likely wins (see `scoring`); closed sets only.

The model runs behind the `Backend` protocol (`backends.py`): transformers in process, offline vLLM, or any
OpenAI-compatible server; every engine writes the same rows.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tqdm.auto import tqdm

from instructerc.answer_format import render_turn_answers
from instructerc.config import ConfigError, option
from instructerc.infer.backends import Backend, EngineOptions, TransformersBackend, make_backend
from instructerc.infer.calibration import load_calibration, resolve_calibration
from instructerc.infer.scoring import LabelScores
from instructerc.infer.sources import Row, example_id, is_dialogue_row, load_built_rows, load_raw_rows, row_ids
from instructerc.infer.writer import ResumableJsonlWriter
from instructerc.parsing import ParsedOutput, label_set_from_list, parse_output, parse_turn_answers

__all__ = ["PredictConfig", "PredictSummary", "TransformersBackend", "predict", "prediction_row"]


@dataclasses.dataclass
class _PredictOptions:
    output: str = option("predictions JSONL (appended to and resumed: ids already in it are skipped)")
    model: str = option(
        "model: `embedded`, a local folder or a hub id (the base model with --adapter); with --backend openai, "
        "the model's (or LoRA module's) name on the server",
        default="embedded",
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
    prompt_tokenizer: str | None = option(
        "raw corpus: tokenizer that counts --max_prompt_tokens (default: the model's; `embedded` with "
        "--backend openai, where --model is a name on the server)",
        default=None,
    )
    builder_options: dict = option("raw corpus: options for the corpus builder", default_factory=dict)
    mode: Literal["generate", "score"] = option(
        "generate answers, or score each label's answer (closed sets)", default="generate"
    )
    length_normalize: bool = option(
        "score mode: divide log-likelihoods by token count before the softmax", default=False
    )
    calibration: str | None = option(
        "score mode: label-prior correction (`instructerc calibrate` output) added before the choice; `auto`: the "
        "adapter's or model folder's calibration.json when there is one",
        default=None,
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
    cache_dir: str | None = option("cache for converted models", default=None)
    show_progress: bool = option("show a progress bar", default=True)


@dataclasses.dataclass
class PredictConfig(EngineOptions, _PredictOptions):  # this base order lists the engine options last in --help
    """`instructerc predict`: predictions JSONL for a built dataset split or raw dialogues."""

    def validate(self) -> None:
        if (self.dataset_dir is None) == (self.dataset is None):
            raise ConfigError("give either dataset_dir (a built dataset) or dataset + data_dir (raw dialogues)")
        if self.dataset is not None and self.data_dir is None:
            raise ConfigError("--dataset needs --data_dir")
        if self.mode not in ("generate", "score"):
            raise ConfigError(f"mode: expected generate or score, got {self.mode!r}")
        if self.batch_size < 1 or self.max_new_tokens < 1 or (self.limit is not None and self.limit < 0):
            raise ConfigError("batch_size and max_new_tokens must be >= 1 and limit >= 0")
        self.validate_engine(self.mode)
        if self.calibration == "auto" and self.mode != "score":
            self.calibration = None  # auto: a correction when there is one to apply; generation has none
        self.calibration = resolve_calibration(self.calibration, self.adapter or self.model)
        if self.calibration and self.mode != "score":
            raise ConfigError("calibration applies to --mode score (it shifts the label scores before the choice)")

    def tokenizer_source(self) -> str:
        """The adapter's folder when it saved a tokenizer (training may change it), else the base model's."""
        if self.adapter and (Path(self.adapter) / "tokenizer_config.json").is_file():
            return self.adapter
        return self.model

    def budget_tokenizer(self) -> str:
        """The tokenizer that measures raw-dialogue prompts: the one the model reads them with, when it is known."""
        if self.prompt_tokenizer:
            return self.prompt_tokenizer
        return "embedded" if self.backend == "openai" else self.tokenizer_source()


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
            tokenizer=config.budget_tokenizer(),
            builder_options=config.builder_options,
            cache_dir=config.cache_dir,
        )
    return rows if config.limit is None else rows[: config.limit]


def _label_set(row: Row) -> Any:
    # Speaker names are matched exactly: emotion synonyms and concept folding make no sense for them.
    return label_set_from_list(tuple(row["label_set"]), exact=row["task"] == "speaker")


def prediction_row(
    row: Row,
    raw: str,
    config: PredictConfig,
    *,
    scores: LabelScores | None = None,
    backend: str = "transformers",
    target: dict[str, Any] | None = None,
    parsed: tuple[ParsedOutput, ParsedOutput] | None = None,
) -> dict[str, Any]:
    """One predictions-JSONL row (docs/predictions_format.md) for a dataset row and the model's text.

    A dialogue-unit row gives one prediction row per `target` turn, with that turn's `parsed` (lenient, strict)
    answers read from the whole completion `raw`; the rows look exactly like utterance rows."""
    open_vocab = bool(row.get("open_vocabulary"))
    if scores is not None:  # score mode: the argmax label, by construction an exact answer
        best = scores.best
        lenient = strict = ParsedOutput(best, (best,), None, True, None, True, best, False)
    elif parsed is not None:
        lenient, strict = parsed
    else:
        kwargs = {"open_vocabulary": open_vocab, "answer_format": row["answer_format"]}
        label_set = None if open_vocab else _label_set(row)
        lenient = parse_output(raw, label_set, mode="lenient", **kwargs)
        strict = parse_output(raw, label_set, mode="strict", **kwargs)
    turn = target if target is not None else row
    gold = turn.get("label") or None
    return {
        "id": example_id(row, target),
        "split": row["split"],
        "dialogue_id": row["dialogue_id"],
        "turn": turn["turn"],
        "task": row["task"],
        "speaker": turn["speaker"],
        "text": turn["text"],
        "gold": gold,
        "gold_labels": ([gold] if gold else [])
        if target is not None
        else list(row.get("labels") or ([gold] if gold else [])),
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
        "reference_rationale": (row.get("rationale") or None) if target is None else None,
        "reference_clues": list(row.get("clues") or []) if target is None else [],
        "model": config.model,
        "adapter": config.adapter,
        "template": row.get("template"),
        "unit": row.get("unit") or "utterance",
        "mode": config.mode,
        "backend": backend,
        "calibration": config.calibration,
    }


def _dialogue_rows(
    row: Row, raw: str, config: PredictConfig, backend: str, scores: list[LabelScores] | None = None
) -> list[dict[str, Any]]:
    """The per-turn prediction rows of one dialogue-unit row: from its label-slot scores, or its parsed text."""
    targets = row["targets"]
    if scores is not None:
        return [
            prediction_row(row, raw, config, scores=s, backend=backend, target=t)
            for t, s in zip(targets, scores, strict=True)
        ]
    numbers, label_set = [t["number"] for t in targets], _label_set(row)
    lenient = parse_turn_answers(raw, numbers, label_set, mode="lenient")
    strict = parse_turn_answers(raw, numbers, label_set, mode="strict")
    return [
        prediction_row(row, raw, config, backend=backend, target=t, parsed=(a, b))
        for t, a, b in zip(targets, lenient, strict, strict=True)
    ]


def rows_from_texts(
    rows: list[Row], texts: list[str], config: PredictConfig, backend: str = "transformers"
) -> list[dict[str, Any]]:
    """The prediction rows of generated texts: one per utterance row, one per target turn of a dialogue row.
    Everything that reads generations (predict, training's dev scores) goes through here."""
    out = []
    for row, text in zip(rows, texts, strict=True):
        if is_dialogue_row(row):
            out += _dialogue_rows(row, text, config, backend)
        else:
            out.append(prediction_row(row, text, config, backend=backend))
    return out


def generation_budget(rows: list[Row], max_new_tokens: int) -> int:
    """`max_new_tokens`, raised for dialogue rows to what every asked turn's line needs (number, colon, a label
    of up to 4 tokens, newline: 8 a turn): a cap below it would cut the last turns off and count them missing."""
    turns = max((len(row["targets"]) for row in rows if is_dialogue_row(row)), default=0)
    return max(max_new_tokens, 8 * turns + 8)


def _predict_batch(
    batch: list[Row], backend: Backend, config: PredictConfig, bias: dict[str, float] | None = None
) -> list[dict[str, Any]]:
    if config.mode == "generate":
        budget = generation_budget(batch, config.max_new_tokens)
        texts = backend.generate(batch, dataclasses.replace(config, max_new_tokens=budget))
        return rows_from_texts(batch, texts, config, backend.name)
    out = []
    for row in batch:  # one prompt at a time: its forward pass dominates, and batching would cost exactness
        if row.get("open_vocabulary"):
            raise ValueError(f"score mode needs a closed label set; {example_id(row)} is open vocabulary")
        if is_dialogue_row(row):
            numbers = [t["number"] for t in row["targets"]]
            turn_scores = backend.score_turns(row["prompt"], numbers, row["label_set"], config, bias=bias)
            answer = render_turn_answers([(n, s.best) for n, s in zip(numbers, turn_scores, strict=True)])
            out += _dialogue_rows(row, answer, config, backend.name, scores=turn_scores)
            continue
        scores = backend.score(row["prompt"], row["label_set"], row["answer_format"], config, bias=bias)
        out.append(prediction_row(row, scores.best, config, scores=scores, backend=backend.name))
    return out


# The fields of a row that say what produced it: resuming must not mix two models (or modes) in one file.
PRODUCER_FIELDS = ("mode", "model", "adapter", "backend", "calibration")


def _check_same_run(writer: ResumableJsonlWriter, config: PredictConfig) -> None:
    if writer.first_row is None:
        return
    before = {k: writer.first_row.get(k) for k in PRODUCER_FIELDS}
    now = {k: getattr(config, k) for k in PRODUCER_FIELDS}
    if before != now:
        changed = ", ".join(f"{k} {before[k]!r} -> {now[k]!r}" for k in PRODUCER_FIELDS if before[k] != now[k])
        raise ValueError(
            f"{config.output} holds predictions of another run ({changed}); resuming would mix them: "
            "write to another --output, or delete the file to start over"
        )


def predict(config: PredictConfig, backend: Backend | None = None) -> PredictSummary:
    """Predict every example not yet in `config.output`, writing each batch before the next."""
    config.validate()
    started = time.perf_counter()
    rows = load_examples(config)
    with ResumableJsonlWriter(config.output) as writer:
        _check_same_run(writer, config)
        pending, seen, skipped = [], set(), 0
        for row in rows:
            ids = row_ids(row)  # a dialogue-unit row predicts several turns: it is done when all of them are
            new = [i for i in ids if not writer.done(i) and i not in seen]
            skipped += len(ids) - len(new)
            if new:
                seen.update(new)
                pending.append(row)
        written = invalid = 0
        predict_started = time.perf_counter()
        if pending:
            owned = backend is None
            backend = make_backend(config) if backend is None else backend
            try:
                import torch

                torch.manual_seed(config.seed)  # sampling runs repeat (from the same starting point)
                bias = load_calibration(config.calibration) if config.calibration else None  # read once
                predict_started = time.perf_counter()
                utterances = sum(len(row_ids(row)) for row in pending)  # a dialogue row holds several
                with tqdm(total=utterances, desc="predict", unit="utt", disable=not config.show_progress) as bar:
                    for start in range(0, len(pending), config.batch_size):
                        batch = pending[start : start + config.batch_size]
                        predicted = _predict_batch(batch, backend, config, bias)
                        out = [r for r in predicted if not writer.done(r["id"])]
                        written += writer.append(out)
                        invalid += sum(not r["valid"] for r in out)
                        bar.update(sum(len(row_ids(row)) for row in batch))
            finally:
                if owned:
                    backend.close()
        finished = time.perf_counter()
    return PredictSummary(
        config.output, written, skipped, invalid, finished - started, finished - predict_started if written else 0.0
    )
