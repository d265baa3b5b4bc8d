"""Media written by the tests themselves: speech-like WAV files with known pitch, loudness and syllable rate,
and OpenFace 2.x CSVs with known action units over known time spans."""

from __future__ import annotations

import wave
from collections.abc import Sequence
from pathlib import Path

import numpy as np

RATE = 16000
OPENFACE_AUS_R = (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 25, 26, 45)
OPENFACE_AUS_C = (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 25, 26, 28, 45)


def voice(
    f0: float = 150.0,
    amplitude: float = 0.2,
    syllables_per_s: float = 4.0,
    seconds: float = 2.0,
    vibrato_st: float = 0.0,
    pause: tuple[float, float] | None = None,
) -> np.ndarray:
    """A voiced, vowel-like signal: harmonics of f0 (optionally swept by `vibrato_st` semitones), shaped into
    syllables by a raised-cosine envelope, with an optional silent (start, end) pause."""
    t = np.arange(int(RATE * seconds)) / RATE
    pitch = f0 * 2 ** (vibrato_st * np.sin(2 * np.pi * 0.7 * t) / 12)
    phase = 2 * np.pi * np.cumsum(pitch) / RATE
    signal = sum(np.sin(k * phase) / k for k in range(1, 9))
    envelope = 0.5 - 0.5 * np.cos(2 * np.pi * syllables_per_s * t)
    out = amplitude * signal * envelope / np.max(np.abs(signal))
    if pause is not None:
        out[int(pause[0] * RATE) : int(pause[1] * RATE)] = 0.0
    return out


def write_wav(path: str | Path, samples: np.ndarray, rate: int = RATE) -> Path:
    """16-bit mono PCM WAV."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(pcm.tobytes())
    return path


def write_openface_csv(
    path: str | Path,
    seconds: float,
    active: Sequence[tuple[float, float, dict[int, float]]] = (),
    fps: float = 30.0,
    confidence: float = 0.98,
    low_confidence: Sequence[tuple[float, float]] = (),
    drop_columns: Sequence[str] = (),
) -> Path:
    """An OpenFace 2.x FeatureExtraction CSV (its exact header, spaces after commas): `active` lists
    (start, end, {AU: intensity}) spans; frames in `low_confidence` spans get confidence 0.3."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = ["frame", "face_id", "timestamp", "confidence", "success"]
    header += [f"AU{n:02d}_r" for n in OPENFACE_AUS_R] + [f"AU{n:02d}_c" for n in OPENFACE_AUS_C]
    header = [h for h in header if h not in drop_columns]
    lines = [", ".join(header)]
    for frame in range(int(seconds * fps)):
        t = frame / fps
        values = {"frame": frame + 1, "face_id": 0, "timestamp": round(t, 3), "confidence": confidence, "success": 1}
        if any(lo <= t <= hi for lo, hi in low_confidence):
            values["confidence"] = 0.3
        intensities = {}
        for lo, hi, units in active:
            if lo <= t <= hi:
                intensities.update(units)
        for n in OPENFACE_AUS_R:
            values[f"AU{n:02d}_r"] = intensities.get(n, 0.0)
        for n in OPENFACE_AUS_C:
            values[f"AU{n:02d}_c"] = 1.0 if intensities.get(n, 0.0) >= 1.0 else 0.0
        lines.append(", ".join(str(values[h]) for h in header))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
