"""Locate the data folders that ship with the package (prompts/, examples/, configs/).

In a wheel they are installed inside the package as `_prompts`, `_examples`, `_configs`; in a source checkout
(editable install, tests) they are the repository's top-level folders.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def shipped_dir(name: str) -> Path:
    """The folder `name` (prompts, examples or configs), wherever this installation keeps it."""
    candidates = (_PACKAGE_DIR / f"_{name}", _PACKAGE_DIR.parent / name)
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"{name}/ not found in {' or '.join(map(str, candidates))}: the installation is incomplete")
