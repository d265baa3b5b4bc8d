"""`evaluate`: a predictions JSONL (docs/predictions_format.md) -> results.json, samples.jsonl, confusion.png and
report.md, every file written atomically. Metrics are documented in docs/evaluation.md.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from instructerc.config import option
from instructerc.eval import metrics
from instructerc.eval.openvocab import LEVELS, WHEELS, open_vocab_scores
from instructerc.io import atomic_write_json, atomic_write_jsonl, atomic_write_text, sha256_file

REQUIRED = ("id", "open_vocabulary", "gold", "gold_labels", "label_set", "predicted", "predicted_labels", "valid")
PROVENANCE = ("model", "adapter", "template", "mode", "backend")
_TYPES = {"open_vocabulary": bool, "gold_labels": list, "label_set": list, "predicted_labels": list, "valid": bool}


class PredictionsError(ValueError):
    """A predictions file is malformed; the message starts with "file:line:"."""


@dataclasses.dataclass
class EvaluateConfig:
    """`instructerc evaluate`: predictions JSONL -> metrics, per-sample scores, confusion plot and report."""

    predictions: str = option("predictions JSONL written by `predict` or `label` (docs/predictions_format.md)")
    output_dir: str = option(
        "where results.json, samples.jsonl, confusion.png and report.md go", default="outputs/eval"
    )
    breakdown: str | None = option(
        "also score closed-set rows per group of this field: speaker | dialogue_id | split", default=None
    )
    wheels: list[str] = option(
        "emotion wheels for open-vocabulary scores: plutchik, parrott, willcox", default_factory=lambda: list(WHEELS)
    )
    levels: list[int] = option("wheel levels: 1 (core emotions), 2 (middle ring)", default_factory=lambda: list(LEVELS))
    clues: bool = option("score rationales against reference clues (embedded sentence encoder, local)", default=True)
    judge_base_url: str | None = option(
        "OpenAI-compatible server for the optional LLM judge (e.g. http://host:8000/v1)", default=None
    )
    judge_model: str | None = option("the judge's pinned model name on that server", default=None)


def read_predictions(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Rows of a predictions JSONL, checked; a bad row raises PredictionsError naming file:line."""
    rows, seen = [], {}
    with open(path, encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise PredictionsError(f"{where}: not valid JSON ({err.msg} at column {err.colno})") from None
            if not isinstance(row, dict):
                raise PredictionsError(f"{where}: expected a JSON object, got {type(row).__name__}")
            missing = [k for k in REQUIRED if k not in row]
            if missing:
                raise PredictionsError(f"{where}: missing field(s) {', '.join(missing)}")
            for key, kind in _TYPES.items():
                if not isinstance(row[key], kind):
                    raise PredictionsError(f"{where}: {key} must be a {kind.__name__}, got {row[key]!r}")
            if row["id"] in seen:
                raise PredictionsError(f"{where}: duplicate id {row['id']!r} (first on line {seen[row['id']]})")
            seen[row["id"]] = lineno
            rows.append(row)
    if not rows:
        raise PredictionsError(f"{path}: no predictions")
    return rows


def _closed_task(rows: list[dict], breakdown: str | None) -> tuple[dict, list[dict]]:
    """Metrics of one task's closed-set rows, and per-row scores (None for rows without a gold label)."""
    labels = list(dict.fromkeys(label for r in rows for label in r["label_set"]))
    scored = [r for r in rows if r["gold"] is not None]
    gold = [r["gold"] for r in scored]
    # The `valid` flags decide: lenient = `valid`, strict = `valid_strict` (a strict-valid label is the lenient one).
    lenient = [r["predicted"] if r["valid"] and r["predicted"] in labels else None for r in scored]
    strict = [p if r.get("valid_strict", False) else None for p, r in zip(lenient, scored, strict=True)]
    res = metrics.classification_report(gold, lenient, labels)
    res["invalid_rate_strict"] = metrics.invalid_rate(gold, strict)
    res["strict"] = {
        name: metrics.METRICS[name](gold, strict, labels) for name in ("accuracy", "weighted_f1", "macro_f1")
    }
    res["unlabelled"] = len(rows) - len(scored)
    if breakdown:
        res["breakdown_key"] = breakdown
        res["breakdown"] = metrics.breakdown(gold, lenient, labels, [r.get(breakdown) for r in scored])
    per_row = {
        id(r): {"correct": p == r["gold"], "correct_strict": s == r["gold"]}
        for r, p, s in zip(scored, lenient, strict, strict=True)
    }
    return res, [per_row.get(id(r)) for r in rows]


def _clue_scores(rows: list[dict]) -> tuple[dict, dict[int, dict]]:
    from instructerc.eval.clues import ClueScorer, reference_text

    refs = {i: reference_text(r.get("reference_clues"), r.get("reference_rationale")) for i, r in enumerate(rows)}
    with_ref = [i for i, ref in refs.items() if ref]
    todo = [i for i in with_ref if (rows[i].get("rationale") or "").strip()]
    scores = ClueScorer().score_many([rows[i]["rationale"] for i in todo], [refs[i] for i in todo]) if todo else []
    mean = {k: (sum(s[k] for s in scores) / len(scores) if scores else None) for k in ("lexical", "semantic", "score")}
    summary = {"n": len(todo), "with_reference": len(with_ref), "missing_rationale": len(with_ref) - len(todo), **mean}
    return summary, dict(zip(todo, scores, strict=True))


def _judge(rows: list[dict], judge: Any, output_dir: Path) -> tuple[dict, dict[int, dict]]:
    from instructerc.eval.clues import reference_text
    from instructerc.eval.judge import LLMJudge, judge_inputs

    if not isinstance(judge, LLMJudge):
        judge = LLMJudge.from_settings(judge, output_dir / "judge_cache.jsonl")
    todo = [i for i, r in enumerate(rows) if (r.get("rationale") or "").strip()]
    inputs = [
        judge_inputs(rows[i], reference_text(rows[i].get("reference_clues"), rows[i].get("reference_rationale")))
        for i in todo
    ]
    judgements = judge.judge_many(inputs)
    return judge.summary(judgements), dict(zip(todo, judgements, strict=True))


def evaluate_predictions(
    predictions_path: str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    breakdown: str | None = None,
    wheels: Sequence[str] = WHEELS,
    levels: Sequence[int] = LEVELS,
    clues: bool = True,
    judge: Any = None,
) -> dict[str, Any]:
    """Score a predictions file and write results.json, samples.jsonl, confusion.png and report.md.

    `judge`: None, an LLMJudge, or a mapping {"base_url", "model", ...} (LLMJudge.from_settings; the reply cache
    defaults to output_dir/judge_cache.jsonl). Returns the results written to results.json.
    """
    from instructerc.eval.report import render_report

    unknown = [w for w in wheels if w not in WHEELS]
    if unknown or not wheels or any(k not in LEVELS for k in levels) or not levels:
        raise ValueError(f"wheels must be among {', '.join(WHEELS)} and levels among 1, 2; got {wheels}, {levels}")
    path, out = Path(predictions_path), Path(output_dir)
    rows = read_predictions(path)
    samples: list[dict] = [{**r, "scores": {}} for r in rows]
    closed = [i for i, r in enumerate(rows) if not r["open_vocabulary"]]
    ov = [i for i, r in enumerate(rows) if r["open_vocabulary"]]

    closed_results: dict[str, dict] = {}
    for task in dict.fromkeys(rows[i].get("task") or "emotion" for i in closed):
        idx = [i for i in closed if (rows[i].get("task") or "emotion") == task]
        closed_results[task], per_row = _closed_task([rows[i] for i in idx], breakdown)
        for i, scores in zip(idx, per_row, strict=True):
            if scores is not None:
                samples[i]["scores"].update(scores)
    main_task = "emotion" if "emotion" in closed_results else next(iter(closed_results), None)

    ov_results = None
    if ov:
        gold_sets = [rows[i]["gold_labels"] for i in ov]
        pred_sets = [rows[i]["predicted_labels"] if rows[i]["valid"] else [] for i in ov]
        ov_results, per_sample = open_vocab_scores(gold_sets, pred_sets, wheels=list(wheels), levels=list(levels))
        ov_results["invalid_rate"] = sum(not rows[i]["valid"] for i in ov) / len(ov)
        ov_results["invalid_rate_strict"] = sum(not rows[i].get("valid_strict", False) for i in ov) / len(ov)
        for i, scores in zip(ov, per_sample, strict=True):
            if scores is not None:
                samples[i]["scores"]["open_vocabulary"] = scores

    clue_results = None
    if clues:
        clue_results, per_row_clues = _clue_scores(rows)
        for i, scores in per_row_clues.items():
            samples[i]["scores"]["clue_overlap"] = scores
    judge_results = None
    if judge is not None:
        judge_results, per_row_judge = _judge(rows, judge, out)
        for i, verdict in per_row_judge.items():
            samples[i]["scores"]["judge"] = {k: verdict[k] for k in ("score", "valid", "raw")}

    results = {
        "config": {
            "predictions": str(path),
            "predictions_sha256": sha256_file(path),
            "output_dir": str(out),
            "breakdown": breakdown,
            "wheels": list(wheels),
            "levels": list(levels),
            "clues": clues,
            "clue_encoder": "embedded (all-MiniLM-L6-v2)" if clues else None,
        },
        "provenance": {k: sorted({str(r[k]) for r in rows if r.get(k) is not None}) for k in PROVENANCE},
        "counts": {"rows": len(rows), "closed_set": len(closed), "open_vocabulary": len(ov)},
        "main_task": main_task,
        "closed_set": closed_results,
        "open_vocabulary": ov_results,
        "clues": clue_results,
        "judge": judge_results,
    }
    image = None
    if main_task is not None:
        res = closed_results[main_task]
        metrics.plot_confusion(
            res["confusion"], res["labels"], out / "confusion.png", title=f"{main_task} ({res['n']})"
        )
        image = "confusion.png"
    atomic_write_jsonl(out / "samples.jsonl", samples)
    atomic_write_json(out / "results.json", results)
    atomic_write_text(out / "report.md", render_report(results, image))
    return results


def run_evaluate(config: EvaluateConfig) -> dict[str, Any]:
    """The CLI verb's body: an EvaluateConfig -> evaluate_predictions."""
    judge: Mapping[str, Any] | None = None
    if config.judge_base_url or config.judge_model:
        judge = {"base_url": config.judge_base_url, "model": config.judge_model}
    return evaluate_predictions(
        config.predictions,
        config.output_dir,
        breakdown=config.breakdown,
        wheels=config.wheels,
        levels=config.levels,
        clues=config.clues,
        judge=judge,
    )


__all__ = ["EvaluateConfig", "PredictionsError", "evaluate_predictions", "read_predictions", "run_evaluate"]
