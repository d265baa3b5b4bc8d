"""`instructerc demo`: the main job, end to end, on the bundled example dialogues and the embedded models."""

from __future__ import annotations

from pathlib import Path

from instructerc.config import BuildDataConfig, DemoConfig
from instructerc.resources import shipped_dir


def run_demo(config: DemoConfig) -> None:
    from instructerc.data_builders.build import build_dataset
    from instructerc.data_builders.preview import render_chat
    from instructerc.models import load_tokenizer

    examples = shipped_dir("examples") / "dialogues.jsonl"
    data_config = BuildDataConfig(
        dataset="jsonl",
        data_dir=str(examples),
        label_set="meld",
        output_dir=str(Path(config.output_dir) / "data"),
        splits=["train", "validation", "test"],
        n_demos=config.n_demos,
        cache_dir=config.cache_dir,
        show_progress=config.show_progress,
    )
    print(f"[1/1] building retrieval-augmented prompts from {examples}")
    result = build_dataset(data_config)
    print(result.summary())

    from datasets import load_from_disk

    dataset = load_from_disk(str(result.output_dir))
    example = dataset["validation"][0]
    print(
        f"\nOne validation example (dialogue {example['dialogue_id']}, turn {example['turn']}, gold: "
        f"{example['label']}), as the model sees it:\n"
    )
    print(render_chat(example, load_tokenizer(data_config.tokenizer, cache_dir=config.cache_dir)))
    print(
        f"\nartefacts: dataset {result.output_dir}  preview {result.output_dir / 'preview.jsonl'}  "
        f"build info {result.output_dir / 'build_info.json'}"
    )
