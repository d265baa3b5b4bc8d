"""`train sft`: LoRA / QLoRA supervised fine-tuning on a built instruction dataset, with trl's SFTTrainer.

The dataset's prompt/completion columns are trl's conversational format, so the loss covers the completion
only, and the tokenizer's chat template renders prompts exactly as build-data measured them. The output
folder holds the adapter (or the full model), the tokenizer with its chat template, resolved_config.yaml,
training_log.jsonl, instructerc_train.json (what was trained on what) and a model card (README.md).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from instructerc.train.artifacts import (
    dataset_metadata,
    dev_scores,
    leave_process_group,
    save_final_model,
    write_training_outputs,
)
from instructerc.train.configs import SFTTrainConfig

logger = logging.getLogger(__name__)


def peft_config_from(config: Any) -> Any:
    """The LoRA config described by ModelArguments (None for full fine-tuning)."""
    if not config.use_lora:
        if config.load_in_4bit:
            raise ValueError("load_in_4bit (QLoRA) needs use_lora: a 4-bit model cannot be fully fine-tuned")
        return None
    from peft import LoraConfig

    targets = config.lora_target_modules
    return LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        task_type="CAUSAL_LM",
        target_modules=targets[0] if targets == ["all-linear"] else targets,
    )


def load_split(config: Any, split: str, limit: int | None, *, seed: int, keep: tuple[str, ...]) -> Any:
    """One split of the built dataset, filtered to labeled rows of the chosen tasks, limited and trimmed."""
    from datasets import load_from_disk

    dataset_dir = Path(config.dataset_dir)
    if not (dataset_dir / "dataset_dict.json").is_file():
        raise FileNotFoundError(
            f"{dataset_dir}: not a dataset built by `instructerc build-data` (no dataset_dict.json); build one first"
        )
    dataset = load_from_disk(str(dataset_dir))
    if split not in dataset:
        raise ValueError(f"{dataset_dir} has no split {split!r} (it has: {', '.join(dataset)})")
    data = dataset[split]
    if config.tasks:
        unknown = set(config.tasks) - set(data.unique("task"))
        if unknown:
            raise ValueError(f"tasks {sorted(unknown)} are not in {dataset_dir}/{split} (it has {data.unique('task')})")
        data = data.filter(lambda row: row["task"] in config.tasks)
    data = data.filter(lambda row: row["label"] is not None and len(row["completion"]) > 0)
    if len(data) == 0:
        raise ValueError(f"{dataset_dir}/{split} has no labeled examples to train or evaluate on")
    if limit is not None and limit < len(data):
        data = data.shuffle(seed=seed).select(range(limit))
    return data.select_columns([c for c in keep if c in data.column_names])


def training_dtype(config: Any) -> str:
    """The weights' dtype. Full fine-tuning keeps float32 master weights under `auto`: AdamW updates on bf16
    weights round most small steps away. bf16 autocast (`bf16`) still runs the matmuls in bf16 where it is fast."""
    if config.model_dtype == "auto" and not config.use_lora and not config.load_in_4bit:
        return "float32"
    return config.model_dtype


def check_lengths(data: Any, tokenizer: Any, max_length: int | None) -> None:
    """Warn when prompt + completion exceeds max_length: trl would cut the completion off."""
    if max_length is None:
        return
    completion_tokens = [
        len(tokenizer(c[0]["content"], add_special_tokens=False)["input_ids"]) + 2 for c in data["completion"]
    ]
    too_long = sum(1 for p, c in zip(data["prompt_tokens"], completion_tokens, strict=True) if p + c > max_length)
    if too_long:
        logger.warning(
            "%d of %d training examples are longer than max_length=%d and will be truncated; "
            "raise max_length or lower max_prompt_tokens in build-data",
            too_long,
            len(data),
            max_length,
        )


def run_sft(config: SFTTrainConfig) -> Path:
    """Train, save, write logs and the model card; returns the output folder."""
    from instructerc.models import load_causal_lm, load_tokenizer

    tokenizer = load_tokenizer(config.model, cache_dir=config.cache_dir)
    train = load_split(
        config,
        config.train_split,
        config.max_train_samples,
        seed=config.seed,
        keep=("prompt", "completion", "prompt_tokens"),
    )
    check_lengths(train, tokenizer, config.max_length)
    train = train.remove_columns("prompt_tokens")
    evaluation = None
    if config.eval_split and config.eval_strategy != "no":
        evaluation = load_split(
            config, config.eval_split, config.max_eval_samples, seed=config.seed, keep=("prompt", "completion")
        )
    model = load_causal_lm(
        config.model,
        dtype=training_dtype(config),
        load_in_4bit=config.load_in_4bit,
        cache_dir=config.cache_dir,
        threads=config.threads,
    )
    from instructerc.train.completion_loss import CompletionLossSFTTrainer

    trainer = CompletionLossSFTTrainer(
        model=model,
        args=config,
        train_dataset=train,
        eval_dataset=evaluation,
        processing_class=tokenizer,
        peft_config=peft_config_from(config),
    )
    trainer.train(resume_from_checkpoint=config.resume_from_checkpoint)
    output_dir = Path(config.output_dir)
    save_final_model(trainer, output_dir)
    main_process = trainer.is_world_process_zero()
    leave_process_group()
    if not main_process:
        return output_dir
    scores = dev_scores(trainer.model, tokenizer, config) if config.eval_split else {}
    meta = dataset_metadata(config.dataset_dir, config.train_split) | {
        "method": "sft",
        "base_model": config.model,
        "steps": trainer.state.global_step,
        "processes": config.world_size,
        "train_examples": len(train),
        "dev_scores": scores,
        "final_eval_loss": _last(trainer.state.log_history, "eval_loss"),
    }
    write_training_outputs(output_dir, config, trainer.state.log_history, meta)
    print(json.dumps({"output_dir": str(output_dir), "steps": meta["steps"], "dev_scores": scores}))
    return output_dir


def _last(history: list[dict[str, Any]], key: str) -> float | None:
    values = [entry[key] for entry in history if key in entry]
    return values[-1] if values else None
