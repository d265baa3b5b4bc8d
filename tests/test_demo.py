"""The README's main job, at its smallest: every step runs for real and leaves its artefact."""

import json

import pytest

from instructerc.config import DemoConfig
from instructerc.demo import run_demo

pytestmark = pytest.mark.slow


def test_demo_runs_the_whole_loop(tmp_path, capsys):
    artefacts = run_demo(
        DemoConfig(
            output_dir=str(tmp_path / "demo"),
            n_demos=0,
            sft_steps=1,
            grpo_steps=1,
            predict_max_new_tokens=24,
            show_progress=False,
        )
    )
    assert set(artefacts) == {"dataset", "sft adapter", "grpo adapter", "predictions", "scores", "report"}
    predictions = [json.loads(line) for line in artefacts["predictions"].read_text().splitlines()]
    assert len(predictions) == 7 + 6  # every validation and test utterance of the bundled dialogues
    scores = [json.loads(line) for line in artefacts["scores"].read_text().splitlines()]
    assert all(abs(sum(r["probabilities"].values()) - 1) < 1e-4 for r in scores)
    report = artefacts["report"].read_text()
    assert "weighted" in report.lower() and "confusion.png" in report
    out = capsys.readouterr().out
    assert "[6/6] evaluation" in out and "demo finished" in out and "<|im_start|>assistant" in out
    # Validation and test are scored apart, and the rationales are compared with the reference rationales.
    assert "validation: weighted F1" in out and "test: weighted F1" in out
    results = json.loads((artefacts["report"].parent / "results.json").read_text())
    assert set(results["closed_set"]["emotion"]["breakdown"]) == {"validation", "test"}
    assert results["clues"]["with_reference"] == 13
