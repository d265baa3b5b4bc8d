"""The MELD recipe against cheap baselines, in one run: dev weighted / macro F1, invalid rate, training time.

    python bench/meld_recipe.py --data_dir ../shared/data/meld [--out outputs/bench/meld_recipe]
    python bench/meld_recipe.py --sft_dir outputs/sft/meld_dialogue   # score an already trained recipe model

Baselines (utterance text only, train -> dev): the majority class, TF-IDF + logistic regression, and
all-MiniLM-L6-v2 sentence embeddings + logistic regression (the embedded retrieval encoder).

The recipe: `build-data --config configs/data/meld_dialogue.yaml`, `train sft --config configs/sft/meld_dialogue.yaml`
(timed, from scratch, unless --sft_dir names a finished run), then `predict --mode score` on dev. The label-prior
correction (`instructerc calibrate`) is fitted on dev, so its in-sample gain is optimistic; the figure reported
for it is the held-out one: fitted on half of the dev dialogues, applied to the other half, and the reverse.
Greedy generation (`--generate`) is scored too. Figures go to docs/benchmarks/meld_recipe.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "instructerc.cli"]


def _cpu() -> str:
    import torch

    name = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or platform.machine(),
    )
    return f"{name}, {torch.backends.cpu.get_cpu_capability()}, {torch.get_num_threads()} threads"


def baselines(meld_dir: str) -> dict[str, dict]:
    """Majority class, TF-IDF + LR and MiniLM + LR on utterance text, trained on train, scored on dev."""
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from instructerc.data_builders import load_corpus
    from instructerc.eval.metrics import closed_set_scores
    from instructerc.labels import get_label_set
    from instructerc.models import embedding_model_path

    labels = get_label_set("meld").labels

    def utterances(split):
        dialogues = load_corpus("meld", meld_dir, split, label_set=get_label_set("meld")).dialogues
        pairs = [(u.text, u.label) for d in dialogues for u in d.utterances if u.label]
        return [t for t, _ in pairs], [g for _, g in pairs]

    train_x, train_y = utterances("train")
    dev_x, dev_y = utterances("validation")
    results = {}
    majority = max(set(train_y), key=train_y.count)
    results["majority"] = closed_set_scores(dev_y, [majority] * len(dev_y), labels)
    started = time.perf_counter()
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    classifier = LogisticRegression(max_iter=3000).fit(vectorizer.fit_transform(train_x), train_y)
    results["tfidf_lr"] = closed_set_scores(dev_y, list(classifier.predict(vectorizer.transform(dev_x))), labels)
    results["tfidf_lr"]["seconds"] = time.perf_counter() - started
    from sentence_transformers import SentenceTransformer

    started = time.perf_counter()
    encoder = SentenceTransformer(embedding_model_path(), device="cpu")
    train_e, dev_e = (np.asarray(encoder.encode(x, batch_size=64)) for x in (train_x, dev_x))
    classifier = LogisticRegression(max_iter=3000).fit(train_e, train_y)
    results["minilm_lr"] = closed_set_scores(dev_y, list(classifier.predict(dev_e)), labels)
    results["minilm_lr"]["seconds"] = time.perf_counter() - started
    return results


def run(args: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(CLI + args, check=True, cwd=ROOT)
    return time.perf_counter() - started


def train_recipe(meld_dir: str, out: Path) -> tuple[Path, Path, float]:
    data, sft = out / "data", out / "sft"
    run(
        ["build-data", "--config", "configs/data/meld_dialogue.yaml", "--data_dir", meld_dir, "--output_dir", str(data)]
    )
    seconds = run(
        [
            "train",
            "sft",
            "--config",
            "configs/sft/meld_dialogue.yaml",
            "--dataset_dir",
            str(data),
            "--output_dir",
            str(sft),
        ]
    )
    return data, sft, seconds


def training_figures(sft: Path) -> dict[str, float]:
    """Wall time and tokens/s of a finished run, from its logs (trainer's train_runtime and num_tokens)."""
    log = [json.loads(line) for line in (sft / "training_log.jsonl").read_text().splitlines() if line.strip()]
    runtime = next((e["train_runtime"] for e in reversed(log) if "train_runtime" in e), None)
    tokens = max((e.get("num_tokens", 0) for e in log), default=0)
    steps = max((e.get("step", 0) for e in log), default=0)
    return {
        "train_runtime_s": runtime,
        "train_tokens": tokens,
        "steps": steps,
        "tokens_per_s": tokens / runtime if runtime else None,
    }


def score(predictions: Path) -> dict[str, float]:
    from instructerc.eval.metrics import closed_set_scores
    from instructerc.infer.writer import read_jsonl

    rows = read_jsonl(predictions)
    return closed_set_scores([r["gold"] for r in rows], [r["predicted"] for r in rows], rows[0]["label_set"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", default="../shared/data/meld")
    parser.add_argument("--out", default="outputs/bench/meld_recipe")
    parser.add_argument("--sft_dir", help="a finished `train sft` run of the recipe: score it instead of training")
    parser.add_argument("--dataset_dir", help="its built dialogue dataset (default: the recipe's output_dir)")
    parser.add_argument("--generate", action="store_true", help="also score greedy generation on dev")
    parser.add_argument("--baselines", help="reuse the baselines of an earlier run (a JSON file this script wrote)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default="docs/benchmarks/meld_recipe.json")
    args = parser.parse_args()
    out = (ROOT / args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    meld_dir = str(Path(args.data_dir).resolve())

    reused = json.loads(Path(args.baselines).read_text())["baselines"] if args.baselines else None
    figures: dict = {"cpu": _cpu(), "baselines": reused or baselines(meld_dir)}
    print(json.dumps(figures["baselines"], indent=1))
    if args.sft_dir:
        sft = Path(args.sft_dir).resolve()
        data = Path(args.dataset_dir or "outputs/data/meld_dialogue").resolve()
        train_wall = None
    else:
        data, sft, train_wall = train_recipe(meld_dir, out)
    figures["training"] = training_figures(sft) | {"wall_s": train_wall}
    common = ["--dataset_dir", str(data), "--split", "validation", "--model", str(sft), "--threads", str(args.threads)]
    scores_file = out / "dev_score.jsonl"
    scores_file.unlink(missing_ok=True)
    seconds = run(["predict", *common, "--mode", "score", "--output", str(scores_file)])
    figures["score"] = score(scores_file) | {"predict_s": seconds}
    calibration = sft / "calibration.json"
    run(["calibrate", "--predictions", str(scores_file), "--output", str(calibration)])
    fitted = json.loads(calibration.read_text())
    figures["calibration"] = {k: fitted[k] for k in ("bias", "weighted_f1_after_in_sample", "held_out")}
    calibrated_file = out / "dev_score_calibrated.jsonl"
    calibrated_file.unlink(missing_ok=True)
    run(["predict", *common, "--mode", "score", "--calibration", str(calibration), "--output", str(calibrated_file)])
    figures["score_calibrated_in_sample"] = score(calibrated_file)
    if args.generate:
        generated = out / "dev_generate.jsonl"
        generated.unlink(missing_ok=True)
        seconds = run(["predict", *common, "--batch_size", "8", "--output", str(generated)])
        figures["generate"] = score(generated) | {"predict_s": seconds}
    headline = figures["calibration"]["held_out"]["weighted_f1_after"]
    figures |= {
        "dev_weighted_f1": headline,  # the recipe's decision rule (score + correction), estimated on held-out dev
        "dev_weighted_f1_uncalibrated": figures["score"]["weighted_f1"],
        "dev_macro_f1_uncalibrated": figures["score"]["macro_f1"],
        "invalid_rate": figures["score"]["invalid_rate"],
        "train_wall_s": train_wall if train_wall is not None else figures["training"]["train_runtime_s"],
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps({k: v for k, v in figures.items() if k != "baselines"}, indent=1))


if __name__ == "__main__":
    main()
