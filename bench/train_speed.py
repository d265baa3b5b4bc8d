"""Training speed with the embedded model: instructerc's defaults vs trl's plain defaults, same data and LoRA.

    python bench/train_speed.py [--steps 3] [--repeats 2]

SFT: tokens/s (trl's `num_tokens` / train_runtime). GRPO: seconds per step (4 completions of up to 48 tokens).
"trl default" is `trl.SFTConfig` / `trl.GRPOConfig` with only what is needed to run on this machine
(use_cpu, the same batch size, steps and LoRA): gradient checkpointing on, torch's default thread count.
"instructerc" is SFTTrainConfig / GRPOTrainConfig with its CPU defaults and `threads: 1`.
Each run is a fresh process; medians over repeats; ratios are instructerc vs trl default in the same run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, sys, time
from datasets import load_from_disk
from peft import LoraConfig
args = json.loads(sys.argv[1])
data = load_from_disk(args["data"])["train"].filter(lambda r: r["task"] == "emotion")
lora = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM")
common = dict(output_dir=args["out"], max_steps=args["steps"], save_strategy="no", report_to="none", logging_steps=1)
from instructerc.models import load_causal_lm, load_tokenizer
tokenizer = load_tokenizer("embedded")
if args["kind"] == "sft":
    from trl import SFTConfig, SFTTrainer
    from instructerc.train.configs import SFTTrainConfig
    data = data.select_columns(["prompt", "completion"])
    if args["variant"] == "trl":
        config = SFTConfig(use_cpu=True, per_device_train_batch_size=4, **common)
    else:
        config = SFTTrainConfig(per_device_train_batch_size=4, eval_strategy="no", threads=1, **common)
    model = load_causal_lm("embedded", dtype="float32", threads=config.threads if args["variant"] != "trl" else None)
    trainer = SFTTrainer(model=model, args=config, train_dataset=data, processing_class=tokenizer, peft_config=lora)
    out = trainer.train()
    num_tokens = max(e.get("num_tokens", 0) for e in trainer.state.log_history)
    print(json.dumps({"seconds": out.metrics["train_runtime"], "tokens": num_tokens}))
else:
    from trl import GRPOConfig, GRPOTrainer
    from instructerc.train.configs import GRPOTrainConfig
    from instructerc.train.rewards import build_rewards
    rewards, weights = build_rewards({"label_accuracy": 1.0, "format": 0.5})
    data = data.select_columns(["prompt", "label", "label_set", "task", "answer_format"])
    grpo = dict(num_generations=4, per_device_train_batch_size=4, max_completion_length=48, **common)
    if args["variant"] == "trl":
        config = GRPOConfig(use_cpu=True, reward_weights=weights, **grpo)
    else:
        config = GRPOTrainConfig(rewards={"label_accuracy": 1.0, "format": 0.5}, threads=1, **grpo)
    model = load_causal_lm("embedded", dtype="float32", threads=config.threads if args["variant"] != "trl" else None)
    trainer = GRPOTrainer(model=model, reward_funcs=rewards, args=config, train_dataset=data,
                          processing_class=tokenizer, peft_config=lora)
    out = trainer.train()
    print(json.dumps({"seconds": out.metrics["train_runtime"], "steps": args["steps"]}))
"""


def run(settings: dict) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(settings)], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"run {settings['kind']}/{settings['variant']} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--kinds", default="sft,grpo")
    args = parser.parse_args()

    from instructerc.config import BuildDataConfig
    from instructerc.data_builders.build import build_dataset
    from instructerc.resources import shipped_dir

    work = Path(tempfile.mkdtemp(prefix="instructerc-train-bench-"))
    data = work / "data"
    build_dataset(
        BuildDataConfig(
            dataset="jsonl",
            data_dir=str(shipped_dir("examples") / "dialogues.jsonl"),
            label_set="meld",
            output_dir=str(data),
            n_demos=0,
            show_progress=False,
        )
    )
    results: dict[str, dict[str, list[float]]] = {}
    for kind in args.kinds.split(","):
        for repeat in range(args.repeats):
            # Alternate which variant goes first: the first process after a pause runs slower on this VM.
            for variant in ("trl", "instructerc") if repeat % 2 == 0 else ("instructerc", "trl"):
                out = run(
                    {
                        "kind": kind,
                        "variant": variant,
                        "data": str(data),
                        "steps": args.steps,
                        "out": str(work / f"{kind}-{variant}"),
                    }
                )
                value = out["tokens"] / out["seconds"] if kind == "sft" else out["seconds"] / out["steps"]
                results.setdefault(kind, {}).setdefault(variant, []).append(value)
                unit = "tokens/s" if kind == "sft" else "s/step"
                print(f"{kind} {variant:<12} repeat {repeat + 1}: {value:.2f} {unit}", flush=True)
    print("\n| run | trl default | instructerc | ratio (instructerc / trl; SFT higher is better, GRPO lower) |")
    print("| --- | --- | --- | --- |")
    for kind, by_variant in results.items():
        trl, ours = statistics.median(by_variant["trl"]), statistics.median(by_variant["instructerc"])
        unit = "tokens/s" if kind == "sft" else "s/step"
        print(f"| {kind} ({unit}) | {trl:.2f} | {ours:.2f} | {ours / trl:.2f}x |")


if __name__ == "__main__":
    main()
