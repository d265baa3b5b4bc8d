"""`rationales`: fill the think block of emotion SFT targets with rationales written for the gold label.

ERC corpora have labels but no rationales. A model (the one being trained, or a stronger teacher behind an
OpenAI-compatible endpoint) is shown the dialogue and the gold label and asked why; the answer is kept only when
it passes `check_rationale` (grounded quotes, no other emotion named, sensible length). Texts are cached on disk,
so a re-run with the same settings generates nothing. See docs/rationales.md.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from instructerc.answer_format import ANSWER_OPEN, THINK_OPEN, render_answer
from instructerc.config import ConfigError, option, to_dict
from instructerc.io import atomic_directory, atomic_write_json, atomic_write_jsonl, sha256_json
from instructerc.labels import LabelSet
from instructerc.prompts import get_template
from instructerc.train.grounding import COPY_RUN_WORDS, copied_text, grounding, names_other_emotion
from instructerc.train.rationale_writers import RationaleWriter, make_writer

TEMPLATE = "rationale"
AUDIT_FILE = "rationales.jsonl"
# Opening and closing think/answer tags, as tolerant as the parser: any of them would break the target's structure.
_TAGS = re.compile("|".join(rf"<\s*/?\s*{t.strip('<>')}\s*>" for t in (THINK_OPEN, ANSWER_OPEN)), re.I)
_PREFIX = re.compile(r"^\s*(?:rationale|explanation|reasoning)\s*[:\-]\s*", re.I)


@dataclasses.dataclass
class RationalesConfig:
    """`instructerc rationales`: write rationales for gold labels into the think block of SFT targets."""

    dataset_dir: str = option("built dataset to read (`instructerc build-data` output)")
    output_dir: str = option("where the new dataset folder goes (written atomically; must differ from dataset_dir)")
    model: str = option(
        "local writer: `embedded`, a model folder or a hub id (ignored when base_url is set)", default="embedded"
    )
    base_url: str | None = option("OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1 (vLLM)", default=None)
    api_model: str | None = option("model name on the endpoint (required with base_url)", default=None)
    api_key: str | None = option(
        "endpoint API key (default: $OPENAI_API_KEY, else EMPTY); never recorded", default=None
    )
    splits: list[str] = option(
        "splits to rationalize (never test: its targets must not see gold labels)",
        default_factory=lambda: ["train", "validation"],
    )
    max_new_tokens: int = option("longest rationale generated, in tokens", default=96)
    batch_size: int = option("prompts per generate call (local writer)", default=8)
    temperature: float = option("sampling temperature (0: greedy, reproducible)", default=0.0)
    max_examples: int | None = option("rationalize at most this many rows in all (others are copied)", default=None)
    overwrite_reference: bool = option("also replace rationales that come with the data", default=False)
    min_words: int = option("shorter rationales are rejected", default=4)
    max_words: int = option("longer rationales are rejected", default=80)
    concurrency: int = option("requests in flight at once (endpoint only)", default=4)
    timeout_s: float = option("seconds per request (endpoint only)", default=60.0)
    retries: int = option("retries on connection errors, timeouts, 429 and 5xx (endpoint only)", default=3)
    cache_dir: str | None = option("rationale cache (default: $INSTRUCTERC_CACHE/rationales)", default=None)
    threads: int | None = option("torch CPU threads for the local writer (default: torch's)", default=None)
    show_progress: bool = option("show a progress bar", default=True)

    def validate(self) -> None:
        if "test" in self.splits:
            raise ConfigError(
                "splits: refusing to rationalize 'test': its targets would be written from gold labels, and test "
                "rows are for evaluation, not training targets"
            )
        if self.base_url and not self.api_model:
            raise ConfigError("api_model: required with base_url (the model name the server serves)")
        if not self.base_url and not self.model:
            raise ConfigError("model: give a local model (`embedded`, a folder, a hub id) or a base_url")
        if not 0 < self.min_words <= self.max_words:
            raise ConfigError("min_words and max_words: expected 0 < min_words <= max_words")
        if min(self.max_new_tokens, self.batch_size, self.concurrency) < 1 or self.temperature < 0:
            raise ConfigError("max_new_tokens, batch_size and concurrency must be >= 1, temperature >= 0")
        if Path(self.dataset_dir).resolve() == Path(self.output_dir).resolve():
            raise ConfigError("output_dir: must differ from dataset_dir (the input stays as it was)")

    def resolved_cache_dir(self) -> Path:
        from instructerc.models import default_cache_dir

        return Path(self.cache_dir).expanduser() if self.cache_dir else default_cache_dir() / "rationales"


@dataclasses.dataclass
class RationaleReport:
    output_dir: Path
    considered: int = 0  # rows sent to the check (from the cache or the writer)
    kept_reference: int = 0  # eligible rows that keep the rationale they came with
    generated: int = 0  # prompts the writer was asked for
    cached: int = 0  # prompts answered by the cache
    accepted: int = 0
    rejected: dict[str, int] = dataclasses.field(default_factory=dict)  # reason code -> rows
    seconds: float = 0.0

    def counts(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in ("output_dir", "seconds")}

    def summary(self) -> str:
        rejected = ", ".join(f"{n} {reason}" for reason, n in sorted(self.rejected.items())) or "none"
        return (
            f"rationalized {self.considered} rows in {self.seconds:.1f} s: {self.accepted} accepted, rejected "
            f"{rejected}; {self.generated} generated, {self.cached} from cache; {self.kept_reference} kept their "
            f"reference rationale -> {self.output_dir}"
        )


def clean_rationale(text: str) -> str:
    """Strip, collapse whitespace and drop a leading "Rationale:"/"Explanation:" the model may add."""
    return _PREFIX.sub("", " ".join((text or "").split())).strip()


def check_rationale(
    text: str,
    context: str,
    gold_label: str,
    label_set: LabelSet | Sequence[str],
    *,
    min_words: int = 4,
    max_words: int = 80,
    prompt: str | None = None,
) -> str | None:
    """Why a rationale is rejected ("code" or "code: detail"), or None when it may be a training target.

    Codes: empty, tags (it would break the think/answer structure), too_short, too_long, copied (an unquoted run
    of COPY_RUN_WORDS words from the context or `prompt`, or a quote across dialogue lines: an echo), invented_quote
    (a quote that is not in the dialogue), other_emotion (it argues for a label other than the gold one). The
    copied and other_emotion checks are the ones the rationale_grounding reward uses (train.grounding).
    """
    text = clean_rationale(text)
    if not text:
        return "empty"
    if _TAGS.search(text):
        return "tags"
    words = len(text.split())
    if words < min_words:
        return f"too_short: {words} words"
    if words > max_words:
        return f"too_long: {words} words"
    copied = copied_text(text, context, prompt or "")
    if copied:
        return f"copied: {copied}"
    invented = grounding(text, context).quotes_invented
    if invented:
        return f"invented_quote: {invented[0]}"
    other = names_other_emotion(text, gold_label, label_set)
    if other is not None:
        return f"other_emotion: {other}"
    return None


class RationaleCache:
    """JSONL of {"key": sha256(prompt messages), "text": raw output}; one file per writer identity and settings.

    Lines are appended and flushed per batch; a half line left by a crash is skipped on read.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[str, str] = {}
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    entry = json.loads(line)
                    self.entries[entry["key"]] = entry["text"]
                except (ValueError, KeyError, TypeError):
                    continue

    def add(self, items: dict[str, str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a+", encoding="utf-8") as handle:
            handle.seek(0, 2)
            if handle.tell():  # after a crash the file may end in a half line: never glue onto it
                handle.seek(handle.tell() - 1)
                needs_newline = handle.read(1) != "\n"
                if needs_newline:
                    handle.write("\n")
            handle.writelines(json.dumps({"key": k, "text": v}, ensure_ascii=False) + "\n" for k, v in items.items())
            handle.flush()
        self.entries.update(items)


def _eligible(row: dict[str, Any], overwrite_reference: bool) -> bool | None:
    """True: rationalize; False: an emotion target that keeps its own rationale; None: not an emotion target."""
    if row.get("task") != "emotion" or not row.get("label") or row.get("answer_format") != "think_answer":
        return None
    if row.get("open_vocabulary"):  # several gold words: the closed-set "other emotion" check does not apply
        return None
    return row.get("rationale_source") == "none" or overwrite_reference


def write_rationales(config: RationalesConfig, writer: RationaleWriter | None = None) -> RationaleReport:
    """Rationalize the eligible rows of `config.splits` and write the new dataset folder (see module doc)."""
    from datasets import Dataset, DatasetDict, load_from_disk

    from instructerc.data_builders.build import _quiet_library_progress_bars
    from instructerc.models import set_threads
    from instructerc.parsing import label_set_from_list

    config.validate()
    _quiet_library_progress_bars()  # our bar and summary say what matters
    started = time.perf_counter()
    set_threads(config.threads)
    source = Path(config.dataset_dir)
    dataset = load_from_disk(str(source))
    if not isinstance(dataset, DatasetDict):
        raise ValueError(f"{source}: expected a DatasetDict folder written by `instructerc build-data`")
    missing = [s for s in config.splits if s not in dataset]
    if missing:
        raise ValueError(f"{source} has no split {', '.join(missing)} (it has: {', '.join(dataset)}); set splits")
    template = get_template(TEMPLATE)
    writer = writer or make_writer(config)
    cache = RationaleCache(config.resolved_cache_dir() / f"{_cache_name(writer, template.id, config)}.jsonl")
    report = RationaleReport(Path(config.output_dir))

    # Pick the rows and render their prompts.
    rows = {split: dataset[split].to_list() for split in config.splits}
    jobs: list[tuple[str, int, str, list[dict[str, str]]]] = []  # split, row index, cache key, prompt
    for split, split_rows in rows.items():
        for index, row in enumerate(split_rows):
            eligible = _eligible(row, config.overwrite_reference)
            if eligible is False:
                report.kept_reference += 1
            if not eligible or (config.max_examples is not None and len(jobs) >= config.max_examples):
                continue
            target = {"speaker": row["speaker"], "text": row["text"]}
            prompt = template.render(context=row["context"] or "", target=target, label=row["label"])
            jobs.append((split, index, sha256_json(prompt), prompt))

    # Texts: from the cache, else from the writer in chunks (cached after each chunk).
    todo = list({key: prompt for _, _, key, prompt in jobs if key not in cache.entries}.items())
    report.cached = len({key for _, _, key, _ in jobs}) - len(todo)
    with tqdm(total=len(todo), desc="rationales", unit="prompt", disable=not config.show_progress) as bar:
        for start in range(0, len(todo), writer.chunk_size):
            chunk = todo[start : start + writer.chunk_size]
            texts = writer.write([prompt for _, prompt in chunk])
            cache.add({key: text for (key, _), text in zip(chunk, texts, strict=True)})
            report.generated += len(chunk)
            bar.update(len(chunk))

    # Check and rewrite the targets; rejected rows stay as they were (label-only, or their reference rationale).
    audit, rejected = [], Counter()
    source_tag = f"rationalized:{writer.model_id}"
    for split, index, key, prompt in jobs:
        row = rows[split][index]
        text = clean_rationale(cache.entries[key])
        label_set = label_set_from_list(tuple(row["label_set"]))
        user = next((m["content"] for m in prompt if m["role"] == "user"), "")
        reason = check_rationale(
            text,
            row["context"] or "",
            row["label"],
            label_set,
            min_words=config.min_words,
            max_words=config.max_words,
            prompt=user,
        )
        if reason is None:
            row["completion"] = [{"role": "assistant", "content": render_answer(row["label"], "think_answer", text)}]
            row["rationale_source"] = source_tag
        else:
            rejected[reason.split(":")[0]] += 1
        audit.append(
            {
                "split": split,
                "dialogue_id": row["dialogue_id"],
                "turn": row["turn"],
                "label": row["label"],
                "text": text,
                "accepted": reason is None,
                "reason": reason,
            }
        )
    report.considered, report.rejected = len(jobs), dict(rejected)
    report.accepted = report.considered - sum(rejected.values())

    output = DatasetDict(
        {
            split: Dataset.from_list(rows[split], features=ds.features) if split in rows else ds
            for split, ds in dataset.items()
        }
    )
    _write(config, source, output, audit, report, template.id, writer)
    report.seconds = time.perf_counter() - started
    return report


def _cache_name(writer: RationaleWriter, template_id: str, config: RationalesConfig) -> str:
    return sha256_json(
        {
            "writer": writer.identity,
            "template": template_id,
            "temperature": config.temperature,
            "max_new_tokens": config.max_new_tokens,
        }
    )


def _write(
    config: RationalesConfig,
    source: Path,
    output: Any,
    audit: list[dict],
    report: RationaleReport,
    template_id: str,
    writer: RationaleWriter,
) -> None:
    info_path = source / "build_info.json"
    info = json.loads(info_path.read_text(encoding="utf-8")) if info_path.is_file() else {}
    settings = to_dict(config)
    settings["api_key"] = None  # a secret does not belong in a file that is shared with the dataset
    section = {
        "template": template_id,
        "writer": writer.model_id,
        "config": settings,
        "counts": report.counts(),
        "source_dataset": str(source),
        "source_content_hash": info.get("content_hash"),
    }
    info["rationales"] = section
    info.setdefault("templates", {})["rationale"] = {
        "name": TEMPLATE,
        "version": int(template_id.split("@v")[1]),
        "id": template_id,
    }
    # A new hash: `build-data` must not take this folder for an up-to-date build of the original inputs.
    info["content_hash"] = sha256_json(
        {
            "source": info.get("content_hash"),
            "rationales": section["config"],
            "texts": [a["text"] for a in audit if a["accepted"]],
        }
    )
    with atomic_directory(config.output_dir) as tmp:
        output.save_to_disk(str(tmp))
        for extra in ("dialogues", "resolved_config.yaml"):  # provenance of the source build
            if (source / extra).is_dir():
                shutil.copytree(source / extra, tmp / extra)
            elif (source / extra).is_file():
                shutil.copy2(source / extra, tmp / extra)
        atomic_write_jsonl(tmp / AUDIT_FILE, audit)
        atomic_write_json(tmp / "build_info.json", info)


__all__ = [
    "COPY_RUN_WORDS",
    "RationaleCache",
    "RationaleReport",
    "RationalesConfig",
    "check_rationale",
    "clean_rationale",
    "write_rationales",
]
