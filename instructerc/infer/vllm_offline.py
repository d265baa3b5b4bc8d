"""`--backend vllm`: offline batched generation with `vllm.LLM`, in the vLLM environment's own process.

The worker (`vllm_worker.py`) is started once per run and kept for every batch; its log goes to a file whose
tail is shown if it fails. LoRA adapters are served as a LoRA request on the base model (as `instructerc serve`
does), so no merged copy is needed.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from instructerc.infer.structured import row_constraint
from instructerc.vllm_env import find_vllm_python, max_lora_rank, on_gpu, vllm_environment

WORKER = Path(__file__).with_name("vllm_worker.py")
LOG_TAIL_LINES = 30


class VLLMWorkerError(RuntimeError):
    """The vLLM worker failed to start or to generate; the message carries the tail of its log."""


class VLLMWorker:
    """A running `vllm_worker.py`; `generate` sends one batch and waits for its texts."""

    def __init__(self, python: str, settings: dict[str, Any], env: dict[str, str]):
        self.log = tempfile.NamedTemporaryFile(prefix="instructerc-vllm-", suffix=".log", delete=False)
        self.process = subprocess.Popen(
            [python, str(WORKER), json.dumps(settings)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            env=env,
        )
        reply = self._read()
        if not reply.get("ready"):
            raise self._failure("did not start")

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise self._failure(f"exited with code {self.process.wait()}")
        return json.loads(line)

    def _failure(self, what: str) -> VLLMWorkerError:
        self.close()
        lines = Path(self.log.name).read_text(encoding="utf-8", errors="replace").splitlines()[-LOG_TAIL_LINES:]
        tail = "\n  ".join(lines)
        return VLLMWorkerError(f"the vLLM worker {what} (log: {self.log.name}):\n  {tail}")

    def generate(self, prompts: list[list[int]], sampling: dict[str, Any], structured: list[dict | None]) -> list[str]:
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(json.dumps({"prompts": prompts, "sampling": sampling, "structured": structured}))
            self.process.stdin.write("\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            raise self._failure("is gone") from None
        reply = self._read()
        if "error" in reply:
            raise VLLMWorkerError(f"vLLM could not generate: {reply['error']}")
        return reply["texts"]

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.process.stdin.close()  # type: ignore[union-attr]
                self.process.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()


class VLLMBackend:
    """Offline vLLM: prompts rendered to token ids with the training tokenizer, generated in batches."""

    name = "vllm"

    def __init__(self, worker: VLLMWorker, tokenizer: Any):
        self.worker, self.tokenizer = worker, tokenizer

    @classmethod
    def from_config(cls, config: Any) -> VLLMBackend:
        from instructerc.models import load_tokenizer, resolve_model

        gpu = on_gpu()
        settings: dict[str, Any] = {
            "model": str(resolve_model(config.model, config.cache_dir)),
            "dtype": config.model_dtype,  # vLLM takes the same names (auto, bfloat16, float16, float32)
            "seed": config.seed,
            "enforce_eager": config.enforce_eager if config.enforce_eager is not None else not gpu,
            "tensor_parallel_size": config.tensor_parallel_size if gpu else None,
            "max_model_len": config.max_model_len,
        }
        if config.adapter:
            settings["lora"] = {
                "name": "adapter",
                "path": str(Path(config.adapter).resolve()),
                "max_rank": max_lora_rank([config.adapter]),
            }
        worker = VLLMWorker(find_vllm_python(config.vllm_python), settings, vllm_environment(config.kv_cache_gib))
        return cls(worker, load_tokenizer(config.tokenizer_source(), config.cache_dir))

    def generate(self, rows: Sequence[dict[str, Any]], config: Any) -> list[str]:
        from instructerc.infer.scoring import prompt_ids

        sampling: dict[str, Any] = {"max_tokens": config.max_new_tokens, "seed": config.seed}
        sampling |= (
            {"temperature": config.temperature, "top_p": config.top_p} if config.do_sample else {"temperature": 0.0}
        )
        specs = [row_constraint(config.structured, row, config.max_new_tokens) for row in rows]
        return self.worker.generate([prompt_ids(self.tokenizer, row["prompt"]) for row in rows], sampling, specs)

    def score(self, *args: Any, **kwargs: Any) -> Any:
        raise ValueError("score mode needs --backend transformers (it reads the model's logits directly)")

    def close(self) -> None:
        self.worker.close()
