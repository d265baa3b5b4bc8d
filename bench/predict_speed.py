"""Benchmark prediction on MELD dev: utterances/s and weighted F1 per unit and decision rule, in one run.

Variants, all on the utterances of the first --dialogues dev dialogues (ratios to the first):
  naive_loop          one `model.generate` per utterance prompt, no batching (InstructERC's inference script)
  utterance_score     `predict --mode score` on utterance prompts (one prompt pass per utterance)
  dialogue_generate   `predict` on dialogue-unit prompts: one batched greedy generation per conversation
  dialogue_score      `predict --mode score` on dialogue-unit prompts: one pass per conversation, label slots scored
  dialogue_generate_vllm  (--vllm) dialogue_generate through offline vLLM (.venv-vllm); start-up not timed

    python bench/predict_speed.py --dialogue_model outputs/sft/meld_dialogue [--utterance_model embedded]

Utterance prompts are `emotion_label_only` with a 12-turn window (the utterance recipe's prompts without
demonstrations); dialogue prompts are configs/data/meld_dialogue.yaml's. Each unit is predicted by a model trained
for it: --utterance_model for the utterance variants (default: the embedded base model, which has never been
fine-tuned, so its F1 is only a floor), --dialogue_model for the dialogue variants. Model loading and dataset
building are not timed; medians over --repeats. Figures go to docs/benchmarks/predict_speed.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import tempfile
import time
from pathlib import Path

from meld_dev import build_meld_dev
from meld_recipe import _cpu

from instructerc.eval.metrics import closed_set_scores
from instructerc.infer.predict import PredictConfig, TransformersBackend, predict
from instructerc.infer.writer import read_jsonl
from instructerc.parsing import label_set_from_list, parse_output


def naive_loop(backend: TransformersBackend, rows: list[dict], max_new_tokens: int) -> list[str | None]:
    """One prompt at a time through `model.generate`: the baseline the other variants are compared to."""
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


def run_vllm(config: PredictConfig) -> tuple[float, list[str | None]]:
    Path(config.output).unlink(missing_ok=True)
    summary = predict(dataclasses.replace(config, backend="vllm"))
    return summary.predict_seconds, [row["predicted"] for row in read_jsonl(config.output)]


def _timed(fn):
    started = time.perf_counter()
    predicted = fn()
    return time.perf_counter() - started, predicted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", default="../shared/data/meld")
    parser.add_argument("--dialogues", type=int, default=20, help="first N dev dialogues")
    parser.add_argument("--utterance_model", default="embedded")
    parser.add_argument("--dialogue_model", required=True)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--vllm", action="store_true", help="add dialogue generation through offline vLLM")
    parser.add_argument("--json", default="docs/benchmarks/predict_speed.json")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        common_build = {"max_prompt_tokens": 768, "max_dialogues": args.dialogues}
        utterance_rows = build_meld_dev(args.data_dir, Path(tmp) / "utt", window=12, **common_build)
        dialogue_rows = build_meld_dev(
            args.data_dir, Path(tmp) / "dia", template="emotion_dialogue", window=4, **common_build
        )
        gold, labels = [r["label"] for r in utterance_rows], utterance_rows[0]["label_set"]
        common = {"threads": args.threads, "show_progress": False, "batch_size": 8}

        def config(data: str, model: str, name: str, **kwargs) -> PredictConfig:
            return PredictConfig(
                output=f"{tmp}/{name}.jsonl", dataset_dir=f"{tmp}/{data}", model=model, **common, **kwargs
            )

        utterance = TransformersBackend.from_config(config("utt", args.utterance_model, "-"))
        dialogue = TransformersBackend.from_config(config("dia", args.dialogue_model, "-"))
        variants = {
            "naive_loop": lambda: _timed(lambda: naive_loop(utterance, utterance_rows, 16)),
            "utterance_score": lambda: run_predict(config("utt", args.utterance_model, "us", mode="score"), utterance),
            "dialogue_generate": lambda: run_predict(config("dia", args.dialogue_model, "dg"), dialogue),
            "dialogue_score": lambda: run_predict(config("dia", args.dialogue_model, "ds", mode="score"), dialogue),
        }
        if args.vllm:  # predict starts the engine itself; its start-up is outside predict_seconds
            variants["dialogue_generate_vllm"] = lambda: run_vllm(config("dia", args.dialogue_model, "dv"))
        results: dict[str, dict] = {}
        for name, run in variants.items():
            times, scores = [], {}
            for _ in range(args.repeats):
                seconds, predicted = run()
                times.append(seconds)
                scores = closed_set_scores(gold, predicted, labels)
            seconds = statistics.median(times)
            model = args.dialogue_model if name.startswith("dialogue") else args.utterance_model
            if name == "dialogue_generate_vllm":
                model += " (vLLM)"
            results[name] = {"seconds": seconds, "utterances_per_s": len(gold) / seconds, "model": model} | scores

    base = results["naive_loop"]["utterances_per_s"]
    for figures in results.values():
        figures["vs_naive_loop"] = figures["utterances_per_s"] / base
    report = {
        "cpu": _cpu(),
        "utterances": len(gold),
        "dialogues": args.dialogues,
        "prompt_tokens": {
            "utterance": statistics.median(r["prompt_tokens"] for r in utterance_rows),
            "dialogue_per_utterance": sum(r["prompt_tokens"] for r in dialogue_rows) / len(gold),
        },
        "variants": results,
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n{len(gold)} MELD dev utterances ({args.dialogues} dialogues), {report['cpu']}\n")
    print("| variant | model | utterances/s | vs naive_loop | weighted F1 | invalid rate |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, f in results.items():
        print(
            f"| {name} | {f['model']} | {f['utterances_per_s']:.2f} | {f['vs_naive_loop']:.1f}x | "
            f"{f['weighted_f1']:.3f} | {f['invalid_rate']:.2f} |"
        )


if __name__ == "__main__":
    main()
