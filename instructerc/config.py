"""Configuration: one dataclass per verb, filled from defaults < a YAML file < command-line flags.

Each field's `metadata["help"]` is its documentation: `--help` is generated from it (as trl's configs do),
so the help text and the behaviour cannot disagree. Unknown keys in a YAML file are errors, not ignored.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")
CONFIG_FLAG = "config"


class ConfigError(ValueError):
    """A configuration value or key is wrong; the message names the source (file or flag) and the key."""


def _union_args(annotation: Any) -> tuple[list[Any], bool]:
    """The members of a Union other than None, and whether None is allowed."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        return [a for a in args if a is not type(None)], type(None) in args
    return [annotation], False


def _base_type(annotation: Any) -> tuple[Any, bool]:
    """Strip Optional[...]: returns (the first member, whether None is allowed)."""
    args, optional = _union_args(annotation)
    return args[0], optional


def _matches(value: Any, member: Any) -> bool:
    origin = typing.get_origin(member) or member
    return isinstance(origin, type) and isinstance(value, origin) and not (origin is int and isinstance(value, bool))


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Convert a YAML or command-line value to the field's type, with an error that says what was expected."""
    members, optional = _union_args(annotation)
    # "null" means None; so does "none", except where a string is allowed (trl's `report_to: none` is a value).
    null_words = ("null", "~") if str in members else ("null", "~", "none")
    if value is None or (optional and isinstance(value, str) and value.lower() in null_words):
        if optional:
            return None
        raise ConfigError(f"{where}: a value is required")
    if len(members) > 1:
        # A value that already has one of the member types keeps it (YAML gave a dict, a list, a number);
        # otherwise (a flag's string) the members are tried in turn, strings last.
        ordered = [m for m in members if _matches(value, m)] or sorted(members, key=lambda m: m is str)
        for member in ordered:
            try:
                return _coerce_one(value, member)
            except (ValueError, TypeError, yaml.YAMLError):
                continue
        raise ConfigError(f"{where}: expected {_type_name(annotation)}, got {value!r}")
    try:
        return _coerce_one(value, members[0])
    except (ValueError, TypeError, yaml.YAMLError):
        raise ConfigError(f"{where}: expected {_type_name(annotation)}, got {value!r}") from None


def _coerce_one(value: Any, base: Any) -> Any:
    """Convert to one (non-Union) type; raises ValueError/TypeError when the value does not fit."""
    origin = typing.get_origin(base)
    if base is bool:
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "1", "yes", "on"):
            return True
        if str(value).lower() in ("false", "0", "no", "off"):
            return False
        raise ValueError
    if base in (int, float):
        if isinstance(value, bool) or (base is int and isinstance(value, float) and not value.is_integer()):
            raise ValueError
        return base(value)
    if base is str:
        if isinstance(value, dict | list):
            raise ValueError
        return str(value)
    if origin is list or base is list:
        (item_type,) = typing.get_args(base) or (str,)
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list | tuple):
            raise ValueError
        return [_coerce_one(v, item_type) for v in value]
    if origin is dict or base is dict:
        if isinstance(value, str):
            value = yaml.safe_load(value)  # a flag may carry JSON or YAML: --columns '{text: utterance}'
        if not isinstance(value, dict):
            raise ValueError
        return value
    if origin is typing.Literal:
        if value not in typing.get_args(base):
            raise ValueError
        return value
    if base is type(None):
        raise ValueError
    # Enums and library classes (e.g. transformers' IntervalStrategy): the library validates the value itself.
    return value


def _type_name(annotation: Any) -> str:
    base, optional = _base_type(annotation)
    if typing.get_origin(base) is typing.Literal:
        name = " | ".join(map(str, typing.get_args(base)))
    elif typing.get_origin(base) is list:
        name = "a list (YAML list or comma-separated)"
    elif typing.get_origin(base) is dict or base is dict:
        name = "a mapping (YAML or JSON)"
    else:
        name = getattr(base, "__name__", str(base))
    return f"{name} or null" if optional else name


def _fields(cls: type) -> dict[str, tuple[dataclasses.Field, Any]]:
    hints = typing.get_type_hints(cls)
    return {f.name: (f, hints[f.name]) for f in dataclasses.fields(cls)}


def add_arguments(parser: argparse.ArgumentParser, cls: type) -> None:
    """Add `--config` and one `--field` flag per dataclass field; help comes from the field's metadata."""
    parser.add_argument(
        f"--{CONFIG_FLAG}", metavar="YAML", help="YAML file with any of the options below; flags override it"
    )
    for name, (fld, annotation) in _fields(cls).items():
        default = (
            fld.default
            if fld.default is not dataclasses.MISSING
            else (
                fld.default_factory() if fld.default_factory is not dataclasses.MISSING else None  # type: ignore[misc]
            )
        )
        help_text = fld.metadata.get("help", "")
        required = fld.default is dataclasses.MISSING and fld.default_factory is dataclasses.MISSING
        base, _ = _base_type(annotation)
        if base is bool:
            parser.add_argument(
                f"--{name}",
                action=argparse.BooleanOptionalAction,
                default=argparse.SUPPRESS,
                help=f"{help_text} (default: {default})",
            )
        else:
            parser.add_argument(
                f"--{name}",
                default=argparse.SUPPRESS,
                metavar=name.upper(),
                help=f"{help_text} [{_type_name(annotation)}; {'required' if required else f'default: {default!r}'}]",
            )


def load_config(
    cls: type[T], config_path: str | os.PathLike | None = None, overrides: dict[str, Any] | None = None
) -> T:
    """Build a config: field defaults, then the YAML file's values, then `overrides` (e.g. flags)."""
    known = _fields(cls)
    values: dict[str, Any] = {}
    if config_path is not None:
        path = Path(config_path)
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML: {err}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a mapping of option: value at the top level")
        values.update(_values_from_mapping(known, data, str(path)))
    for key, value in (overrides or {}).items():
        if key not in known:
            raise ConfigError(f"--{key}: unknown option (valid: {', '.join(known)})")
        values[key] = _coerce(value, known[key][1], f"--{key}")
    missing = [
        name
        for name, (fld, _) in known.items()
        if name not in values and fld.default is dataclasses.MISSING and fld.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConfigError(f"missing required options: {', '.join(missing)} (give them in --config or as flags)")
    return _validated(cls(**values))


def _values_from_mapping(known: dict[str, tuple[dataclasses.Field, Any]], data: dict, where: str) -> dict[str, Any]:
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(f"{where}: unknown keys {', '.join(map(str, unknown))} (valid keys: {', '.join(known)})")
    return {key: _coerce(value, known[key][1], f"{where}: {key}") for key, value in data.items()}


def from_mapping(cls: type[T], data: Any, where: str) -> T:
    """A config from a nested mapping of a YAML file (e.g. build-data's `cues:`), checked like the file itself."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of option: value")
    config = cls(**_values_from_mapping(_fields(cls), data, where))
    try:
        return _validated(config)
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from None


def _validated(config: T) -> T:
    validate = getattr(config, "validate", None)
    if validate:
        validate()
    return config


def config_from_args(cls: type[T], args: argparse.Namespace) -> T:
    """Build a config from parsed flags (only the flags actually given override the YAML file)."""
    given = {k: v for k, v in vars(args).items() if k in {f.name for f in dataclasses.fields(cls)}}
    return load_config(cls, getattr(args, CONFIG_FLAG, None), given)


def to_dict(config: Any) -> dict[str, Any]:
    return json.loads(json.dumps(dataclasses.asdict(config), default=str))


def to_yaml(config: Any) -> str:
    return yaml.safe_dump(to_dict(config), sort_keys=False, allow_unicode=True)


# --------------------------------------------------------------------------------------------- verbs


def option(text: str, **kwargs: Any) -> Any:
    """A config field whose help text is its documentation (shown by --help): `option("what it does", default=1)`."""
    return dataclasses.field(metadata={"help": text}, **kwargs)


@dataclasses.dataclass
class BuildDataConfig:
    """`instructerc build-data`: corpus -> retrieval-augmented instruction dataset (DatasetDict on disk)."""

    dataset: str = option(
        "corpus format: meld | emorynlp | iemocap | dailydialog | jsonl | hf (`instructerc ls datasets`)"
    )
    data_dir: str = option("folder holding the corpus's split files, or a single file")
    output_dir: str = option("where the DatasetDict, preview.jsonl and build_info.json go", default="outputs/data")
    splits: list[str] = option(
        "splits to build (train is always read for demonstrations when n_demos > 0)",
        default_factory=lambda: ["train", "validation"],
    )
    label_set: str | None = option("label set name or comma-separated labels; default: the corpus's own", default=None)
    unified_labels: bool = option("map labels to the unified 7-class taxonomy shared by every corpus", default=False)
    builder_options: dict = option(
        "options passed to the corpus builder (e.g. hf column mapping)", default_factory=dict
    )
    tasks: list[str] = option(
        "tasks to build: emotion, speaker (speaker identification), impact (emotion impact prediction)",
        default_factory=lambda: ["emotion"],
    )
    template: str = option("template for the emotion task (`instructerc ls prompts`)", default="emotion")
    prompts_dir: str | None = option("extra folder of templates with its own index.yaml", default=None)
    window: int = option("dialogue history: the number of preceding turns shown", default=12)
    n_demos: int = option("retrieved labeled demonstrations per prompt (0 disables retrieval)", default=2)
    retriever: str = option(
        "sentence-transformers model for retrieval: `embedded` (all-MiniLM-L6-v2), a folder or a hub id",
        default="embedded",
    )
    tokenizer: str = option(
        "tokenizer that measures the token budget: `embedded` (SmolLM2-135M-Instruct), a folder or a hub id",
        default="embedded",
    )
    max_prompt_tokens: int | None = option(
        "prompt token budget; history is cut from the oldest turn to fit", default=1024
    )
    cues: dict = option(
        "textualized audio/visual cues from media, with the options of `instructerc cues` "
        "(e.g. {audio_dir: wav/, openface_dir: openface/}); cue texts given in the data are always rendered",
        default_factory=dict,
    )
    include_unlabeled: bool = option(
        "also build prompts for utterances without a gold label (for prediction)", default=False
    )
    on_error: typing.Literal["raise", "drop"] = option(
        "bad input rows: raise (list them all) or drop and count", default="raise"
    )
    cache_dir: str | None = option(
        "cache for converted models and embeddings (default: $INSTRUCTERC_CACHE or ~/.cache/instructerc)", default=None
    )
    preview_rows: int = option("rows per split written to preview.jsonl", default=5)
    max_dialogues: int | None = option(
        "keep only the first N dialogues of each split read, the demonstration pool included (quick trials; "
        "the summary line says so, build_info.json and resolved_config.yaml record it)",
        default=None,
    )
    dry_run: bool = option(
        "render and measure everything, print two examples and token statistics; writes nothing to output_dir, "
        "but retrieval still fills the embeddings cache under cache_dir (n_demos 0 avoids it)",
        default=False,
    )
    force: bool = option("rebuild even when the output is up to date with the inputs", default=False)
    show_progress: bool = option("show progress bars", default=True)

    def validate(self) -> None:
        from instructerc.prompts import BUILD_TASKS as TASKS

        if self.window < 0 or self.n_demos < 0:
            raise ConfigError("window and n_demos must be >= 0")
        if self.max_prompt_tokens is not None and self.max_prompt_tokens <= 0:
            raise ConfigError("max_prompt_tokens must be positive (or null for no budget)")
        if self.max_dialogues is not None and self.max_dialogues <= 0:
            raise ConfigError("max_dialogues must be positive (or null for every dialogue)")
        unknown = [t for t in self.tasks if t not in TASKS]
        if unknown or not self.tasks:
            raise ConfigError(f"tasks: unknown {unknown} (expected some of: {', '.join(TASKS)})")
        if not self.splits:
            raise ConfigError("splits: give at least one split")
        if self.cues:
            from instructerc.data_builders.cues.apply import cue_options

            cue_options(self.cues)


@dataclasses.dataclass
class DemoConfig:
    """`instructerc demo`: the main job end to end on the bundled example dialogues and the embedded model:
    build prompts, LoRA SFT, a few GRPO steps, explained predictions, evaluation and its report."""

    output_dir: str = option("where the demo writes its artefacts", default="outputs/demo")
    n_demos: int = option("retrieved demonstrations per prompt", default=2)
    sft_steps: int = option("LoRA SFT steps (the recipe configs/sft/examples.yaml, shortened)", default=8)
    grpo_steps: int = option("GRPO steps from the SFT adapter (0 skips GRPO)", default=2)
    predict_max_new_tokens: int = option("generation length of the explained predictions", default=96)
    threads: int | None = option("torch CPU threads (1 is fastest on a shared 2-core machine)", default=1)
    cache_dir: str | None = option("cache for converted models and embeddings", default=None)
    show_progress: bool = option("show progress bars", default=True)


@dataclasses.dataclass
class ExportConfig:
    """`instructerc export`: merge a LoRA adapter into its base model and save a plain Hugging Face folder."""

    adapter: str = option("adapter folder written by `instructerc train sft|grpo`")
    output_dir: str = option("where the merged model goes (written atomically)", default="outputs/export")
    base_model: str | None = option("base model override (default: the one recorded with the adapter)", default=None)
    dtype: str = option(
        "dtype of the saved weights: float32 (default: greedy output exactly as base + adapter), or bfloat16 / "
        "float16 (half the size, but rounding can change some answers)",
        default="float32",
    )
    cache_dir: str | None = option("cache for converted models", default=None)
