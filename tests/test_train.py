"""Real training runs with the embedded model: LoRA SFT, GRPO from its adapter, QLoRA, pre-flight checks.

Every run is a few steps on the bundled examples with one torch thread (two threads on a shared 2-core
machine were 3x slower, see docs/benchmarks.md).
"""

import json
import logging

import pytest
import torch
from examples_data import FAST, build_examples
from safetensors.torch import load_file

from instructerc.config import ConfigError, load_config
from instructerc.train import grpo as grpo_module
from instructerc.train.configs import GRPOTrainConfig, SFTTrainConfig
from instructerc.train.grpo import (
    PreflightError,
    check_batch,
    check_completion_length,
    check_reward_columns,
    load_grpo_data,
    preflight_device,
)
from instructerc.train.rewards import build_rewards

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    return str(build_examples(tmp_path_factory.mktemp("data") / "examples"))


@pytest.fixture(scope="module")
def sft_dir(dataset_dir, tmp_path_factory):
    from instructerc.train.sft import run_sft

    out = tmp_path_factory.mktemp("sft")
    # Four examples in one batch of four: every step sees the same batch, so the loss must go down.
    config = load_config(
        SFTTrainConfig,
        None,
        {
            **FAST,
            "dataset_dir": dataset_dir,
            "output_dir": str(out),
            "max_steps": 4,
            "max_train_samples": 4,
            "per_device_train_batch_size": 4,
            "learning_rate": 2e-3,
            "logging_steps": 1,
            "eval_steps": 4,
            "save_steps": 4,
            "max_eval_samples": 4,
            "dev_eval_samples": 2,
            "dev_max_new_tokens": 16,
        },
    )
    run_sft(config)
    return out


def test_sft_lowers_the_loss_and_changes_the_lora_weights(sft_dir):
    log = [json.loads(line) for line in (sft_dir / "training_log.jsonl").read_text().splitlines()]
    losses = [entry["loss"] for entry in log if "loss" in entry]
    assert len(losses) == 4 and losses[-1] < losses[0]
    assert any("eval_loss" in entry for entry in log)
    weights = load_file(str(sft_dir / "adapter_model.safetensors"))
    lora_b = [w for name, w in weights.items() if "lora_B" in name]
    assert lora_b and all(w.abs().sum() > 0 for w in lora_b)  # lora_B starts at zero: nonzero means trained


def test_sft_output_folder_is_complete(sft_dir):
    for name in (
        "adapter_config.json",
        "adapter_model.safetensors",
        "chat_template.jinja",
        "tokenizer.json",
        "resolved_config.yaml",
        "training_log.jsonl",
        "instructerc_train.json",
        "README.md",
    ):
        assert (sft_dir / name).is_file(), name
    meta = json.loads((sft_dir / "instructerc_train.json").read_text())
    assert meta["method"] == "sft" and meta["base_model"] == "embedded" and meta["steps"] == 4
    assert meta["templates"] == {"emotion": "emotion@v1"} and meta["label_set"]["name"] == "meld"
    assert {"accuracy", "weighted_f1", "invalid_rate"} <= set(meta["dev_scores"])
    assert meta["lora"]["r"] == 8
    card = (sft_dir / "README.md").read_text()
    assert "emotion@v1" in card and "embedded" in card
    assert "max_steps: 4" in (sft_dir / "resolved_config.yaml").read_text()


def test_sft_adapter_reloads_and_changes_the_output(sft_dir):
    from peft import PeftModel

    from instructerc.models import load_causal_lm, load_tokenizer

    tokenizer = load_tokenizer("embedded")
    inputs = tokenizer("Ross: We were on a break!", return_tensors="pt")
    base = load_causal_lm("embedded", dtype="float32")
    with torch.no_grad():
        base_logits = base(**inputs).logits
        tuned = PeftModel.from_pretrained(base, str(sft_dir))
        tuned_logits = tuned(**inputs).logits
    assert not torch.allclose(base_logits, tuned_logits, atol=1e-4)


def test_grpo_from_the_sft_adapter_logs_every_reward_and_trains(sft_dir, dataset_dir, tmp_path, monkeypatch):
    from instructerc.train.grpo import run_grpo

    # A user reward on a real dataset column (`speaker`), named by dotted path as docs/rewards.md shows.
    (tmp_path / "my_rewards.py").write_text(
        "def politeness(completions, speaker, **kwargs):\n"
        "    assert len(speaker) == len(completions) and all(isinstance(s, str) and s for s in speaker)\n"
        "    return [0.0 for _ in completions]\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    before = load_file(str(sft_dir / "adapter_model.safetensors"))
    config = load_config(
        GRPOTrainConfig,
        None,
        {
            **FAST,
            "dataset_dir": dataset_dir,
            "adapter": str(sft_dir),
            "output_dir": str(tmp_path / "grpo"),
            # Groups of 4 sampled completions, 2 prompts a step: a group whose rewards all tie has zero advantage
            # and teaches nothing, so enough completions are needed for some rewards to differ.
            "max_steps": 2,
            "num_generations": 4,
            "per_device_train_batch_size": 8,
            "max_completion_length": 48,
            "learning_rate": 1e-3,
            "preflight_samples": 1,
            "dev_eval_samples": 0,
            "save_strategy": "no",
            "rewards": {
                "label_accuracy": 1.0,
                "format": 0.5,
                "label_in_set": 0.25,
                "rationale_grounding": 0.5,
                "my_rewards:politeness": 0.1,
            },
        },
    )
    run_grpo(config)
    log = [json.loads(line) for line in (tmp_path / "grpo" / "training_log.jsonl").read_text().splitlines()]
    logged = {key for entry in log for key in entry}
    for name in ("label_accuracy", "format_reward", "label_in_set_reward", "rationale_grounding_reward", "politeness"):
        assert f"rewards/{name}/mean" in logged, sorted(logged)
    assert any(entry.get("reward_std", 0) > 0 for entry in log), "every group tied: nothing to learn from"
    after = load_file(str(tmp_path / "grpo" / "adapter_model.safetensors"))
    assert set(after) == set(before)
    assert any(not torch.equal(before[name], after[name]) for name in before)
    meta = json.loads((tmp_path / "grpo" / "instructerc_train.json").read_text())
    assert meta["method"] == "grpo" and meta["started_from_adapter"] == str(sft_dir)


def test_qlora_step(dataset_dir, tmp_path, monkeypatch):
    import bitsandbytes as bnb

    from instructerc.train import completion_loss
    from instructerc.train.sft import run_sft

    trained = []

    class RecordingSFTTrainer(completion_loss.CompletionLossSFTTrainer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            trained.append(self.model)

    # run_sft imports its trainer class from this module when it runs
    monkeypatch.setattr(completion_loss, "CompletionLossSFTTrainer", RecordingSFTTrainer)

    config = load_config(
        SFTTrainConfig,
        None,
        {
            **FAST,
            "dataset_dir": dataset_dir,
            "output_dir": str(tmp_path / "qlora"),
            "load_in_4bit": True,
            "max_steps": 1,
            "max_train_samples": 2,
            "per_device_train_batch_size": 2,
            "eval_strategy": "no",
            "dev_eval_samples": 0,
            "save_strategy": "no",
            "logging_steps": 1,
        },
    )
    run_sft(config)
    log = [json.loads(line) for line in (tmp_path / "qlora" / "training_log.jsonl").read_text().splitlines()]
    assert any("loss" in entry and entry["loss"] == entry["loss"] for entry in log)  # a finite loss was logged
    assert json.loads((tmp_path / "qlora" / "instructerc_train.json").read_text())["lora"]["load_in_4bit"] is True
    # The model really is QLoRA: bitsandbytes 4-bit NF4 Linear layers, frozen, with trainable LoRA weights on top.
    (model,) = trained
    linear4bit = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert linear4bit, "no bitsandbytes 4-bit Linear layer: the base model was not quantized"
    assert all(m.weight.quant_state.quant_type == "nf4" and not m.weight.requires_grad for m in linear4bit)
    assert all(isinstance(m.weight, bnb.nn.Params4bit) for m in linear4bit)
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in name for name in trainable)


# --- pre-flight checks: each failure mode gives an actionable error --------------------------------------------


def test_preflight_batch_not_divisible_by_group(dataset_dir):
    with pytest.raises(PreflightError, match="set per_device_train_batch_size to a multiple of 4"):
        load_config(
            GRPOTrainConfig, None, {"dataset_dir": dataset_dir, "num_generations": 4, "per_device_train_batch_size": 3}
        )
    config = load_config(
        GRPOTrainConfig, None, {"dataset_dir": dataset_dir, "num_generations": 4, "per_device_train_batch_size": 8}
    )
    check_batch(config)


def test_grpo_batch_check_counts_processes(dataset_dir, monkeypatch):
    """trl's generation batch is per_device_train_batch_size x processes x steps_per_generation."""
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    two = {"dataset_dir": dataset_dir, "num_generations": 4, "per_device_train_batch_size": 2}
    with pytest.raises(PreflightError, match=r"2 x 1 x 1"):
        load_config(GRPOTrainConfig, None, two)  # one process: 2 completions are half a group
    # The user's process, before `accelerate launch` starts the two workers: 2 x 2 = 4 is one group.
    config = load_config(GRPOTrainConfig, None, {**two, "accelerate_config": "cpu_ddp", "num_processes": 2})
    assert config.generation_batch_size == 4  # what trl's own check in this (one) process was given
    check_batch(config)
    with pytest.raises(PreflightError, match=r"2 x 3 x 1"):
        check_batch(load_config(GRPOTrainConfig, None, {**two, "accelerate_config": "cpu_ddp", "num_processes": 3}))
    # Inside a launched worker (no accelerate_config to relaunch with) the world size comes from the environment.
    config.accelerate_config, config.generation_batch_size, config.steps_per_generation = None, None, None
    monkeypatch.setenv("WORLD_SIZE", "2")
    check_batch(config)
    monkeypatch.setenv("WORLD_SIZE", "1")
    with pytest.raises(PreflightError):
        check_batch(config)


def test_grpo_keeps_the_columns_custom_rewards_need(dataset_dir, tokenizer):
    def politeness(completions, speaker, **kwargs):
        return [0.0 for _ in completions]

    def needs_nothing_real(completions, mood, **kwargs):
        return [0.0 for _ in completions]

    rewards, _ = build_rewards({"label_accuracy": 1.0, "rationale_grounding": 0.5})
    config = load_config(GRPOTrainConfig, None, {"dataset_dir": dataset_dir, "max_completion_length": 512})
    data = load_grpo_data(config, [*rewards, politeness], tokenizer)
    assert {"prompt", "label", "label_set", "context", "speaker"} <= set(data.column_names)
    assert "completion" not in data.column_names and "dialogue_id" not in data.column_names
    assert data[0]["speaker"]
    with pytest.raises(PreflightError, match=r"reward needs_nothing_real needs dataset columns \['mood'\]"):
        load_grpo_data(config, [*rewards, needs_nothing_real], tokenizer)


@pytest.fixture
def no_launch_env(monkeypatch):
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "ACCELERATE_USE_FSDP", "ACCELERATE_USE_DEEPSPEED"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("ACCELERATE_DEEPSPEED_ZERO_STAGE", raising=False)
    return monkeypatch


def test_preflight_device_choice(no_launch_env):
    from types import SimpleNamespace

    monkeypatch = no_launch_env
    gpu_run = SimpleNamespace(use_cpu=False, fsdp="", deepspeed=None)
    cpu_run = SimpleNamespace(use_cpu=True, fsdp="", deepspeed=None)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert preflight_device(gpu_run) == torch.device("cpu")  # no CUDA: the CPU, as before
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert preflight_device(cpu_run) == torch.device("cpu")  # --use_cpu on a GPU machine
    assert preflight_device(gpu_run) == torch.device("cuda", 0)  # where the Trainer will put the model
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert preflight_device(gpu_run) == torch.device("cuda", 1)
    quantized = SimpleNamespace(is_quantized=True, device=torch.device("cuda", 0))
    assert preflight_device(gpu_run, quantized) == torch.device("cuda", 0)  # bitsandbytes models cannot move
    monkeypatch.setenv("RANK", "1")
    assert preflight_device(gpu_run) is None and preflight_device(cpu_run) is None  # the main process checks
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    monkeypatch.setenv("ACCELERATE_DEEPSPEED_ZERO_STAGE", "2")
    assert preflight_device(gpu_run) == torch.device("cuda", 1)  # ZeRO-2 keeps whole weights on every GPU
    monkeypatch.setenv("ACCELERATE_DEEPSPEED_ZERO_STAGE", "3")
    assert preflight_device(gpu_run) is None  # ZeRO-3 weights may be empty shards before the Trainer
    monkeypatch.delenv("ACCELERATE_USE_DEEPSPEED")
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    assert preflight_device(gpu_run) is None
    assert preflight_device(SimpleNamespace(use_cpu=False, fsdp="full_shard", deepspeed=None)) is None


class FakeModel:
    def __init__(self):
        self.device, self.moves = torch.device("cpu"), []

    def to(self, device):
        self.moves.append(device)
        self.device = device
        return self


def test_preflight_generates_on_the_training_device(dataset_dir, no_launch_env):
    from datasets import load_from_disk

    import instructerc.infer.generation as generation

    monkeypatch = no_launch_env
    seen = []

    def fake_generate(model, tokenizer, prompts, **kwargs):
        seen.append(model.device)
        return ["<think>x</think><answer>joy</answer>"] * len(prompts)

    monkeypatch.setattr(generation, "generate_chat", fake_generate)
    data = load_from_disk(dataset_dir)["train"]
    config = load_config(GRPOTrainConfig, None, {"dataset_dir": dataset_dir, "preflight_samples": 2})
    model = FakeModel()
    assert grpo_module.check_model_answers(model, None, data, config) == 1.0
    assert model.moves == [] and seen == [torch.device("cpu")]  # CPU runs: unchanged, nothing moved
    config.use_cpu = False
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert grpo_module.check_model_answers(model, None, data, config) == 1.0
    assert model.moves == [torch.device("cuda", 0)] and seen[-1] == torch.device("cuda", 0)
    monkeypatch.setenv("RANK", "1")
    assert grpo_module.check_model_answers(FakeModel(), None, data, config) is None  # skipped, nothing generated
    assert len(seen) == 2


def test_launch_picks_a_free_port_unless_given(tmp_path, monkeypatch):
    import socket

    from instructerc.train import launch as launch_module

    commands = []
    monkeypatch.setattr(launch_module.subprocess, "call", lambda command, env: commands.append(command) or 0)

    def port_of(command):
        return int(command[command.index("--main_process_port") + 1]) if "--main_process_port" in command else None

    assert launch_module.launch("cpu_ddp", 2, ["train", "sft"]) == 0
    assert launch_module.launch("cpu_ddp", 2, ["train", "sft"]) == 0
    ports = [port_of(c) for c in commands]
    assert all(p and p != 29500 for p in ports), ports  # not accelerate's default, which two runs would share
    with socket.socket() as sock:
        sock.bind(("", ports[0]))  # it was free
    assert commands[0][-3:] == ["instructerc.cli", "train", "sft"]
    launch_module.launch("cpu_ddp", 2, ["train", "sft"], port=29611)
    assert port_of(commands[-1]) == 29611
    own = tmp_path / "mine.yaml"
    own.write_text("distributed_type: MULTI_GPU\nnum_machines: 1\nnum_processes: 2\nmain_process_port: 29612\n")
    launch_module.launch(str(own), 2, ["train", "sft"])
    assert port_of(commands[-1]) is None  # the config's own port: accelerate reads it from the file
    cluster = tmp_path / "cluster.yaml"
    cluster.write_text("distributed_type: MULTI_GPU\nnum_machines: 2\nnum_processes: 16\n")
    launch_module.launch(str(cluster), 16, ["train", "sft"])
    assert port_of(commands[-1]) is None  # machines must agree on a port: never a random local one

    from instructerc.cli import main

    assert main(["train", "sft", "--accelerate_config", "cpu_ddp", "--num_processes", "2", "--main_process_port",
                 "29613", "--max_steps", "1"]) == 0  # fmt: skip
    assert port_of(commands[-1]) == 29613  # --main_process_port on the command line reaches accelerate launch
    with pytest.raises(ConfigError, match="needs accelerate_config"):
        load_config(SFTTrainConfig, None, {"main_process_port": 29613})
    with pytest.raises(ConfigError, match="1-65535"):
        load_config(SFTTrainConfig, None, {"accelerate_config": "cpu_ddp", "main_process_port": 70000})


def test_preflight_completion_length_below_the_sft_targets(tokenizer):
    completions = [[{"role": "assistant", "content": "<think>" + "word " * 60 + "</think><answer>joy</answer>"}]]
    with pytest.raises(PreflightError, match=r"set max_completion_length >= \d+"):
        check_completion_length(completions, tokenizer, 16)
    check_completion_length(completions, tokenizer, 512)


def test_preflight_reward_columns():
    rewards, _ = build_rewards({"label_accuracy": 1.0, "rationale_grounding": 0.5})
    with pytest.raises(PreflightError, match=r"needs dataset columns \['context'\]"):
        check_reward_columns(rewards, ["prompt", "label", "label_set"])


def test_preflight_warns_when_the_model_never_answers(dataset_dir, monkeypatch, caplog):
    from datasets import load_from_disk

    import instructerc.infer.generation as generation

    monkeypatch.setattr(generation, "generate_chat", lambda *a, **k: ["I cannot tell.", "Hmm"])
    config = load_config(GRPOTrainConfig, None, {"dataset_dir": dataset_dir, "preflight_samples": 2})
    data = load_from_disk(dataset_dir)["train"]
    with caplog.at_level(logging.WARNING):
        assert grpo_module.check_model_answers(None, None, data, config) == 0.0
    assert "every reward will be 0" in caplog.text


def test_two_process_cpu_ddp_through_accelerate(dataset_dir, tmp_path):
    """The multi-process path for real: `--accelerate_config cpu_ddp --num_processes 2` (gloo on CPU)."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    exe = shutil.which("instructerc", path=str(Path(sys.executable).parent))
    out = tmp_path / "ddp"
    result = subprocess.run(
        [
            exe,
            "train",
            "sft",
            "--dataset_dir",
            dataset_dir,
            "--output_dir",
            str(out),
            "--accelerate_config",
            "cpu_ddp",
            "--num_processes",
            "2",
            "--max_steps",
            "2",
            "--max_train_samples",
            "8",
            "--per_device_train_batch_size",
            "2",
            "--eval_strategy",
            "no",
            "--save_strategy",
            "no",
            "--dev_eval_samples",
            "0",
            "--threads",
            "1",
            "--lora_r",
            "8",
            "--lora_target_modules",
            "q_proj,v_proj",
            "--logging_steps",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    meta = json.loads((out / "instructerc_train.json").read_text())
    assert meta["processes"] == 2 and meta["steps"] == 2
    assert (out / "adapter_model.safetensors").is_file()


def test_leave_process_group_tears_the_group_down(tmp_path):
    """Each rank must destroy its gloo group before exit, or interpreter teardown can abort it (seen in CI)."""
    import torch.distributed as dist

    from instructerc.train.artifacts import leave_process_group

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    assert dist.is_initialized()
    leave_process_group()
    assert not dist.is_initialized()
    leave_process_group()  # a single-process run has no group: nothing to do


def test_dev_scores_skip_sharded_runs(dataset_dir, no_launch_env, capsys):
    """Once the group is gone the main process holds only its FSDP / ZeRO-3 shard: generating would fail."""
    from instructerc.train.artifacts import dev_scores

    config = load_config(SFTTrainConfig, None, {"dataset_dir": dataset_dir, "output_dir": "unused"})
    no_launch_env.setenv("ACCELERATE_USE_FSDP", "true")
    assert dev_scores(None, None, config) == {}
    assert "sharded" in capsys.readouterr().out


def test_two_process_grpo_splits_a_group_across_processes(dataset_dir, tmp_path):
    """per_device_train_batch_size 2 x 2 processes = one group of 4: valid for trl, so it must not be refused."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    exe = shutil.which("instructerc", path=str(Path(sys.executable).parent))
    out = tmp_path / "grpo_ddp"
    options = {
        "dataset_dir": dataset_dir,
        "output_dir": str(out),
        "accelerate_config": "cpu_ddp",
        "num_processes": "2",
        "per_device_train_batch_size": "2",
        "num_generations": "4",
        "max_steps": "1",
        "max_train_samples": "4",
        "max_completion_length": "48",
        "preflight_samples": "1",
        "dev_eval_samples": "0",
        "save_strategy": "no",
        "threads": "1",
        "lora_r": "4",
        "lora_target_modules": "q_proj,v_proj",
        "rewards": '{"format": 1.0, "label_accuracy": 1.0}',
    }
    command = [exe, "train", "grpo", *(x for key, value in options.items() for x in (f"--{key}", value))]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    meta = json.loads((out / "instructerc_train.json").read_text())
    assert meta["processes"] == 2 and meta["steps"] == 1


def test_eval_strategy_no_keeps_the_dev_split_for_dev_scores(dataset_dir):
    config = load_config(SFTTrainConfig, None, {"dataset_dir": dataset_dir, "eval_strategy": "no"})
    assert config.eval_split == "validation" and config.eval_strategy == "no" and not config.load_best_model_at_end
    config = load_config(SFTTrainConfig, None, {"dataset_dir": dataset_dir, "eval_split": "null"})
    assert config.eval_split is None and config.eval_strategy == "no"
