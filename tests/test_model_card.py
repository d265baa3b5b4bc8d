"""Model cards: YAML front matter the Hub understands, every section present, missing keys never crash."""

from __future__ import annotations

import yaml

from instructerc.model_card import EMBEDDED_HUB_ID, NOT_RECORDED, render_model_card

FULL_META = {
    "base_model": "embedded",
    "base_model_path": "/cache/models/SmolLM2-135M-Instruct",
    "method": "sft",
    "dataset": "outputs/data/meld",
    "corpus": "meld",
    "label_set": {"name": "meld", "labels": ["neutral", "joy", "sadness", "anger", "surprise", "fear", "disgust"]},
    "templates": {"emotion": "emotion@v1"},
    "rationale_source": "reference",
    "lora": {"r": 16, "alpha": 32, "dropout": 0.05, "target_modules": ["q_proj", "v_proj"]},
    "steps": 100,
    "dev_scores": {"weighted_f1": 0.41, "accuracy": 0.5, "invalid_rate": 0.0125},
    "instructerc_version": "0.1.0",
}


def _front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    header, _ = card[4:].split("\n---\n", 1)
    return yaml.safe_load(header)


def test_adapter_card_front_matter_and_sections():
    card = render_model_card(FULL_META)
    header = _front_matter(card)
    assert header["base_model"] == EMBEDDED_HUB_ID
    assert header["library_name"] == "peft"
    assert header["license"] == "apache-2.0"
    assert {"instructerc", "emotion-recognition", "sft", "meld"} <= set(header["tags"])
    for heading in ("Base model", "Training data", "Prompt template", "Rationale source", "Training method"):
        assert f"## {heading}" in card
    assert "emotion@v1" in card and "outputs/data/meld" in card and "`surprise`" in card
    assert "LoRA rank: 16" in card and "`q_proj`, `v_proj`" in card and "steps: 100" in card
    assert "AutoPeftModelForCausalLM" in card and "instructerc export --adapter" in card
    assert "instructerc predict" not in card  # only commands that exist are advertised
    assert NOT_RECORDED not in card.split("## Usage")[0].replace("local path", "")


def test_merged_card_uses_transformers_and_hub_base_passthrough():
    meta = {**FULL_META, "merged": True, "base_model": "meta-llama/Llama-3.2-1B-Instruct", "license": "llama3.2"}
    card = render_model_card(meta)
    header = _front_matter(card)
    assert header["library_name"] == "transformers"
    assert header["base_model"] == "meta-llama/Llama-3.2-1B-Instruct"
    assert header["license"] == "llama3.2"
    assert "AutoModelForCausalLM.from_pretrained" in card and "AutoPeftModel" not in card
    assert "## Export" in card


def test_dev_scores_rendered_as_table():
    card = render_model_card({**FULL_META, "dev_scores": {"weighted_f1": 0.41, "per_label": {"joy": 0.5}}})
    section = card.split("## Dev scores")[1].split("##")[0]
    assert "| metric | value |" in section
    assert "| weighted_f1 | 0.4100 |" in section
    assert "| per_label.joy | 0.5000 |" in section


def test_missing_keys_render_not_recorded():
    for meta in ({}, None, {"label_set": "meld", "lora": "oops", "dev_scores": [], "templates": None}):
        card = render_model_card(meta)
        header = _front_matter(card)
        assert header["library_name"] == "peft" and "base_model" not in header and "license" not in header
        assert "instructerc" in header["tags"]
        assert f"- model: {NOT_RECORDED}" in card
        assert f"- dataset: {NOT_RECORDED}" in card
        assert f"- LoRA rank: {NOT_RECORDED}" in card
        assert f"## Dev scores\n\n{NOT_RECORDED}" in card
    assert "- label set: meld" in render_model_card({"label_set": "meld"})


def test_rationale_sources():
    assert "rationalized by my-teacher" in render_model_card(
        {"rationale_source": "rationalized", "rationale_model": "my-teacher"}
    )
    assert "label-only" in render_model_card({"rationale_source": "label-only"})
    assert "reference" in render_model_card({"rationale_source": "reference"})
    assert f"## Rationale source\n\n{NOT_RECORDED}" in render_model_card({})


def test_rationale_sources_as_recorded_by_training_show_counts():
    card = render_model_card({"rationale_source": {"reference": 10, "none": 20, "rationalized:embedded": 5}})
    assert "reference (rationales that come with the dataset): 10 examples" in card
    assert "rationalized by embedded" in card and "5 examples" in card


def test_training_metadata_counts_rationale_sources_of_the_training_split_only(tmp_path):
    from datasets import Dataset, DatasetDict

    from instructerc.train.artifacts import dataset_metadata

    def split(*sources):
        return Dataset.from_dict({"rationale_source": list(sources)})

    DatasetDict(
        {
            "train": split("reference", "none", "none", "clues"),
            "validation": split("reference", "reference"),
            "test": split("reference", "reference", "reference"),
        }
    ).save_to_disk(str(tmp_path / "data"))
    meta = dataset_metadata(tmp_path / "data")
    assert meta["rationale_source"] == {"reference": 1, "none": 2, "clues": 1}  # test and validation not counted
    assert meta["rationale_source_split"] == "train"
    assert dataset_metadata(tmp_path / "data", "validation")["rationale_source"] == {"reference": 2}
    card = render_model_card(meta)
    assert "reference (rationales that come with the dataset): 1 example of the train split" in card
    assert "none (the training targets carry an empty rationale block before the label): 2 examples of" in card
    assert "clues (the rationale is built from the reference emotion clues" in card
