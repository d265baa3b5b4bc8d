"""Merge a trained LoRA adapter into its base model and save a plain Hugging Face folder.

The result reloads with `AutoModelForCausalLM.from_pretrained` alone (no peft), carries the tokenizer with its
chat template, a greedy generation config whose eos is the chat turn terminator, a model card, and the
training metadata. It is written atomically: a failed export leaves no folder behind.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from pathlib import Path
from typing import Any

from instructerc import __version__
from instructerc.io import atomic_directory, atomic_write_json, atomic_write_text
from instructerc.model_card import render_model_card
from instructerc.models import ModelNotFoundError, resolve_model

ADAPTER_CONFIG = "adapter_config.json"
TRAIN_META = "instructerc_train.json"  # written by `instructerc train` next to the adapter
EXPORT_META = "instructerc_export.json"
DTYPES = ("float32", "bfloat16", "float16")
# float32 by default: the merged weights then give the same greedy output as base + adapter. Casting them to
# bf16/fp16 halves the folder but rounds every weight, which flipped 1 of 6 greedy answers of a trained GRPO
# adapter in an audit (sadness -> neutral); choose it knowingly (docs/export.md).
DEFAULT_DTYPE = "float32"


class ExportError(ValueError):
    """The adapter or the export request is unusable; the message says what to fix."""


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ExportError(f"cannot read {path}: {err}") from err
    if not isinstance(data, dict):
        raise ExportError(f"{path} does not hold a JSON object")
    return data


def read_adapter(adapter_dir: str | os.PathLike) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    """Check that `adapter_dir` is a peft adapter; returns (folder, adapter_config, training metadata or {})."""
    folder = Path(adapter_dir).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"adapter folder {str(folder)!r} does not exist")
    if not (folder / ADAPTER_CONFIG).is_file():
        raise ExportError(
            f"{str(folder)!r} is not a peft adapter: it has no {ADAPTER_CONFIG} "
            "(pass the folder `instructerc train` wrote, or one of its checkpoint-N folders)"
        )
    adapter_config = _read_json(folder / ADAPTER_CONFIG)
    train_meta = _read_json(folder / TRAIN_META) if (folder / TRAIN_META).is_file() else {}
    return folder, adapter_config, train_meta


def base_model_name(adapter_config: dict[str, Any], train_meta: dict[str, Any], override: str | None = None) -> str:
    """Which base model to merge into: the explicit override, else the training metadata, else peft's record.

    The training metadata wins over adapter_config.json because the latter holds the absolute cache path of
    the machine that trained (useless elsewhere), while the metadata keeps the portable name ("embedded").
    """
    name = override or train_meta.get("base_model") or adapter_config.get("base_model_name_or_path")
    if not name:
        raise ExportError("the adapter does not record its base model: pass base_model= (e.g. 'embedded')")
    return str(name)


def _check_output(output: Path, adapter: Path) -> None:
    if output.resolve() == adapter.resolve():
        raise ExportError("the output folder must differ from the adapter folder")
    # The atomic swap replaces an existing folder wholesale: only allow that for a previous export.
    if output.exists() and (not output.is_dir() or (any(output.iterdir()) and not (output / EXPORT_META).is_file())):
        raise ExportError(f"{str(output)!r} exists and is not a previous export; choose another output folder")


def _load_base(name: str, cache_dir: str | os.PathLike | None) -> tuple[Any, Path | str]:
    import torch
    from transformers import AutoModelForCausalLM

    resolved = resolve_model(name, cache_dir)
    try:
        # Merge in float32 so W + BA is rounded once, when cast to the target dtype, not twice.
        model = AutoModelForCausalLM.from_pretrained(str(resolved), dtype=torch.float32)
    except (OSError, ValueError) as err:
        raise ModelNotFoundError(
            f"base model {name!r} not found (looked for {str(resolved)!r}): pass base_model= with a local folder, "
            f"'embedded', or a hub id that is in the local cache. Cause: {err}"
        ) from err
    return model, resolved


def _load_tokenizer(adapter: Path, base: Path | str) -> Any:
    """The adapter's tokenizer when training saved one (it may add tokens or a template), else the base's."""
    from transformers import AutoTokenizer

    has_own = (adapter / "tokenizer_config.json").is_file()
    tokenizer = AutoTokenizer.from_pretrained(str(adapter if has_own else base))
    if not getattr(tokenizer, "chat_template", None) and has_own:
        tokenizer.chat_template = AutoTokenizer.from_pretrained(str(base)).chat_template
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _generation_config(model: Any, tokenizer: Any) -> Any:
    """Greedy decoding that stops at the tokenizer's eos (for chat models the end-of-turn token)."""
    from transformers import GenerationConfig

    eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else model.config.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else model.config.bos_token_id
    # Only greedy settings: sampling knobs (temperature, top_p) make transformers warn under do_sample=False.
    return GenerationConfig(bos_token_id=bos, eos_token_id=eos, pad_token_id=pad, do_sample=False, num_beams=1)


def export_model(
    adapter_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    base_model: str | None = None,
    dtype: str = DEFAULT_DTYPE,
    cache_dir: str | os.PathLike | None = None,
) -> Path:
    """Merge the LoRA adapter in `adapter_dir` into its base model and save it to `output_dir`; returns it.

    `base_model` overrides the base recorded with the adapter ("embedded", a local folder or a hub id);
    `dtype` is the dtype of the saved weights: float32 (default) keeps the greedy output of base + adapter, bfloat16 and
    float16 halve the size at the cost of rounding (greedy answers can change). Raises FileNotFoundError /
    ExportError / ModelNotFoundError with a message saying what to fix; on any failure `output_dir` is left as it
    was.
    """
    if dtype not in DTYPES:
        raise ExportError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    adapter, adapter_config, train_meta = read_adapter(adapter_dir)
    output = Path(output_dir).expanduser()
    _check_output(output, adapter)
    name = base_model_name(adapter_config, train_meta, base_model)

    import torch
    from peft import PeftModel

    base, resolved = _load_base(name, cache_dir)
    tokenizer = _load_tokenizer(adapter, resolved)
    if len(tokenizer) > base.get_input_embeddings().weight.shape[0]:
        base.resize_token_embeddings(len(tokenizer))  # training added tokens; the adapter expects the new size
    try:
        model = PeftModel.from_pretrained(base, str(adapter)).merge_and_unload()
    except (ValueError, RuntimeError, KeyError) as err:
        raise ExportError(f"cannot apply the adapter {str(adapter)!r} to base model {name!r}: {err}") from err
    model = model.to(getattr(torch, dtype))
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    model.generation_config = _generation_config(model, tokenizer)

    exported_at = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    export_meta = {
        "merged_from": str(adapter.resolve()),
        "exported_at": exported_at,
        "base_model": name,
        "base_model_path": str(resolved),
        "dtype": dtype,
        "instructerc_version": __version__,
    }
    card_meta = {**train_meta, **export_meta, "merged": True, "model_path": str(output)}
    card_meta["instructerc_version"] = train_meta.get("instructerc_version", __version__)
    with atomic_directory(output) as tmp:
        tmp.chmod(0o755)  # mkdtemp makes it private; exports are meant to be shared
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        atomic_write_text(tmp / "README.md", render_model_card(card_meta))
        if train_meta:
            atomic_write_json(tmp / TRAIN_META, train_meta)
        atomic_write_json(tmp / EXPORT_META, export_meta)  # last: marks a complete export
        if (tmp / ADAPTER_CONFIG).exists():  # a merged model must not look like an adapter to loaders
            raise ExportError("internal error: the merged folder still holds an adapter_config.json")
    return output
