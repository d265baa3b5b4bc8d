"""Relative levels: a feature value is "high" or "low" only against a reference distribution.

Cut points are quantiles of the reference (10th, 30th, 70th, 90th percentile) giving five levels, very low
to very high; a value within a noticeable difference of the reference median is typical whatever its rank.
The reference is the speaker's own utterances when the speaker has enough of them (voices differ more between
people than between emotions), otherwise the whole corpus. A fitted reference is saved next to the output so
that new dialogues can be described on the same scale (`reference_file`).
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from instructerc.io import atomic_write_json

LEVELS = ("very low", "low", "typical", "high", "very high")
QUANTILES = (0.1, 0.3, 0.5, 0.7, 0.9)
ReferenceMode = Literal["speaker", "corpus"]

Cuts = dict[str, list[float]]  # feature -> the quantiles above, ascending

# The smallest difference from the reference median worth putting into words, in the feature's unit (pitch in
# semitones). Below it a value is "typical" whatever its rank: quantiles alone would turn the rounding noise
# of a steady voice into "very wide pitch variation".
NOTICEABLE = {
    "pitch_hz": 1.0,  # semitones
    "pitch_variation_st": 0.5,
    "loudness_db": 2.0,
    "loudness_variation_db": 1.0,
    "speaking_rate": 0.5,  # syllables per second
    "pause_ratio": 0.05,
    "hnr_db": 2.0,
    "jitter": 0.005,
    "shimmer": 0.02,
}


def _difference(feature: str, value: float, median: float) -> float:
    if feature == "pitch_hz" and value > 0 and median > 0:
        return 12.0 * float(np.log2(value / median))
    return value - median


def level_of(value: float, cuts: list[float], feature: str | None = None) -> str:
    """The level of `value` given the reference quantiles; values at a cut point, or closer to the median than
    the feature's NOTICEABLE difference, are "typical"."""
    very_low, low, median, high, very_high = cuts
    if feature is not None and abs(_difference(feature, value, median)) < NOTICEABLE.get(feature, 0.0):
        return "typical"
    if value < very_low:
        return "very low"
    if value < low:
        return "low"
    if value <= high:
        return "typical"
    if value <= very_high:
        return "high"
    return "very high"


def _cuts(values_by_feature: Mapping[str, list[float]], minimum: int) -> Cuts:
    return {
        name: [float(q) for q in np.quantile(np.asarray(values), QUANTILES)]
        for name, values in values_by_feature.items()
        if len(values) >= minimum
    }


@dataclass
class Reference:
    """Cut points for the corpus and for every speaker with at least `min_speaker_values` measurements."""

    mode: ReferenceMode = "speaker"
    min_speaker_values: int = 10
    corpus: Cuts = field(default_factory=dict)
    speakers: dict[str, Cuts] = field(default_factory=dict)

    @classmethod
    def fit(
        cls,
        measurements: Iterable[tuple[str, Mapping[str, float | None]]],
        mode: ReferenceMode = "speaker",
        min_speaker_values: int = 10,
    ) -> Reference:
        """Fit on (speaker, features) pairs; None values (not measurable) are left out."""
        corpus: dict[str, list[float]] = defaultdict(list)
        per_speaker: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        for speaker, features in measurements:
            for name, value in features.items():
                if value is not None:
                    corpus[name].append(value)
                    per_speaker[speaker][name].append(value)
        speakers = (
            {s: cuts for s, values in per_speaker.items() if (cuts := _cuts(values, min_speaker_values))}
            if mode == "speaker"
            else {}
        )
        return cls(mode, min_speaker_values, _cuts(corpus, 1), speakers)

    def level(self, feature: str, value: float | None, speaker: str | None = None) -> str | None:
        """The level of one measurement, against the speaker's cut points when there are any."""
        if value is None:
            return None
        cuts = self.speakers.get(speaker or "", {}).get(feature) or self.corpus.get(feature)
        return level_of(value, cuts, feature) if len(cuts or ()) == len(QUANTILES) else None

    def levels(self, features: Mapping[str, float | None], speaker: str | None = None) -> dict[str, str]:
        return {name: lvl for name, value in features.items() if (lvl := self.level(name, value, speaker))}

    def to_dict(self) -> dict[str, Any]:
        return {
            "quantiles": list(QUANTILES),
            "mode": self.mode,
            "min_speaker_values": self.min_speaker_values,
            "corpus": self.corpus,
            "speakers": self.speakers,
        }

    def save(self, path: str | os.PathLike) -> None:
        atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike) -> Reference:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            return cls(data["mode"], int(data["min_speaker_values"]), data["corpus"], data["speakers"])
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: reference file not found") from None
        except (ValueError, KeyError, TypeError) as err:
            raise ValueError(f"{path}: not a cue reference file written by `instructerc cues` ({err})") from None
