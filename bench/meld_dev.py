"""The benchmarks' common input: MELD dev built as label-only emotion prompts, no demonstrations."""

from __future__ import annotations

from pathlib import Path

from instructerc.config import BuildDataConfig
from instructerc.data_builders.build import build_dataset
from instructerc.infer.sources import load_built_rows


def build_meld_dev(meld_dir: str, out: Path, n: int | None = None, **settings) -> list[dict]:
    """Build MELD's validation split into `out` (template emotion_label_only, n_demos 0, unless `settings` say
    otherwise: template, window, max_dialogues, ...); its first n rows."""
    defaults = {"template": "emotion_label_only", "n_demos": 0, "show_progress": False}
    build_dataset(
        BuildDataConfig(
            dataset="meld", data_dir=meld_dir, output_dir=str(out), splits=["validation"], **(defaults | settings)
        )
    )
    return load_built_rows(out, "validation")[:n]
