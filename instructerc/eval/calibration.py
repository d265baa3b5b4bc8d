"""Fitting a label-prior correction (`infer/calibration.py`) on validation score-mode predictions.

Coordinate ascent on weighted F1: one label's offset at a time over a grid, three sweeps, ties broken towards
zero. The in-sample gain is optimistic (the offsets were chosen on those rows), so `cross_fitted` also reports
the gain on held-out dialogues: fit on one half of the dialogues, apply to the other, and the reverse.
"""

from __future__ import annotations

import dataclasses
import math
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from instructerc.config import ConfigError, option
from instructerc.infer.calibration import KIND
from instructerc.io import atomic_write_json

GRID = np.round(np.arange(-3.0, 3.0001, 0.1), 2)


@dataclasses.dataclass
class CalibrateConfig:
    """`instructerc calibrate`: fit a label-prior correction on validation predictions made with --mode score."""

    predictions: str = option("score-mode predictions JSONL on the validation split (`predict --mode score`)")
    output: str = option("calibration JSON to write (put it in the model folder as calibration.json for `auto`)")
    seed: int = option("seed of the dialogue split for the held-out estimate", default=0)

    def validate(self) -> None:
        if not Path(self.predictions).is_file():
            raise ConfigError(f"predictions: {self.predictions} does not exist")


def _check_rows(rows: Sequence[dict[str, Any]], path: str) -> None:
    """Every row scored over one label set that holds its gold label; otherwise offsets would mean nothing."""
    labels = set(rows[0]["probabilities"])
    for row in rows:
        if set(row["probabilities"]) != labels:
            raise ConfigError(f"{path}: row {row.get('id')} was scored over another label set; calibrate one set")
        if row["gold"] not in labels:
            raise ConfigError(f"{path}: row {row.get('id')} has gold {row['gold']!r}, not in {sorted(labels)}")


def _matrix(rows: Sequence[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(log-probabilities N x K, gold index N, labels) of score-mode rows with a gold label."""
    labels = list(rows[0]["probabilities"])
    index = {label: k for k, label in enumerate(labels)}
    logp = np.array([[math.log(max(r["probabilities"][label], 1e-12)) for label in labels] for r in rows])
    gold = np.array([index.get(r["gold"], -1) for r in rows])
    return logp, gold, labels


def _weighted_f1(gold: np.ndarray, predicted: np.ndarray, k: int) -> float:
    true_pos = np.bincount(gold[gold == predicted], minlength=k)
    support = np.bincount(gold, minlength=k)
    predicted_count = np.bincount(predicted, minlength=k)
    denominator = support + predicted_count
    f1 = np.divide(2 * true_pos, denominator, out=np.zeros(k), where=denominator > 0)
    return float((f1 * support).sum() / max(support.sum(), 1))


def fit_bias(logp: np.ndarray, gold: np.ndarray, sweeps: int = 3) -> np.ndarray:
    """Per-label offsets that maximise weighted F1 of argmax(logp + offsets) on these rows."""
    k = logp.shape[1]
    bias = np.zeros(k)
    best = _weighted_f1(gold, (logp + bias).argmax(1), k)
    for _ in range(sweeps):
        for label in range(k):
            for value in sorted(GRID, key=abs):
                trial = bias.copy()
                trial[label] = value
                score = _weighted_f1(gold, (logp + trial).argmax(1), k)
                if score > best + 1e-12:
                    best, bias = score, trial
    return bias


def cross_fitted(rows: Sequence[dict[str, Any]], seed: int = 0) -> dict[str, float]:
    """Weighted F1 before and after a correction fitted on the OTHER half of the dialogues (2-fold, by dialogue)."""
    dialogues = sorted({r["dialogue_id"] for r in rows})
    random.Random(seed).shuffle(dialogues)
    half = set(dialogues[: len(dialogues) // 2])
    logp, gold, _ = _matrix(rows)
    k = logp.shape[1]
    fold = np.array([r["dialogue_id"] in half for r in rows])
    predicted = logp.argmax(1)
    corrected = predicted.copy()
    for held_out in (fold, ~fold):
        bias = fit_bias(logp[~held_out], gold[~held_out])
        corrected[held_out] = (logp[held_out] + bias).argmax(1)
    return {
        "weighted_f1_before": _weighted_f1(gold, predicted, k),
        "weighted_f1_after": _weighted_f1(gold, corrected, k),
    }


def run_calibrate(config: CalibrateConfig) -> dict[str, Any]:
    """Fit, write the calibration file, and return what it records."""
    from instructerc.infer.writer import read_jsonl

    config.validate()
    started = time.perf_counter()
    rows = [r for r in read_jsonl(config.predictions) if r.get("gold")]
    if not rows or any(not isinstance(r.get("probabilities"), dict) for r in rows):
        raise ConfigError(f"{config.predictions}: calibration needs score-mode rows with gold labels and probabilities")
    if any(r.get("calibration") for r in rows):
        raise ConfigError(f"{config.predictions}: these predictions were already calibrated; predict without it")
    _check_rows(rows, config.predictions)
    logp, gold, labels = _matrix(rows)
    bias = fit_bias(logp, gold)
    k = len(labels)
    result = {
        "kind": KIND,
        "bias": {label: float(b) for label, b in zip(labels, bias, strict=True)},
        "fitted_on": {"predictions": config.predictions, "rows": len(rows)},
        "weighted_f1_before": _weighted_f1(gold, logp.argmax(1), k),
        "weighted_f1_after_in_sample": _weighted_f1(gold, (logp + bias).argmax(1), k),
        "held_out": cross_fitted(rows, config.seed),
        "seconds": round(time.perf_counter() - started, 2),
    }
    atomic_write_json(config.output, result)
    return result
