"""The benchmarks' common input: MELD dev built as label-only emotion prompts, no demonstrations."""

from __future__ import annotations

from pathlib import Path

from instructerc.config import BuildDataConfig
from instructerc.data_builders.build import build_dataset
from instructerc.infer.sources import load_built_rows


def build_meld_dev(meld_dir: str, out: Path, n: int) -> list[dict]:
    """Build MELD's validation split into `out` (template emotion_label_only, n_demos 0); its first n rows."""
    build_dataset(
        BuildDataConfig(
            dataset="meld",
            data_dir=meld_dir,
            output_dir=str(out),
            splits=["validation"],
            template="emotion_label_only",
            n_demos=0,
            show_progress=False,
        )
    )
    return load_built_rows(out, "validation")[:n]
