"""`label`: zero-shot emotion labels (closed set or open vocabulary) with rationales for any conversation.

The conversation is read (`conversations.py`), turned into prompts with the same templates as training, and
run through `predict`; open-vocabulary words are grouped through an emotion wheel for display.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

from instructerc.config import ConfigError, option
from instructerc.infer.backends import EngineOptions, engine_options


@dataclasses.dataclass
class _LabelOptions:
    input: str = option("conversation: canonical JSONL, JSON, a `Speaker: text` transcript, or - for stdin")
    labels: str | None = option(
        "closed label set, comma-separated (e.g. joy,anger,neutral) or a corpus name "
        "(meld); omitted: open vocabulary, the model names every emotion",
        default=None,
    )
    model: str = option(
        "model: `embedded`, a local folder or a hub id; with --backend openai, its name on the server",
        default="embedded",
    )
    adapter: str | None = option("peft adapter folder loaded on top of --model", default=None)
    output: str | None = option("write the predictions as JSONL here (docs/predictions_format.md)", default=None)
    template: str | None = option(
        "prompt template (`instructerc ls prompts`); default: emotion with --labels, emotion_open_vocab without. "
        "emotion_dialogue labels the whole conversation in one answer (for models trained on that unit)",
        default=None,
    )
    mode: str = option("generate answers, or score each label (closed sets, transformers backend)", default="generate")
    calibration: str | None = option(
        "score mode: label-prior correction file, or `auto` (the model folder's calibration.json)", default=None
    )
    window: int = option("dialogue history turns shown with each utterance", default=12)
    max_new_tokens: int = option("generation length limit", default=128)
    batch_size: int = option("prompts per generation batch", default=8)
    wheel: str = option(
        "emotion wheel grouping open-vocabulary words: plutchik, parrott or willcox", default="plutchik"
    )
    threads: int | None = option("torch CPU threads", default=None)
    model_dtype: str = option("auto | bfloat16 | float16 | float32", default="auto")
    show_progress: bool = option("show a progress bar", default=True)


@dataclasses.dataclass
class LabelConfig(EngineOptions, _LabelOptions):  # this base order lists the engine options last in --help
    """`instructerc label`: label every utterance of a conversation (file, transcript or stdin) zero-shot."""

    def validate(self) -> None:
        from instructerc.eval.openvocab import WHEELS

        if self.wheel not in WHEELS:
            raise ConfigError(f"wheel: expected one of {', '.join(WHEELS)}, got {self.wheel!r}")
        self.validate_engine()


def label_conversations(config: LabelConfig) -> list[dict[str, Any]]:
    """Prediction rows (docs/predictions_format.md) for every utterance, plus `groups` for open vocabulary."""
    from instructerc.eval.openvocab import group
    from instructerc.infer.conversations import read_conversations
    from instructerc.infer.predict import PredictConfig, predict
    from instructerc.infer.writer import read_jsonl
    from instructerc.io import atomic_write_jsonl
    from instructerc.schema import write_dialogues

    dialogues = read_conversations(config.input)
    for dialogue in dialogues:  # zero-shot labeling: any gold in the input is not used
        dialogue.split = None
        for utt in dialogue.utterances:
            utt.label, utt.labels = None, None
    with tempfile.TemporaryDirectory(prefix="instructerc-label-") as tmp:
        source, predictions = Path(tmp) / "input.jsonl", Path(tmp) / "predictions.jsonl"
        write_dialogues(source, dialogues)
        predict(
            PredictConfig(
                output=str(predictions),
                model=config.model,
                adapter=config.adapter,
                dataset="jsonl",
                data_dir=str(source),
                split="test",
                label_set=config.labels or "unified",
                template=config.template or ("emotion" if config.labels else "emotion_open_vocab"),
                mode=config.mode,
                calibration=config.calibration,
                window=config.window,
                n_demos=0,
                max_new_tokens=config.max_new_tokens,
                batch_size=config.batch_size,
                threads=config.threads,
                model_dtype=config.model_dtype,
                show_progress=config.show_progress,
                **engine_options(config),
            )
        )
        rows = read_jsonl(predictions)
    for row in rows:
        if row["open_vocabulary"]:
            row["groups"] = sorted({group(word, config.wheel, 1) for word in row["predicted_labels"]})
    if config.output:
        atomic_write_jsonl(config.output, rows)
    return rows


def format_table(rows: list[dict[str, Any]], width: int = 48) -> str:
    """A readable table: speaker, utterance, emotion(s), wheel group, rationale (or why the answer was invalid)."""

    def cut(text: str | None, n: int) -> str:
        text = " ".join((text or "").split())
        return text if len(text) <= n else text[: n - 1] + "…"

    header = ("speaker", "utterance", "emotion", "group", "rationale")
    table = [header]
    for row in rows:
        if not row["valid"]:
            emotion, why = "(invalid)", f"[{row['invalid_reason']}] {row['raw']}"
        else:
            emotion = ", ".join(row["predicted_labels"]) if row["open_vocabulary"] else row["predicted"]
            why = row["rationale"]
        table.append(
            (
                cut(row["speaker"], 14),
                cut(row["text"], width),
                cut(emotion, 24),
                cut(", ".join(row.get("groups", [])), 18),
                cut(why, 60),
            )
        )
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
