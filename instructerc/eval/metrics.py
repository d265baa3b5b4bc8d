"""Closed-set classification metrics. Invalid predictions (None) count as wrong, never as a label.

Every score is computed as scikit-learn computes it with `labels=` given explicitly (tests compare against it),
but without depending on it: an invalid prediction is a miss for its gold class and a prediction of no class.
"""

from __future__ import annotations

import io
import os
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from instructerc.io import atomic_open

INVALID = "<invalid>"  # the confusion matrix's extra column: predictions that name no label


def closed_set_scores(gold: Sequence[str], predicted: Sequence[str | None], labels: Sequence[str]) -> dict[str, float]:
    """Accuracy, weighted and macro F1 over `labels` (as scikit-learn computes them), and the invalid rate.

    An invalid prediction is a miss for its gold class and a false positive for no class.
    """
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold labels but {len(predicted)} predictions")
    n = len(gold)
    if n == 0:
        return {"n": 0}
    per_class_f1, support = [], []
    for label in labels:
        tp = sum(1 for g, p in zip(gold, predicted, strict=True) if g == label and p == label)
        fp = sum(1 for g, p in zip(gold, predicted, strict=True) if g != label and p == label)
        fn = sum(1 for g, p in zip(gold, predicted, strict=True) if g == label and p != label)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        per_class_f1.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
        support.append(tp + fn)
    total = sum(support)
    return {
        "n": n,
        "accuracy": sum(1 for g, p in zip(gold, predicted, strict=True) if g == p) / n,
        "weighted_f1": sum(f * s for f, s in zip(per_class_f1, support, strict=True)) / total if total else 0.0,
        "macro_f1": sum(per_class_f1) / len(per_class_f1) if per_class_f1 else 0.0,
        "invalid_rate": sum(1 for p in predicted if p is None) / n,
    }


def _check(gold: Sequence[str], predicted: Sequence[str | None]) -> None:
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold labels but {len(predicted)} predictions")


def _counts(gold: Sequence[str], predicted: Sequence[str | None], labels: Sequence[str]) -> tuple[np.ndarray, ...]:
    """(tp, predicted count, true count) per label, as int arrays."""
    _check(gold, predicted)
    tp = np.array([sum(1 for g, p in zip(gold, predicted, strict=True) if g == p == lab) for lab in labels])
    pred = np.array([sum(1 for p in predicted if p == lab) for lab in labels])
    true = np.array([sum(1 for g in gold if g == lab) for lab in labels])
    return tp.astype(np.int64), pred.astype(np.int64), true.astype(np.int64)


def _divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with 0 where den is 0 (scikit-learn's zero_division="warn" value, without the warning)."""
    den = den.astype(np.float64)
    out = num.astype(np.float64) / np.where(den == 0, 1.0, den)
    return np.where(den == 0, 0.0, out)


def per_class(gold: Sequence[str], predicted: Sequence[str | None], labels: Sequence[str]) -> dict[str, dict]:
    """label -> precision, recall, f1, support (scikit-learn's precision_recall_fscore_support, average=None)."""
    tp, pred, true = _counts(gold, predicted, labels)
    precision, recall = _divide(tp, pred), _divide(tp, true)
    f1 = _divide(2 * tp, true + pred)  # scikit-learn's form: equal to 2PR/(P+R), and 0 when both are 0
    return {
        lab: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
        for lab, p, r, f, s in zip(labels, precision, recall, f1, true, strict=True)
    }


def _f1s(gold: Sequence[str], predicted: Sequence[str | None], labels: Sequence[str]) -> tuple[np.ndarray, ...]:
    tp, pred, true = _counts(gold, predicted, labels)
    return _divide(2 * tp, true + pred), true


def accuracy(gold: Sequence[str], predicted: Sequence[str | None], labels: Sequence[str] = ()) -> float:
    """Share of exact matches over every sample (a gold label outside `labels` still counts)."""
    _check(gold, predicted)
    return float(np.mean([g == p for g, p in zip(gold, predicted, strict=True)])) if gold else 0.0


def weighted_f1(gold: Sequence[str], predicted: Sequence[str | None], labels: Sequence[str]) -> float:
    """Per-class F1 averaged with the gold support as weights (unweighted when no label has support)."""
    f1, support = _f1s(gold, predicted, labels)
    if not len(f1):
        return 0.0
    return float(np.average(f1, weights=support)) if support.sum() else float(np.mean(f1))


def macro_f1(gold: Sequence[str], predicted: Sequence[str | None], labels: Sequence[str]) -> float:
    """Per-class F1 averaged uniformly, labels without support included (their F1 is 0)."""
    f1, _ = _f1s(gold, predicted, labels)
    return float(np.mean(f1)) if len(f1) else 0.0


def invalid_rate(gold: Sequence[str], predicted: Sequence[str | None], labels: Sequence[str] = ()) -> float:
    _check(gold, predicted)
    return sum(p is None for p in predicted) / len(predicted) if predicted else 0.0


def confusion(gold: Sequence[str], predicted: Sequence[str | None], labels: Sequence[str]) -> list[list[int]]:
    """Counts with rows = gold labels and columns = labels + [INVALID]; samples whose gold is not a label, or
    whose prediction is neither a label nor None, are left out (as scikit-learn's confusion_matrix does)."""
    _check(gold, predicted)
    index = {lab: i for i, lab in enumerate(labels)}
    matrix = [[0] * (len(labels) + 1) for _ in labels]
    for g, p in zip(gold, predicted, strict=True):
        col = len(labels) if p is None else index.get(p)
        if g in index and col is not None:
            matrix[index[g]][col] += 1
    return matrix


METRICS: dict[str, Callable[[Sequence[str], Sequence[str | None], Sequence[str]], float]] = {
    "accuracy": accuracy,
    "weighted_f1": weighted_f1,
    "macro_f1": macro_f1,
    "invalid_rate": invalid_rate,
}


def classification_report(gold: Sequence[str], predicted: Sequence[str | None], labels: Sequence[str]) -> dict:
    """Every closed-set metric: the METRICS scalars, per-class scores and the confusion matrix."""
    out: dict[str, Any] = {"n": len(gold), "labels": list(labels)}
    out.update({name: fn(gold, predicted, labels) for name, fn in METRICS.items()})
    out["per_class"] = per_class(gold, predicted, labels)
    out["confusion"] = confusion(gold, predicted, labels)
    return out


def breakdown(
    gold: Sequence[str], predicted: Sequence[str | None], labels: Sequence[str], keys: Sequence[Any]
) -> dict[str, dict]:
    """Group (e.g. speaker or dialogue_id) -> accuracy, weighted F1 and count, groups in first-seen order."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, key in enumerate(keys):
        groups[str(key)].append(i)
    out = {}
    for key, idx in groups.items():
        g, p = [gold[i] for i in idx], [predicted[i] for i in idx]
        out[key] = {"n": len(idx), "accuracy": accuracy(g, p), "weighted_f1": weighted_f1(g, p, labels)}
    return out


def format_confusion(matrix: Sequence[Sequence[int]], labels: Sequence[str]) -> str:
    """A plain-text table: gold labels down, predictions (and INVALID) across."""
    columns = [*labels, INVALID]
    width = max(len(c) for c in ["gold \\ pred", *columns, *(str(v) for row in matrix for v in row)])
    lines = [" ".join(c.rjust(width) for c in ["gold \\ pred", *columns])]
    lines += [
        " ".join([lab.rjust(width), *(str(v).rjust(width) for v in row)])
        for lab, row in zip(labels, matrix, strict=True)
    ]
    return "\n".join(lines)


def plot_confusion(
    matrix: Sequence[Sequence[int]], labels: Sequence[str], path: str | os.PathLike, title: str = ""
) -> None:
    """Write the confusion matrix as a PNG heat map (row-normalised colours, raw counts printed), atomically."""
    import matplotlib

    matplotlib.use("Agg")  # no display: evaluation runs on servers
    import matplotlib.pyplot as plt

    counts = np.asarray(matrix, dtype=np.float64).reshape(len(labels), len(labels) + 1)
    rows = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)  # colour by recall share
    size = 1.2 + 0.6 * len(labels)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    try:
        image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
        ax.set_xticks(range(len(labels) + 1), [*labels, INVALID], rotation=45, ha="right")
        ax.set_yticks(range(len(labels)), list(labels))
        ax.set_xlabel("predicted")
        ax.set_ylabel("gold")
        if title:
            ax.set_title(title)
        for (i, j), value in np.ndenumerate(counts):
            ax.text(j, i, str(int(value)), ha="center", va="center", color="white" if shares[i, j] > 0.5 else "black")
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=120)
    finally:
        plt.close(fig)
    with atomic_open(path, "wb") as handle:
        handle.write(buffer.getvalue())


__all__ = [
    "INVALID",
    "METRICS",
    "accuracy",
    "breakdown",
    "classification_report",
    "closed_set_scores",
    "confusion",
    "format_confusion",
    "invalid_rate",
    "macro_f1",
    "per_class",
    "plot_confusion",
    "weighted_f1",
]
