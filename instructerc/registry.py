"""Name -> object registries at the CLI boundary, with a dotted-path escape hatch (`my_pkg.module:name`)."""

from __future__ import annotations

import importlib
from typing import Any


def resolve_dotted(path: str) -> Any:
    """Import `package.module:attribute` (the escape hatch for user-defined builders, rewards, metrics)."""
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"{path!r}: expected 'package.module:name'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ValueError(f"{path!r}: cannot import {module_name}: {err}") from None
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise ValueError(f"{path!r}: {module_name} has no attribute {attribute!r}") from None


def _table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def list_kind(kind: str) -> str:
    """A human-readable table of the registered datasets, prompt templates or label sets."""
    if kind == "datasets":
        from instructerc.data_builders import CORPORA

        rows = [
            (name, spec.label_set or "(label_set option)", ",".join(spec.splits), spec.description)
            for name, spec in CORPORA.items()
        ]
        return _table(rows, ("dataset", "label set", "splits", "description")) + (
            "\n\nA builder of your own: dataset: my_pkg.module:load (same signature as the built-in builders)"
        )
    if kind == "prompts":
        from instructerc.prompts import list_templates

        rows = [(t.name, f"v{t.version}", t.task, t.answer_format, t.description) for t in list_templates().values()]
        return _table(rows, ("template", "version", "task", "answer format", "description"))
    if kind == "labels":
        from instructerc.labels import LABEL_SETS, UNIFIED

        rows = [(ls.name, ", ".join(ls.labels), ls.description) for ls in [*LABEL_SETS.values(), UNIFIED]]
        return _table(rows, ("label set", "labels", "description"))
    if kind == "rewards":
        from instructerc.train.rewards import REWARDS, get_reward

        rows = []
        for name in REWARDS:
            reward = get_reward(name)
            doc = (getattr(reward, "__doc__", None) or type(reward).__doc__ or "").strip().splitlines()
            rows.append((name, getattr(reward, "__name__", name), doc[0] if doc else ""))
        return _table(rows, ("reward", "logged as", "description")) + (
            "\n\nA reward of your own: rewards: {my_pkg.module:my_reward: 1.0} (trl's reward function contract)"
        )
    raise ValueError(f"unknown kind {kind!r}: expected datasets, prompts, labels or rewards")
