"""The offline vLLM worker behind `--backend vllm`, run by the vLLM environment's Python as a script.

It imports nothing from instructerc (that environment has vLLM and its own transformers, not ours). Protocol,
one JSON object per line: the worker answers `{"ready": true}` once the model is loaded, then reads requests
`{"prompts": [[token ids], ...], "sampling": {...}, "structured": [spec or null, ...]}` from stdin and answers
`{"texts": [...]}` or `{"error": "..."}` on its protocol channel (the original stdout; everything vLLM prints
goes to stderr). It exits at the end of stdin.

Prompts arrive as token ids rendered by the caller with the training tokenizer's chat template, so the model
sees exactly the tokens it was trained on (no second chat-template rendering inside vLLM).
"""

from __future__ import annotations

import json
import os
import sys


def _reply(channel, obj: dict) -> None:
    channel.write(json.dumps(obj) + "\n")
    channel.flush()


def main() -> int:
    settings = json.loads(sys.argv[1])
    channel = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # from here on, anything printed (vLLM's banners, its subprocesses) goes to stderr

    from vllm import LLM, SamplingParams
    from vllm.lora.request import LoRARequest
    from vllm.sampling_params import StructuredOutputsParams

    lora = settings.pop("lora", None)
    engine = {k: v for k, v in settings.items() if v is not None}
    if lora:
        engine.update(enable_lora=True, max_lora_rank=lora["max_rank"], max_loras=1)
    llm = LLM(**engine)
    request = LoRARequest(lora["name"], 1, lora["path"]) if lora else None
    _reply(channel, {"ready": True})
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            job = json.loads(line)
            params = [
                SamplingParams(**job["sampling"], structured_outputs=StructuredOutputsParams(**spec) if spec else None)
                for spec in job["structured"]
            ]
            outputs = llm.generate(
                [{"prompt_token_ids": ids} for ids in job["prompts"]], params, lora_request=request, use_tqdm=False
            )
            _reply(channel, {"texts": [out.outputs[0].text for out in outputs]})
        except Exception as err:  # reported to the caller, which raises it with context; the worker lives on
            _reply(channel, {"error": f"{type(err).__name__}: {err}"})
    return 0


if __name__ == "__main__":  # vLLM spawns processes: the guard keeps them from running this again
    sys.exit(main())
