"""Benchmark prediction: utterances/s and weighted F1 on MELD dev with the embedded model.

Three variants on the same N utterances (template emotion_label_only, no demonstrations), ratios to the first:
  naive-loop   one `model.generate` per utterance, no batching (as InstructERC's inference script does)
  batched      `predict --mode generate`: batched, left-padded greedy generation (`generate_chat`)
  score        `predict --mode score`: no generation, the most likely label answer (one prompt pass each)

    python bench/predict_speed.py --data_dir ../shared/data/meld [--n 200] [--repeats 3]

Model loading and dataset building are not timed; medians over --repeats are reported.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

from meld_dev import build_meld_dev

from instructerc.eval.metrics import closed_set_scores
from instructerc.infer.predict import PredictConfig, TransformersBackend, predict
from instructerc.infer.writer import read_jsonl
from instructerc.parsing import label_set_from_list, parse_output


def naive_loop(backend: TransformersBackend, rows: list[dict], max_new_tokens: int) -> list[str | None]:
    """One prompt at a time through `model.generate`: the baseline the batched and score modes are compared to."""
    import torch

    model, tokenizer = backend.model, backend.tokenizer
    predicted = []
    for row in rows:
        ids = tokenizer.apply_chat_template(row["prompt"], add_generation_prompt=True, return_tensors="pt")
        ids = ids["input_ids"] if hasattr(ids, "keys") else ids  # transformers 5 returns a BatchEncoding
        ids = ids.to(model.device)
        with torch.inference_mode():
            out = model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
            )
        text = tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)
        label_set = label_set_from_list(tuple(row["label_set"]))
        predicted.append(parse_output(text, label_set, answer_format=row["answer_format"]).label)
    return predicted


def run_predict(config: PredictConfig, backend: TransformersBackend) -> tuple[float, list[str | None]]:
    Path(config.output).unlink(missing_ok=True)  # a fresh file each repeat: nothing to resume
    summary = predict(config, backend)
    return summary.predict_seconds, [row["predicted"] for row in read_jsonl(config.output)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", default="../shared/data/meld")
    parser.add_argument("--n", type=int, default=200, help="dev utterances")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--max_new_tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--dtype", default="auto")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        rows = build_meld_dev(args.data_dir, data_dir, args.n)
        gold, labels = [r["label"] for r in rows], rows[0]["label_set"]
        common = {
            "dataset_dir": str(data_dir),
            "limit": args.n,
            "batch_size": args.batch_size,
            "max_new_tokens": args.max_new_tokens,
            "threads": args.threads,
            "model_dtype": args.dtype,
            "show_progress": False,
        }
        backend = TransformersBackend.from_config(PredictConfig(output="-", **common))
        variants = {
            "naive-loop": lambda: _timed(lambda: naive_loop(backend, rows, args.max_new_tokens)),
            "batched": lambda: run_predict(PredictConfig(output=f"{tmp}/gen.jsonl", **common), backend),
            "score": lambda: run_predict(PredictConfig(output=f"{tmp}/score.jsonl", mode="score", **common), backend),
        }
        results: dict[str, tuple[float, dict]] = {}
        for name, run in variants.items():
            times, scores = [], {}
            for _ in range(args.repeats):
                seconds, predicted = run()
                times.append(seconds)
                scores = closed_set_scores(gold, predicted, labels)
            results[name] = (statistics.median(times), scores)

    import torch

    print(
        f"\n{len(rows)} MELD dev utterances, embedded model ({args.dtype}), {torch.get_num_threads()} threads, "
        f"batch {args.batch_size}, max_new_tokens {args.max_new_tokens}, median of {args.repeats}, "
        f"{platform.processor() or platform.machine()}\n"
    )
    print("| variant | seconds | utterances/s | vs naive-loop | weighted F1 | invalid rate |")
    print("| --- | --- | --- | --- | --- | --- |")
    base = len(rows) / results["naive-loop"][0]
    for name, (seconds, scores) in results.items():
        rate = len(rows) / seconds
        print(
            f"| {name} | {seconds:.1f} | {rate:.2f} | {rate / base:.2f}x | "
            f"{scores['weighted_f1']:.3f} | {scores['invalid_rate']:.2f} |"
        )


def _timed(fn):
    started = time.perf_counter()
    predicted = fn()
    return time.perf_counter() - started, predicted


if __name__ == "__main__":
    main()
