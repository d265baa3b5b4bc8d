"""What the parser reads from one answer: the label(s), the rationale, and whether (and why not) it is valid."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ParsedOutput:
    label: str | None  # closed set: the set's spelling; open vocabulary: the words joined like the gold `label`
    labels: tuple[str, ...]  # open vocabulary: cleaned words; closed set: (label,) or ()
    rationale: str | None  # the think block's content (stripped), None when there is none
    valid: bool
    reason: str | None  # why invalid: a stable code, optionally ": detail"
    well_formed: bool  # the strict format of the answer format, nothing but whitespace outside the tags
    answer_text: str | None  # the raw answer text that was read
    lenient: bool  # the label came from a lenient fallback, not from an answer tag
