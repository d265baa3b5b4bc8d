"""Prosodic features of one utterance's audio, measured with Praat (through `praat-parselmouth`).

What is measured, and how (Praat's standard analyses, the ones prosody studies report):

- pitch level and variation: F0 from `To Pitch` (autocorrelation, 75-600 Hz); level is the median F0 in Hz,
  variation the standard deviation of F0 in semitones (so that it is comparable across voices);
- loudness and its variation: `To Intensity` in dB, averaged over the sounding part; variation is its std;
- speaking rate: syllable nuclei per second of sounding speech, nuclei found as intensity peaks that stand
  at least 2 dB above the dip before them and are voiced (the method of de Jong & Wempe, 2009);
- pauses: silent intervals of at least 0.25 s inside the utterance (`To TextGrid (silences)`), as a fraction
  of its duration;
- voice quality: harmonics-to-noise ratio (dB), local jitter and shimmer.

Absolute values depend on the microphone and the speaker, so they are only ever described relative to a
reference distribution (see `binning`). `FEATURE_VERSION` is part of the feature cache key: bump it when a
measurement changes.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np

FEATURE_VERSION = 1
PITCH_FLOOR_HZ, PITCH_CEILING_HZ = 75.0, 600.0
SILENCE_DB_BELOW_PEAK = 25.0  # frames this far below the loudest are silence (Praat's default -25 dB)
MIN_PAUSE_S, MIN_SOUNDING_S = 0.25, 0.1
NUCLEUS_DIP_DB = 2.0

FEATURES = (
    "pitch_hz",
    "pitch_variation_st",
    "loudness_db",
    "loudness_variation_db",
    "speaking_rate",
    "pause_ratio",
    "hnr_db",
    "jitter",
    "shimmer",
)


class AudioError(ValueError):
    """The file cannot be read as audio, or the requested span is not inside it."""


def load_sound(path: str | Path, start: float | None = None, end: float | None = None) -> Any:
    """A parselmouth Sound (mono) of the whole file, or of [start, end] seconds of it."""
    import parselmouth

    try:
        sound = parselmouth.Sound(str(path))
    except parselmouth.PraatError as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else "unreadable"
        raise AudioError(f"not a readable audio file ({reason})") from None
    if sound.n_channels > 1:
        sound = sound.convert_to_mono()
    if start is None and end is None:
        return sound
    start = 0.0 if start is None else float(start)
    end = sound.xmax if end is None else float(end)
    if start >= sound.xmax or end <= start:
        raise AudioError(f"span {start:.2f}-{end:.2f} s is outside the recording (0-{sound.xmax:.2f} s)")
    return sound.extract_part(from_time=start, to_time=min(end, sound.xmax), preserve_times=False)


def _semitones(hz: np.ndarray) -> np.ndarray:
    return 12.0 * np.log2(hz / 100.0)


def _finite(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def _sounding_mask(db: np.ndarray) -> np.ndarray:
    return db > (np.max(db) - SILENCE_DB_BELOW_PEAK) if db.size else np.zeros(0, dtype=bool)


def count_syllable_nuclei(db: np.ndarray, voiced: np.ndarray) -> int:
    """Intensity peaks above the silence threshold, voiced, and >= NUCLEUS_DIP_DB above the preceding dip."""
    if db.size < 3:
        return 0
    threshold = np.max(db) - SILENCE_DB_BELOW_PEAK
    is_peak = (db[1:-1] > db[:-2]) & (db[1:-1] >= db[2:]) & (db[1:-1] > threshold)
    peaks = np.flatnonzero(is_peak) + 1
    nuclei, last = 0, None
    for peak in peaks:
        dip = db[(last if last is not None else 0) : peak + 1].min()
        if db[peak] - dip >= NUCLEUS_DIP_DB and voiced[peak]:
            nuclei += 1
            last = peak
        elif last is not None and db[peak] > db[last]:
            last = peak  # a higher peak without a dip: the same nucleus, measured at its top
    return nuclei


def prosody_features(sound: Any) -> dict[str, float | None]:
    """Every feature in FEATURES for a Sound; None where it cannot be measured (e.g. no voiced frame)."""
    from parselmouth.praat import call

    duration = sound.xmax - sound.xmin
    features: dict[str, float | None] = dict.fromkeys(FEATURES)
    if duration < 0.1 or not np.any(sound.values):
        return features  # too short or digital silence: nothing to describe
    intensity = sound.to_intensity(minimum_pitch=PITCH_FLOOR_HZ, time_step=0.01)
    db = intensity.values[0]
    sounding = _sounding_mask(db)
    if sounding.any():
        # Mean in the energy domain (as Praat's "Get mean ... energy"), not the mean of dB values.
        features["loudness_db"] = float(10 * np.log10(np.mean(10 ** (db[sounding] / 10))))
        features["loudness_variation_db"] = float(np.std(db[sounding]))

    pitch = sound.to_pitch(time_step=0.01, pitch_floor=PITCH_FLOOR_HZ, pitch_ceiling=PITCH_CEILING_HZ)
    f0 = pitch.selected_array["frequency"]
    voiced_f0 = f0[f0 > 0]
    if voiced_f0.size >= 3:
        features["pitch_hz"] = float(np.median(voiced_f0))
        features["pitch_variation_st"] = float(np.std(_semitones(voiced_f0)))

    times = np.asarray(intensity.xs())
    voiced = np.interp(times, np.asarray(pitch.xs()), (f0 > 0).astype(float)) > 0.5  # voicing per intensity frame
    if sounding.any():
        first, last = times[sounding][0], times[sounding][-1]
        span = max(last - first, 0.01)
        features["speaking_rate"] = float(count_syllable_nuclei(db, voiced) / span)
        features["pause_ratio"] = float(_pause_seconds(sound, first, last) / span)

    if voiced_f0.size >= 3:
        harmonicity = sound.to_harmonicity()
        features["hnr_db"] = _finite(call(harmonicity, "Get mean", 0, 0))
        points = call(sound, "To PointProcess (periodic, cc)", PITCH_FLOOR_HZ, PITCH_CEILING_HZ)
        features["jitter"] = _finite(call(points, "Get jitter (local)", 0, 0, 0.0001, 0.02, 1.3))
        features["shimmer"] = _finite(call([sound, points], "Get shimmer (local)", 0, 0, 0.0001, 0.02, 1.3, 1.6))
    return features


def _pause_seconds(sound: Any, first: float, last: float) -> float:
    """Total length of silent intervals between the first and the last sounding frame."""
    import parselmouth
    from parselmouth.praat import call

    with warnings.catch_warnings():  # Praat warns when a steady voice has a small loudness range: not news here
        warnings.simplefilter("ignore", parselmouth.PraatWarning)
        grid = call(
            sound,
            "To TextGrid (silences)",
            PITCH_FLOOR_HZ,
            0.0,
            -SILENCE_DB_BELOW_PEAK,
            MIN_PAUSE_S,
            MIN_SOUNDING_S,
            "silent",
            "sounding",
        )
    total = 0.0
    for index in range(1, int(call(grid, "Get number of intervals", 1)) + 1):
        if call(grid, "Get label of interval", 1, index) != "silent":
            continue
        lo = max(call(grid, "Get starting point", 1, index), first)
        hi = min(call(grid, "Get end point", 1, index), last)
        total += max(0.0, hi - lo)
    return total


def extract(path: str | Path, start: float | None = None, end: float | None = None) -> dict[str, float | None]:
    """Prosodic features of a file (or a span of it); raises AudioError for unreadable media."""
    return prosody_features(load_sound(path, start, end))
