"""Serving through vLLM, for real: `instructerc serve` starts the vLLM OpenAI server (from the .venv-vllm that
`make install` made; nothing is installed here) with the embedded model and a LoRA adapter trained in this
module, and requests go through the official OpenAI client and through instructerc's own backends.

vLLM's greedy text can differ from transformers' on long outputs (ENVIRONMENT.md); the adapter here answers
with a label only, so the labels are compared, and structure (valid label, parsable tags) is asserted.
"""

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from examples_data import FAST, build_examples

from instructerc.cli import main
from instructerc.config import ConfigError, load_config
from instructerc.infer.sources import load_built_rows
from instructerc.infer.writer import read_jsonl
from instructerc.parsing import label_set_from_list, parse_output
from instructerc.serve import ServeConfig, server_command
from instructerc.vllm_env import find_vllm_python, max_lora_rank

pytestmark = pytest.mark.integration
CLI = str(Path(sys.executable).with_name("instructerc"))
READY_TIMEOUT_S = 600


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    return build_examples(tmp_path_factory.mktemp("serve") / "data", template="emotion_label_only")


@pytest.fixture(scope="module")
def adapter(dataset_dir, tmp_path_factory):
    """A LoRA adapter that has learned to answer `<answer>label</answer>` (a few SFT steps, label-only targets)."""
    from instructerc.train.configs import SFTTrainConfig
    from instructerc.train.sft import run_sft

    out = tmp_path_factory.mktemp("serve") / "adapter"
    config = load_config(
        SFTTrainConfig,
        None,
        {
            "dataset_dir": str(dataset_dir),
            "output_dir": str(out),
            **FAST,
            "max_steps": 10,
            "per_device_train_batch_size": 4,
            "learning_rate": 3e-3,
            "eval_strategy": "no",
            "save_strategy": "no",
            "dev_eval_samples": 0,
        },
    )
    run_sft(config)
    return out


@pytest.fixture(scope="module")
def server(adapter):
    """`instructerc serve` with the adapter as module `emotion`; stopped with SIGTERM at the end."""
    port = _free_port()
    process = subprocess.Popen(
        [CLI, "serve", "--adapter", f"emotion={adapter}", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)
    reader.start()
    started = time.monotonic()
    # Ready once the whole message is out: the "ready" line and the examples, whose last line is the predict one.
    while not any(line.startswith("instructerc predict") for line in lines):
        assert process.poll() is None, f"serve exited early: {''.join(lines)}"
        assert time.monotonic() - started < READY_TIMEOUT_S, "the vLLM server did not become ready"
        time.sleep(1)
    yield {"url": f"http://127.0.0.1:{port}/v1", "process": process, "lines": lines}
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0
    reader.join(timeout=10)
    assert any("vLLM server stopped" in line for line in lines)
    with pytest.raises(OSError):  # nothing listens any more
        socket.create_connection(("127.0.0.1", port), timeout=2)


@pytest.fixture(scope="module")
def validation_rows(dataset_dir):
    return load_built_rows(dataset_dir, "validation")


def test_serve_prints_ready_to_paste_requests(server):
    text = "".join(server["lines"])
    assert f"curl -s {server['url']}/chat/completions" in text and "from openai import OpenAI" in text
    assert "--backend openai --base_url" in text and "models: embedded, emotion" in text


def test_served_prompt_is_the_training_prompt_token_for_token(server, adapter, validation_rows):
    """The server renders chat messages with the model's chat template; trl's SFT saw the same tokens."""
    import urllib.request

    from transformers import AutoTokenizer
    from trl.data_utils import common_prefix_length

    tokenizer = AutoTokenizer.from_pretrained(adapter)
    for row in validation_rows:
        # trl's prompt-completion tokenization: the prompt is where prompt and prompt+completion agree.
        prompt = tokenizer.apply_chat_template(
            row["prompt"], add_generation_prompt=True, tokenize=True, return_dict=True
        )
        full = tokenizer.apply_chat_template(row["prompt"] + row["completion"], tokenize=True, return_dict=True)
        trained = prompt["input_ids"][: common_prefix_length(prompt["input_ids"], full["input_ids"])]
        request = {"model": "emotion", "messages": row["prompt"], "add_generation_prompt": True}
        url = server["url"].removesuffix("/v1") + "/tokenize"
        body = json.dumps(request).encode()
        with urllib.request.urlopen(urllib.request.Request(url, body, {"Content-Type": "application/json"})) as reply:
            served = json.loads(reply.read())["tokens"]
        assert served == trained


def test_emotion_requests_through_the_openai_client(server, validation_rows):
    from openai import OpenAI

    client = OpenAI(base_url=server["url"], api_key="EMPTY")
    row = validation_rows[0]
    labels = row["label_set"]
    label_set = label_set_from_list(tuple(labels))

    def ask(**extra) -> str:
        reply = client.chat.completions.create(
            model="emotion", messages=row["prompt"], max_tokens=32, temperature=0, **extra
        )
        return reply.choices[0].message.content

    free = parse_output(ask(), label_set, mode="strict", answer_format="answer_only")
    assert free.valid and free.label in labels  # the adapter learned the format
    assert ask(extra_body={"structured_outputs": {"choice": labels}}) in labels
    schema = {
        "type": "object",
        "properties": {"rationale": {"type": "string", "maxLength": 80}, "label": {"type": "string", "enum": labels}},
        "required": ["rationale", "label"],
    }
    as_json = ask(response_format={"type": "json_schema", "json_schema": {"name": "emotion", "schema": schema}})
    parsed = parse_output(as_json, label_set, mode="strict", answer_format="answer_only")
    assert parsed.valid and json.loads(as_json)["label"] == parsed.label


def _predict(args: list[str]) -> list[dict]:
    assert main(["predict", "--no-show_progress", *args]) == 0
    return read_jsonl(args[args.index("--output") + 1])


def test_all_backends_write_the_same_rows(server, adapter, dataset_dir, tmp_path):
    common = ["--dataset_dir", str(dataset_dir), "--split", "validation", "--max_new_tokens", "16"]
    local = _predict([*common, "--adapter", str(adapter), "--threads", "1", "--output", str(tmp_path / "t.jsonl")])
    served = _predict(
        [
            *common,
            "--backend",
            "openai",
            "--base_url",
            server["url"],
            "--model",
            "emotion",
            "--output",
            str(tmp_path / "o.jsonl"),
        ]
    )
    offline = _predict([*common, "--backend", "vllm", "--adapter", str(adapter), "--output", str(tmp_path / "v.jsonl")])
    for rows, backend in ((served, "openai"), (offline, "vllm")):
        assert [r["id"] for r in rows] == [r["id"] for r in local]
        assert all(set(r) == set(local[0]) and r["backend"] == backend for r in rows)
        assert all(r["valid_strict"] for r in rows)
        # Same adapter, same greedy decoding: the labels agree (engines' numerics may flip a close call).
        agree = sum(a["predicted"] == b["predicted"] for a, b in zip(rows, local, strict=True))
        assert agree >= len(local) - 1, (backend, [(a["raw"], b["raw"]) for a, b in zip(rows, local, strict=True)])


def test_structured_answer_format_through_the_server(server, dataset_dir, tmp_path):
    """The base model, which never learned the format, answers well-formed labels of the set when constrained."""
    rows = _predict(
        ["--dataset_dir", str(dataset_dir), "--split", "validation", "--backend", "openai", "--base_url", server["url"],
         "--structured", "answer_format", "--output", str(tmp_path / "s.jsonl")]
    )  # fmt: skip
    assert rows and all(r["valid_strict"] and r["predicted"] in r["label_set"] for r in rows)


def test_server_down_is_a_clear_error(dataset_dir, tmp_path, capsys):
    code = main(
        ["predict", "--dataset_dir", str(dataset_dir), "--output", str(tmp_path / "x.jsonl"), "--backend", "openai",
         "--base_url", f"http://127.0.0.1:{_free_port()}/v1", "--retries", "1", "--no-show_progress"]
    )  # fmt: skip
    assert code == 2 and "is the server running?" in capsys.readouterr().err
    assert not (tmp_path / "x.jsonl").exists() or not (tmp_path / "x.jsonl").read_text()


# ------------------------------------------------------------------ the command line, without a server


def test_server_command_on_cpu(tmp_path):
    folder = tmp_path / "a"
    folder.mkdir()
    (folder / "adapter_config.json").write_text(json.dumps({"r": 12}))
    config = load_config(ServeConfig, None, {"adapter": f"emo={folder}", "port": 9001})
    command = server_command(config, "/venv/bin/python")
    assert command[1:3] == ["-m", "vllm.entrypoints.openai.api_server"]
    assert "--enforce-eager" in command and command[command.index("--max-lora-rank") + 1] == "16"
    assert command[command.index("--lora-modules") + 1] == f"emo={folder.resolve()}"
    assert command[command.index("--served-model-name") + 1] == "embedded"


def test_bad_serve_options(tmp_path):
    with pytest.raises(ConfigError, match="expected NAME=DIR"):
        load_config(ServeConfig, None, {"adapter": "just-a-folder"})
    with pytest.raises(ConfigError, match="not a LoRA adapter folder"):
        load_config(ServeConfig, None, {"adapter": f"emo={tmp_path}"})
    with pytest.raises(ValueError, match="above vLLM's largest"):
        (tmp_path / "adapter_config.json").write_text(json.dumps({"r": 1024}))
        max_lora_rank([tmp_path])


def test_the_vllm_environment_is_found():
    python = find_vllm_python()
    assert subprocess.run([python, "-c", "import vllm"], capture_output=True).returncode == 0
    with pytest.raises(FileNotFoundError, match="no such file"):
        find_vllm_python(str(Path("/nonexistent/python")))
