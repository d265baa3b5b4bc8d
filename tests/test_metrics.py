"""Closed-set metrics: equal to scikit-learn on random cases, invalid predictions included."""

from __future__ import annotations

import random

import pytest

from instructerc.eval.metrics import (
    INVALID,
    METRICS,
    breakdown,
    classification_report,
    closed_set_scores,
    confusion,
    format_confusion,
    plot_confusion,
)

sklearn_metrics = pytest.importorskip("sklearn.metrics")
SENTINEL = "__none__"  # what None becomes for scikit-learn: a string outside the labels


def _case(seed: int) -> tuple[list[str], list[str | None], list[str]]:
    rng = random.Random(seed)
    labels = ["neutral", "joy", "sadness", "anger", "fear", "surprise", "disgust"][: rng.randint(2, 7)]
    present = labels[: max(1, len(labels) - rng.randint(0, 2))]  # the last labels may have zero support
    n = rng.randint(1, 40)
    gold = [rng.choice(present) for _ in range(n)]
    predicted = [None if rng.random() < 0.2 else rng.choice(labels) for _ in range(n)]
    return gold, predicted, labels


@pytest.mark.parametrize("seed", range(20))
def test_equal_to_scikit_learn(seed):
    gold, predicted, labels = _case(seed)
    pred_sk = [SENTINEL if p is None else p for p in predicted]
    report = classification_report(gold, predicted, labels)
    assert report["accuracy"] == sklearn_metrics.accuracy_score(gold, pred_sk)
    assert report["weighted_f1"] == sklearn_metrics.f1_score(
        gold, pred_sk, labels=labels, average="weighted", zero_division=0
    )
    assert report["macro_f1"] == sklearn_metrics.f1_score(
        gold, pred_sk, labels=labels, average="macro", zero_division=0
    )
    precision, recall, f1, support = sklearn_metrics.precision_recall_fscore_support(
        gold, pred_sk, labels=labels, average=None, zero_division=0
    )
    for i, label in enumerate(labels):
        assert report["per_class"][label] == {
            "precision": precision[i],
            "recall": recall[i],
            "f1": f1[i],
            "support": support[i],
        }
    full = sklearn_metrics.confusion_matrix(gold, pred_sk, labels=[*labels, SENTINEL])
    assert report["confusion"] == full[: len(labels)].tolist()
    assert report["invalid_rate"] == predicted.count(None) / len(predicted)
    assert set(METRICS) == {"accuracy", "weighted_f1", "macro_f1", "invalid_rate"}


def test_the_cases_cover_invalid_predictions_and_zero_support():
    cases = [_case(seed) for seed in range(20)]
    assert sum(p.count(None) for _, p, _ in cases) > 20
    assert any(set(labels) - set(gold) for gold, _, labels in cases)


def test_closed_set_scores_unchanged():
    gold = ["joy", "joy", "anger", "sadness", "neutral", "anger"]
    predicted = ["joy", None, "anger", "joy", "neutral", "sadness"]
    scores = closed_set_scores(gold, predicted, ["neutral", "joy", "sadness", "anger", "fear"])
    # Written out by hand: neutral F1 1 (support 1), joy 0.5 (2), sadness 0 (1), anger 2/3 (2), fear 0 (0).
    assert scores == {
        "n": 6,
        "accuracy": 0.5,
        "weighted_f1": 0.5555555555555555,
        "macro_f1": 0.4333333333333333,
        "invalid_rate": 0.16666666666666666,
    }
    assert scores["weighted_f1"] == pytest.approx((1 + 0.5 * 2 + 0 + 2 / 3 * 2) / 6)
    assert scores["macro_f1"] == pytest.approx((1 + 0.5 + 0 + 2 / 3 + 0) / 5)


def test_confusion_text_breakdown_and_png(tmp_path):
    gold, predicted, labels = ["a", "a", "b"], ["a", None, "a"], ["a", "b"]
    assert confusion(gold, predicted, labels) == [[1, 0, 1], [1, 0, 0]]
    text = format_confusion(confusion(gold, predicted, labels), labels).splitlines()
    assert text[0].split() == ["gold", "\\", "pred", "a", "b", INVALID]
    assert text[1].split() == ["a", "1", "0", "1"] and text[2].split() == ["b", "1", "0", "0"]
    groups = breakdown(gold, predicted, labels, ["x", "y", "x"])
    assert groups == {
        "x": {"n": 2, "accuracy": 0.5, "weighted_f1": 1 / 3},
        "y": {"n": 1, "accuracy": 0.0, "weighted_f1": 0.0},
    }
    plot_confusion(confusion(gold, predicted, labels), labels, tmp_path / "c.png", title="t")
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["c.png"]  # no temporary file left behind
