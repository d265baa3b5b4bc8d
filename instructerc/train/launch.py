"""Multi-process training: re-run the same command under `accelerate launch` with a preset."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from instructerc.resources import shipped_dir

LAUNCHED_ENV = "INSTRUCTERC_LAUNCHED"


def accelerate_config_path(name: str) -> Path:
    """A preset name from configs/accelerate (ddp, cpu_ddp, zero2, zero3, fsdp) or a YAML file path."""
    path = Path(name)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path
    preset = shipped_dir("configs") / "accelerate" / f"{name}.yaml"
    if not preset.is_file():
        known = sorted(p.stem for p in (shipped_dir("configs") / "accelerate").glob("*.yaml"))
        raise FileNotFoundError(f"accelerate config {name!r} not found: use a YAML file or one of {', '.join(known)}")
    return preset


def needs_launch(accelerate_config: str | None) -> bool:
    """True in the user's process; False inside the processes accelerate started."""
    return bool(accelerate_config) and os.environ.get(LAUNCHED_ENV) != "1"


def launch(accelerate_config: str, num_processes: int, argv: Sequence[str]) -> int:
    """Run `instructerc <argv>` in `num_processes` processes with accelerate; returns the exit code."""
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(accelerate_config_path(accelerate_config)),
        "--num_processes",
        str(num_processes),
        "-m",
        "instructerc.cli",
        *argv,
    ]
    env = {**os.environ, LAUNCHED_ENV: "1"}
    if not _cuda_available():
        # Without it torchrun's workers do not learn that they run on the CPU and each trains alone.
        env["ACCELERATE_USE_CPU"] = "true"
    print("launching:", " ".join(command), flush=True)
    return subprocess.call(command, env=env)


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()
