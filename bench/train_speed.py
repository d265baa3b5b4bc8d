"""Training speed: `train sft` against a plain PyTorch loop on the same batches, LoRA and full fine-tuning.

    python bench/train_speed.py --data_dir ../shared/data/meld [--steps 6] [--repeats 2]

Data: the first steps x batch dialogue-unit examples of MELD train (configs/data/meld_dialogue.yaml; the bundled
examples when MELD is absent), in order, so every variant sees the same batches:
  plain_loop    a hand-written loop: backbone under bf16 autocast (where the CPU has fast bf16), logits only
                at completion positions, float32 head, AdamW (the reference the issue measured)
  instructerc   `train sft`'s trainer (trl SFTTrainer + the CPU completion loss), sequential sampling
  trl           trl's own SFTTrainer and loss with the same settings (what `train sft` ran before)
Tokens/s counts every non-padding token of the batches over the whole run (first step included, as trl's
`train_runtime` does). Each run is a fresh process; medians over repeats; ratios to plain_loop in the same run.
Figures go to docs/benchmarks/train_speed.json (`sft_tokens_per_s`, `reference_tokens_per_s`: LoRA).
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
import json, sys, time, torch
from datasets import load_from_disk
args = json.loads(sys.argv[1])
from instructerc.models import load_causal_lm, load_tokenizer, cpu_supports_bf16
from instructerc.train.sft import peft_config_from, training_dtype
from instructerc.train.configs import SFTTrainConfig
n = args["steps"] * args["batch"]
data = load_from_disk(args["data"])["train"].select(range(n)).select_columns(["prompt", "completion"])
config = SFTTrainConfig(
    dataset_dir=args["data"], output_dir=args["out"], max_steps=args["steps"],
    per_device_train_batch_size=args["batch"],
    save_strategy="no", eval_strategy="no", report_to="none", logging_steps=1, threads=args["threads"],
    use_lora=args["lora"], learning_rate=1e-4, train_sampling_strategy="sequential", dev_eval_samples=0,
)
tokenizer = load_tokenizer("embedded")
model = load_causal_lm("embedded", dtype=training_dtype(config), threads=config.threads)
if args["variant"] == "plain_loop":
    if args["lora"]:
        from peft import get_peft_model
        model = get_peft_model(model, peft_config_from(config))
    def encode(row):
        prompt = tokenizer.apply_chat_template(row["prompt"], tokenize=False, add_generation_prompt=True)
        p = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        answer = row["completion"][0]["content"] + tokenizer.eos_token + "\n"
        c = tokenizer(answer, add_special_tokens=False)["input_ids"]
        return p + c, [-100] * len(p) + c
    rows = [encode(r) for r in data]
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    causal = model.get_base_model() if args["lora"] else model
    backbone, head = causal.base_model, causal.get_output_embeddings()
    model.train()
    tokens, started = 0, time.perf_counter()
    for step in range(args["steps"]):
        batch = rows[step * args["batch"] : (step + 1) * args["batch"]]
        width = max(len(x) for x, _ in batch)
        ids = torch.tensor([x + [tokenizer.pad_token_id] * (width - len(x)) for x, _ in batch])
        labels = torch.tensor([y + [-100] * (width - len(y)) for _, y in batch])
        mask = (torch.arange(width)[None] < torch.tensor([len(x) for x, _ in batch])[:, None]).long()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bool(config.bf16)):
            hidden = backbone(input_ids=ids, attention_mask=mask).last_hidden_state[:, :-1]
        targets = labels[:, 1:]
        keep = targets != -100
        logits = torch.nn.functional.linear(hidden[keep].float(), head.weight.float())
        loss = torch.nn.functional.cross_entropy(logits, targets[keep])
        loss.backward(); opt.step(); opt.zero_grad()
        tokens += int(mask.sum())
    print(json.dumps({"seconds": time.perf_counter() - started, "tokens": tokens}))
else:
    from trl import SFTTrainer
    from instructerc.train.completion_loss import CompletionLossSFTTrainer
    cls = CompletionLossSFTTrainer if args["variant"] == "instructerc" else SFTTrainer
    trainer = cls(model=model, args=config, train_dataset=data, processing_class=tokenizer,
                  peft_config=peft_config_from(config))
    out = trainer.train()
    tokens = max(e.get("num_tokens", 0) for e in trainer.state.log_history)
    print(json.dumps({"seconds": out.metrics["train_runtime"], "tokens": tokens}))
"""

VARIANTS = ("plain_loop", "instructerc", "trl")


def run(settings: dict) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(settings)], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"run {settings['variant']} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def build(data_dir: str, out: Path) -> Path:
    from instructerc.config import BuildDataConfig
    from instructerc.data_builders.build import build_dataset
    from instructerc.resources import shipped_dir

    if Path(data_dir).is_dir():
        source = {"dataset": "meld", "data_dir": data_dir, "max_dialogues": 60}
    else:  # no corpus here: the bundled examples still measure the trainer against the loop
        source = {"dataset": "jsonl", "data_dir": str(shipped_dir("examples") / "dialogues.jsonl"), "label_set": "meld"}
    build_dataset(
        BuildDataConfig(
            **source,
            output_dir=str(out),
            splits=["train"],
            template="emotion_dialogue",
            window=4,
            n_demos=0,
            max_prompt_tokens=768,
            show_progress=False,
        )
    )
    return out


def main() -> None:
    from meld_recipe import _cpu

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", default="../shared/data/meld")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--variants", default=",".join(VARIANTS), help="which of plain_loop,instructerc,trl")
    parser.add_argument("--json", default="docs/benchmarks/train_speed.json")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="instructerc-train-bench-"))
    data = build(args.data_dir, work / "data")
    results: dict[str, dict[str, list[float]]] = {}
    for method in ("lora", "full"):
        for repeat in range(args.repeats):
            # Rotate which variant goes first: the first process after a pause runs slower on this VM.
            chosen = [v for v in VARIANTS if v in args.variants.split(",")]
            order = chosen[repeat % len(chosen) :] + chosen[: repeat % len(chosen)]
            for variant in order:
                settings = {
                    "variant": variant,
                    "data": str(data),
                    "steps": args.steps,
                    "batch": args.batch,
                    "lora": method == "lora",
                    "threads": args.threads,
                    "out": str(work / variant),
                }
                out = run(settings)
                value = out["tokens"] / out["seconds"]
                results.setdefault(method, {}).setdefault(variant, []).append(value)
                print(f"{method} {variant:<12} repeat {repeat + 1}: {value:.1f} tokens/s", flush=True)
    medians = {m: {v: statistics.median(xs) for v, xs in by.items()} for m, by in results.items()}
    report = {
        "cpu": _cpu(),
        "steps": args.steps,
        "batch": args.batch,
        "repeats": args.repeats,
        "tokens_per_s": medians,
        "sft_tokens_per_s": medians["lora"]["instructerc"],
        "reference_tokens_per_s": medians["lora"]["plain_loop"],
        "full_sft_tokens_per_s": medians["full"]["instructerc"],
        "full_reference_tokens_per_s": medians["full"]["plain_loop"],
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n{report['cpu']}; {args.steps} steps of {args.batch} dialogue examples, median of {args.repeats}\n")
    print("| method | plain loop | train sft | trl's loss | train sft / plain loop | trl / plain loop |")
    print("| --- | --- | --- | --- | --- | --- |")
    for method, m in medians.items():
        ref, trl = m["plain_loop"], m.get("trl", float("nan"))
        print(
            f"| {method} | {ref:.1f} | {m['instructerc']:.1f} | {trl:.1f} | "
            f"{m['instructerc'] / ref:.2f}x | {trl / ref:.2f}x |"
        )


if __name__ == "__main__":
    main()
