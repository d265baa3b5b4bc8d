"""Shared parts of the corpus builders: the result and spec types, problem locations, strict UTF-8 CSV and
JSON readers and value parsers. `assembler.DialogueAssembler` applies the on_error policy below.

on_error semantics (all builders):
  "raise": every problem in the input is collected and one DataError lists them all (file, line, field).
  "drop":  a bad utterance is dropped; a dialogue-level problem (e.g. duplicate turn ids, lists of different
           lengths) drops the whole dialogue. `dropped_utterances` counts the utterances dropped on their own,
           `dropped_dialogues` the whole dialogues and `dropped_dialogue_utterances` the utterances those
           dialogues held; `dropped` is the sum of the first two. The problems are kept in `problems`.
           Dialogues left with no utterances are skipped (not counted again).
A duplicate turn id is found among every row whose turn id could be read, bad rows included, so a row with
another problem (an unknown label, empty text) does not hide it.
File-level problems (missing file, missing columns, bytes that are not UTF-8, unparsable JSON) always raise,
listing every bad line: the file cannot be read meaningfully, and dropping rows would hide a wrong-encoding or
wrong-format file.

Splits: a builder given a single file that does not say which split each dialogue belongs to (a MELD CSV, a
JSONL file without "split" fields, a table) returns the same rows for any split it is asked for, and marks
the result with `shared_source`. `build-data` refuses to build two splits from such a source (validation gold
labels would be training data and retrieved demonstrations); see `check_distinct_splits`.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Integral, Real
from pathlib import Path
from typing import Any

from instructerc.labels import LabelSet
from instructerc.schema import DataError, Dialogue, Problem

SourceLike = str | os.PathLike


@dataclass
class LoadResult:
    dialogues: list[Dialogue]
    dropped: int = 0  # utterances + whole dialogues dropped because on_error="drop" (each counts 1)
    problems: list[Problem] = field(default_factory=list)  # what was dropped and why
    dropped_utterances: int = 0  # utterances dropped on their own (their dialogue kept)
    dropped_dialogues: int = 0  # whole dialogues dropped for a dialogue-level problem
    dropped_dialogue_utterances: int = 0  # utterances those dialogues held (as far as they could be read)
    # Set (to the file) when the source does not say which split its dialogues belong to, so that any split
    # asked for gets these same rows: such a source must not feed two splits.
    shared_source: str | None = None


@dataclass(frozen=True)
class CorpusSpec:
    name: str  # registry name, e.g. "meld"
    label_set: str | None  # name for labels.get_label_set; None = given by the user (jsonl, hf)
    splits: tuple[str, ...]  # splits it can produce
    description: str
    load: Callable[..., LoadResult]  # load(source, split, *, label_set, on_error="raise", **options)
    # split -> file names tried, in order, when the source is a folder
    file_names: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Loc:
    """Where a value came from; `prefix` (e.g. "rows[3]", "utterances[2]") is put before field names."""

    source: str
    line: int | None = None
    prefix: str | None = None

    def problem(self, name: str | None, message: str) -> Problem:
        if self.prefix:
            name = f"{self.prefix}.{name}" if name else self.prefix
        return Problem(self.source, self.line, name, message)


def is_single_file(source: SourceLike | None) -> bool:
    """Whether the source is one file (as opposed to a folder with a file per split)."""
    return source is not None and Path(source).is_file()


def resolve_source(spec: CorpusSpec, source: SourceLike, split: str) -> Path:
    """A file is used as is; in a folder, the first existing conventional file name of the split.

    A file is returned whatever the split: a builder whose file does not say which split each dialogue belongs
    to must mark its result with `shared_source` (see the module docstring)."""
    path = Path(source)
    if path.is_file():
        return path
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    names = spec.file_names.get(split, ())
    for name in names:
        if (path / name).is_file():
            return path / name
    tried = ", ".join(names) or "(no conventional file name)"
    raise FileNotFoundError(f"{path}: no file for split {split!r} of corpus {spec.name!r} (looked for: {tried})")


def read_text(path: Path) -> str:
    """Decode a file strictly as UTF-8 (a leading BOM is dropped); lists every line holding invalid bytes."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        pass
    problems = []
    for number, line in enumerate(raw.split(b"\n"), start=1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as err:
            byte = line[err.start]
            problems.append(
                Problem(
                    str(path),
                    number,
                    None,
                    f"not valid UTF-8 (byte 0x{byte:02x} at column {err.start + 1}); re-encode the file as UTF-8",
                )
            )
    raise DataError(problems)


def read_json_records(path: Path) -> list[tuple[Loc, Any]]:
    """Records of a JSON list (located by index, e.g. "[4]") or of JSON lines (located by line number)."""
    source, text = str(path), read_text(path)
    if text.lstrip().startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise DataError(
                Problem(source, err.lineno, None, f"invalid JSON: {err.msg} (column {err.colno})")
            ) from None
        return [(Loc(source, None, f"[{index}]"), record) for index, record in enumerate(data)]
    records, problems = [], []
    for number, line in enumerate(text.split("\n"), start=1):
        if line.strip():
            try:
                records.append((Loc(source, number), json.loads(line)))
            except json.JSONDecodeError as err:
                problems.append(Problem(source, number, None, f"invalid JSON: {err.msg} (column {err.colno})"))
    if problems:
        raise DataError(problems)
    return records


def require_columns(found: Sequence[str], required: Sequence[str], source: str, line: int | None = 1) -> None:
    """Raise one DataError naming every missing column and the columns that were found."""
    missing = [name for name in required if name not in found]
    if missing:
        noun = "column" if len(missing) == 1 else "columns"
        raise DataError(
            Problem(source, line, None, f"missing {noun}: {', '.join(missing)} (found: {', '.join(found)})")
        )


def read_csv(path: Path, required: Sequence[str]) -> Iterator[tuple[Loc, dict[str, str], list[Problem]]]:
    """Yield (location, row, problems) for each non-blank CSV record; the line is where the record starts."""
    source = str(path)
    reader = csv.reader(io.StringIO(read_text(path), newline=""))
    header = [name.strip() for name in next(reader, [])]
    if not header:
        raise DataError(Problem(source, 1, None, "is empty (expected a header line)"))
    require_columns(header, required, source)
    previous = reader.line_num
    for fields in reader:
        start, previous = previous + 1, reader.line_num
        if not any(value.strip() for value in fields):
            continue
        loc = Loc(source, start)
        problems = []
        if len(fields) != len(header):
            problems.append(loc.problem(None, f"expected {len(header)} fields, got {len(fields)}"))
        yield loc, dict(zip(header, fields + [""] * (len(header) - len(fields)), strict=False)), problems


def csv_record_lines(text: str) -> list[int]:
    """The line where each data record of a CSV text starts (header excluded), skipping the blank lines that
    pandas (and so `datasets`) skips: record i of the table is on line result[i]."""
    reader = csv.reader(io.StringIO(text, newline=""))
    if next(reader, None) is None:
        return []
    lines, previous = [], reader.line_num
    for fields in reader:
        start, previous = previous + 1, reader.line_num
        if len(fields) > 1 or (fields and fields[0].strip()):
            lines.append(start)
    return lines


def json_lines_record_lines(text: str) -> list[int] | None:
    """The line of each record of a JSON lines text (blank lines skipped); None for a JSON document."""
    if text.lstrip().startswith("["):
        return None
    return [number for number, line in enumerate(text.split("\n"), start=1) if line.strip()]


def check_distinct_splits(results: Mapping[str, LoadResult], source: SourceLike | None) -> None:
    """Refuse splits that are the same rows: a single file that does not say which split each dialogue belongs
    to, asked for several splits (or, from any builder, two splits holding exactly the same dialogues)."""
    by_source: dict[str, list[str]] = {}
    for split, result in results.items():
        if result.shared_source is not None:
            by_source.setdefault(result.shared_source, []).append(split)
    shared = next(((path, splits) for path, splits in by_source.items() if len(splits) > 1), None)
    if shared is None:
        contents: dict[frozenset, str] = {}
        for split, result in results.items():
            key = frozenset(tuple((u.speaker, u.text) for u in d.utterances) for d in result.dialogues)
            if key and key in contents:
                shared = (str(source) if source is not None else "<input>", [contents[key], split])
                break
            contents.setdefault(key, split)
    if shared is None:
        return
    path, splits = shared
    raise DataError(
        Problem(
            path,
            None,
            None,
            f"the same dialogues would be used for the splits {', '.join(splits)}: the data does not say which "
            "split each dialogue belongs to, so evaluation gold labels would leak into the training examples and "
            "the retrieved demonstrations",
        ),
        hint=(
            "Give one file per split (a folder with the corpus's conventional file names, e.g. train_sent_emo.csv "
            'and dev_sent_emo.csv for MELD, or train.jsonl and validation.jsonl), add a "split" field to every '
            "dialogue of a canonical JSONL file, or build a single split from this file with n_demos 0 "
            "(--splits test --n_demos 0)."
        ),
    )


def is_blank(value: Any) -> bool:
    """None, NaN (pandas' empty cell) or a string of whitespace."""
    return (
        value is None
        or (isinstance(value, str) and not value.strip())
        or (isinstance(value, float) and math.isnan(value))
    )


def parse_int(value: Any, loc: Loc, name: str, problems: list[Problem]) -> int | None:
    """An integer from an int, an integral float or a string such as "3"; None (and a problem) otherwise."""
    if isinstance(value, Integral) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return int(value)
    problems.append(loc.problem(name, f"expected an integer, got {value!r}"))
    return None


_TIME = re.compile(r"(?:(\d+):)?(\d{1,2}):(\d{1,2}(?:[.,]\d+)?)")


def parse_seconds(value: Any, loc: Loc, name: str, problems: list[Problem]) -> float | None:
    """Seconds from a number or a timestamp such as "00:16:16,059" / "0:05:52.435"; blank -> None."""
    if is_blank(value):
        return None
    if isinstance(value, Real) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    if match := _TIME.fullmatch(text):
        hours, minutes, seconds = match.groups()
        return round(int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds.replace(",", ".")), 3)
    try:
        return float(text)
    except ValueError:
        problems.append(loc.problem(name, f"expected a time such as 00:16:16,059 or a number of seconds, got {text!r}"))
        return None


def normalize_label(
    value: Any,
    label_set: LabelSet,
    loc: Loc,
    name: str,
    problems: list[Problem],
    *,
    names: Sequence[str] | None = None,
    required: bool = True,
) -> str | None:
    """Map a gold label (a word, or an index into `names`) to the label set's spelling; record a problem if
    it is unknown, or blank while `required`."""
    expected = f"expected one of: {', '.join(label_set.labels)}"
    if is_blank(value):
        if required:
            problems.append(loc.problem(name, f"missing label ({expected})"))
        return None
    if isinstance(value, Integral) and not isinstance(value, bool):
        if names is None:
            problems.append(
                loc.problem(name, f"label is the number {value} but no label names were given ({expected})")
            )
            return None
        if not 0 <= value < len(names):
            problems.append(
                loc.problem(name, f"label index {value} is out of range (0..{len(names) - 1}: {', '.join(names)})")
            )
            return None
        value = names[int(value)]
    label = label_set.normalize(str(value))
    if label is None:
        problems.append(loc.problem(name, f"unknown label {str(value).strip()!r} ({expected})"))
    return label
