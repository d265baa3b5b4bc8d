"""The `instructerc` command: thin verbs that parse a config and call one library function."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence

from instructerc import __version__
from instructerc.config import BuildDataConfig, ConfigError, DemoConfig, add_arguments, config_from_args
from instructerc.schema import DataError

# No model is ever downloaded: the embedded defaults ship inside packages, other models must be local.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def cmd_build_data(args: argparse.Namespace) -> int:
    from instructerc.data_builders.build import build_dataset
    from instructerc.data_builders.preview import print_dry_run

    config = config_from_args(BuildDataConfig, args)
    result = build_dataset(config)
    if config.dry_run:
        print_dry_run(result, config)
    print(result.summary())
    return 0


def cmd_ls(args: argparse.Namespace) -> int:
    from instructerc.registry import list_kind

    print(list_kind(args.kind))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from instructerc.demo import run_demo

    run_demo(config_from_args(DemoConfig, args))
    return 0


VERBS: dict[str, tuple[str, type | None, Callable[[argparse.Namespace], int]]] = {
    "build-data": ("build a retrieval-augmented instruction dataset from a corpus", BuildDataConfig, cmd_build_data),
    "ls": ("list registered datasets, prompt templates or label sets", None, cmd_ls),
    "demo": ("run the main job on the bundled example dialogues with the embedded models", DemoConfig, cmd_demo),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="instructerc",
        description="LLM-based generative emotion reasoning for conversations.",
        epilog="Options come from defaults < --config YAML < --flags. `instructerc VERB --help` for each verb.",
    )
    parser.add_argument("--version", action="version", version=f"instructerc {__version__}")
    parser.add_argument("--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for name, (summary, config_cls, handler) in VERBS.items():
        verb = sub.add_parser(name, help=summary, description=(config_cls.__doc__ if config_cls else summary))
        if config_cls is not None:
            add_arguments(verb, config_cls)
        verb.set_defaults(handler=handler)
    sub.choices["ls"].add_argument("kind", choices=["datasets", "prompts", "labels"], help="what to list")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        return args.handler(args)
    except (ConfigError, DataError, FileNotFoundError, KeyError, ValueError) as err:
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
