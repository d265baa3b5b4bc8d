"""The `instructerc` command: thin verbs that parse a config and call one library function.

Each verb's config class is imported only when that verb runs (the training configs import trl, which takes
seconds), so `instructerc ls` and `--help` stay fast.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from instructerc import __version__
from instructerc.config import ConfigError, add_arguments, config_from_args
from instructerc.schema import DataError

# No model is ever downloaded: the embedded defaults ship inside packages, other models must be local.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# bitsandbytes (imported by peft, trl and sentence-transformers) warns on every start that an optional hub kernel
# could not be fetched: nothing is fetched here by design, and 4-bit still works. Set before any verb's imports.
_NOISY_LOGGER = "bitsandbytes.backends.cpu.ops"
logging.getLogger(_NOISY_LOGGER).setLevel(logging.ERROR)


@dataclass(frozen=True)
class Verb:
    summary: str
    config: Callable[[], type] | None  # lazy: returns the config dataclass
    run: Callable[[object, argparse.Namespace, Sequence[str]], int]


def _build_data_config() -> type:
    from instructerc.config import BuildDataConfig

    return BuildDataConfig


def _demo_config() -> type:
    from instructerc.config import DemoConfig

    return DemoConfig


def _sft_config() -> type:
    from instructerc.train.configs import SFTTrainConfig

    return SFTTrainConfig


def _grpo_config() -> type:
    from instructerc.train.configs import GRPOTrainConfig

    return GRPOTrainConfig


def _export_config() -> type:
    from instructerc.config import ExportConfig

    return ExportConfig


def run_export(config, args, argv) -> int:
    from instructerc.export import export_model

    output = export_model(
        config.adapter, config.output_dir, base_model=config.base_model, dtype=config.dtype, cache_dir=config.cache_dir
    )
    print(f"merged model written to {output} (loads with AutoModelForCausalLM.from_pretrained)")
    return 0


def _serve_config() -> type:
    from instructerc.serve import ServeConfig

    return ServeConfig


def run_serve(config, args, argv) -> int:
    from instructerc.serve import serve

    return serve(config)


def _rationales_config() -> type:
    from instructerc.train.rationales import RationalesConfig

    return RationalesConfig


def run_rationales(config, args, argv) -> int:
    from instructerc.train.rationales import write_rationales

    print(write_rationales(config).summary())
    return 0


def _evaluate_config() -> type:
    from instructerc.eval.evaluate import EvaluateConfig

    return EvaluateConfig


def run_evaluate(config, args, argv) -> int:
    from instructerc.eval.evaluate import run_evaluate as evaluate

    results = evaluate(config)
    print(_evaluation_summary(results, config.output_dir))
    return 0


def _evaluation_summary(results: dict, output_dir: str) -> str:
    """One line with the headline numbers, whatever parts the predictions had."""
    parts = []
    for task, scores in (results.get("closed_set") or {}).items():
        if isinstance(scores, dict) and "weighted_f1" in scores:
            parts.append(
                f"{task}: weighted F1 {scores['weighted_f1']:.3f}, accuracy {scores['accuracy']:.3f}, "
                f"invalid {scores.get('invalid_rate', 0):.1%}"
            )
    open_vocab = results.get("open_vocabulary") or {}
    skipped = open_vocab.get("skipped", 0)
    rows = f"{skipped} row{'s' if skipped != 1 else ''} without gold labels skipped"
    if open_vocab and not open_vocab.get("n"):  # nothing scored: an F of 0 would read as a result
        parts.append(f"open vocabulary: not scored, {rows}")
    elif open_vocab:
        for level, scores in (open_vocab.get("average") or {}).items():
            parts.append(f"open vocabulary {level} F {scores['f1']:.3f}")
        if skipped:
            parts.append(f"open vocabulary: {rows}")
    return "; ".join(parts or ["evaluated"]) + f" -> {output_dir}/report.md"


def _calibrate_config() -> type:
    from instructerc.eval.calibration import CalibrateConfig

    return CalibrateConfig


def run_calibrate(config, args, argv) -> int:
    from instructerc.eval.calibration import run_calibrate as calibrate

    result = calibrate(config)
    held_out = result["held_out"]
    print(
        f"label-prior correction fitted on {result['fitted_on']['rows']} rows: weighted F1 "
        f"{result['weighted_f1_before']:.3f} -> {result['weighted_f1_after_in_sample']:.3f} in sample, "
        f"{held_out['weighted_f1_before']:.3f} -> {held_out['weighted_f1_after']:.3f} on held-out dialogues "
        f"(2-fold) -> {config.output}"
    )
    return 0


def _predict_config() -> type:
    from instructerc.infer.predict import PredictConfig

    return PredictConfig


def run_predict(config, args, argv) -> int:
    from instructerc.infer.predict import predict

    print(predict(config).summary())
    return 0


def _label_config() -> type:
    from instructerc.infer.label import LabelConfig

    return LabelConfig


def run_label(config, args, argv) -> int:
    from instructerc.infer.label import format_table, label_conversations

    rows = label_conversations(config)
    print(format_table(rows))
    if config.output:
        print(f"{len(rows)} rows written to {config.output}")
    return 0


def _cues_config() -> type:
    from instructerc.data_builders.cues.apply import CuesConfig

    return CuesConfig


def run_cues(config, args, argv) -> int:
    from instructerc.data_builders.cues.apply import reference_path
    from instructerc.data_builders.cues.apply import run_cues as add_cues

    summary = add_cues(config)
    scale = f" (prosody scale: {reference_path(config.output)})" if summary.reference is not None else ""
    print(f"{summary.summary()} -> {config.output}{scale}")
    return 0


def run_build_data(config, args, argv) -> int:
    from instructerc.data_builders.build import build_dataset
    from instructerc.data_builders.preview import print_dry_run

    result = build_dataset(config)
    if config.dry_run:
        print_dry_run(result, config)
    print(result.summary())
    return 0


def run_ls(config, args, argv) -> int:
    from instructerc.registry import list_kind

    print(list_kind(args.kind))
    return 0


def run_demo(config, args, argv) -> int:
    from instructerc.demo import run_demo as demo

    demo(config)
    return 0


def run_train(config, args, argv) -> int:
    from instructerc.train.launch import launch, needs_launch

    if needs_launch(config.accelerate_config):
        return launch(config.accelerate_config, config.num_processes, argv, port=config.main_process_port)
    if args.verb == "train sft":
        from instructerc.train.sft import run_sft

        run_sft(config)
    elif args.verb == "train grpo":
        from instructerc.train.grpo import run_grpo

        run_grpo(config)
    return 0


VERBS: dict[str, Verb] = {
    "build-data": Verb(
        "build a retrieval-augmented instruction dataset from a corpus", _build_data_config, run_build_data
    ),
    "cues": Verb(
        "textualized audio (prosody) and visual (facial action unit) cues for canonical dialogues",
        _cues_config,
        run_cues,
    ),
    "train sft": Verb(
        "LoRA / QLoRA supervised fine-tuning on a built dataset (trl SFTTrainer)", _sft_config, run_train
    ),
    "train grpo": Verb(
        "GRPO with verifiable emotion rewards from an SFT adapter (trl GRPOTrainer)", _grpo_config, run_train
    ),
    "rationales": Verb(
        "write grounded rationales for label-only SFT targets with a model or an OpenAI-compatible endpoint",
        _rationales_config,
        run_rationales,
    ),
    "predict": Verb(
        "explained predictions (or label scores) for a built dataset or raw dialogues", _predict_config, run_predict
    ),
    "label": Verb(
        "zero-shot emotion labels with rationales for any conversation (closed set or open vocabulary)",
        _label_config,
        run_label,
    ),
    "evaluate": Verb(
        "score predictions: closed-set and open-vocabulary metrics, clue overlap, report",
        _evaluate_config,
        run_evaluate,
    ),
    "calibrate": Verb(
        "fit a label-prior correction for score mode on validation predictions", _calibrate_config, run_calibrate
    ),
    "export": Verb(
        "merge a LoRA adapter into its base model and save a plain Hugging Face folder", _export_config, run_export
    ),
    "serve": Verb(
        "serve a model and its LoRA adapters with vLLM (OpenAI-compatible API, structured outputs)",
        _serve_config,
        run_serve,
    ),
    "ls": Verb("list registered datasets, prompt templates, label sets or rewards", None, run_ls),
    "demo": Verb("run the main job on the bundled example dialogues with the embedded models", _demo_config, run_demo),
}


def _selected(argv: Sequence[str]) -> str | None:
    words = [a for a in argv if not a.startswith("-")][:2]
    for candidate in (" ".join(words), words[0] if words else ""):
        if candidate in VERBS:
            return candidate
    return None


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The parser; only the verb named in `argv` gets its full set of options (loading its config class)."""
    parser = argparse.ArgumentParser(
        prog="instructerc",
        description="LLM-based generative emotion reasoning for conversations.",
        epilog="Options come from defaults < --config YAML < --flags. `instructerc VERB --help` for each verb.",
    )
    parser.add_argument("--version", action="version", version=f"instructerc {__version__}")
    parser.add_argument("--verbose", action="store_true", help="log debug messages and show tracebacks")
    sub = parser.add_subparsers(dest="verb_word", metavar="VERB", required=True)
    groups: dict[str, argparse._SubParsersAction] = {}
    selected = _selected(argv)
    for name, verb in VERBS.items():
        first, _, second = name.partition(" ")
        target = sub
        if second:  # two-word verbs: `train sft`, `train grpo`
            if first not in groups:
                group_parser = sub.add_parser(
                    first,
                    help=f"{first} verbs: "
                    + ", ".join(v.partition(" ")[2] for v in VERBS if v.startswith(first + " ")),
                )
                groups[first] = group_parser.add_subparsers(dest="verb_second", metavar="VERB", required=True)
            target = groups[first]
        config_cls = verb.config() if name == selected and verb.config else None
        verb_parser = target.add_parser(
            second or first, help=verb.summary, description=(config_cls.__doc__ if config_cls else verb.summary)
        )
        if config_cls is not None:
            add_arguments(verb_parser, config_cls)
        verb_parser.set_defaults(verb=name, config_cls=config_cls)
    if "ls" in sub.choices:
        sub.choices["ls"].add_argument(
            "kind", choices=["datasets", "prompts", "labels", "rewards"], help="what to list"
        )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    if args.verbose:
        logging.getLogger(_NOISY_LOGGER).setLevel(logging.NOTSET)
    try:
        config = config_from_args(args.config_cls, args) if args.config_cls else None
        return VERBS[args.verb].run(config, args, argv)
    except (ConfigError, DataError, FileNotFoundError, KeyError, ValueError, RuntimeError) as err:
        # Expected user errors: one clear message, no traceback (use --verbose to see it).
        if args.verbose:
            raise
        message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        print(f"instructerc {args.verb}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"instructerc {args.verb}: interrupted; nothing half-written was kept", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
