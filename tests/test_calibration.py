"""Label-prior corrections: fitted on score-mode predictions, checked when loaded, applied only to the choice."""

import json
import math

import numpy as np
import pytest

from instructerc.config import ConfigError
from instructerc.eval.calibration import CalibrateConfig, cross_fitted, fit_bias, run_calibrate
from instructerc.infer.calibration import load_calibration, resolve_calibration


def _rows(n=400, seed=0):
    """A model that over-predicts neutral: gold is 50/50, but the scores lean towards neutral by log 1.5."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        gold = "joy" if i % 2 else "neutral"
        signal = rng.normal(1.0 if gold == "joy" else -1.0, 1.0)
        joy = 1 / (1 + math.exp(-(signal - 1.5)))
        rows.append({"dialogue_id": f"d{i // 5}", "gold": gold, "probabilities": {"neutral": 1 - joy, "joy": joy}})
    return rows


def test_fitted_bias_undoes_a_skewed_prior_and_helps_held_out_dialogues(tmp_path):
    rows = _rows()
    logp = np.log([[r["probabilities"]["neutral"], r["probabilities"]["joy"]] for r in rows])
    gold = np.array([0 if r["gold"] == "neutral" else 1 for r in rows])
    bias = fit_bias(logp, gold)
    assert bias[1] - bias[0] == pytest.approx(1.5, abs=0.6)  # the skew it was built with
    held_out = cross_fitted(rows)
    assert held_out["weighted_f1_after"] > held_out["weighted_f1_before"] + 0.05
    path = tmp_path / "preds.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = run_calibrate(CalibrateConfig(predictions=str(path), output=str(tmp_path / "calibration.json")))
    assert load_calibration(str(tmp_path / "calibration.json")) == result["bias"]


def test_calibration_needs_score_rows_and_a_real_file(tmp_path):
    path = tmp_path / "generated.jsonl"
    path.write_text(json.dumps({"dialogue_id": "d", "gold": "joy", "probabilities": None}) + "\n")
    with pytest.raises(ConfigError, match="score-mode rows"):
        run_calibrate(CalibrateConfig(predictions=str(path), output=str(tmp_path / "c.json")))
    assert not (tmp_path / "c.json").exists()
    (tmp_path / "bad.json").write_text('{"bias": [1, 2]}')
    with pytest.raises(ConfigError, match="not a calibration file"):
        load_calibration(str(tmp_path / "bad.json"))
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_calibration(str(tmp_path / "missing.json"), None)
    assert resolve_calibration("auto", str(tmp_path)) is None  # no calibration.json in the model folder: none
    assert resolve_calibration(None, str(tmp_path)) is None
