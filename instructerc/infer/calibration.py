"""Label-prior corrections for score mode: a log-offset per label, added to the label scores before the choice.

A fine-tuned model's label scores inherit the training prior (MELD is 47% neutral), which costs weighted F1 on the
rarer classes. `instructerc calibrate` fits one offset per label on validation predictions (`eval/calibration.py`)
and writes them as JSON; `predict --mode score --calibration FILE` (or `auto`: `calibration.json` in the adapter
or model folder) applies them. Reported probabilities stay the model's own; only the choice moves.
"""

from __future__ import annotations

import json
from pathlib import Path

from instructerc.config import ConfigError

CALIBRATION_FILE = "calibration.json"
KIND = "label_prior_correction"


def resolve_calibration(calibration: str | None, model_dir: str | None) -> str | None:
    """The calibration file a config means: a path, `auto` (the model folder's when it has one), or None."""
    if calibration in (None, "", "none"):
        return None
    if calibration == "auto":
        found = Path(model_dir or "") / CALIBRATION_FILE
        return str(found) if model_dir and found.is_file() else None
    if not Path(calibration).is_file():
        raise ConfigError(f"calibration: {calibration} does not exist (write one with `instructerc calibrate`)")
    return calibration


def load_calibration(path: str) -> dict[str, float]:
    """The per-label offsets of a calibration file, checked."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ConfigError(f"calibration: cannot read {path}: {err}") from err
    bias = data.get("bias") if isinstance(data, dict) else None
    if not isinstance(data, dict) or data.get("kind") != KIND or not isinstance(bias, dict):
        raise ConfigError(f"calibration: {path} is not a calibration file (expected kind {KIND!r} and a bias map)")
    if not all(isinstance(v, int | float) for v in bias.values()):
        raise ConfigError(f"calibration: {path}: every bias must be a number")
    return {str(k): float(v) for k, v in bias.items()}
