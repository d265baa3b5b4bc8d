"""Multi-process training: re-run the same command under `accelerate launch` with a preset."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

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


def free_port() -> int:
    """A TCP port that nothing listens on now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("", 0))  # all interfaces, as torchrun's rendezvous store binds
        return sock.getsockname()[1]


def resolve_port(config_path: Path, port: int | None = None) -> int | None:
    """The rendezvous port to pass to `accelerate launch`: `port` when given; None when the accelerate config sets
    `main_process_port` itself (the user's choice) or spans several machines (they must agree on one); else a free
    port, so two runs on one machine do not both take accelerate's default 29500 and collide."""
    if port is not None:
        return port
    try:
        raw = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        raw = {}
    if not isinstance(raw, dict):
        raw = {}
    if raw.get("main_process_port") is not None or int(raw.get("num_machines") or 1) > 1:
        return None
    return free_port()


def launch(accelerate_config: str, num_processes: int, argv: Sequence[str], port: int | None = None) -> int:
    """Run `instructerc <argv>` in `num_processes` processes with accelerate; returns the exit code.

    The rendezvous port (`--main_process_port`) is `port`, else the accelerate config's `main_process_port`, else
    a free one (`resolve_port`).
    """
    config_path = accelerate_config_path(accelerate_config)
    port = resolve_port(config_path, port)
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(config_path),
        "--num_processes",
        str(num_processes),
        *(["--main_process_port", str(port)] if port is not None else []),
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
