"""The bundled example dialogues built into an instruction dataset, the way several test modules need them."""

from __future__ import annotations

from pathlib import Path

from instructerc.config import BuildDataConfig
from instructerc.data_builders.build import build_dataset
from instructerc.resources import shipped_dir

EXAMPLES = shipped_dir("examples") / "dialogues.jsonl"
# Training settings for tests: one thread (fastest on a shared 2-core CPU), a small LoRA, no reporting.
FAST = {
    "threads": 1,
    "lora_r": 8,
    "lora_alpha": 16,
    "lora_target_modules": "q_proj,v_proj",
    "seed": 0,
    "report_to": "none",
}


def build_examples(out: Path, source: Path = EXAMPLES, **overrides) -> Path:
    """Build `source` (default: the bundled dialogues) into `out`: no retrieval, two history turns, MELD labels."""
    settings = dict(
        dataset="jsonl",
        data_dir=str(source),
        label_set="meld",
        output_dir=str(out),
        n_demos=0,
        window=2,
        show_progress=False,
    )
    build_dataset(BuildDataConfig(**{**settings, **overrides}))
    return out
