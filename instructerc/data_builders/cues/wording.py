"""Prosody levels -> a short description an LLM can read: "loud, high-pitched speech with wide pitch
variation, fast". Typical levels are not mentioned: the text says only what stands out."""

from __future__ import annotations

from collections.abc import Mapping

_LOUDNESS = {"very low": "very quiet", "low": "quiet", "high": "loud", "very high": "very loud"}
_PITCH = {
    "very low": "very low-pitched",
    "low": "low-pitched",
    "high": "high-pitched",
    "very high": "very high-pitched",
}
_PITCH_VARIATION = {
    "very low": "flat, monotone intonation",
    "low": "narrow pitch variation",
    "high": "wide pitch variation",
    "very high": "very wide pitch variation",
}
_LOUDNESS_VARIATION = {"very high": "uneven loudness"}
_PAUSES = {"high": "some pauses", "very high": "long pauses"}
_RATE = {"very low": "very slow", "low": "slow", "high": "fast", "very high": "very fast"}


def _voice_quality(levels: Mapping[str, str]) -> str | None:
    # Only the extremes: small differences in HNR or jitter are not audible.
    if levels.get("hnr_db") == "very low":
        return "a breathy, rough voice"
    if levels.get("jitter") == "very high" or levels.get("shimmer") == "very high":
        return "a shaky voice"
    return None


def describe_prosody(levels: Mapping[str, str]) -> str | None:
    """The description for feature levels (feature name -> level), or None when nothing could be measured."""
    if not levels:
        return None
    adjectives = [
        w for w in (_LOUDNESS.get(levels.get("loudness_db", "")), _PITCH.get(levels.get("pitch_hz", ""))) if w
    ]
    head = ", ".join(adjectives) + " speech" if adjectives else "speech of typical pitch and loudness"
    with_parts = [
        phrase
        for phrase in (
            _PITCH_VARIATION.get(levels.get("pitch_variation_st", "")),
            _LOUDNESS_VARIATION.get(levels.get("loudness_variation_db", "")),
            _PAUSES.get(levels.get("pause_ratio", "")),
            _voice_quality(levels),
        )
        if phrase
    ]
    text = head + (" with " + _join(with_parts) if with_parts else "")
    rate = _RATE.get(levels.get("speaking_rate", ""))
    return text + (f", {rate}" if rate else "")


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
