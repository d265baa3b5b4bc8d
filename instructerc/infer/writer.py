"""Resumable append-only JSONL writer for predictions.

Every batch is written as whole lines and flushed + fsynced before the next batch starts, so a run that is
killed loses at most the batch in flight. On open, the ids already in the file are read back; a torn last line
(a crash in the middle of a write) is cut away, so the same command re-run continues where it stopped with no
duplicate and no lost row.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any


class ResumableJsonlWriter:
    """Append rows (dicts with a unique `id`) to a JSONL file, skipping nothing already written."""

    def __init__(self, path: str | os.PathLike, id_field: str = "id"):
        self.path = Path(path)
        self.id_field = id_field
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.ids: set[str] = set()
        self.first_row: dict[str, Any] | None = None  # what an earlier run wrote first: who wrote the file
        self.truncated_bytes = 0  # how much of a torn last line was cut away on open
        self._recover()
        self._handle = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def _recover(self) -> None:
        """Read the ids already written and cut the file back to its last complete line."""
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        good = 0  # byte offset just past the last complete, parsable line
        for line in data.splitlines(keepends=True):
            if not line.endswith(b"\n"):
                break  # a torn write: everything from here goes
            try:
                row = json.loads(line)
            except ValueError:
                if line.strip():
                    break  # a corrupt line (torn then appended to?): stop trusting the file here
                good += len(line)
                continue
            self.ids.add(str(row[self.id_field]))
            if self.first_row is None:
                self.first_row = row
            good += len(line)
        if good < len(data):
            if data[good:].count(b"\n") > 1:
                raise ValueError(
                    f"{self.path}: unparsable line at byte {good} followed by more lines; "
                    "this is not a torn last write, fix or move the file"
                )
            self.truncated_bytes = len(data) - good
            with open(self.path, "r+b") as handle:
                handle.truncate(good)
                handle.flush()
                os.fsync(handle.fileno())

    def done(self, row_id: str) -> bool:
        return row_id in self.ids

    def __len__(self) -> int:
        return len(self.ids)

    def append(self, rows: Iterable[dict[str, Any]]) -> int:
        """Write rows not already present as complete lines, then flush and fsync; returns how many were written."""
        lines = []
        for row in rows:
            row_id = str(row[self.id_field])
            if row_id in self.ids:
                continue
            self.ids.add(row_id)
            lines.append(json.dumps(row, ensure_ascii=False) + "\n")
        if lines:
            # One write call per batch: a crash leaves whole lines plus at most one torn line, which _recover cuts.
            self._handle.write("".join(lines))
            self._handle.flush()
            os.fsync(self._handle.fileno())
        return len(lines)

    def close(self) -> None:
        if not self._handle.closed:
            self._handle.close()

    def __enter__(self) -> ResumableJsonlWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    """All complete rows of a JSONL file (a torn last line is ignored)."""
    rows = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.endswith("\n") and line.strip():
                rows.append(json.loads(line))
    return rows
