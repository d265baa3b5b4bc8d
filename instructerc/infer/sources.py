"""Where prediction examples come from: a built dataset on disk, or raw dialogues rendered on the fly.

Both give the same row dicts (the columns of a built dataset: prompt, label, label_set, task, template,
answer_format, ...). Raw dialogues go through `build_dataset` in dry-run mode, so the prompts are exactly the
ones `build-data` would write with the same options (templates, history window, token budget, retrieval).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

Row = dict[str, Any]


def load_built_rows(dataset_dir: str | Path, split: str, tasks: Sequence[str] | None = ("emotion",)) -> list[Row]:
    """The rows of one split of a built dataset, keeping only `tasks` (None keeps every task)."""
    from datasets import load_from_disk

    data = load_from_disk(str(dataset_dir))
    if split not in data:
        raise ValueError(f"{dataset_dir} has no split {split!r} (it has: {', '.join(data)})")
    rows = data[split].to_list()
    if tasks is not None:
        wanted = set(tasks)
        rows = [row for row in rows if row["task"] in wanted]
    for row in rows:
        row["split"] = row["split"] or split  # ids need a split even when the dialogues had none
    return rows


def load_raw_rows(
    dataset: str,
    data_dir: str | Path,
    split: str,
    *,
    label_set: str | None = None,
    tasks: Sequence[str] = ("emotion",),
    template: str = "emotion",
    window: int = 12,
    n_demos: int = 0,
    max_prompt_tokens: int | None = 1024,
    tokenizer: str = "embedded",
    builder_options: dict | None = None,
    prompts_dir: str | None = None,
    cache_dir: str | None = None,
    show_progress: bool = False,
) -> list[Row]:
    """Prompts for every utterance of a raw corpus split (labelled or not), built like `build-data` builds them.

    `n_demos > 0` retrieves demonstrations from the corpus's train split, as `build-data` does.
    """
    from instructerc.config import BuildDataConfig
    from instructerc.data_builders.build import build_dataset

    config = BuildDataConfig(
        dataset=dataset,
        data_dir=str(data_dir),
        splits=[split],
        label_set=label_set,
        builder_options=dict(builder_options or {}),
        tasks=list(tasks),
        template=template,
        prompts_dir=prompts_dir,
        window=window,
        n_demos=n_demos,
        tokenizer=tokenizer,
        max_prompt_tokens=max_prompt_tokens,
        include_unlabeled=True,  # prediction targets need no gold
        cache_dir=cache_dir,
        dry_run=True,  # keep the rows in memory, write nothing
        show_progress=show_progress,
    )
    config.validate()
    rows = build_dataset(config).examples[split]
    for row in rows:
        row["split"] = row["split"] or split  # dialogues without a split field: ids still need one
    return rows


def example_id(row: Row, target: dict[str, Any] | None = None) -> str:
    """The prediction id of a dataset row, or of one target turn of a dialogue-unit row
    (docs/predictions_format.md): the same id whichever unit predicted the utterance."""
    turn = target["turn"] if target is not None else row["turn"]
    return f"{row['split']}/{row['dialogue_id']}/{turn}/{row['task']}"


def is_dialogue_row(row: Row) -> bool:
    """A dialogue-unit row: one prompt, several target turns (its answer format says so even where a stage kept
    only some columns)."""
    return row.get("unit") == "dialogue" or row.get("answer_format") == "turn_labels"


def row_ids(row: Row) -> list[str]:
    """The prediction ids a dataset row produces: one per target turn of a dialogue-unit row, else its own."""
    return [example_id(row, t) for t in row["targets"]] if is_dialogue_row(row) else [example_id(row)]
