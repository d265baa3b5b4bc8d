"""What a training run leaves beside its weights: config, log, metadata, dev scores and the model card."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import instructerc
from instructerc.config import to_yaml
from instructerc.io import atomic_write_json, atomic_write_jsonl, atomic_write_text

TRAIN_META = "instructerc_train.json"


def dataset_metadata(dataset_dir: str | Path, split: str = "train") -> dict[str, Any]:
    """Corpus, label set, template versions and the rationale sources of the training split of a built dataset.

    Rationale sources are counted over `split` only (the split trained on), never validation or test, and the
    split is recorded next to the counts (`rationale_source_split`) so the model card can say what was counted.
    """
    from datasets import load_from_disk

    info_path = Path(dataset_dir) / "build_info.json"
    info = json.loads(info_path.read_text(encoding="utf-8")) if info_path.is_file() else {}
    sources: Counter[str] = Counter()
    dataset = load_from_disk(str(dataset_dir))
    if split in dataset and "rationale_source" in dataset[split].column_names:
        sources.update(dataset[split]["rationale_source"])
    return {
        "dataset": str(dataset_dir),
        "corpus": info.get("dataset"),
        "label_set": info.get("label_set"),
        "templates": {task: t.get("id") for task, t in info.get("templates", {}).items()},
        "rationale_source": dict(sources),
        "rationale_source_split": split,
        "dataset_content_hash": info.get("content_hash"),
    }


def sharded_run(config: Any) -> bool:
    """FSDP or DeepSpeed ZeRO-3: the weights are sharded across processes (ZeRO-3 even while loading)."""
    if os.environ.get("ACCELERATE_USE_FSDP", "").lower() in ("1", "true") or getattr(config, "fsdp", None):
        return True
    if os.environ.get("ACCELERATE_USE_DEEPSPEED", "").lower() in ("1", "true"):
        if os.environ.get("ACCELERATE_DEEPSPEED_ZERO_STAGE") == "3":
            return True
    if getattr(config, "deepspeed", None):
        from transformers.integrations import is_deepspeed_zero3_enabled

        return is_deepspeed_zero3_enabled()
    return False


def dev_scores(model: Any, tokenizer: Any, config: Any) -> dict[str, float]:
    """Generate answers for up to `dev_eval_samples` emotion examples of eval_split and score them, reading the
    answers exactly as `predict` does (the row's answer format; one row per turn of a dialogue-unit example)."""
    from datasets import load_from_disk

    from instructerc.eval.metrics import closed_set_scores
    from instructerc.infer.generation import generate_chat
    from instructerc.infer.predict import PredictConfig, generation_budget, rows_from_texts

    if config.dev_eval_samples <= 0:
        return {}
    if sharded_run(config):
        # The main process alone holds only its shard once the process group is gone.
        print("dev scores skipped: the weights were sharded (FSDP / ZeRO-3); score the saved adapter with `predict`")
        return {}
    data = load_from_disk(str(config.dataset_dir))[config.eval_split]
    data = data.filter(lambda row: row["task"] == "emotion" and row["label"] is not None)
    if len(data) == 0:
        return {}
    rows = data.select(range(min(config.dev_eval_samples, len(data)))).to_list()
    for row in rows:
        row["split"] = row["split"] or config.eval_split
    texts = generate_chat(
        model,
        tokenizer,
        [row["prompt"] for row in rows],
        max_new_tokens=generation_budget(rows, config.dev_max_new_tokens),
        batch_size=config.per_device_eval_batch_size,
    )
    predictions = rows_from_texts(rows, texts, PredictConfig(output="-", dataset_dir=str(config.dataset_dir)))
    scores = closed_set_scores(
        [p["gold"] for p in predictions], [p["predicted"] for p in predictions], rows[0]["label_set"]
    )
    scores["well_formed_rate"] = sum(p["well_formed"] for p in predictions) / len(predictions)
    return scores


def save_final_model(trainer: Any, output_dir: Path) -> None:
    """Save the final weights; FSDP checkpoints shard the state dict, the final save must be whole."""
    if getattr(trainer, "is_fsdp_enabled", False):
        trainer.accelerator.state.fsdp_plugin.set_state_dict_type("FULL_STATE_DICT")
    trainer.save_model(str(output_dir))


def leave_process_group() -> None:
    """Wait for every process, then tear the process group down before the interpreter exits.

    Without it the non-main processes return while the main one still writes its outputs, and gloo's threads are
    torn down by interpreter exit: "terminate called without an active exception" kills a rank at random (seen
    in CI), and accelerate reports the whole run as failed. Nothing after this point may use collectives.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def lora_metadata(config: Any) -> dict[str, Any] | None:
    if not getattr(config, "use_lora", False):
        return None
    return {
        "r": config.lora_r,
        "alpha": config.lora_alpha,
        "dropout": config.lora_dropout,
        "target_modules": list(config.lora_target_modules),
        "load_in_4bit": config.load_in_4bit,
    }


def write_training_outputs(output_dir: Path, config: Any, log_history: list[dict], meta: dict[str, Any]) -> None:
    """resolved_config.yaml, training_log.jsonl, instructerc_train.json and README.md (the model card)."""
    from instructerc.model_card import render_model_card
    from instructerc.models import resolve_model

    meta = {
        **meta,
        "lora": lora_metadata(config),
        "instructerc_version": instructerc.__version__,
        "base_model_path": str(resolve_model(meta["base_model"], getattr(config, "cache_dir", None))),
    }
    atomic_write_text(output_dir / "resolved_config.yaml", to_yaml(config))
    atomic_write_jsonl(output_dir / "training_log.jsonl", log_history)
    atomic_write_json(output_dir / TRAIN_META, meta)
    atomic_write_text(output_dir / "README.md", render_model_card(meta))
