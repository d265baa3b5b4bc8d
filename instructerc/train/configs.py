"""Training configs: trl's own config classes, subclassed (as open-r1 does) with instructerc's fields.

Every trl / transformers option stays available under its usual name (`--learning_rate`, `--max_steps`, ...),
and the instructerc fields below say where the model and data come from and how LoRA is set up. Defaults
differ from trl's where a CPU-first toolkit needs it: CPU machines train without any extra flag (`use_cpu`
and bf16 autocast are chosen automatically), and gradient checkpointing is off (it costs 2x time on CPU).
These classes live apart from instructerc/config.py because importing trl takes seconds.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import trl

from instructerc.config import ConfigError, option


def _auto_device_defaults(config: Any) -> None:
    """CPU-only machines: use_cpu and bf16 autocast where the CPU does bf16 fast; no flags needed."""
    import torch

    from instructerc.models import cpu_supports_bf16

    if not torch.cuda.is_available():
        config.use_cpu = True
        if config.bf16 is None:
            config.bf16 = cpu_supports_bf16()
        if config.fp16:
            raise ConfigError("fp16 mixed precision needs a GPU; on CPU use bf16 (or neither)")


@dataclasses.dataclass
class ModelArguments:
    """Where the model comes from and how it is adapted (shared by SFT and GRPO)."""

    model: str = option(
        "base model: `embedded` (SmolLM2-135M-Instruct), a local folder or a hub id", default="embedded"
    )
    model_dtype: str = option("weights dtype: auto (bf16 where fast), bfloat16, float16, float32", default="auto")
    use_lora: bool = option("train a LoRA adapter (false: full fine-tuning)", default=True)
    lora_r: int = option("LoRA rank", default=16)
    lora_alpha: int = option("LoRA alpha (scaling = alpha / r)", default=32)
    lora_dropout: float = option("LoRA dropout", default=0.05)
    lora_target_modules: list[str] = option(
        "modules that get LoRA weights, or all-linear", default_factory=lambda: ["all-linear"]
    )
    load_in_4bit: bool = option("QLoRA: load the base model in 4-bit NF4 with bitsandbytes", default=False)
    threads: int | None = option("torch CPU threads (default: torch's choice)", default=None)
    cache_dir: str | None = option(
        "cache for converted models (default: $INSTRUCTERC_CACHE or ~/.cache/instructerc)", default=None
    )


@dataclasses.dataclass
class DataArguments:
    """Which built dataset (from `instructerc build-data`) to train on."""

    dataset_dir: str = option("a dataset folder written by `instructerc build-data`", default="outputs/data")
    train_split: str = option("split to train on", default="train")
    eval_split: str | None = option(
        "split to evaluate and select checkpoints on (never test); null: none", default="validation"
    )
    tasks: list[str] | None = option("train only on these tasks (emotion, speaker, impact); default: all", default=None)
    max_train_samples: int | None = option("use at most this many training examples (after shuffling)", default=None)
    max_eval_samples: int | None = option("use at most this many evaluation examples", default=None)
    dev_eval_samples: int = option("validation examples generated and scored for the model card (0: skip)", default=64)
    dev_max_new_tokens: int = option("generation length for those dev scores", default=128)


@dataclasses.dataclass
class LaunchArguments:
    """Multi-process launching through accelerate."""

    accelerate_config: str | None = option(
        "accelerate preset in configs/accelerate (ddp, cpu_ddp, zero2, zero3, "
        "fsdp) or a YAML path; launches `accelerate launch`",
        default=None,
    )
    num_processes: int = option("processes (GPUs) for accelerate_config", default=1)
    main_process_port: int | None = option(
        "rendezvous port for accelerate_config (default: the accelerate config's main_process_port, else a free "
        "port, so that two runs on one machine do not collide)",
        default=None,
    )

    def check_launch(self) -> None:
        if self.main_process_port is not None:
            if not self.accelerate_config:
                raise ConfigError("main_process_port needs accelerate_config (a single process has no rendezvous)")
            if not 1 <= self.main_process_port <= 65535:
                raise ConfigError(f"main_process_port: expected a port 1-65535, got {self.main_process_port}")


@dataclasses.dataclass
class SFTTrainConfig(LaunchArguments, DataArguments, ModelArguments, trl.SFTConfig):
    """`instructerc train sft`: LoRA / QLoRA supervised fine-tuning with trl's SFTTrainer."""

    output_dir: str = option("where the adapter, checkpoints, logs and model card go", default="outputs/sft")
    learning_rate: float = option("peak learning rate (LoRA likes higher rates than full fine-tuning)", default=2e-4)
    num_train_epochs: float = option("epochs (max_steps > 0 overrides)", default=3.0)
    per_device_train_batch_size: int = option("batch size per device", default=4)
    per_device_eval_batch_size: int = option("evaluation batch size per device", default=8)
    gradient_checkpointing: bool = option(
        "recompute activations to save memory (about 2x slower on CPU)", default=False
    )
    logging_steps: float = option("log every N steps", default=5)
    eval_strategy: str = option("when to evaluate on eval_split: steps, epoch or no", default="steps")
    eval_steps: float | None = option("evaluate every N steps", default=50)
    save_steps: float = option("save a checkpoint every N steps", default=50)
    save_total_limit: int | None = option("keep at most this many checkpoints", default=2)
    load_best_model_at_end: bool = option("finish with the checkpoint with the best eval_loss", default=True)
    metric_for_best_model: str | None = option("metric that selects the best checkpoint", default="eval_loss")
    report_to: str | list[str] | None = option("experiment trackers (none, tensorboard, wandb, ...)", default="none")

    def __post_init__(self) -> None:
        if self.eval_split in ("", "none"):
            self.eval_split = None
        # No eval split means no evaluation; eval_strategy "no" alone keeps eval_split for the dev scores.
        if self.eval_split is None or self.eval_strategy == "no":
            self.eval_strategy, self.load_best_model_at_end = "no", False
        if self.eval_split == "test":
            raise ConfigError("eval_split: test would select checkpoints on the test set; use validation")
        self.check_launch()
        _auto_device_defaults(self)
        super().__post_init__()


def _default_rewards() -> dict[str, float]:
    return {"label_accuracy": 1.0, "format": 0.5, "label_in_set": 0.25, "rationale_grounding": 0.5}


@dataclasses.dataclass
class GRPOTrainConfig(LaunchArguments, DataArguments, ModelArguments, trl.GRPOConfig):
    """`instructerc train grpo`: GRPO with verifiable emotion rewards (trl GRPOTrainer), from an SFT adapter."""

    adapter: str | None = option(
        "SFT adapter folder to start from (its LoRA weights keep training); null: a fresh LoRA on the base model",
        default=None,
    )
    rewards: dict = option(
        "reward name (`instructerc ls rewards`) or package.module:function -> weight", default_factory=_default_rewards
    )
    preflight_samples: int = option("prompts generated before training to check the model can answer at all", default=4)
    output_dir: str = option("where the adapter, logs and model card go", default="outputs/grpo")
    learning_rate: float = option("peak learning rate", default=1e-5)
    num_generations: int | None = option("completions sampled per prompt (the group)", default=4)
    max_completion_length: int | None = option("tokens generated per completion", default=128)
    per_device_train_batch_size: int = option(
        "completions per device and step (divisible by num_generations)", default=4
    )
    temperature: float = option("sampling temperature of the completions", default=1.0)
    gradient_checkpointing: bool = option(
        "recompute activations to save memory (about 2x slower on CPU)", default=False
    )
    logging_steps: float = option("log every N steps", default=1)
    save_steps: float = option("save a checkpoint every N steps", default=50)
    save_total_limit: int | None = option("keep at most this many checkpoints", default=2)
    eval_split: str | None = option(
        "split for the model card's dev scores (never test); null: none", default="validation"
    )
    report_to: str | list[str] | None = option("experiment trackers (none, tensorboard, wandb, ...)", default="none")

    def __post_init__(self) -> None:
        if self.eval_split == "test":
            raise ConfigError("eval_split: test would select on the test set; use validation")
        if not self.rewards:
            raise ConfigError("rewards: give at least one reward")
        self.check_launch()
        self.reward_weights = [float(w) for w in self.rewards.values()]
        from instructerc.train.grpo import check_batch, num_processes
        from instructerc.train.launch import needs_launch

        check_batch(self)  # before trl's own check, whose message does not say what to change
        if needs_launch(self.accelerate_config) and self.generation_batch_size is None:
            # This process only relaunches the command under accelerate, and trl's checks below would use its world
            # size of 1: hand them the generation batch the launched processes will have (they recompute it).
            steps = self.steps_per_generation or self.gradient_accumulation_steps
            self.generation_batch_size = self.per_device_train_batch_size * num_processes(self) * steps
            self.steps_per_generation = None
        _auto_device_defaults(self)
        super().__post_init__()
