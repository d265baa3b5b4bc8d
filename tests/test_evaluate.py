"""evaluate_predictions end to end: predictions JSONL -> results.json, samples.jsonl, confusion.png, report.md."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from instructerc.eval.evaluate import EvaluateConfig, PredictionsError, evaluate_predictions, run_evaluate
from instructerc.eval.judge import JUDGE_PROMPT_VERSION, parse_score

LABELS = ["neutral", "joy", "anger", "sadness"]


def _row(i: int, gold, predicted, valid=True, strict=True, speaker="Ross", **extra) -> dict:
    ov = isinstance(gold, list)
    row = {
        "id": f"test/d1/{i}/emotion",
        "split": "test",
        "dialogue_id": "d1",
        "turn": i,
        "task": "emotion",
        "speaker": speaker,
        "text": f"line {i}",
        "gold": None if ov else gold,
        "gold_labels": gold if ov else [gold],
        "label_set": [] if ov else LABELS,
        "open_vocabulary": ov,
        "predicted": None if ov else predicted,
        "predicted_labels": predicted if ov else ([predicted] if predicted else []),
        "rationale": None,
        "raw": "",
        "valid": valid,
        "invalid_reason": None if valid else "no answer",
        "valid_strict": strict,
        "well_formed": strict,
        "context": "Ross: line 0",
        "reference_rationale": None,
        "reference_clues": [],
        "model": "tiny-model",
        "adapter": None,
        "template": "erc@v1",
        "mode": "generate",
        "backend": "transformers",
    }
    return {**row, **extra}


ROWS = [
    _row(1, "joy", "joy", rationale="Ross smiles because the party is a success.", reference_clues=["Ross smiles"]),
    _row(2, "anger", "anger", strict=False, reference_rationale="He shouts."),
    _row(3, "anger", None, valid=False, strict=False),
    _row(4, "sadness", "joy", rationale="GARBAGE please"),
    _row(5, "neutral", "neutral", speaker="Rachel"),
    _row(6, "joy", None, valid=False, strict=False, speaker="Rachel"),
    _row(7, ["happy", "surprised"], ["joyful", "amazed", "angry"]),
    _row(8, ["sad"], [], valid=False, strict=False),
    _row(9, [], ["happy"]),
]


@pytest.fixture
def predictions(tmp_path):
    path = tmp_path / "predictions.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    return path


def test_results_report_plot_and_samples(predictions, tmp_path):
    out = tmp_path / "eval"
    results = evaluate_predictions(predictions, out, breakdown="speaker", wheels=["plutchik"], levels=[1])
    assert json.loads((out / "results.json").read_text()) == json.loads(json.dumps(results))
    emotion = results["closed_set"]["emotion"]
    assert emotion["n"] == 6 and emotion["labels"] == LABELS
    assert emotion["accuracy"] == 0.5
    assert emotion["weighted_f1"] == pytest.approx(5 / 9) and emotion["macro_f1"] == pytest.approx(13 / 24)
    assert emotion["invalid_rate"] == pytest.approx(2 / 6) and emotion["invalid_rate_strict"] == 0.5
    assert emotion["strict"]["accuracy"] == pytest.approx(2 / 6)
    assert emotion["per_class"]["anger"] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 2}
    assert emotion["confusion"] == [[1, 0, 0, 0, 0], [0, 1, 0, 0, 1], [0, 0, 1, 0, 1], [0, 1, 0, 0, 0]]
    assert emotion["breakdown"] == {
        # Ross: joy F1 2/3 (support 1), anger 2/3 (2), sadness 0 (1)
        "Ross": {"n": 4, "accuracy": 0.5, "weighted_f1": pytest.approx((2 / 3 * 1 + 2 / 3 * 2 + 0) / 4)},
        "Rachel": {"n": 2, "accuracy": 0.5, "weighted_f1": pytest.approx(0.5)},
    }
    ov = results["open_vocabulary"]
    assert (ov["n"], ov["skipped"]) == (2, 1)
    assert ov["wheels"]["plutchik"]["level1"] == {
        "precision": pytest.approx(1 / 3),
        "recall": 0.5,
        "f1": pytest.approx(0.4),
    }
    assert ov["invalid_rate"] == pytest.approx(1 / 3)
    clues = results["clues"]
    assert (clues["n"], clues["with_reference"], clues["missing_rationale"]) == (1, 2, 1)
    assert 0.0 < clues["score"] <= 1.0 and results["judge"] is None
    assert results["provenance"]["model"] == ["tiny-model"] and results["provenance"]["template"] == ["erc@v1"]
    assert results["counts"] == {"rows": 9, "closed_set": 6, "open_vocabulary": 3}

    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 9 and [s["id"] for s in samples] == [r["id"] for r in ROWS]
    assert samples[0]["scores"]["correct"] is True and set(samples[0]["scores"]["clue_overlap"]) == {
        "lexical",
        "semantic",
        "score",
    }
    assert samples[1]["scores"] == {"correct": True, "correct_strict": False}
    assert samples[6]["scores"]["open_vocabulary"]["plutchik"]["level1"]["precision"] == pytest.approx(2 / 3)
    assert samples[8]["scores"] == {}  # no gold words: skipped

    assert (out / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (out / "report.md").read_text()
    for expected in [
        "## Closed set: emotion",
        "| n | accuracy | weighted F1 | macro F1 |",
        "| 6 | 0.5000 | 0.5556 | 0.5417 | 0.3333 | 0.5000 |",
        "| anger | 1.0000 | 0.5000 | 0.6667 | 2 |",
        "![confusion](confusion.png)",
        "### By speaker",
        "## Open vocabulary",
        "| plutchik | 1 | 0.3333 | 0.5000 | 0.4000 |",
        "## Clue overlap",
    ]:
        assert expected in report, expected
    assert sorted(p.name for p in out.iterdir()) == ["confusion.png", "report.md", "results.json", "samples.jsonl"]


def test_malformed_rows_name_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n\n{not json\n")
    with pytest.raises(PredictionsError, match=rf"^{path}:3: not valid JSON"):
        evaluate_predictions(path, tmp_path / "out", clues=False)
    path.write_text(json.dumps(ROWS[0]) + "\n" + json.dumps({**ROWS[1], "valid": "yes"}) + "\n")
    with pytest.raises(PredictionsError, match=rf"^{path}:2: valid must be a bool"):
        evaluate_predictions(path, tmp_path / "out", clues=False)
    row = {k: v for k, v in ROWS[0].items() if k != "gold"}
    path.write_text(json.dumps(ROWS[0]) + "\n" + json.dumps(row) + "\n")
    with pytest.raises(PredictionsError, match=rf"^{path}:2: missing field\(s\) gold"):
        evaluate_predictions(path, tmp_path / "out", clues=False)
    path.write_text(json.dumps(ROWS[0]) + "\n" + json.dumps(ROWS[0]) + "\n")
    with pytest.raises(PredictionsError, match=rf"^{path}:2: duplicate id .* \(first on line 1\)"):
        evaluate_predictions(path, tmp_path / "out", clues=False)
    assert not (tmp_path / "out").exists()


class FakeJudge(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append(body)
        reply = "I would say it is quite good." if "GARBAGE" in body["messages"][-1]["content"] else "Score: 7"
        data = json.dumps({"choices": [{"message": {"role": "assistant", "content": reply}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def judge_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeJudge)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_judge_over_a_real_http_server_caches_and_counts_garbage_invalid(predictions, tmp_path, judge_server):
    url = f"http://127.0.0.1:{judge_server.server_address[1]}/v1"
    config = EvaluateConfig(
        predictions=str(predictions),
        output_dir=str(tmp_path / "eval"),
        clues=False,
        judge_base_url=url,
        judge_model="judge-1",
    )
    results = run_evaluate(config)
    judge = results["judge"]
    assert (judge["n"], judge["valid"], judge["invalid"], judge["mean_score"]) == (2, 1, 1, 7.0)
    assert judge["invalid_rate"] == 0.5 and judge["requests"] == 2 and judge["prompt_version"] == JUDGE_PROMPT_VERSION
    assert len(judge_server.requests) == 2
    assert {r["model"] for r in judge_server.requests} == {"judge-1"}
    assert {r["temperature"] for r in judge_server.requests} == {0.0}
    samples = [json.loads(line) for line in (tmp_path / "eval" / "samples.jsonl").read_text().splitlines()]
    assert samples[0]["scores"]["judge"] == {"score": 7, "valid": True, "raw": "Score: 7"}
    assert samples[3]["scores"]["judge"]["score"] is None and samples[3]["scores"]["judge"]["valid"] is False
    assert "## LLM judge" in (tmp_path / "eval" / "report.md").read_text()

    again = run_evaluate(config)  # every judgement comes from the cache: the server sees nothing new
    assert len(judge_server.requests) == 2 and again["judge"]["requests"] == 0
    assert {k: v for k, v in again["judge"].items() if k != "requests"} == {
        k: v for k, v in judge.items() if k != "requests"
    }
    cache = (tmp_path / "eval" / "judge_cache.jsonl").read_text().splitlines()
    assert len(cache) == 2 and all(json.loads(line)["prompt_version"] == JUDGE_PROMPT_VERSION for line in cache)


def test_parse_score_is_strict():
    assert [parse_score(t) for t in ["Score: 7", " score:10.\n", "SCORE : 0"]] == [7, 10, 0]
    assert [parse_score(t) for t in ["Score: 11", "7", "Score: 7/10", "The score: 7", "", None]] == [None] * 6
