"""`build-data`: corpus -> canonical dialogues -> retrieval-augmented instruction DatasetDict on disk.

Output folder (written atomically, so a failed build never leaves half a dataset behind):

    dataset_dict.json, train/, validation/, ...   the DatasetDict (`datasets.load_from_disk(output_dir)`)
    dialogues/<split>.jsonl                       the canonical dialogues it was built from
    preview.jsonl                                 a few rows per split, readable
    build_info.json                               config, template versions, counts, content hash
    resolved_config.yaml                          the exact config, to rebuild with `--config`
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

import instructerc
from instructerc.config import BuildDataConfig, to_dict, to_yaml
from instructerc.data_builders import get_corpus, load_corpus, resolve_label_set
from instructerc.data_builders.base import LoadResult, check_distinct_splits
from instructerc.data_builders.dialogue_unit import build_dialogue_examples
from instructerc.data_builders.instructions import BuildStats, ChatTokenCounter, build_examples
from instructerc.io import atomic_directory, atomic_write_json, atomic_write_jsonl, atomic_write_text, sha256_json
from instructerc.labels import UNIFIED, LabelSet, to_unified
from instructerc.prompts import PromptTemplate, get_template
from instructerc.schema import Dialogue, Problem, write_dialogues

BUILD_INFO = "build_info.json"


@dataclass
class BuildResult:
    output_dir: Path
    counts: dict[str, int]  # examples per split
    stats: BuildStats
    dropped: int = 0
    problems: list[Problem] = field(default_factory=list)
    seconds: float = 0.0
    up_to_date: bool = False
    examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # kept only for dry runs
    retrieval: dict[str, int] = field(default_factory=dict)
    cues: Any = None  # CueSummary when the config asked for cues
    dropped_utterances: int = 0  # bad utterances dropped on their own (on_error="drop")
    dropped_dialogues: int = 0  # whole dialogues dropped for a dialogue-level problem
    dropped_dialogue_utterances: int = 0  # the utterances those dialogues held
    max_dialogues: int | None = None  # the build kept only the first N dialogues of each split

    def dropped_summary(self) -> str | None:
        """'dropped 1 bad utterance and 1 bad dialogue (13 utterances)', or None when nothing was dropped."""
        if not self.dropped:
            return None
        if not (self.dropped_utterances or self.dropped_dialogues):  # a user builder that counts only the total
            return f"{self.dropped} bad rows dropped"

        def plural(n: int, noun: str) -> str:
            return f"{n} {noun}" if n == 1 else f"{n} {noun}s"

        parts = []
        if self.dropped_utterances:
            parts.append(plural(self.dropped_utterances, "bad utterance"))
        if self.dropped_dialogues:
            held = plural(self.dropped_dialogue_utterances, "utterance")
            parts.append(f"{plural(self.dropped_dialogues, 'bad dialogue')} ({held})")
        return "dropped " + " and ".join(parts)

    def dropped_counts(self) -> dict[str, int]:
        """What on_error="drop" skipped, for build_info.json."""
        counts = {
            "utterances": self.dropped_utterances,
            "dialogues": self.dropped_dialogues,
            "utterances_in_dropped_dialogues": self.dropped_dialogue_utterances,
            "utterances_lost": self.dropped_utterances + self.dropped_dialogue_utterances,
        }
        if other := self.dropped - self.dropped_utterances - self.dropped_dialogues:
            counts["other"] = other  # counted by a user builder without saying what
        return counts

    def summary(self) -> str:
        if self.up_to_date:
            total = sum(self.counts.values())
            return f"{self.output_dir} is up to date with its inputs ({total} examples); --force rebuilds"
        total = sum(self.counts.values())
        rate = total / self.seconds if self.seconds else 0.0
        per_split = ", ".join(f"{split} {n}" for split, n in self.counts.items())
        parts = [f"built {total} examples ({per_split}) in {self.seconds:.1f} s ({rate:.0f} examples/s)"]
        if self.max_dialogues is not None:
            parts.append(f"only the first {self.max_dialogues} dialogues of each split (max_dialogues)")
        if self.stats.history_truncated:
            parts.append(f"history cut to fit in {self.stats.history_truncated}")
        if self.stats.over_budget:
            parts.append(f"{self.stats.over_budget} over the token budget even without history")
        if self.stats.unlabeled_skipped:
            parts.append(f"{self.stats.unlabeled_skipped} unlabeled utterances skipped")
        if dropped := self.dropped_summary():
            parts.append(dropped)
        if self.retrieval:
            parts.append(f"embeddings cache {self.retrieval['hits']} hit / {self.retrieval['misses']} miss")
        if self.cues is not None:
            parts.append(self.cues.summary())
        target = f"-> {self.output_dir}"
        if self.examples:
            # The retrieval embeddings are cached on disk even in a dry run (they are needed to render prompts).
            cached = " apart from the embeddings cache" if self.retrieval.get("misses") else ""
            target = f"(dry run, nothing written){cached}"
        return "; ".join(parts) + f" {target}"


def _templates(config: BuildDataConfig) -> list[PromptTemplate]:
    names = [config.template if task == "emotion" else task for task in config.tasks]
    templates = [get_template(name, config.prompts_dir) for name in names]
    for task, template in zip(config.tasks, templates, strict=True):
        if template.task != task:
            raise ValueError(f"template {template.id} is for task {template.task!r}, not {task!r}")
    return templates


def _label_set(config: BuildDataConfig) -> LabelSet:
    return resolve_label_set(get_corpus(config.dataset), config.label_set)


def _unify(dialogues: list[Dialogue], label_set: LabelSet) -> None:
    for dialogue in dialogues:
        for utt in dialogue.utterances:
            if utt.label is not None:
                utt.label = to_unified(utt.label, label_set)


def _load_splits(config: BuildDataConfig, label_set: LabelSet) -> tuple[dict[str, list[Dialogue]], LoadResult]:
    """The dialogues of every split needed, and one LoadResult (no dialogues) summing what was dropped.

    Refuses two splits made of the same rows (a single file that does not say which split each dialogue belongs
    to): validation gold labels would be training targets and retrieved demonstrations."""
    needed = list(config.splits)
    if config.n_demos > 0 and "emotion" in config.tasks and "train" not in needed:
        needed.insert(0, "train")  # the demonstration pool
    results = {
        split: load_corpus(
            config.dataset,
            config.data_dir,
            split,
            label_set=label_set,
            on_error=config.on_error,
            **config.builder_options,
        )
        for split in needed
    }
    check_distinct_splits(results, config.data_dir)
    total = LoadResult([])
    for result in results.values():
        total.dropped += result.dropped
        total.problems += result.problems
        total.dropped_utterances += result.dropped_utterances
        total.dropped_dialogues += result.dropped_dialogues
        total.dropped_dialogue_utterances += result.dropped_dialogue_utterances
    return {split: result.dialogues[: config.max_dialogues] for split, result in results.items()}, total


def _content_hash(
    config: BuildDataConfig, dialogues: dict[str, list[Dialogue]], templates: list[PromptTemplate]
) -> str:
    settings = to_dict(config)
    for volatile in ("output_dir", "dry_run", "force", "show_progress", "cache_dir"):
        settings.pop(volatile)
    return sha256_json(
        {
            "version": instructerc.__version__,
            "settings": settings,
            "templates": {t.id: t.source_text() for t in templates},
            "dialogues": {split: [d.to_dict() for d in ds] for split, ds in dialogues.items()},
        }
    )


def _is_up_to_date(output_dir: Path, content_hash: str) -> dict[str, Any] | None:
    import json

    info_path = output_dir / BUILD_INFO
    if not info_path.is_file():
        return None
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return info if info.get("content_hash") == content_hash else None


def _add_cues(config: BuildDataConfig, loaded: dict[str, list[Dialogue]]) -> Any:
    """Cue texts from media for every loaded dialogue; the prosody scale is fitted on train when it is loaded."""
    if not config.cues:
        return None
    from instructerc.data_builders.cues.apply import add_cues, cue_options

    return add_cues(
        [d for dialogues in loaded.values() for d in dialogues],
        cue_options(config.cues),
        cache_dir=config.cache_dir,
        show_progress=config.show_progress,
        reference_split="train" if "train" in loaded else None,
    )


def _retrieve(config: BuildDataConfig, loaded: dict[str, list[Dialogue]]) -> tuple[dict[str, dict], dict[str, int]]:
    """Demonstrations for every emotion target of every split, keyed per split by (dialogue id, turn)."""
    if config.n_demos == 0 or "emotion" not in config.tasks:
        return {}, {}
    from instructerc.data_builders.retrieval import DemonstrationRetriever

    retriever = DemonstrationRetriever(
        loaded["train"], model=config.retriever, cache_dir=config.cache_dir, show_progress=config.show_progress
    )
    per_split: dict[str, dict] = {}
    for split in config.splits:
        targets = [
            (d, u)
            for d in loaded[split]
            for u in d.utterances
            if u.label is not None or u.labels or config.include_unlabeled
        ]
        found = retriever.retrieve(targets, k=config.n_demos)
        per_split[split] = {(d.id, u.turn): demos for (d, u), demos in zip(targets, found, strict=True)}
    return per_split, {"hits": retriever.cache_hits, "misses": retriever.cache_misses}


def _features():
    from datasets import Features, List, Value

    message = List({"role": Value("string"), "content": Value("string")})
    return Features(
        {
            "prompt": message,
            "completion": message,
            "label": Value("string"),
            "labels": List(Value("string")),
            "label_set": List(Value("string")),
            "dialogue_id": Value("string"),
            "turn": Value("int64"),
            "speaker": Value("string"),
            "text": Value("string"),
            "split": Value("string"),
            "task": Value("string"),
            "unit": Value("string"),
            "targets": List(
                {
                    "turn": Value("int64"),
                    "number": Value("int64"),
                    "speaker": Value("string"),
                    "text": Value("string"),
                    "label": Value("string"),
                }
            ),
            "template": Value("string"),
            "template_version": Value("int64"),
            "answer_format": Value("string"),
            "rationale_source": Value("string"),
            "n_history": Value("int64"),
            "n_demos": Value("int64"),
            "prompt_tokens": Value("int64"),
            "context": Value("string"),
            "open_vocabulary": Value("bool"),
            "rationale": Value("string"),
            "clues": List(Value("string")),
        }
    )


def token_statistics(lengths: list[int]) -> dict[str, float]:
    if not lengths:
        return {"count": 0}
    ordered = sorted(lengths)
    return {
        "count": len(ordered),
        "min": ordered[0],
        "median": statistics.median(ordered),
        "p95": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))],
        "max": ordered[-1],
    }


def _quiet_library_progress_bars() -> None:
    """Our own bars and summary line say what matters; weight loading and shard saving bars are noise."""
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()


def build_dataset(config: BuildDataConfig) -> BuildResult:
    """Build the instruction dataset described by `config` (see the module docstring for the output)."""
    from instructerc.models import load_tokenizer

    _quiet_library_progress_bars()
    started = time.perf_counter()
    output_dir = Path(config.output_dir)
    label_set = _label_set(config)
    templates = _templates(config)
    loaded, drops = _load_splits(config, label_set)
    if config.unified_labels:
        for dialogues in loaded.values():
            _unify(dialogues, label_set)
        label_set = UNIFIED
    cues = _add_cues(config, loaded)

    content_hash = _content_hash(config, loaded, templates)
    if not (config.force or config.dry_run):
        info = _is_up_to_date(output_dir, content_hash)
        if info is not None:
            return BuildResult(output_dir, info["counts"], BuildStats(), up_to_date=True)

    demos, retrieval = _retrieve(config, loaded)
    count_tokens = ChatTokenCounter(load_tokenizer(config.tokenizer, cache_dir=config.cache_dir))
    stats, rows = BuildStats(), {}
    for split in config.splits:
        rows[split] = []
        for template in templates:
            total = sum(len(d.utterances) for d in loaded[split])
            with tqdm(
                total=total, desc=f"{split}/{template.name}", unit="utt", disable=not config.show_progress, leave=False
            ) as bar:
                common = {
                    "template": template,
                    "label_set": label_set,
                    "count_tokens": count_tokens,
                    "max_prompt_tokens": config.max_prompt_tokens,
                    "demonstrations": demos.get(split),
                    "include_unlabeled": config.include_unlabeled,
                    "stats": stats,
                    "progress": bar.update,
                }
                if template.unit == "dialogue":  # `window` is the context shown before a chunk of a long dialogue
                    built = build_dialogue_examples(
                        loaded[split], context_turns=config.window, n_demos=config.n_demos, **common
                    )
                else:
                    built = build_examples(loaded[split], window=config.window, **common)
                rows[split] += built
        if not rows[split]:
            cut = f" (only its first {config.max_dialogues} dialogues: max_dialogues)" if config.max_dialogues else ""
            raise ValueError(
                f"split {split!r}{cut} produced no examples (no labeled utterances in {config.data_dir}?); "
                "set include_unlabeled to build prompts for unlabeled data"
            )
    counts = {split: len(r) for split, r in rows.items()}
    result = BuildResult(
        output_dir,
        counts,
        stats,
        drops.dropped,
        drops.problems,
        retrieval=retrieval,
        cues=cues,
        dropped_utterances=drops.dropped_utterances,
        dropped_dialogues=drops.dropped_dialogues,
        dropped_dialogue_utterances=drops.dropped_dialogue_utterances,
        max_dialogues=config.max_dialogues,
    )
    if config.dry_run:
        result.examples = rows
    else:
        _write(config, output_dir, rows, loaded, templates, label_set, result, content_hash)
    result.seconds = time.perf_counter() - started
    return result


def _write(
    config: BuildDataConfig,
    output_dir: Path,
    rows: dict[str, list[dict]],
    loaded: dict[str, list[Dialogue]],
    templates: list[PromptTemplate],
    label_set: LabelSet,
    result: BuildResult,
    content_hash: str,
) -> None:
    from datasets import Dataset, DatasetDict

    features = _features()
    dataset = DatasetDict({split: Dataset.from_list(r, features=features) for split, r in rows.items()})
    with atomic_directory(output_dir) as tmp:
        dataset.save_to_disk(str(tmp))
        for split in config.splits:
            write_dialogues(tmp / "dialogues" / f"{split}.jsonl", loaded[split])
        atomic_write_jsonl(tmp / "preview.jsonl", (row for r in rows.values() for row in r[: config.preview_rows]))
        atomic_write_text(tmp / "resolved_config.yaml", to_yaml(config))
        if result.cues is not None and result.cues.reference is not None:
            result.cues.reference.save(tmp / "cue_reference.json")
        atomic_write_json(
            tmp / BUILD_INFO,
            {
                "instructerc_version": instructerc.__version__,
                "content_hash": content_hash,
                "dataset": config.dataset,
                "label_set": {"name": label_set.name, "labels": list(label_set.labels)},
                "templates": {t.task: {"name": t.name, "version": t.version, "id": t.id} for t in templates},
                "counts": result.counts,
                "dropped": result.dropped_counts(),
                "dropped_problems": [str(p) for p in result.problems[:100]],
                "truncation": {
                    "history_truncated": result.stats.history_truncated,
                    "demos_truncated": result.stats.demos_truncated,
                    "over_budget": result.stats.over_budget,
                },
                "prompt_tokens": token_statistics(result.stats.prompt_tokens),
                "cues": result.cues.summary() if result.cues is not None else None,
                "config": to_dict(config),
            },
        )
