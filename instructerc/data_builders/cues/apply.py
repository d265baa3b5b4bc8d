"""Fill the cue fields of canonical dialogues from media: `audio_cue` from prosody, `visual_cue` from facial
action units. Used by `instructerc cues` and by `build-data` (its `cues:` section takes the same options).

Cue texts already in the data are kept unless `overwrite` is set. The numbers behind each text are kept in
the utterance's metadata (`prosody`, `action_units`) so that a description can always be checked. Nothing is
written until every utterance has been processed: a missing or corrupt file either stops the run with the
list of every bad file (`on_error: raise`) or is skipped and counted (`on_error: skip`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tqdm.auto import tqdm

from instructerc.config import ConfigError, option
from instructerc.data_builders.cues import audio, openface
from instructerc.data_builders.cues.media import (
    AUDIO_PATTERNS,
    OPENFACE_PATTERNS,
    MediaLocator,
    MediaNotFound,
    MediaSpan,
)
from instructerc.data_builders.cues.reference import Reference
from instructerc.data_builders.cues.wording import describe_prosody
from instructerc.io import atomic_write_json, sha256_file, sha256_json
from instructerc.schema import DataError, Dialogue, Problem, Utterance


@dataclasses.dataclass
class CueOptions:
    """Where the media are and how their cues are described (the `cues:` section of a build-data config)."""

    audio_dir: str | None = option("folder of WAV files (see audio_patterns)", default=None)
    audio_index: str | None = option(
        "CSV/JSONL index of audio: dialogue_id, turn, path[, start, end] (instead of audio_dir)", default=None
    )
    audio_patterns: list[str] = option(
        "file names tried in audio_dir; without {turn}: one recording per dialogue cut at start/end",
        default_factory=lambda: list(AUDIO_PATTERNS),
    )
    openface_dir: str | None = option("folder of OpenFace 2.x FeatureExtraction CSVs", default=None)
    openface_patterns: list[str] = option(
        "file names tried in openface_dir (as audio_patterns)", default_factory=lambda: list(OPENFACE_PATTERNS)
    )
    reference: Literal["speaker", "corpus"] = option(
        "prosody levels relative to each speaker's own utterances (corpus for speakers with too few) or the corpus",
        default="speaker",
    )
    min_speaker_utterances: int = option("utterances a speaker needs for a scale of their own", default=10)
    reference_file: str | None = option(
        "describe on a saved scale (a cue_reference.json written by an earlier run) instead of fitting one",
        default=None,
    )
    min_face_confidence: float = option("OpenFace frames below this tracking confidence are dropped", default=0.8)
    min_au_presence: float = option("share of an utterance's frames an action unit must be present in", default=0.3)
    overwrite: bool = option("replace cue texts already in the data", default=False)
    on_error: Literal["raise", "skip"] = option(
        "missing or corrupt media: raise (list every bad file) or skip and count", default="raise"
    )
    workers: int = option("processes measuring audio in parallel", default=1)

    def validate(self) -> None:
        if self.audio_dir and self.audio_index:
            raise ConfigError("give audio_dir or audio_index, not both")
        if not (self.audio_dir or self.audio_index or self.openface_dir):
            raise ConfigError("nothing to do: give audio_dir, audio_index and/or openface_dir")
        if self.workers < 1 or self.min_speaker_utterances < 1:
            raise ConfigError("workers and min_speaker_utterances must be >= 1")
        if not 0 <= self.min_face_confidence <= 1 or not 0 < self.min_au_presence <= 1:
            raise ConfigError("min_face_confidence must be in [0, 1] and min_au_presence in (0, 1]")


@dataclasses.dataclass
class _CueFiles:
    data: str = option("canonical dialogues JSONL")
    output: str = option("where the dialogues with cues go (JSONL, written atomically; the scale next to it)")


@dataclasses.dataclass
class CuesConfig(CueOptions, _CueFiles):  # this base order lists data and output first in --help
    """`instructerc cues`: textualized audio (prosody) and visual (facial action unit) cues for dialogues."""

    cache_dir: str | None = option(
        "cache of measured features (default: $INSTRUCTERC_CACHE or ~/.cache/instructerc)", default=None
    )
    show_progress: bool = option("show progress bars", default=True)


def cue_options(values: dict[str, Any], where: str = "cues") -> CueOptions:
    """CueOptions from a config mapping (build-data's `cues:`), with the same checks as the command's flags."""
    from instructerc.config import from_mapping

    return from_mapping(CueOptions, values, where)


@dataclass
class CueSummary:
    utterances: int = 0
    audio: int = 0
    visual: int = 0
    kept: Counter = field(default_factory=Counter)  # cue kind -> texts already in the data, kept
    skipped: Counter = field(default_factory=Counter)  # reason -> utterances skipped (on_error: skip)
    problems: list[Problem] = field(default_factory=list)
    reference: Reference | None = None
    cache_hits: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        parts = [f"cues for {self.utterances} utterances: {self.audio} audio, {self.visual} visual"]
        if self.kept:
            parts.append("kept from the data " + ", ".join(f"{n} {kind}" for kind, n in sorted(self.kept.items())))
        if self.skipped:
            parts.append("skipped " + ", ".join(f"{n} {why}" for why, n in sorted(self.skipped.items())))
        if self.reference is not None:
            own = len(self.reference.speakers)
            parts.append(f"prosody scale: {self.reference.mode} ({own} speakers with their own)")
        if self.cache_hits:
            parts.append(f"{self.cache_hits} measurements from the cache")
        return "; ".join(parts) + f" ({self.seconds:.1f} s)"


class FeatureCache:
    """Measured prosody per (file content, span), so a rebuild does not re-analyse unchanged audio."""

    def __init__(self, cache_dir: str | os.PathLike | None):
        from instructerc.models import default_cache_dir

        self.root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.root = self.root / "cues" / f"prosody-v{audio.FEATURE_VERSION}"
        self._file_hashes: dict[tuple[str, float, int], str] = {}
        self.hits = 0

    def _key(self, span: MediaSpan) -> str:
        stat = span.path.stat()
        identity = (str(span.path.resolve()), stat.st_mtime, stat.st_size)
        if identity not in self._file_hashes:  # a dialogue recording is cut many times: hash it once
            self._file_hashes[identity] = sha256_file(span.path)
        return sha256_json([self._file_hashes[identity], span.start, span.end])

    def get(self, span: MediaSpan) -> dict[str, float | None] | None:
        try:
            found = json.loads((self.root / f"{self._key(span)}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        self.hits += 1
        return found

    def put(self, span: MediaSpan, features: dict[str, float | None]) -> None:
        atomic_write_json(self.root / f"{self._key(span)}.json", features)


def _measure(span: MediaSpan) -> tuple[dict[str, float | None] | None, str | None]:
    """Worker: features of one span, or the reason it could not be read (exceptions do not cross processes well)."""
    try:
        return audio.extract(span.path, span.start, span.end), None
    except audio.AudioError as err:
        return None, str(err)


Targets = list[tuple[Dialogue, Utterance]]


@dataclass(frozen=True)
class Update:
    """A cue text and the numbers behind it, applied to the utterance only once every file has been read."""

    utterance: Utterance
    cue_field: str  # audio_cue | visual_cue
    text: str | None  # None: measured, but nothing to say (the numbers are still kept)
    metadata_key: str
    metadata: dict[str, float]

    def apply(self) -> None:
        self.utterance.metadata[self.metadata_key] = self.metadata
        if self.text is not None:
            setattr(self.utterance, self.cue_field, self.text)


def _locate(
    targets: Targets, locator: MediaLocator, summary: CueSummary, kind: str
) -> list[tuple[Dialogue, Utterance, MediaSpan]]:
    found = []
    for dialogue, utt in targets:
        try:
            found.append((dialogue, utt, locator.locate(dialogue, utt)))
        except MediaNotFound as err:
            summary.problems.append(Problem(kind, None, None, str(err)))
            summary.skipped[f"no {kind} file"] += 1
    return found


def _pending(dialogues: Sequence[Dialogue], cue_field: str, overwrite: bool, summary: CueSummary) -> Targets:
    """Utterances whose cue is to be computed (those with a cue text already are kept unless overwrite)."""
    targets = []
    for dialogue in dialogues:
        for utt in dialogue.utterances:
            if getattr(utt, cue_field) and not overwrite:
                summary.kept[cue_field.removesuffix("_cue")] += 1
            else:
                targets.append((dialogue, utt))
    return targets


def _measure_all(
    spans: list[MediaSpan], options: CueOptions, cache: FeatureCache, progress: Callable[[int], None]
) -> list[tuple[dict[str, float | None] | None, str | None]]:
    results: list[Any] = [None] * len(spans)
    todo = []
    for i, span in enumerate(spans):
        cached = cache.get(span)
        if cached is not None:
            results[i] = (cached, None)
            progress(1)
        else:
            todo.append(i)
    if options.workers > 1 and len(todo) > 1:
        with ProcessPoolExecutor(max_workers=options.workers) as pool:
            measured = pool.map(_measure, [spans[i] for i in todo], chunksize=4)
            for i, result in zip(todo, measured, strict=True):
                results[i] = result
                progress(1)
    else:
        for i in todo:
            results[i] = _measure(spans[i])
            progress(1)
    for i in todo:
        if results[i][0] is not None:
            cache.put(spans[i], results[i][0])
    return results


def _add_audio(
    dialogues: Sequence[Dialogue],
    options: CueOptions,
    summary: CueSummary,
    cache_dir: str | os.PathLike | None,
    show_progress: bool,
    reference_split: str | None,
) -> list[Update]:
    locator = MediaLocator(options.audio_dir, options.audio_patterns, options.audio_index)
    located = _locate(_pending(dialogues, "audio_cue", options.overwrite, summary), locator, summary, "audio")
    cache = FeatureCache(cache_dir)
    with tqdm(total=len(located), desc="prosody", unit="utt", disable=not show_progress, leave=False) as bar:
        results = _measure_all([span for _, _, span in located], options, cache, bar.update)
    summary.cache_hits += cache.hits
    measured = []
    for (dialogue, utt, span), (features, error) in zip(located, results, strict=True):
        if features is None:
            summary.problems.append(Problem(str(span.path), None, None, error or "unreadable"))
            summary.skipped["unreadable audio"] += 1
        else:
            measured.append((dialogue, utt, features))
    if options.reference_file:
        reference = Reference.load(options.reference_file)
    else:
        fit_on = [(u.speaker, f) for d, u, f in measured if reference_split is None or d.split == reference_split]
        reference = Reference.fit(
            fit_on or [(u.speaker, f) for _, u, f in measured], options.reference, options.min_speaker_utterances
        )
    summary.reference = reference
    updates = []
    for _, utt, features in measured:
        text = describe_prosody(reference.levels(features, utt.speaker))
        numbers = {k: round(v, 4) for k, v in features.items() if v is not None}
        updates.append(Update(utt, "audio_cue", text, "prosody", numbers))
        if text is None:
            summary.skipped["no measurable speech"] += 1
        else:
            summary.audio += 1
    return updates


def _add_visual(
    dialogues: Sequence[Dialogue], options: CueOptions, summary: CueSummary, show_progress: bool
) -> list[Update]:
    locator = MediaLocator(options.openface_dir, options.openface_patterns)
    located = _locate(_pending(dialogues, "visual_cue", options.overwrite, summary), locator, summary, "OpenFace")
    tracks: dict[Path, openface.FaceTrack | openface.OpenFaceError] = {}
    updates = []
    for _, utt, span in tqdm(located, desc="faces", unit="utt", disable=not show_progress, leave=False):
        if span.path not in tracks:  # a dialogue-level CSV serves all of its utterances
            try:
                tracks[span.path] = openface.read_openface(span.path)
            except openface.OpenFaceError as err:
                tracks[span.path] = err
        track = tracks[span.path]
        if isinstance(track, openface.OpenFaceError):
            summary.problems.append(Problem("OpenFace", None, None, str(track)))
            summary.skipped["unreadable OpenFace CSV"] += 1
            continue
        units = openface.action_units(
            track,
            span.start,
            span.end,
            min_confidence=options.min_face_confidence,
            min_presence=options.min_au_presence,
        )
        if units is None:
            summary.skipped["no confident face frames"] += 1
            continue
        text = openface.describe_face(units)
        numbers = {f"AU{u.number:02d}": round(u.intensity if u.intensity is not None else u.presence, 3) for u in units}
        updates.append(Update(utt, "visual_cue", text, "action_units", numbers))
        if text is None:
            summary.skipped["no active action units"] += 1
        else:
            summary.visual += 1
    return updates


def add_cues(
    dialogues: Sequence[Dialogue],
    options: CueOptions,
    *,
    cache_dir: str | os.PathLike | None = None,
    show_progress: bool = False,
    reference_split: str | None = None,
) -> CueSummary:
    """Fill audio_cue / visual_cue of `dialogues` in place. When on_error is raise, a missing or corrupt file
    raises DataError listing every bad file, and the dialogues are left untouched. The prosody scale is fitted
    on the utterances of `reference_split` when given (e.g. train, so that test audio never shapes it)."""
    options.validate()
    started = time.perf_counter()
    summary = CueSummary(utterances=sum(len(d.utterances) for d in dialogues))
    updates: list[Update] = []
    if options.audio_dir or options.audio_index:
        updates += _add_audio(dialogues, options, summary, cache_dir, show_progress, reference_split)
    if options.openface_dir:
        updates += _add_visual(dialogues, options, summary, show_progress)
    if summary.problems and options.on_error == "raise":
        raise DataError(summary.problems, hint="set on_error: skip (--on_error skip) to skip and count them")
    for update in updates:
        update.apply()
    summary.seconds = time.perf_counter() - started
    return summary


def run_cues(config: CuesConfig) -> CueSummary:
    """`instructerc cues`: read dialogues, add cues, write them (and the prosody scale) atomically."""
    from instructerc.schema import read_dialogues, write_dialogues

    config.validate()
    dialogues, _ = read_dialogues(config.data)
    summary = add_cues(dialogues, config, cache_dir=config.cache_dir, show_progress=config.show_progress)
    write_dialogues(config.output, dialogues)
    if summary.reference is not None:
        summary.reference.save(reference_path(config.output))
    return summary


def reference_path(output: str | os.PathLike) -> Path:
    """Where the prosody scale of an output goes: next to it, `<name>.cue_reference.json`."""
    output = Path(output)
    return output.with_name(output.name.removesuffix(".jsonl") + ".cue_reference.json")
