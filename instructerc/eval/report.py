"""report.md: the evaluation results as Markdown tables, with the confusion matrix plot embedded."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from instructerc.eval.metrics import format_confusion


def _num(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table; floats with 4 decimals, None as "-", pipes in cells escaped."""
    cells = [[_num(v).replace("|", "\\|") for v in row] for row in rows]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells])


def _closed_section(task: str, res: Mapping[str, Any], image: str | None) -> list[str]:
    strict = res["strict"]
    out = [
        f"## Closed set: {task}",
        "",
        table(
            ["n", "accuracy", "weighted F1", "macro F1", "invalid (lenient)", "invalid (strict)", "accuracy (strict)"]
            + ["weighted F1 (strict)"],
            [
                [res["n"], res["accuracy"], res["weighted_f1"], res["macro_f1"], res["invalid_rate"]]
                + [res["invalid_rate_strict"], strict["accuracy"], strict["weighted_f1"]]
            ],
        ),
        "",
        "### Per class",
        "",
        table(
            ["label", "precision", "recall", "F1", "support"],
            [[lab, s["precision"], s["recall"], s["f1"], s["support"]] for lab, s in res["per_class"].items()],
        ),
        "",
        "### Confusion matrix (rows: gold, columns: predicted)",
        "",
        "```text",
        format_confusion(res["confusion"], res["labels"]),
        "```",
        "",
    ]
    if image:
        out += [f"![confusion]({image})", ""]
    if res.get("breakdown"):
        key = res["breakdown_key"]
        rows = [[group, s["n"], s["accuracy"], s["weighted_f1"]] for group, s in res["breakdown"].items()]
        out += [f"### By {key}", "", table([key, "n", "accuracy", "weighted F1"], rows), ""]
    return out


def render_report(results: Mapping[str, Any], image: str | None = None) -> str:
    """The whole report; `image` is the confusion plot's file name (next to report.md), shown for the main task."""
    config, counts = results["config"], results["counts"]
    lines = [
        "# Evaluation report",
        "",
        f"Predictions: `{config['predictions']}` (sha256 `{config['predictions_sha256'][:16]}`), "
        f"{counts['rows']} rows: {counts['closed_set']} closed-set, {counts['open_vocabulary']} open-vocabulary.",
        "",
        table(["provenance", "values"], [[k, ", ".join(v) or "-"] for k, v in results["provenance"].items()]),
        "",
    ]
    for task, res in results["closed_set"].items():
        lines += _closed_section(task, res, image if task == results.get("main_task") else None)
    ov = results.get("open_vocabulary")
    if ov:
        rows = [
            [wheel, level[-1], s["precision"], s["recall"], s["f1"]]
            for wheel, levels in [*ov["wheels"].items(), ("average over wheels", ov["average"])]
            for level, s in levels.items()
        ]
        lines += [
            "## Open vocabulary",
            "",
            f"{ov['n']} samples scored, {ov['skipped']} skipped (no gold words); invalid (lenient) "
            f"{_num(ov['invalid_rate'])}, (strict) {_num(ov['invalid_rate_strict'])}.",
            "",
            table(["wheel", "level", "precision", "recall", "F1"], rows),
            "",
        ]
    clues = results.get("clues")
    if clues:
        lines += [
            "## Clue overlap",
            "",
            table(
                ["n", "lexical F1", "semantic", "score", "without rationale"],
                [[clues["n"], clues["lexical"], clues["semantic"], clues["score"], clues["missing_rationale"]]],
            ),
            "",
        ]
    judge = results.get("judge")
    if judge:
        lines += [
            "## LLM judge",
            "",
            table(
                ["model", "prompt", "n", "valid", "invalid", "mean score (0-10)"],
                [
                    [
                        judge["model"],
                        judge["prompt_version"],
                        judge["n"],
                        judge["valid"],
                        judge["invalid"],
                        judge["mean_score"],
                    ]
                ],
            ),
            "",
        ]
    return "\n".join(lines).rstrip() + "\n"


__all__ = ["render_report", "table"]
