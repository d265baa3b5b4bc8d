"""Human-readable views of built examples: the text a model actually sees, and token statistics."""

from __future__ import annotations

from typing import Any

from instructerc.config import BuildDataConfig


def render_chat(example: dict[str, Any], tokenizer: Any) -> str:
    """The example as the model sees it: prompt and completion through the tokenizer's chat template."""
    return tokenizer.apply_chat_template(example["prompt"] + example["completion"], tokenize=False)


def print_dry_run(result: Any, config: BuildDataConfig) -> None:
    """Print two rendered examples and token-length statistics per split and task."""
    from instructerc.data_builders.build import token_statistics
    from instructerc.models import load_tokenizer

    tokenizer = load_tokenizer(config.tokenizer, cache_dir=config.cache_dir)
    rows = [row for split_rows in result.examples.values() for row in split_rows]
    # The first example of the first split, and one from elsewhere (another split or task) when there is one.
    shown = rows[:1] + [r for r in rows[1:] if (r["split"], r["task"]) != (rows[0]["split"], rows[0]["task"])][:1]
    shown += rows[1 : 3 - len(shown)] if len(shown) < 2 else []
    for row in shown:
        print(
            f"===== {row['split']} / {row['task']} / {row['template']} / "
            f"dialogue {row['dialogue_id']} turn {row['turn']} "
            f"({row['prompt_tokens']} prompt tokens, {row['n_history']} history turns, {row['n_demos']} demos)"
        )
        print(render_chat(row, tokenizer))
    print(f"===== prompt tokens (budget {config.max_prompt_tokens})")
    groups: dict[tuple[str, str], list[int]] = {}
    for row in rows:
        groups.setdefault((row["split"], row["task"]), []).append(row["prompt_tokens"])
    for (split, task), lengths in groups.items():
        stats = token_statistics(lengths)
        print(
            f"{split:<12} {task:<8} n={stats['count']:<6} min={stats['min']:<5} median={stats['median']:<7} "
            f"p95={stats['p95']:<5} max={stats['max']}"
        )
