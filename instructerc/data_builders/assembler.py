"""From parsed rows to checked dialogues: `utterance_from_row` (a row + a column mapping -> Utterance) and
`DialogueAssembler`, which groups utterances into dialogues and applies the on_error policy described in
`instructerc.data_builders.base` the same way for every format.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from instructerc.data_builders.base import (
    LoadResult,
    Loc,
    is_blank,
    normalize_label,
    parse_int,
    parse_seconds,
)
from instructerc.labels import LabelSet
from instructerc.schema import (
    DataError,
    Dialogue,
    OnError,
    Problem,
    Utterance,
    validate_dialogue,
    validate_utterance,
)


def _text_or_none(value: Any) -> str | None:
    return None if is_blank(value) else str(value).strip()


def _labels_list(value: Any) -> list[str] | None:
    """Open-vocabulary labels kept as given: a list, or a comma-separated string."""
    if is_blank(value):
        return None
    items = value.split(",") if isinstance(value, str) else list(value)
    return [str(item).strip() for item in items if str(item).strip()] or None


# Canonical utterance fields that a column mapping may name (besides "dialogue_id").
UTTERANCE_COLUMNS = (
    "turn",
    "speaker",
    "text",
    "label",
    "labels",
    "rationale",
    "audio_cue",
    "visual_cue",
    "other_cue",
    "start",
    "end",
)


def utterance_from_row(
    row: Mapping[str, Any],
    columns: Mapping[str, str],
    loc: Loc,
    label_set: LabelSet,
    problems: list[Problem],
    *,
    turn: int | None = None,
    default_speaker: str | None = None,
    label_names: Sequence[str] | None = None,
    label_required: bool = True,
    metadata: dict[str, Any] | None = None,
) -> Utterance | None:
    """Build an Utterance from a row through a mapping canonical field -> column; None if a problem was found.

    Emptiness and time order are checked later by the assembler (schema.validate_utterance)."""
    if turn is None and "turn" not in columns:
        raise ValueError("utterance_from_row needs a 'turn' column or a turn number")
    before = len(problems)
    value = {key: row.get(col) for key, col in columns.items()}
    if "turn" in columns:
        turn = parse_int(value["turn"], loc, columns["turn"], problems)
    label = None
    if "label" in columns:
        label = normalize_label(
            value["label"],
            label_set,
            loc,
            columns["label"],
            problems,
            names=label_names,
            required=label_required,
        )
    times = {
        key: parse_seconds(value.get(key), loc, columns[key], problems) for key in ("start", "end") if key in columns
    }
    if len(problems) > before or turn is None:
        return None
    optional = {key: _text_or_none(value.get(key)) for key in ("rationale", "audio_cue", "visual_cue", "other_cue")}
    speaker = value.get("speaker") if "speaker" in columns else default_speaker
    return Utterance(
        turn=turn,
        speaker=_text_or_none(speaker) or "",
        text=_text_or_none(value.get("text")) or "",
        label=label,
        labels=_labels_list(value.get("labels")),
        **{k: v for k, v in optional.items() if v is not None},
        **times,
        metadata=metadata or {},
    )


@dataclass
class _Entry:
    utterance: Utterance
    loc: Loc
    columns: Mapping[str, str]


@dataclass
class _Group:
    metadata: dict[str, Any]
    entries: list[_Entry] = field(default_factory=list)
    rejected: bool = False


class DialogueAssembler:
    """Groups utterances into dialogues (in order of first appearance) and applies the on_error policy.

    `columns` maps canonical field names to the source's names so that problems name the source's column.
    """

    def __init__(
        self,
        source: str,
        split: str,
        on_error: OnError,
        *,
        columns: Mapping[str, str] | None = None,
        sort_by_turn: bool = True,
    ):
        if on_error not in ("raise", "drop"):
            raise ValueError(f"on_error must be 'raise' or 'drop', got {on_error!r}")
        self.source, self.split, self.on_error = source, split, on_error
        self.columns = dict(columns or {})
        self.sort_by_turn = sort_by_turn
        self.groups: dict[str, _Group] = {}
        self.problems: list[Problem] = []
        self.dropped = 0

    @staticmethod
    def field_name(name: str, loc: Loc, columns: Mapping[str, str]) -> str:
        name = columns.get(name, name)
        return f"{loc.prefix}.{name}" if loc.prefix else name

    def drop(self, problems: Sequence[Problem]) -> None:
        """Record problems that cost one utterance or dialogue."""
        self.problems += problems
        self.dropped += 1

    def add(
        self,
        dialogue_id: str | None,
        utterance: Utterance | None,
        loc: Loc,
        problems: Sequence[Problem] = (),
        *,
        metadata: dict[str, Any] | None = None,
        columns: Mapping[str, str] | None = None,
    ) -> None:
        """Add one utterance; with problems (or no utterance) it is dropped, but its dialogue still exists.

        `columns` overrides the assembler's field -> source name mapping for this utterance."""
        columns = self.columns if columns is None else columns
        if dialogue_id is not None:
            group = self.groups.setdefault(dialogue_id, _Group(dict(metadata or {})))
        if utterance is not None and not problems:
            found = validate_utterance(utterance.to_dict(), (loc.source, loc.line), "u")
            problems = [
                Problem(p.source, p.line, self.field_name(p.field.split(".", 1)[1], loc, columns), p.message)
                for p in found
                if p.field
            ]
        if problems or utterance is None or dialogue_id is None:
            self.drop(problems)
            return
        group.entries.append(_Entry(utterance, loc, columns))

    def reject(self, dialogue_id: str, problems: Sequence[Problem]) -> None:
        """Mark a whole dialogue bad (a dialogue-level problem)."""
        self.groups.setdefault(dialogue_id, _Group({})).rejected = True
        self.problems += problems

    def _duplicate_turns(self, dialogue_id: str, entries: list[_Entry]) -> list[Problem]:
        first: dict[int, _Entry] = {}
        problems = []
        for entry in entries:
            turn = entry.utterance.turn
            if turn in first:
                seen = first[turn].loc
                same_line = seen.line is None or seen.line == entry.loc.line
                where = (seen.prefix or "an earlier row") if same_line else f"line {seen.line}"
                problems.append(
                    Problem(
                        entry.loc.source,
                        entry.loc.line,
                        self.field_name("turn", entry.loc, entry.columns),
                        f"duplicate turn id {turn} in dialogue {dialogue_id!r} (first at {where})",
                    )
                )
            first.setdefault(turn, entry)
        return problems

    def result(self) -> LoadResult:
        """Build and check the dialogues; raise one DataError with every problem when on_error="raise"."""
        dialogues = []
        for dialogue_id, group in self.groups.items():
            problems = [] if group.rejected else self._duplicate_turns(dialogue_id, group.entries)
            entries = sorted(group.entries, key=lambda e: e.utterance.turn) if self.sort_by_turn else group.entries
            dialogue = Dialogue(dialogue_id, [e.utterance for e in entries], self.split, group.metadata)
            if not problems and not group.rejected and entries:
                # Last safety net: the builders' own checks should make this find nothing.
                problems = validate_dialogue(dialogue.to_dict(), self.source)
            if problems or group.rejected:
                self.drop(problems)
            elif entries:
                dialogues.append(dialogue)
        if self.problems and self.on_error == "raise":
            raise DataError(self.problems)
        if not dialogues:
            reason = "every dialogue was dropped" if self.problems else "it contains none"
            raise DataError(
                [
                    *self.problems,
                    Problem(self.source, None, None, f"no dialogues for split {self.split!r}: {reason}"),
                ]
            )
        return LoadResult(dialogues, self.dropped, self.problems)
