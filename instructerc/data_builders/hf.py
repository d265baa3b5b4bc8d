"""Generic builder for any table with one row per utterance, read with Hugging Face `datasets`.

Sources: a local csv / json / jsonl / parquet file (all its rows are the requested split), a folder holding
`<split>.<ext>` files, a folder written by `save_to_disk` (a DatasetDict or a single Dataset), or a Hub
dataset (`hub_name`, optional `config_name`; this needs network access or a filled cache).

Options:
  columns      required mapping canonical field -> column, e.g. {"dialogue_id": "conv_id", "text": "utt",
               "label": "emotion"}; required keys dialogue_id and text; optional turn (default: row order
               within the dialogue), speaker (default "Speaker"), label, labels, rationale, audio_cue,
               visual_cue, other_cue, start, end.
  split_names  canonical split -> the dataset's name, e.g. {"validation": "dev"}.
  label_names  names for integer labels (default: the column's ClassLabel names, if any).
  cache_dir    the `datasets` cache folder.
Problems name the file line of a row for csv and JSON lines files (the header is line 1 of a csv), and
"rows[i]" (0-based) for other sources; rows with no label are kept unlabelled.
A single file (or a save_to_disk folder of one Dataset) gives the same rows for any split: build-data refuses
to build two splits from it (see base.check_distinct_splits).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from instructerc.data_builders.assembler import UTTERANCE_COLUMNS, DialogueAssembler, utterance_from_row
from instructerc.data_builders.base import (
    CorpusSpec,
    LoadResult,
    Loc,
    SourceLike,
    csv_record_lines,
    is_single_file,
    json_lines_record_lines,
    read_text,
    require_columns,
)
from instructerc.labels import LabelSet
from instructerc.schema import DataError, OnError, Problem

COLUMN_KEYS = ("dialogue_id", *UTTERANCE_COLUMNS)
REQUIRED_KEYS = ("dialogue_id", "text")
DATA_FORMATS = {".csv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}
DEFAULT_SPEAKER = "Speaker"


def check_column_option(columns: Any) -> dict[str, str]:
    """Validate the `columns` option: a mapping with the required keys and no unknown ones."""
    if not isinstance(columns, Mapping):
        raise ValueError("the hf corpus needs a column mapping, e.g. columns={'dialogue_id': 'conv_id', 'text': 'utt'}")
    unknown = sorted(set(columns) - set(COLUMN_KEYS))
    missing = [key for key in REQUIRED_KEYS if key not in columns]
    if unknown or missing:
        parts = ([f"unknown keys: {', '.join(unknown)}"] if unknown else []) + (
            [f"missing keys: {', '.join(missing)}"] if missing else []
        )
        raise ValueError(f"bad hf column mapping ({'; '.join(parts)}); keys are: {', '.join(COLUMN_KEYS)}")
    return {key: str(value) for key, value in columns.items()}


def _load_file(path: Path, cache_dir: str | None) -> Any:
    import datasets  # heavy import, only when this builder is used

    fmt = DATA_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: unsupported file type (expected one of: {', '.join(DATA_FORMATS)})")
    if fmt != "parquet":
        read_text(path)  # a clear line-located error for non-UTF-8 bytes, before pandas / arrow see them
    try:
        return datasets.load_dataset(fmt, data_files=str(path), split="train", cache_dir=cache_dir)
    except Exception as err:  # arrow and pandas raise many types; report them all the same way
        raise DataError(
            Problem(str(path), None, None, f"could not read as {fmt}: {type(err).__name__}: {err}")
        ) from None


def open_split(
    source: SourceLike | None,
    name: str,
    *,
    hub_name: str | None = None,
    config_name: str | None = None,
    cache_dir: str | None = None,
) -> tuple[Any, str]:
    """(datasets.Dataset, source label for messages) for split `name` (the dataset's own split name)."""
    import datasets

    if hub_name:
        try:
            return datasets.load_dataset(hub_name, config_name, split=name, cache_dir=cache_dir), f"hf:{hub_name}"
        except Exception as err:  # offline, unknown name, unknown split: all end here
            raise DataError(
                Problem(
                    f"hf:{hub_name}",
                    None,
                    None,
                    (
                        f"could not load Hub dataset {hub_name!r} (config {config_name!r}, split {name!r}): "
                        f"{type(err).__name__}: {err}. Without network access, point source at a local copy "
                        "(a save_to_disk folder or csv/json/jsonl/parquet files)"
                    ),
                )
            ) from None
    if source is None:
        raise ValueError("the hf corpus needs a source (file or folder) or hub_name")
    path = Path(source)
    if path.is_file():
        return _load_file(path, cache_dir), str(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such file or folder (for a Hub dataset pass hub_name=...)")
    if (path / "dataset_dict.json").is_file() or (path / "state.json").is_file():
        loaded = datasets.load_from_disk(str(path))
        if isinstance(loaded, datasets.DatasetDict):
            if name not in loaded:
                raise DataError(
                    Problem(
                        str(path),
                        None,
                        None,
                        f"has no split {name!r} (splits: {', '.join(loaded)}); rename with split_names={{...}}",
                    )
                )
            return loaded[name], f"{path}[{name}]"
        return loaded, str(path)
    candidates = [path / f"{name}{ext}" for ext in DATA_FORMATS]
    for candidate in candidates:
        if candidate.is_file():
            return _load_file(candidate, cache_dir), str(candidate)
    raise FileNotFoundError(f"{path}: no file for split {name!r} (looked for: {', '.join(c.name for c in candidates)})")


def record_lines(where: str, count: int) -> list[int] | None:
    """The file line of each of the `count` rows read from `where`, for a csv or JSON lines file; None when
    rows cannot be mapped to lines (another format, or a count that does not match)."""
    path = Path(where)
    fmt = DATA_FORMATS.get(path.suffix.lower())
    if fmt not in ("csv", "json") or not path.is_file():
        return None
    text = read_text(path)
    lines = csv_record_lines(text) if fmt == "csv" else json_lines_record_lines(text)
    return lines if lines is not None and len(lines) == count else None


def label_names_of(dataset: Any, column: str) -> list[str] | None:
    """The ClassLabel names of a column, if it is one."""
    import datasets

    feature = dataset.features.get(column)
    return list(feature.names) if isinstance(feature, datasets.ClassLabel) else None


def load(
    source: SourceLike | None,
    split: str,
    *,
    label_set: LabelSet,
    on_error: OnError = "raise",
    columns: Mapping[str, str] | None = None,
    split_names: Mapping[str, str] | None = None,
    hub_name: str | None = None,
    config_name: str | None = None,
    label_names: Sequence[str] | None = None,
    cache_dir: str | None = None,
) -> LoadResult:
    """Load one split of a one-row-per-utterance table through a column mapping (see the module docstring)."""
    columns = check_column_option(columns)
    name = dict(split_names or {}).get(split, split)
    dataset, where = open_split(source, name, hub_name=hub_name, config_name=config_name, cache_dir=cache_dir)
    require_columns(list(dataset.column_names), list(dict.fromkeys(columns.values())), where, line=None)
    if label_names is None and "label" in columns:
        label_names = label_names_of(dataset, columns["label"])
    utterance_columns = {key: col for key, col in columns.items() if key != "dialogue_id"}
    assembler = DialogueAssembler(where, split, on_error, columns=utterance_columns, sort_by_turn="turn" in columns)
    lines = record_lines(where, len(dataset))
    next_turn: dict[str, int] = {}  # row order within each dialogue, when there is no turn column
    for index, row in enumerate(dataset.select_columns(list(dict.fromkeys(columns.values())))):
        loc = Loc(where, lines[index]) if lines is not None else Loc(where, None, f"rows[{index}]")
        problems: list[Problem] = []
        raw_id = row[columns["dialogue_id"]]
        dialogue_id = None if raw_id is None or not str(raw_id).strip() else str(raw_id).strip()
        if dialogue_id is None:
            problems.append(loc.problem(columns["dialogue_id"], "missing dialogue id"))
        turn = next_turn.get(dialogue_id or "", 0)
        next_turn[dialogue_id or ""] = turn + 1
        utterance = utterance_from_row(
            row,
            utterance_columns,
            loc,
            label_set,
            problems,
            turn=turn,
            default_speaker=DEFAULT_SPEAKER,
            label_names=label_names,
            label_required=False,
        )
        assembler.add(dialogue_id, utterance, loc, problems)
    # One file, or a save_to_disk folder of one Dataset: the same rows whatever split is asked for.
    one_table = hub_name is None and (is_single_file(source) or where == str(Path(source)))
    return assembler.result(shared_source=where if one_table else None)


SPEC = CorpusSpec(
    name="hf",
    label_set=None,
    splits=("train", "validation", "test"),
    description="a Hugging Face dataset or csv/json/parquet table (a row per utterance) via column mapping",
    load=load,
)
