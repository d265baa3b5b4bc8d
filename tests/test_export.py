"""Export: a real (untrained but non-zero) LoRA adapter on the embedded model, merged and reloaded without peft.

Also checks the accelerate presets in configs/accelerate/ (they belong to the same "ship a model" story):
every preset loads with accelerate's own parser, and the CPU DDP preset really starts two gloo processes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from instructerc import export as export_mod
from instructerc.export import ExportError, export_model
from instructerc.models import ModelNotFoundError, resolve_model

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = [
    "Dialogue: A: I got the job! B: No way, congratulations! What emotion does A feel? Answer with one word.",
    "Dialogue: A: My dog died this morning. What emotion does A feel? Answer with one word.",
    "Dialogue: A: Who ate my sandwich?! I told you not to touch it! What emotion does A feel?",
]
TRAIN_META = {"base_model": "embedded", "method": "sft", "corpus": "meld", "templates": {"emotion": "emotion@v1"}}


@pytest.fixture(scope="module")
def adapter(tmp_path_factory):
    """(adapter folder, peft model in fp32, tokenizer): lora_B set to random values so the adapter matters."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base_path = resolve_model("embedded")
    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(str(base_path), dtype=torch.float32)
    config = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    model = get_peft_model(base, config)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0.0, 0.02)  # lora_B starts at zero: without this the merge would be a no-op
    model.eval()
    folder = tmp_path_factory.mktemp("adapter") / "run"
    tokenizer = AutoTokenizer.from_pretrained(str(base_path))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    # adapter_config.json records the training machine's absolute cache path; the metadata must win over it.
    config_path = folder / "adapter_config.json"
    adapter_config = json.loads(config_path.read_text())
    adapter_config["base_model_name_or_path"] = "/nonexistent/training/machine/cache"
    config_path.write_text(json.dumps(adapter_config))
    (folder / "instructerc_train.json").write_text(json.dumps(TRAIN_META))
    return folder, model, tokenizer


def _inputs(tokenizer, prompt):
    messages = [{"role": "user", "content": prompt}]
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)


def test_default_dtype_is_exact_float32():
    """The default export keeps float32: bf16 rounding flipped 1 of 6 greedy answers of a trained GRPO adapter."""
    import inspect

    from instructerc.config import ExportConfig, load_config

    assert inspect.signature(export_model).parameters["dtype"].default == "float32"
    assert load_config(ExportConfig, None, {"adapter": "run"}).dtype == "float32"  # the CLI's default


def _saved_dtypes(folder):
    from safetensors import safe_open

    with safe_open(str(folder / "model.safetensors"), framework="pt") as weights:
        return {str(weights.get_slice(name).get_dtype()) for name in weights.keys()}


@pytest.mark.slow
def test_export_matches_base_plus_adapter(adapter, tmp_path):
    """The default export (no dtype given) gives the logits and greedy output of base + adapter."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, peft_model, tokenizer = adapter
    out = export_model(folder, tmp_path / "merged")  # the default, as `instructerc export` runs it
    assert out == tmp_path / "merged"
    assert _saved_dtypes(out) == {"F32"}
    assert json.loads((out / "instructerc_export.json").read_text())["dtype"] == "float32"

    merged = AutoModelForCausalLM.from_pretrained(str(out), dtype=torch.float32).eval()
    assert type(merged).__module__.startswith("transformers.")
    merged_tok = AutoTokenizer.from_pretrained(str(out))
    with torch.no_grad():
        for prompt in PROMPTS:
            inputs = _inputs(merged_tok, prompt)
            assert torch.equal(inputs["input_ids"], _inputs(tokenizer, prompt)["input_ids"])
            expected = peft_model(**inputs).logits
            got = merged(**inputs).logits
            torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
            with peft_model.disable_adapter():
                base_logits = peft_model(**inputs).logits
            assert (base_logits - expected).abs().max() > 1e-2, "the adapter must change the logits"

            want = peft_model.generate(
                **inputs, max_new_tokens=12, do_sample=False, pad_token_id=tokenizer.eos_token_id
            )
            have = merged.generate(**inputs, max_new_tokens=12)  # greedy + eos come from generation_config.json
            assert have.tolist() == want.tolist()

    files = {p.name for p in out.iterdir()}
    assert {"model.safetensors", "config.json", "generation_config.json", "README.md"} <= files
    assert {"tokenizer.json", "tokenizer_config.json", "instructerc_train.json", "instructerc_export.json"} <= files
    assert "adapter_config.json" not in files and "adapter_model.safetensors" not in files
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no temporary folder left behind"

    assert merged_tok.chat_template and "<|im_start|>" in merged_tok.chat_template
    generation = json.loads((out / "generation_config.json").read_text())
    assert generation["eos_token_id"] == merged_tok.convert_tokens_to_ids("<|im_end|>")
    assert generation["pad_token_id"] == generation["eos_token_id"]
    assert generation.get("do_sample", False) is False

    card = (out / "README.md").read_text()
    assert "library_name: transformers" in card and "HuggingFaceTB/SmolLM2-135M-Instruct" in card
    assert "emotion@v1" in card
    assert json.loads((out / "instructerc_train.json").read_text()) == TRAIN_META
    meta = json.loads((out / "instructerc_export.json").read_text())
    assert meta["merged_from"] == str(folder.resolve()) and meta["base_model"] == "embedded" and meta["exported_at"]


@pytest.mark.slow
def test_bfloat16_export_when_asked(adapter, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    out = export_model(adapter[0], tmp_path / "bf16", dtype="bfloat16")
    assert _saved_dtypes(out) == {"BF16"}
    assert json.loads((out / "instructerc_export.json").read_text())["dtype"] == "bfloat16"
    merged = AutoModelForCausalLM.from_pretrained(str(out), dtype=torch.float32)
    assert (out / "model.safetensors").stat().st_size < 0.6 * 4 * merged.num_parameters()  # half of float32


def test_missing_adapter_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="adapter folder .* does not exist"):
        export_model(tmp_path / "nope", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_folder_without_adapter_config(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    with pytest.raises(ExportError, match="not a peft adapter: it has no adapter_config.json"):
        export_model(tmp_path / "model", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_bad_dtype_and_unsafe_output(tmp_path):
    folder = tmp_path / "adapter"
    folder.mkdir()
    (folder / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "embedded"}))
    with pytest.raises(ExportError, match="dtype must be one of"):
        export_model(folder, tmp_path / "out", dtype="int8")
    with pytest.raises(ExportError, match="must differ"):
        export_model(folder, folder)
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "notes.txt").write_text("keep me")
    with pytest.raises(ExportError, match="not a previous export"):
        export_model(folder, tmp_path / "precious")
    assert (tmp_path / "precious" / "notes.txt").read_text() == "keep me"


def test_base_model_not_found(tmp_path):
    folder = tmp_path / "adapter"
    folder.mkdir()
    (folder / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": str(tmp_path / "gone")}))
    with pytest.raises(ModelNotFoundError, match="base model .*gone.* not found"):
        export_model(folder, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA"}))
    with pytest.raises(ExportError, match="does not record its base model"):
        export_model(folder, tmp_path / "out")


@pytest.mark.slow
def test_failure_while_writing_leaves_nothing(adapter, tmp_path, monkeypatch):
    def broken(meta):
        raise RuntimeError("disk full")

    monkeypatch.setattr(export_mod, "render_model_card", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        export_model(adapter[0], tmp_path / "out")
    assert list(tmp_path.iterdir()) == [], "neither the output nor its temporary folder may remain"


# --- accelerate presets (configs/accelerate/) -------------------------------------------------------------------

PRESETS = sorted((ROOT / "configs" / "accelerate").glob("*.yaml"))


def test_all_presets_present():
    assert {p.stem for p in PRESETS} == {"ddp", "cpu_ddp", "zero2", "zero3", "fsdp"}


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.stem)
def test_preset_loads_with_accelerate(preset):
    import yaml
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.commands.launch import launch_command_parser

    config = load_config_from_file(str(preset))  # rejects unknown top-level keys
    assert config.num_processes == 2 and config.num_machines == 1
    # `accelerate launch` copies nested deepspeed/fsdp keys onto its own arguments: a typo would be ignored silently.
    dests = {action.dest for action in launch_command_parser()._actions}
    raw = yaml.safe_load(preset.read_text())
    nested = {**raw.get("deepspeed_config", {}), **raw.get("fsdp_config", {})}
    assert not [key for key in nested if key not in dests]
    if preset.stem.startswith("zero"):
        assert raw["deepspeed_config"]["zero_stage"] == int(preset.stem[-1]) and raw["mixed_precision"] == "bf16"
    if preset.stem == "zero3":
        assert raw["deepspeed_config"]["zero3_init_flag"] and raw["deepspeed_config"]["zero3_save_16bit_model"]
    if preset.stem == "fsdp":
        fsdp = raw["fsdp_config"]
        assert fsdp["fsdp_use_orig_params"] is True and fsdp["fsdp_auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"
        assert fsdp["fsdp_sync_module_states"] is True  # required by cpu_ram_efficient_loading
    if preset.stem == "cpu_ddp":
        assert raw["use_cpu"] is True


@pytest.mark.slow
def test_cpu_ddp_preset_starts_two_gloo_processes(tmp_path):
    script = tmp_path / "probe.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys

            import torch
            from accelerate import Accelerator

            state = Accelerator().state
            total = torch.tensor([state.process_index + 1.0])
            torch.distributed.all_reduce(total)
            line = (f"rank={state.process_index} n={state.num_processes} {state.distributed_type.value} "
                    f"{state.backend} sum={total.item():g}")
            # One write per line: print() writes text and newline apart, and two ranks share the pipe.
            sys.stdout.write(line + "\\n")
            sys.stdout.flush()
            torch.distributed.destroy_process_group()  # torch >= 2.13 aborts at exit with a live gloo group
            """
        )
    )
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
               str(ROOT / "configs" / "accelerate" / "cpu_ddp.yaml"), "--num_processes", "2",
               "--main_process_port", "0", str(script)]  # fmt: skip
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = sorted(line for line in result.stdout.splitlines() if line.startswith("rank="))
    assert lines == ["rank=0 n=2 MULTI_CPU gloo sum=3", "rank=1 n=2 MULTI_CPU gloo sum=3"], result.stdout
