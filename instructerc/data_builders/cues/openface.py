"""Facial action units from OpenFace 2.x `FeatureExtraction` CSVs -> "cheek raiser and lip corner puller
(smile), strong; brow lowerer, slight".

An OpenFace CSV has one row per video frame with `timestamp` (s), `confidence`, `success`, intensities
`AUxx_r` (0-5) and presence `AUxx_c` (0/1) (its header puts a space after each comma; both forms are read).
Over an utterance's time span, frames with low confidence or a failed track are dropped; an action unit is
active when it is present in at least `min_presence` of the remaining frames, and its intensity is the mean
`AUxx_r` over the frames where it is present, named with FACS's intensity words. When a file holds several
faces (`face_id`), the face tracked in most frames is taken as the speaker's.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FACS_NAMES = {
    1: "inner brow raiser",
    2: "outer brow raiser",
    4: "brow lowerer",
    5: "upper lid raiser",
    6: "cheek raiser",
    7: "lid tightener",
    9: "nose wrinkler",
    10: "upper lip raiser",
    12: "lip corner puller",
    14: "dimpler",
    15: "lip corner depressor",
    17: "chin raiser",
    20: "lip stretcher",
    23: "lip tightener",
    25: "lips part",
    26: "jaw drop",
    28: "lip suck",
    45: "blink",
}
# Action units that together make one familiar facial movement, named by its appearance, not an emotion.
COMBINATIONS = (((6, 12), "smile"), ((1, 2), "raised brows"), ((9, 10), "sneer"), ((25, 26), "open mouth"))
IGNORED = frozenset({45})  # blinks say more about the eyes' moisture than about emotion
REQUIRED = ("timestamp", "confidence")
_AU_COLUMN = re.compile(r"^AU(\d\d)_([rc])$")


class OpenFaceError(ValueError):
    """The file is not a usable OpenFace CSV; the message names the file, line or columns."""


@dataclass(frozen=True)
class FaceTrack:
    """The frames of one OpenFace CSV (one face)."""

    timestamps: np.ndarray
    confidence: np.ndarray
    success: np.ndarray
    intensity: dict[int, np.ndarray]  # AU number -> AUxx_r per frame
    presence: dict[int, np.ndarray]  # AU number -> AUxx_c per frame


@dataclass(frozen=True)
class ActionUnit:
    number: int
    presence: float  # share of usable frames in which it is present
    intensity: float | None  # mean AUxx_r where present; None when the file has only AUxx_c


def read_openface(path: str | Path) -> FaceTrack:
    """Read an OpenFace CSV; raises OpenFaceError naming missing columns or the bad line."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            rows = list(csv.reader(handle, skipinitialspace=True))
    except UnicodeDecodeError as err:
        raise OpenFaceError(f"{path}: not UTF-8 text ({err.reason}); expected an OpenFace CSV") from None
    if not rows:
        raise OpenFaceError(f"{path}: empty file; expected an OpenFace CSV with a header row")
    header = [name.strip() for name in rows[0]]
    au_columns = {name: _AU_COLUMN.match(name) for name in header if _AU_COLUMN.match(name)}
    missing = [name for name in REQUIRED if name not in header]
    if missing or not au_columns:
        what = ", ".join(missing + ([] if au_columns else ["AUxx_r / AUxx_c"]))
        raise OpenFaceError(f"{path}:1: missing columns {what}; expected OpenFace 2.x FeatureExtraction output")
    index = {name: i for i, name in enumerate(header)}
    values = []
    for line, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        try:
            if len(row) != len(header):
                raise ValueError(f"{len(row)} cells")
            values.append([float(cell) for cell in row])
        except ValueError as err:
            raise OpenFaceError(f"{path}:{line}: expected {len(header)} numbers ({err})") from None
    table = np.array(values, dtype=float).reshape(-1, len(header))
    if "face_id" in index and table.size:
        faces, counts = np.unique(table[:, index["face_id"]], return_counts=True)
        table = table[table[:, index["face_id"]] == faces[np.argmax(counts)]]
    ones = np.ones(len(table))
    intensity, presence = {}, {}
    for name, match in au_columns.items():
        target = intensity if match.group(2) == "r" else presence
        target[int(match.group(1))] = table[:, index[name]]
    return FaceTrack(
        table[:, index["timestamp"]],
        table[:, index["confidence"]],
        table[:, index["success"]] if "success" in index else ones,
        intensity,
        presence,
    )


def action_units(
    track: FaceTrack,
    start: float | None = None,
    end: float | None = None,
    *,
    min_confidence: float = 0.8,
    min_presence: float = 0.3,
    min_intensity: float = 1.0,
) -> list[ActionUnit] | None:
    """The active action units in [start, end] (whole track when None); None when no usable frame is left."""
    keep = (track.confidence >= min_confidence) & (track.success > 0)
    if start is not None:
        keep &= track.timestamps >= start
    if end is not None:
        keep &= track.timestamps <= end
    if not keep.any():
        return None
    active = []
    for number in sorted(set(track.intensity) | set(track.presence)):
        if number in IGNORED:
            continue
        r = track.intensity.get(number)
        c = track.presence.get(number)
        present = (c[keep] > 0.5) if c is not None else (r[keep] >= min_intensity)  # type: ignore[index]
        share = float(present.mean())
        strength = float(r[keep][present].mean()) if r is not None and present.any() else None
        if share >= min_presence and (strength is None or strength >= min_intensity or r is None):
            active.append(ActionUnit(number, share, strength))
    return active


def intensity_word(value: float | None) -> str | None:
    """FACS-style intensity of a mean AUxx_r (0-5 scale)."""
    if value is None:
        return None
    if value < 2.0:
        return "slight"
    if value < 3.0:
        return "marked"
    if value < 4.0:
        return "strong"
    return "very strong"


def describe_face(units: list[ActionUnit] | None, max_items: int = 4) -> str | None:
    """The description of active action units, strongest first; None when there are none."""
    if not units:
        return None
    by_number = {u.number: u for u in units}
    items: list[tuple[float, str]] = []
    for members, gloss in COMBINATIONS:
        if all(m in by_number for m in members):
            group = [by_number.pop(m) for m in members]
            items.append(_item([u.number for u in group], [u.intensity for u in group], f" ({gloss})"))
    for unit in by_number.values():
        items.append(_item([unit.number], [unit.intensity], ""))
    items.sort(key=lambda item: -item[0])
    return "; ".join(text for _, text in items[:max_items])


def _item(numbers: list[int], intensities: list[float | None], gloss: str) -> tuple[float, str]:
    known = [i for i in intensities if i is not None]
    strength = float(np.mean(known)) if known else 0.0
    names = " and ".join(FACS_NAMES.get(n, f"AU{n:02d}") for n in numbers)
    word = intensity_word(strength if known else None)
    return strength, f"{names}{gloss}" + (f", {word}" if word else "")


def extract(path: str | Path, start: float | None = None, end: float | None = None) -> str | None:
    """The visual cue text of a file (or of [start, end] seconds of it)."""
    return describe_face(action_units(read_openface(path), start, end))
