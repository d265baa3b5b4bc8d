"""`train grpo`: GRPO with verifiable emotion rewards on top of an SFT adapter, with trl's GRPOTrainer.

Before training, pre-flight checks turn the usual silent failures into actionable errors: a reward whose
column the dataset lacks, completions cut shorter than the SFT targets, a batch that is not a whole number
of groups, and a starting model that never produces a parsable answer (all rewards 0: nothing is learned).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from instructerc.train.artifacts import (
    dataset_metadata,
    dev_scores,
    leave_process_group,
    save_final_model,
    sharded_run,
    write_training_outputs,
)
from instructerc.train.configs import GRPOTrainConfig
from instructerc.train.rewards import build_rewards, required_columns
from instructerc.train.sft import load_split, peft_config_from

logger = logging.getLogger(__name__)
# Columns the built-in rewards read (some optionally); `reward_columns` adds what each configured reward requires.
REWARD_COLUMNS = (
    "prompt",
    "label",
    "labels",
    "label_set",
    "context",
    "task",
    "answer_format",
    "open_vocabulary",
    "targets",
    "unit",
)


class PreflightError(ValueError):
    """A GRPO run that would fail or learn nothing; the message says what to change."""


def reward_columns(rewards: Sequence[Any]) -> tuple[str, ...]:
    """The dataset columns to keep for GRPO: REWARD_COLUMNS plus every column a configured reward requires.

    A user reward may read any column of the built dataset (`speaker`, `dialogue_id`, ...); dropping it here would
    make the pre-flight check report a column the dataset really has as missing.
    """
    required = set().union(*(required_columns(reward) for reward in rewards))
    return (*REWARD_COLUMNS, *sorted(required - set(REWARD_COLUMNS)))


def check_reward_columns(rewards: list[Any], columns: list[str]) -> None:
    for reward in rewards:
        missing = required_columns(reward) - set(columns)
        if missing:
            name = getattr(reward, "__name__", repr(reward))
            raise PreflightError(
                f"reward {name} needs dataset columns {sorted(missing)}; the dataset has {sorted(columns)}"
            )


def check_completion_length(completions: list[list[dict]], tokenizer: Any, max_completion_length: int) -> None:
    """The SFT targets must fit: a model taught to write N tokens and cut at fewer never closes its answer."""
    lengths = sorted(len(tokenizer(c[0]["content"], add_special_tokens=False)["input_ids"]) + 1 for c in completions)
    needed = lengths[min(len(lengths) - 1, int(0.95 * len(lengths)))] if lengths else 0
    if max_completion_length < needed:
        raise PreflightError(
            f"max_completion_length={max_completion_length} is below what the training targets "
            f"need (95% of completions fit in {needed} tokens); set max_completion_length >= {needed}"
        )


def num_processes(config: Any) -> int:
    """Processes the run trains in: WORLD_SIZE inside a launched process, else --num_processes when
    accelerate_config will relaunch the command (the user's process, before the launch), else 1."""
    world_size = int(os.environ.get("WORLD_SIZE") or 0)
    if world_size:
        return world_size
    return max(1, int(getattr(config, "num_processes", 1) or 1)) if getattr(config, "accelerate_config", None) else 1


def check_batch(config: GRPOTrainConfig) -> None:
    """The generation batch must be a whole number of groups (trl's own formula, before trl checks it):
    per_device_train_batch_size x processes x steps_per_generation, or generation_batch_size when given."""
    steps = config.steps_per_generation or config.gradient_accumulation_steps
    processes = num_processes(config)
    batch = config.generation_batch_size or config.per_device_train_batch_size * processes * steps
    if config.num_generations and batch % config.num_generations:
        how = (
            "generation_batch_size"
            if config.generation_batch_size
            else f"per_device_train_batch_size x processes x steps_per_generation = "
            f"{config.per_device_train_batch_size} x {processes} x {steps}"
        )
        raise PreflightError(
            f"the generation batch ({batch} completions = {how}) is not divisible by num_generations="
            f"{config.num_generations}; set per_device_train_batch_size to a multiple of {config.num_generations} "
            f"(or make per_device_train_batch_size x processes x steps_per_generation one)"
        )


def preflight_device(config: Any, model: Any = None) -> Any:
    """The device the pre-flight generation runs on (the one this process trains on), or None to skip it.

    - not the main process (RANK > 0): None, one process checking the starting model is enough;
    - FSDP or ZeRO-3: None, before the Trainer wraps the model its weights may be empty shards, and moving a model
      too large for one GPU onto one would run out of memory;
    - a quantized (bitsandbytes) or device_map-dispatched model: where it already is (it cannot be moved);
    - CPU training (`use_cpu`, set automatically without CUDA): the CPU, as before;
    - else the process's GPU, cuda:LOCAL_RANK (the Trainer would move the model there anyway).
    """
    import torch

    if int(os.environ.get("RANK") or 0) != 0 or sharded_run(config):
        return None
    if model is not None and (getattr(model, "is_quantized", False) or getattr(model, "hf_device_map", None)):
        return model.device
    if getattr(config, "use_cpu", False) or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", int(os.environ.get("LOCAL_RANK") or 0))


def check_model_answers(model: Any, tokenizer: Any, data: Any, config: GRPOTrainConfig) -> float | None:
    """Share of sample prompts the starting model answers parsably; warns when it is zero.

    Runs on the device the model will train on (`preflight_device`; the model is moved there first), and returns
    None where it is skipped (processes other than the main one, sharded FSDP / ZeRO-3 runs).
    """
    from instructerc.infer.generation import generate_chat
    from instructerc.infer.predict import PredictConfig, rows_from_texts

    n = min(config.preflight_samples, len(data))
    if n == 0:
        return 1.0
    device = preflight_device(config, model)
    if device is None:
        logger.info("pre-flight generation skipped on this process (not the main process, or sharded weights)")
        return None
    if model is not None and model.device != device:
        model.to(device)
    sample = data.select(range(n))
    texts = generate_chat(model, tokenizer, sample["prompt"], max_new_tokens=config.max_completion_length)
    # Read exactly as predict reads answers (answer format, open vocabulary, speaker names, dialogue turns).
    # GRPO keeps only the reward columns: the id fields a prediction row also carries get placeholders.
    placeholders = {"split": config.train_split, "dialogue_id": "", "turn": 0, "speaker": "", "text": ""}
    rows = [placeholders | {k: v for k, v in row.items() if v is not None} for row in sample.to_list()]
    predictions = rows_from_texts(rows, texts, PredictConfig(output="-", dataset_dir=str(config.dataset_dir)))
    valid = sum(p["valid"] for p in predictions) * n / max(len(predictions), 1)
    if valid == 0:
        logger.warning(
            "the starting model gave no parsable answer on %d sample prompts: every reward will be 0 and "
            "GRPO will learn nothing. Start from an SFT adapter (--adapter) trained on this answer format.",
            n,
        )
    return valid / n


def load_policy(config: GRPOTrainConfig) -> tuple[Any, Any]:
    """The model to optimise (base + SFT adapter, trainable) and the LoRA config for a fresh adapter (or None)."""
    from instructerc.models import load_causal_lm

    model = load_causal_lm(
        config.model,
        dtype=config.model_dtype,
        load_in_4bit=config.load_in_4bit,
        cache_dir=config.cache_dir,
        threads=config.threads,
    )
    if config.adapter is None:
        return model, peft_config_from(config)
    from peft import PeftModel

    if not (Path(config.adapter) / "adapter_config.json").is_file():
        raise FileNotFoundError(f"{config.adapter}: not a LoRA adapter folder (no adapter_config.json)")
    return PeftModel.from_pretrained(model, config.adapter, is_trainable=True), None


def load_grpo_data(config: GRPOTrainConfig, rewards: Sequence[Any], tokenizer: Any) -> Any:
    """The training split with every column the rewards read, after the column and completion-length checks."""
    data = load_split(
        config,
        config.train_split,
        config.max_train_samples,
        seed=config.seed,
        keep=tuple(dict.fromkeys((*reward_columns(rewards), "completion"))),
    )
    check_reward_columns(rewards, data.column_names)
    check_completion_length(data["completion"], tokenizer, config.max_completion_length)
    return data.remove_columns("completion")


def run_grpo(config: GRPOTrainConfig) -> Path:
    """Pre-flight, train, save, write logs and the model card; returns the output folder."""
    from trl import GRPOTrainer

    from instructerc.models import load_tokenizer

    tokenizer = load_tokenizer(config.adapter or config.model, cache_dir=config.cache_dir)
    rewards, _ = build_rewards(config.rewards)
    data = load_grpo_data(config, rewards, tokenizer)
    model, peft_config = load_policy(config)
    check_model_answers(model, tokenizer, data, config)
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=rewards,
        args=config,
        train_dataset=data,
        processing_class=tokenizer,
        peft_config=peft_config,
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
        "method": "grpo",
        "base_model": config.model,
        "started_from_adapter": config.adapter,
        "steps": trainer.state.global_step,
        "processes": config.world_size,
        "train_examples": len(data),
        "rewards": config.rewards,
        "dev_scores": scores,
    }
    write_training_outputs(output_dir, config, trainer.state.log_history, meta)
    print(json.dumps({"output_dir": str(output_dir), "steps": meta["steps"], "dev_scores": scores}))
    return output_dir
