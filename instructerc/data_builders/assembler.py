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
    """Build an Utterance from a row through a mapping canonical field -> column.

    Problems found are appended to `problems`; the utterance is still returned (with the bad values left out)
    when its turn id could be read, so that the assembler, which drops it for those problems, still sees its
    turn id when it looks for duplicates. None when the turn id is unreadable.
    Emptiness and time order are checked later by the assembler (schema.validate_utterance)."""
    if turn is None and "turn" not in columns:
        raise ValueError("utterance_from_row needs a 'turn' column or a turn number")
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
    if turn is None:
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
    rejected_size: int = 0  # utterances of a rejected dialogue, as far as they could be counted
    turns: list[tuple[int, Loc, Mapping[str, str]]] = field(default_factory=list)  # every readable turn id


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
        self.dropped_utterances = 0
        self.dropped_dialogues = 0
        self.dropped_dialogue_utterances = 0

    @staticmethod
    def field_name(name: str, loc: Loc, columns: Mapping[str, str]) -> str:
        name = columns.get(name, name)
        return f"{loc.prefix}.{name}" if loc.prefix else name

    @property
    def dropped(self) -> int:
        """Utterances and whole dialogues dropped (each counts 1)."""
        return self.dropped_utterances + self.dropped_dialogues

    def drop(self, problems: Sequence[Problem], *, dialogue: bool = False, utterances: int = 0) -> None:
        """Record problems that cost one utterance, or one whole dialogue of `utterances` utterances."""
        self.problems += problems
        if dialogue:
            self.dropped_dialogues += 1
            self.dropped_dialogue_utterances += utterances
        else:
            self.dropped_utterances += 1

    def add(
        self,
        dialogue_id: str | None,
        utterance: Utterance | None,
        loc: Loc,
        problems: Sequence[Problem] = (),
        *,
        metadata: dict[str, Any] | None = None,
        columns: Mapping[str, str] | None = None,
        turn: int | None = None,
    ) -> None:
        """Add one utterance; with problems (or no utterance) it is dropped, but its dialogue still exists.

        `columns` overrides the assembler's field -> source name mapping for this utterance. `turn` is the turn
        id of a bad row given without an utterance; it still counts when looking for duplicate turn ids."""
        columns = self.columns if columns is None else columns
        if dialogue_id is not None:
            group = self.groups.setdefault(dialogue_id, _Group(dict(metadata or {})))
            turn = utterance.turn if utterance is not None else turn
            if isinstance(turn, int) and not isinstance(turn, bool):
                group.turns.append((turn, loc, columns))
        if utterance is not None:
            # Checked even when the row already has problems, so that every problem of the row is listed (a
            # field already reported, e.g. a speaker that could not be parsed, is not reported again).
            found = validate_utterance(utterance.to_dict(), (loc.source, loc.line), "u")
            named = [
                Problem(p.source, p.line, self.field_name(p.field.split(".", 1)[1], loc, columns), p.message)
                for p in found
                if p.field
            ]
            reported = {p.field for p in problems}
            problems = [*problems, *(p for p in named if p.field not in reported)]
        if problems or utterance is None or dialogue_id is None:
            self.drop(problems)
            return
        group.entries.append(_Entry(utterance, loc, columns))

    def reject(self, dialogue_id: str, problems: Sequence[Problem], utterances: int = 0) -> None:
        """Mark a whole dialogue (of `utterances` utterances) bad: a dialogue-level problem."""
        group = self.groups.setdefault(dialogue_id, _Group({}))
        group.rejected = True
        group.rejected_size = max(group.rejected_size, utterances)
        self.problems += problems

    def _duplicate_turns(self, dialogue_id: str, group: _Group) -> list[Problem]:
        """Duplicate turn ids among every row of the dialogue whose turn id could be read, bad rows included."""
        first: dict[int, Loc] = {}
        problems = []
        for turn, loc, columns in group.turns:
            if turn in first:
                seen = first[turn]
                same_line = seen.line is None or seen.line == loc.line
                where = (seen.prefix or "an earlier row") if same_line else f"line {seen.line}"
                problems.append(
                    Problem(
                        loc.source,
                        loc.line,
                        self.field_name("turn", loc, columns),
                        f"duplicate turn id {turn} in dialogue {dialogue_id!r} (first at {where})",
                    )
                )
            first.setdefault(turn, loc)
        return problems

    def result(self, shared_source: str | None = None) -> LoadResult:
        """Build and check the dialogues; raise one DataError with every problem when on_error="raise".

        `shared_source`: the file, when it does not say which split its dialogues belong to (see base)."""
        dialogues = []
        for dialogue_id, group in self.groups.items():
            problems = [] if group.rejected else self._duplicate_turns(dialogue_id, group)
            entries = sorted(group.entries, key=lambda e: e.utterance.turn) if self.sort_by_turn else group.entries
            dialogue = Dialogue(dialogue_id, [e.utterance for e in entries], self.split, group.metadata)
            if not problems and not group.rejected and entries:
                # Last safety net: the builders' own checks should make this find nothing.
                problems = validate_dialogue(dialogue.to_dict(), self.source)
            if problems or group.rejected:
                size = group.rejected_size if group.rejected else len(entries)
                self.drop(problems, dialogue=True, utterances=size)
            elif entries:
                dialogues.append(dialogue)
        # In file order (duplicate turn ids are found last); problems without a line keep their order.
        self.problems.sort(key=lambda p: (p.line is None, p.line or 0))
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
        return LoadResult(
            dialogues,
            self.dropped,
            self.problems,
            dropped_utterances=self.dropped_utterances,
            dropped_dialogues=self.dropped_dialogues,
            dropped_dialogue_utterances=self.dropped_dialogue_utterances,
            shared_source=shared_source,
        )
