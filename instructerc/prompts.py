"""Versioned prompt templates: find them, check them, render them into chat messages.

Templates live in `prompts/` (shipped inside the wheel as `instructerc/_prompts`) and are listed in its
`index.yaml`: name, version, file, task, answer format, required variables. A template file defines the
Jinja blocks `system` and `user`; rendering gives chat messages only, never special tokens, so the model's
own chat template decides how they are tokenized.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateError, meta

from instructerc.answer_format import ANSWER_FORMATS
from instructerc.resources import shipped_dir

TASKS = ("emotion", "speaker", "impact", "rationale")
BUILD_TASKS = ("emotion", "speaker", "impact")  # tasks build-data makes examples for; rationale is a step of its own
UNITS = ("utterance", "dialogue")
_BLANK_RUNS = re.compile(r"\n\s*\n(\s*\n)+")


def builtin_prompts_dir() -> Path:
    return shipped_dir("prompts")


@dataclass(frozen=True)
class PromptTemplate:
    """One entry of a prompts index."""

    name: str
    version: int
    file: str
    task: str
    answer_format: str
    required: tuple[str, ...]
    description: str
    directory: Path = field(compare=False)
    open_vocabulary: bool = False
    unit: str = "utterance"  # utterance: one example per target turn; dialogue: one per conversation chunk

    @property
    def id(self) -> str:
        """Name and version, as recorded in datasets, training outputs and model cards."""
        return f"{self.name}@v{self.version}"

    @property
    def path(self) -> Path:
        return self.directory / self.file

    def render(self, **variables: Any) -> list[dict[str, str]]:
        """Render the template into chat messages (system, user)."""
        missing = [name for name in self.required if name not in variables]
        if missing:
            raise ValueError(f"template {self.id} needs variables: {', '.join(missing)}")
        template = _environment(str(self.directory)).get_template(self.file)
        # Properties of the index entry, not of the example: the caller cannot contradict them.
        context = template.new_context(
            {**variables, "answer_format": self.answer_format, "open_vocabulary": self.open_vocabulary}
        )
        messages = []
        for role in ("system", "user"):
            # Optional sections leave runs of blank lines behind; one blank line between sections is enough.
            text = _BLANK_RUNS.sub("\n\n", "".join(template.blocks[role](context))).strip()
            if text:
                messages.append({"role": role, "content": text})
        return messages

    def source_text(self) -> str:
        """The template file plus everything it imports, for content hashing."""
        env = _environment(str(self.directory))
        seen, pending, parts = set(), [self.file], []
        while pending:
            name = pending.pop()
            if name in seen:
                continue
            seen.add(name)
            source = env.loader.get_source(env, name)[0]
            parts.append(source)
            pending.extend(ref for ref in meta.find_referenced_templates(env.parse(source)) if ref)
        return "\n".join(parts)


@lru_cache(maxsize=8)
def _environment(directory: str) -> Environment:
    # StrictUndefined: a misspelt variable is an error, not an empty string in a training prompt.
    return Environment(
        loader=FileSystemLoader(directory),
        undefined=StrictUndefined,
        keep_trailing_newline=False,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


def _load_index(directory: Path) -> dict[str, PromptTemplate]:
    index_path = directory / "index.yaml"
    data = yaml.safe_load(index_path.read_text(encoding="utf-8")) or {}
    templates: dict[str, PromptTemplate] = {}
    for name, entry in (data.get("templates") or {}).items():
        where = f"{index_path}: templates.{name}"
        allowed = {"version", "file", "task", "answer_format", "required", "description", "open_vocabulary", "unit"}
        unknown = set(entry) - allowed
        if unknown:
            raise ValueError(f"{where}: unknown keys {sorted(unknown)} (allowed: {sorted(allowed)})")
        if entry.get("task") not in TASKS:
            raise ValueError(f"{where}.task: expected one of {TASKS}, got {entry.get('task')!r}")
        if entry.get("answer_format") not in ANSWER_FORMATS:
            raise ValueError(f"{where}.answer_format: expected one of {ANSWER_FORMATS}")
        if entry.get("unit", "utterance") not in UNITS:
            raise ValueError(f"{where}.unit: expected one of {UNITS}, got {entry.get('unit')!r}")
        if (entry.get("unit") == "dialogue") != (entry.get("answer_format") == "turn_labels"):
            raise ValueError(f"{where}: the dialogue unit and the turn_labels answer format go together")
        if not isinstance(entry.get("version"), int):
            raise ValueError(f"{where}.version: expected an integer")
        if not (directory / entry.get("file", "")).is_file():
            raise ValueError(f"{where}.file: {directory / str(entry.get('file'))} does not exist")
        templates[name] = PromptTemplate(
            name=name,
            version=entry["version"],
            file=entry["file"],
            task=entry["task"],
            answer_format=entry["answer_format"],
            required=tuple(entry.get("required") or ()),
            description=entry.get("description", ""),
            directory=directory,
            open_vocabulary=bool(entry.get("open_vocabulary", False)),
            unit=entry.get("unit", "utterance"),
        )
    return templates


def list_templates(extra_dir: str | os.PathLike | None = None) -> dict[str, PromptTemplate]:
    """All templates: the built-in ones, overridden or extended by those in `extra_dir` (its own index.yaml)."""
    templates = _load_index(builtin_prompts_dir())
    if extra_dir is not None:
        extra = Path(extra_dir)
        if not (extra / "index.yaml").is_file():
            raise FileNotFoundError(f"{extra}: expected an index.yaml listing the templates (see prompts/index.yaml)")
        templates.update(_load_index(extra))
    return templates


def get_template(name: str, extra_dir: str | os.PathLike | None = None) -> PromptTemplate:
    templates = list_templates(extra_dir)
    if name not in templates:
        raise KeyError(f"unknown prompt template {name!r}; available: {', '.join(sorted(templates))}")
    return templates[name]


__all__ = [
    "PromptTemplate",
    "TemplateError",
    "builtin_prompts_dir",
    "get_template",
    "list_templates",
    "TASKS",
    "BUILD_TASKS",
    "UNITS",
]
