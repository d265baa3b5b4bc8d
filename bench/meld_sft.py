"""LoRA SFT of the embedded model on a MELD train subset: dev weighted F1 before and after.

    python bench/meld_sft.py --data_dir ../shared/data/meld [--train_samples 256 --steps 64 --dev_samples 100]

Builds MELD train+dev (emotion task, label-only answers so that generation is short), scores the base model on
the first `dev_samples` dev utterances (greedy generation, the shared parser, invalid answers count as wrong),
trains, and scores the adapter on the same utterances. The majority class on the same sample is the floor.
Model selection uses dev only; MELD's test split is never read. MELD: declare-lab/MELD (data/MELD).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace


def score(model, tokenizer, dataset_dir: str, samples: int) -> dict:
    from instructerc.train.artifacts import dev_scores

    settings = SimpleNamespace(
        dev_eval_samples=samples,
        dataset_dir=dataset_dir,
        eval_split="validation",
        dev_max_new_tokens=16,
        per_device_eval_batch_size=8,
    )
    return dev_scores(model, tokenizer, settings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--train_samples", type=int, default=256)
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--dev_samples", type=int, default=100)
    parser.add_argument("--n_demos", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--work_dir", default=None)
    parser.add_argument(
        "--reuse_adapter",
        action="store_true",
        help="score the adapter already trained in --work_dir/sft instead of training again",
    )
    args = parser.parse_args()
    if not (Path(args.data_dir) / "train_sent_emo.csv").is_file():
        raise SystemExit(f"{args.data_dir}: MELD csv files not found (get them from declare-lab/MELD)")

    from datasets import load_from_disk

    from instructerc.config import BuildDataConfig, load_config
    from instructerc.data_builders.build import build_dataset
    from instructerc.models import load_causal_lm, load_tokenizer
    from instructerc.train.configs import SFTTrainConfig
    from instructerc.train.sft import run_sft

    work = Path(args.work_dir or tempfile.mkdtemp(prefix="instructerc-meld-sft-"))
    data_dir = str(work / "data")
    build_dataset(
        BuildDataConfig(
            dataset="meld",
            data_dir=args.data_dir,
            output_dir=data_dir,
            template="emotion_label_only",
            n_demos=args.n_demos,
            show_progress=False,
        )
    )
    tokenizer = load_tokenizer("embedded")
    dev = load_from_disk(data_dir)["validation"].select(range(args.dev_samples))
    majority_label, _ = Counter(load_from_disk(data_dir)["train"]["label"]).most_common(1)[0]
    from instructerc.eval.metrics import closed_set_scores

    majority = closed_set_scores(dev["label"], [majority_label] * len(dev), dev[0]["label_set"])

    started = time.perf_counter()
    before = score(
        load_causal_lm("embedded", dtype="float32", threads=args.threads), tokenizer, data_dir, args.dev_samples
    )
    config = load_config(
        SFTTrainConfig,
        None,
        {
            "dataset_dir": data_dir,
            "output_dir": str(work / "sft"),
            "max_steps": args.steps,
            "max_train_samples": args.train_samples,
            "per_device_train_batch_size": 4,
            "learning_rate": 2e-4,
            "eval_strategy": "no",
            "save_strategy": "no",
            "dev_eval_samples": args.dev_samples,
            "dev_max_new_tokens": 16,
            "threads": args.threads,
            "logging_steps": 8,
            "seed": 0,
        },
    )
    if args.reuse_adapter:
        from peft import PeftModel

        base = load_causal_lm("embedded", dtype="float32", threads=args.threads)
        after = score(PeftModel.from_pretrained(base, str(work / "sft")), tokenizer, data_dir, args.dev_samples)
    else:
        run_sft(config)
        after = json.loads((work / "sft" / "instructerc_train.json").read_text())["dev_scores"]
    minutes = (time.perf_counter() - started) / 60
    print(
        f"\nMELD dev, first {args.dev_samples} utterances; SFT {args.steps} steps x 4 on {args.train_samples} "
        f"train examples ({minutes:.0f} min in all)"
    )
    print("| model | weighted F1 | accuracy | macro F1 | invalid rate |")
    print("| --- | --- | --- | --- | --- |")
    for name, s in (("majority class", majority), ("embedded, before SFT", before), ("embedded, after SFT", after)):
        print(
            f"| {name} | {s['weighted_f1']:.3f} | {s['accuracy']:.3f} | {s['macro_f1']:.3f} | "
            f"{s.get('invalid_rate', 0):.3f} |"
        )


if __name__ == "__main__":
    main()
