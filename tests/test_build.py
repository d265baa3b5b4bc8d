"""build-data end to end on the bundled examples and the MELD fixture, with the real embedded models."""

import json
import os
import shutil
import stat
from pathlib import Path

import pytest
from datasets import load_from_disk

from instructerc.config import BuildDataConfig
from instructerc.data_builders import build as build_module
from instructerc.data_builders.build import build_dataset
from instructerc.models import default_cache_dir, resolve_model
from instructerc.resources import shipped_dir
from instructerc.schema import DataError

EXAMPLES = shipped_dir("examples") / "dialogues.jsonl"
FIXTURES = Path(__file__).parent / "fixtures"


def _cold_embeddings_cache(tmp_path):
    """A cache folder with no embeddings but the already converted model (converting again costs ~30 s)."""
    cache = tmp_path / "cache"
    if not cache.exists():
        cache.mkdir()
        resolve_model("embedded")
        (cache / "models").symlink_to(default_cache_dir() / "models", target_is_directory=True)
    return cache


def _config(tmp_path, **overrides):
    settings = dict(
        dataset="jsonl",
        data_dir=str(EXAMPLES),
        label_set="meld",
        output_dir=str(tmp_path / "out"),
        splits=["train", "validation", "test"],
        cache_dir=str(_cold_embeddings_cache(tmp_path)),
        show_progress=False,
    )
    settings.update(overrides)
    return BuildDataConfig(**settings)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("build")
    config = _config(tmp_path, tasks=["emotion", "speaker", "impact"])
    return config, build_dataset(config)


def test_output_is_a_datasetdict_with_metadata_and_preview(built):
    config, result = built
    dataset = load_from_disk(config.output_dir)
    assert sorted(dataset) == ["test", "train", "validation"]
    train = dataset["train"]
    assert {
        "prompt",
        "completion",
        "label",
        "label_set",
        "dialogue_id",
        "turn",
        "task",
        "template",
        "template_version",
    } <= set(train.column_names)
    # Per split: one emotion and one speaker example per utterance, one impact example per non-first utterance
    # (train: 6 dialogues, 24 utterances; validation: 2 and 7; test: 2 and 6).
    assert result.counts == {"train": 24 + 24 + 18, "validation": 7 + 7 + 5, "test": 6 + 6 + 4}
    assert sorted(set(train["task"])) == ["emotion", "impact", "speaker"]
    info = json.loads((result.output_dir / "build_info.json").read_text())
    assert info["templates"]["emotion"] == {"name": "emotion", "version": 1, "id": "emotion@v1"}
    assert info["counts"] == result.counts and info["label_set"]["name"] == "meld"
    preview = [json.loads(line) for line in (result.output_dir / "preview.jsonl").read_text().splitlines()]
    assert len(preview) == 15 and preview[0]["prompt"][0]["role"] == "system"
    assert (result.output_dir / "dialogues" / "validation.jsonl").is_file()
    assert "n_demos: 2" in (result.output_dir / "resolved_config.yaml").read_text()


def test_demonstrations_come_from_other_training_dialogues_only(built):
    config, _ = built
    dataset = load_from_disk(config.output_dir)
    train_texts = {row["text"]: row["dialogue_id"] for row in dataset["train"]}
    for split in ("train", "validation", "test"):
        own_texts = {row["text"] for row in dataset[split]}
        for row in dataset[split].filter(lambda r: r["task"] == "emotion"):
            user = row["prompt"][1]["content"]
            demo_lines = [line for line in user.splitlines() if line.startswith("- ") and '" -> ' in line]
            assert len(demo_lines) == 2
            for line in demo_lines:
                text = line.split(': "', 1)[1].rsplit('" -> ', 1)[0]
                assert text in train_texts, f"demo {text!r} is not a training utterance"
                if split == "train":
                    assert train_texts[text] != row["dialogue_id"], "demo leaked from the target's own dialogue"
                else:
                    assert text not in own_texts


def test_unchanged_rebuild_is_skipped_and_changed_settings_rebuild(tmp_path):
    config = _config(tmp_path)
    first = build_dataset(config)
    assert not first.up_to_date and first.retrieval["misses"] > 0
    again = build_dataset(config)
    assert again.up_to_date and again.counts == first.counts
    changed = build_dataset(_config(tmp_path, window=1))
    assert not changed.up_to_date
    # Same texts, so the embeddings come from the on-disk cache and nothing is re-encoded.
    assert changed.retrieval["misses"] == 0 and changed.retrieval["hits"] > 0
    assert max(load_from_disk(config.output_dir)["train"]["n_history"]) == 1


def test_failed_build_keeps_the_previous_output(tmp_path, monkeypatch):
    config = _config(tmp_path, n_demos=0)
    build_dataset(config)
    before = (tmp_path / "out" / "build_info.json").read_text()

    def crash(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(build_module, "write_dialogues", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        build_dataset(_config(tmp_path, n_demos=0, window=2))
    assert (tmp_path / "out" / "build_info.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "out"]  # no temporary folder left behind


def test_dry_run_writes_nothing(tmp_path):
    result = build_dataset(_config(tmp_path, dry_run=True, n_demos=0))
    assert result.examples["train"] and not (tmp_path / "out").exists()


def test_max_dialogues_keeps_the_first_dialogues_of_each_split(tmp_path):
    from instructerc.schema import read_dialogues

    everything = build_dataset(_config(tmp_path, dry_run=True, n_demos=0))
    first = build_dataset(_config(tmp_path, dry_run=True, n_demos=0, max_dialogues=1))
    dialogues, _ = read_dialogues(EXAMPLES)
    for split, rows in first.examples.items():
        dialogue = next(d for d in dialogues if d.split == split)
        assert {r["dialogue_id"] for r in rows} == {dialogue.id}
        assert len(rows) == sum(u.label is not None for u in dialogue.utterances) < len(everything.examples[split])
    assert "first 1 dialogues of each split" in first.summary()


def test_max_dialogues_cuts_the_demonstration_pool_too(tmp_path):
    from instructerc.schema import read_dialogues

    dialogues, _ = read_dialogues(EXAMPLES)
    first_train = [u.text for u in next(d for d in dialogues if d.split == "train").utterances]

    def shows_first_train_dialogue(rows):
        return [any(text in row["prompt"][-1]["content"] for text in first_train) for row in rows]

    splits = ["validation"]
    full = build_dataset(_config(tmp_path, dry_run=True, n_demos=1, splits=splits)).examples["validation"]
    cut = build_dataset(_config(tmp_path, dry_run=True, n_demos=1, splits=splits, max_dialogues=1)).examples
    assert not all(shows_first_train_dialogue(full))  # the whole pool: other training dialogues are retrieved
    assert all(shows_first_train_dialogue(cut["validation"]))  # one training dialogue left to retrieve from


def test_unified_labels_and_label_only_template(tmp_path):
    fixture = FIXTURES / "emorynlp"
    result = build_dataset(
        _config(
            tmp_path,
            dataset="emorynlp",
            data_dir=str(fixture),
            label_set=None,
            unified_labels=True,
            template="emotion_label_only",
            n_demos=0,
            splits=["train"],
        )
    )
    train = load_from_disk(str(result.output_dir))["train"]
    assert train[0]["label_set"] == ["neutral", "joy", "sadness", "anger", "fear", "surprise", "disgust"]
    assert set(train["label"]) <= set(train[0]["label_set"])
    assert all(c[0]["content"].startswith("<answer>") for c in train["completion"])


def test_bad_corpus_input_names_file_line_and_field(tmp_path):
    bad = tmp_path / "bad.jsonl"
    shutil.copy(EXAMPLES, bad)
    lines = bad.read_text().splitlines()
    lines[1] = lines[1].replace('"label": "anger"', '"label": "grumpy"', 1)
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"bad.jsonl:2: utterances\[0\].label: unknown label 'grumpy'"):
        build_dataset(_config(tmp_path, data_dir=str(bad), n_demos=0))
    result = build_dataset(_config(tmp_path, data_dir=str(bad), n_demos=0, on_error="drop"))
    assert result.dropped == 1 and result.counts["train"] == 23


def _without_split_fields(tmp_path):
    path = tmp_path / "nosplit.jsonl"
    rows = [json.loads(line) for line in EXAMPLES.read_text().splitlines()]
    path.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "split"}) + "\n" for r in rows))
    return path


def test_a_file_without_split_information_cannot_feed_two_splits(tmp_path):
    # Regression: such a file gave train == validation, and every validation prompt listed the target's own
    # text and gold label as a retrieved demonstration (the train copy of its dialogue).
    path = _without_split_fields(tmp_path)
    for splits, n_demos in ((["train", "validation"], 2), (["train", "validation"], 0), (["validation"], 2)):
        with pytest.raises(DataError) as err:
            build_dataset(_config(tmp_path, data_dir=str(path), splits=splits, n_demos=n_demos))
        message = str(err.value)
        assert f"{path}: the same dialogues would be used for the splits train, validation" in message
        assert 'add a "split" field to every dialogue' in message and "--splits test --n_demos 0" in message
    assert not (tmp_path / "out").exists()
    # One split from it is fine (e.g. to label or evaluate a file of dialogues).
    result = build_dataset(_config(tmp_path, data_dir=str(path), splits=["test"], n_demos=0))
    assert result.counts == {"test": 37}


def test_a_single_meld_csv_cannot_feed_two_splits(tmp_path):
    fixture = FIXTURES / "meld" / "train_sent_emo.csv"
    with pytest.raises(DataError, match="the same dialogues would be used for the splits train, validation"):
        build_dataset(_config(tmp_path, dataset="meld", data_dir=str(fixture), label_set=None, n_demos=0))


def test_identical_splits_from_a_user_builder_are_refused(tmp_path, monkeypatch):
    from instructerc.data_builders import base

    dialogues = [json.loads(line) for line in EXAMPLES.read_text().splitlines()]

    def load(source, split, *, label_set, on_error="raise"):
        from instructerc.schema import dialogue_from_dict

        return base.LoadResult([dialogue_from_dict({**d, "split": split}) for d in dialogues])

    module = type(json)("leaky_builder")
    module.load = load
    monkeypatch.setitem(__import__("sys").modules, "leaky_builder", module)
    with pytest.raises(DataError, match="the same dialogues would be used for the splits train, validation"):
        build_dataset(_config(tmp_path, dataset="leaky_builder:load", splits=["train", "validation"], n_demos=0))


def test_dropped_utterances_and_dialogues_are_counted_apart(tmp_path):
    bad = tmp_path / "bad.jsonl"
    rows = [json.loads(line) for line in EXAMPLES.read_text().splitlines()]
    rows[0]["utterances"][1]["text"] = " "  # cafe-01 (train, 4 utterances): one empty utterance
    rows[1]["utterances"][2]["turn"] = 1  # flat-02 (train, 4 utterances): a duplicate turn id drops it whole
    bad.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = build_dataset(_config(tmp_path, data_dir=str(bad), n_demos=0, on_error="drop"))
    assert result.counts["train"] == 24 - 1 - 4
    assert "dropped 1 bad utterance and 1 bad dialogue (4 utterances)" in result.summary()
    assert "bad rows" not in result.summary()
    info = json.loads((result.output_dir / "build_info.json").read_text())
    assert info["dropped"] == {
        "utterances": 1,
        "dialogues": 1,
        "utterances_in_dropped_dialogues": 4,
        "utterances_lost": 5,
    }


def test_outputs_are_readable_by_others(tmp_path):
    previous = os.umask(0o022)
    try:
        result = build_dataset(_config(tmp_path, n_demos=0, splits=["train"]))
    finally:
        os.umask(previous)
    out = result.output_dir
    assert stat.S_IMODE(out.stat().st_mode) == 0o755
    for name in ("build_info.json", "preview.jsonl", "resolved_config.yaml", "dialogues/train.jsonl"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o644, name


def test_dry_run_says_that_it_fills_the_embeddings_cache(tmp_path):
    result = build_dataset(_config(tmp_path, dry_run=True, splits=["train", "validation"]))
    assert not (tmp_path / "out").exists()
    assert list((tmp_path / "cache" / "embeddings").glob("*/*.npy"))
    assert result.summary().endswith("(dry run, nothing written) apart from the embeddings cache")
