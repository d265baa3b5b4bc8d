"""`instructerc demo`: the main job, end to end, on the bundled example dialogues and the embedded model.

Each step is the library call behind a verb, configured from the shipped recipe (configs/*/examples.yaml) with
fewer steps, so the demo shows exactly what `build-data`, `train sft`, `train grpo`, `predict` and `evaluate`
do. About 5 minutes on a 2-core CPU; the model is tiny, so its predictions are poor: the point is the loop.
"""

from __future__ import annotations

import time
from pathlib import Path

from instructerc.config import BuildDataConfig, DemoConfig, load_config
from instructerc.resources import shipped_dir

STEPS = 6


def _step(number: int, title: str) -> float:
    print(f"\n[{number}/{STEPS}] {title}", flush=True)
    return time.perf_counter()


def run_demo(config: DemoConfig) -> dict[str, Path]:
    """Run every step; returns where each artefact went."""
    from instructerc.data_builders.build import build_dataset
    from instructerc.data_builders.preview import render_chat
    from instructerc.models import load_tokenizer

    out = Path(config.output_dir)
    recipes = shipped_dir("configs")
    artefacts: dict[str, Path] = {}
    started = time.perf_counter()

    _step(1, "build retrieval-augmented prompts from the bundled dialogues")
    data = load_config(
        BuildDataConfig,
        recipes / "data" / "examples.yaml",
        {
            "data_dir": str(shipped_dir("examples") / "dialogues.jsonl"),
            "output_dir": str(out / "data"),
            "n_demos": config.n_demos,
            "cache_dir": config.cache_dir,
            "show_progress": config.show_progress,
        },
    )
    result = build_dataset(data)
    print(result.summary())
    artefacts["dataset"] = result.output_dir
    from datasets import load_from_disk

    example = load_from_disk(str(result.output_dir))["validation"][0]
    print(f"One validation prompt and its target, as the model sees them (gold: {example['label']}):\n")
    print(render_chat(example, load_tokenizer(data.tokenizer, cache_dir=config.cache_dir)))

    adapter = _train(config, recipes, out, artefacts)
    _predict_and_evaluate(config, out, adapter, artefacts)
    print(f"\ndemo finished in {(time.perf_counter() - started) / 60:.1f} min; artefacts:")
    for name, path in artefacts.items():
        print(f"  {name:<12} {path}")
    return artefacts


def _train(config: DemoConfig, recipes: Path, out: Path, artefacts: dict[str, Path]) -> Path:
    from instructerc.train.configs import GRPOTrainConfig, SFTTrainConfig
    from instructerc.train.grpo import run_grpo
    from instructerc.train.sft import run_sft

    common = {
        "dataset_dir": str(out / "data"),
        "threads": config.threads,
        "cache_dir": config.cache_dir,
        "disable_tqdm": not config.show_progress,
    }
    _step(2, f"LoRA SFT, {config.sft_steps} steps (configs/sft/examples.yaml)")
    sft = load_config(
        SFTTrainConfig,
        recipes / "sft" / "examples.yaml",
        {
            **common,
            "output_dir": str(out / "sft"),
            "max_steps": config.sft_steps,
            "eval_steps": config.sft_steps,
            "save_steps": config.sft_steps,
            "learning_rate": 1e-3,
        },
    )
    artefacts["sft adapter"] = run_sft(sft)
    if config.grpo_steps <= 0:
        return artefacts["sft adapter"]
    _step(3, f"GRPO with verifiable rewards, {config.grpo_steps} steps (configs/grpo/examples.yaml)")
    grpo = load_config(
        GRPOTrainConfig,
        recipes / "grpo" / "examples.yaml",
        {
            **common,
            "adapter": str(out / "sft"),
            "output_dir": str(out / "grpo"),
            "max_steps": config.grpo_steps,
            "max_completion_length": 64,
            "dev_eval_samples": 0,
            "preflight_samples": 2,
        },
    )
    artefacts["grpo adapter"] = run_grpo(grpo)
    return artefacts["grpo adapter"]


def _predict_and_evaluate(config: DemoConfig, out: Path, adapter: Path, artefacts: dict[str, Path]) -> None:
    from instructerc.eval.evaluate import evaluate_predictions
    from instructerc.infer.predict import PredictConfig, predict

    _step(4, "explained predictions on the validation and test dialogues")
    predictions = out / "predictions.jsonl"
    predictions.unlink(missing_ok=True)  # a fresh run: predict would otherwise resume the previous file
    for split in ("validation", "test"):
        summary = predict(
            PredictConfig(
                output=str(predictions),
                adapter=str(adapter),
                dataset_dir=str(out / "data"),
                split=split,
                max_new_tokens=config.predict_max_new_tokens,
                threads=config.threads,
                cache_dir=config.cache_dir,
                show_progress=config.show_progress,
            )
        )
        print(summary.summary())
    artefacts["predictions"] = predictions
    _step(5, "label scores (score mode: one forward pass per prompt, no generation)")
    scores = out / "scores.jsonl"
    scores.unlink(missing_ok=True)
    print(
        predict(
            PredictConfig(
                output=str(scores),
                adapter=str(adapter),
                dataset_dir=str(out / "data"),
                split="validation",
                mode="score",
                threads=config.threads,
                cache_dir=config.cache_dir,
                show_progress=config.show_progress,
            )
        ).summary()
    )
    artefacts["scores"] = scores
    _step(6, "evaluation: metrics, confusion matrix, clue overlap, report")
    # Validation and test are reported apart (split breakdown): one pooled number would hide which is which.
    results = evaluate_predictions(predictions, out / "eval", breakdown="split")
    emotion = results["closed_set"].get("emotion", {})
    for split, scores in emotion.get("breakdown", {}).items():
        f1, accuracy = scores["weighted_f1"], scores["accuracy"]
        print(f"{split}: weighted F1 {f1:.3f}, accuracy {accuracy:.3f} ({scores['n']} utterances)")
    print(f"invalid answers {emotion.get('invalid_rate', 0):.0%} of {emotion.get('n', 0)}")
    clues = results.get("clues") or {}
    if clues.get("n"):
        print(f"clue overlap of the rationales with the references: {clues['score']:.3f} over {clues['n']} rationales")
    artefacts["report"] = out / "eval" / "report.md"
