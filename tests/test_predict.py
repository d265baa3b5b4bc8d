"""`predict`: output rows per docs/predictions_format.md, resuming, and the raw-dialogue source.

The embedded model runs on one thread with short generations; it is loaded once for the module.
"""

import json
import shutil
from pathlib import Path

import pytest

from instructerc.config import BuildDataConfig, ConfigError
from instructerc.infer.predict import PredictConfig, TransformersBackend, predict, prediction_row
from instructerc.infer.sources import example_id, load_built_rows, load_raw_rows
from instructerc.infer.writer import ResumableJsonlWriter, read_jsonl
from instructerc.models import resolve_model

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "dialogues.jsonl"
FIELDS = {
    "id": str,
    "split": str,
    "dialogue_id": str,
    "turn": int,
    "task": str,
    "speaker": str,
    "text": str,
    "gold": (str, type(None)),
    "gold_labels": list,
    "label_set": list,
    "open_vocabulary": bool,
    "predicted": (str, type(None)),
    "predicted_labels": list,
    "rationale": (str, type(None)),
    "raw": str,
    "valid": bool,
    "invalid_reason": (str, type(None)),
    "valid_strict": bool,
    "well_formed": bool,
    "probabilities": (dict, type(None)),
    "context": str,
    "reference_rationale": (str, type(None)),
    "reference_clues": list,
    "model": str,
    "adapter": (str, type(None)),
    "template": str,
    "unit": str,
    "mode": str,
    "backend": str,
    "calibration": (str, type(None)),
}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from instructerc.data_builders.build import build_dataset

    out = tmp_path_factory.mktemp("built") / "data"
    config = BuildDataConfig(
        dataset="jsonl",
        data_dir=str(EXAMPLES),
        label_set="meld",
        output_dir=str(out),
        splits=["validation"],
        n_demos=0,
        window=2,
        show_progress=False,
    )
    build_dataset(config)
    return out


@pytest.fixture(scope="module")
def backend():
    return TransformersBackend.from_config(PredictConfig(output="-", dataset_dir="-", model_dtype="float32", threads=1))


def config(output, built, **kwargs) -> PredictConfig:
    defaults = {"max_new_tokens": 16, "batch_size": 4, "threads": 1, "model_dtype": "float32", "show_progress": False}
    return PredictConfig(output=str(output), dataset_dir=str(built), **{**defaults, **kwargs})


@pytest.fixture(scope="module")
def full_run(built, backend, tmp_path_factory):
    out = tmp_path_factory.mktemp("full") / "preds.jsonl"
    summary = predict(config(out, built), backend)
    return out, summary


def check_row(row: dict) -> None:
    assert set(row) == set(FIELDS)
    for name, kind in FIELDS.items():
        assert isinstance(row[name], kind), (name, row[name])
    assert row["id"] == f"{row['split']}/{row['dialogue_id']}/{row['turn']}/{row['task']}"
    assert row["predicted_labels"] == ([row["predicted"]] if row["predicted"] else [])
    assert row["valid"] == (row["predicted"] is not None) and row["valid"] == (row["invalid_reason"] is None)
    assert not row["valid_strict"] or row["well_formed"]
    assert row["predicted"] is None or row["predicted"] in row["label_set"]


def test_every_row_written_and_well_formed(full_run, built):
    out, summary = full_run
    rows = read_jsonl(out)
    dataset = load_built_rows(built, "validation")
    assert len(rows) == len(dataset) == 7 and summary.written == 7 and summary.skipped == 0
    assert [r["id"] for r in rows] == [example_id(r) for r in dataset]
    assert len({r["id"] for r in rows}) == 7
    for row, example in zip(rows, dataset, strict=True):
        check_row(row)
        assert row["gold"] == example["label"] and row["gold_labels"] == [example["label"]]
        assert row["mode"] == "generate" and row["backend"] == "transformers" and row["probabilities"] is None
        assert row["template"] == example["template"] and row["context"] == example["context"]
    assert summary.invalid == sum(not r["valid"] for r in rows)
    assert "predicted 7 rows" in summary.summary()


def test_rerun_of_a_finished_file_does_nothing(full_run, built, tmp_path):
    out, _ = full_run
    copy = tmp_path / "preds.jsonl"
    shutil.copy(out, copy)
    summary = predict(config(copy, built))  # no backend given: none may be loaded when nothing is left
    assert summary.written == 0 and summary.skipped == 7
    assert copy.read_bytes() == out.read_bytes()


@pytest.mark.parametrize(
    ("change", "message"),
    [({"mode": "score"}, "mode 'generate' -> 'score'"), ({"adapter": "other"}, "adapter None -> 'other'")],
)
def test_resuming_another_runs_file_is_refused(full_run, built, backend, tmp_path, change, message):
    out = tmp_path / "preds.jsonl"
    shutil.copy(full_run[0], out)
    before = out.read_bytes()
    with pytest.raises(ValueError, match=message):
        predict(config(out, built, **change), backend)
    assert out.read_bytes() == before


def test_resume_after_limit_and_a_torn_line(full_run, built, backend, tmp_path):
    out = tmp_path / "preds.jsonl"
    assert predict(config(out, built, limit=3), backend).written == 3
    first = out.read_text().splitlines()
    with open(out, "a") as handle:  # a crash in the middle of writing the next batch
        handle.write('{"id": "validation/party-07/3/emotion", "raw": "hal')
    summary = predict(config(out, built), backend)
    assert summary.written == 4 and summary.skipped == 3
    lines = out.read_text().splitlines()
    assert lines[:3] == first and len(lines) == 7
    rows = [json.loads(line) for line in lines]
    assert len({r["id"] for r in rows}) == 7
    # Greedy decoding is deterministic: the resumed file holds what the uninterrupted run wrote.
    assert [r["raw"] for r in rows] == [r["raw"] for r in read_jsonl(full_run[0])]


def test_resume_after_truncating_mid_line(full_run, built, backend, tmp_path):
    out = tmp_path / "preds.jsonl"
    data = full_run[0].read_bytes()
    cut = data.index(b"\n", data.index(b"\n") + 1) + 20  # 20 bytes into the third line
    out.write_bytes(data[:cut])
    summary = predict(config(out, built), backend)
    assert summary.skipped == 2 and summary.written == 5
    assert out.read_bytes() == data


def test_writer_recovery(tmp_path):
    path = tmp_path / "w.jsonl"
    with ResumableJsonlWriter(path) as writer:
        assert writer.append([{"id": "a"}, {"id": "b"}, {"id": "a"}]) == 2
    path.write_bytes(path.read_bytes() + b'{"id": "c", "x"')
    with ResumableJsonlWriter(path) as writer:
        assert writer.truncated_bytes > 0 and writer.done("a") and not writer.done("c")
        assert writer.append([{"id": "b"}, {"id": "c"}]) == 1
    assert [r["id"] for r in read_jsonl(path)] == ["a", "b", "c"]
    path.write_text('{"id": "a"}\nnot json\n{"id": "b"}\n')  # damage that is not a torn last write
    with pytest.raises(ValueError, match="unparsable line"):
        ResumableJsonlWriter(path)


def test_raw_dialogues_give_the_built_prompts(built):
    raw = load_raw_rows("jsonl", EXAMPLES, "validation", label_set="meld", window=2, n_demos=0)
    by_id = {example_id(r): r for r in raw}
    for row in load_built_rows(built, "validation"):
        other = by_id[example_id(row)]
        for column in ("prompt", "label", "label_set", "context", "template", "answer_format", "completion"):
            assert other[column] == row[column], column


def test_raw_source_predicts_in_score_mode(built, backend, tmp_path):
    out = tmp_path / "raw.jsonl"
    cfg = PredictConfig(
        output=str(out),
        dataset="jsonl",
        data_dir=str(EXAMPLES),
        label_set="meld",
        window=2,
        mode="score",
        limit=2,
        show_progress=False,
    )
    assert predict(cfg, backend).written == 2
    rows = read_jsonl(out)
    assert [r["id"] for r in rows] == [example_id(r) for r in load_built_rows(built, "validation")[:2]]
    for row in rows:
        check_row(row)
        assert row["mode"] == "score" and row["valid"] and row["valid_strict"] and row["raw"] == row["predicted"]


def test_config_needs_exactly_one_source():
    with pytest.raises(ConfigError, match="either"):
        PredictConfig(output="x").validate()
    with pytest.raises(ConfigError, match="either"):
        PredictConfig(output="x", dataset_dir="d", dataset="jsonl", data_dir="f").validate()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"backend": "tgi"}, "backend: unknown 'tgi'"),
        ({"backend": "openai"}, "needs --base_url"),
        ({"backend": "openai", "base_url": "http://h/v1", "adapter": "a"}, "request one by its name with --model"),
        ({"backend": "vllm", "mode": "score"}, "score needs --backend transformers"),
        ({"structured": "choice"}, "structured outputs need --backend vllm or --backend openai"),
        ({"backend": "openai", "base_url": "http://h/v1", "concurrency": 0}, "concurrency must be >= 1"),
    ],
)
def test_engine_options_are_checked(options, message):
    with pytest.raises(ConfigError, match=message):
        PredictConfig(output="x", dataset_dir="d", **options).validate()


def _row(**overrides):
    row = {
        "split": "validation",
        "dialogue_id": "d1",
        "turn": 1,
        "task": "emotion",
        "speaker": "Leo",
        "text": "No way!",
        "label": "surprise",
        "labels": ["surprise"],
        "label_set": ["neutral", "joy", "surprise"],
        "open_vocabulary": False,
        "answer_format": "think_answer",
        "template": "emotion@v1",
        "context": "Leo: No way!",
        "rationale": "",
        "clues": [],
    }
    return {**row, **overrides}


def test_prediction_row_parsing():
    cfg = PredictConfig(output="x", dataset_dir="d")
    row = prediction_row(_row(), "<think>He did not expect it.</think><answer>Surprised</answer>", cfg)
    check_row(row)
    assert row["predicted"] == "surprise" and row["rationale"] == "He did not expect it." and row["valid_strict"]
    assert row["reference_rationale"] is None
    lenient_only = prediction_row(_row(), "The emotion is surprise.", cfg)
    assert lenient_only["valid"] and not lenient_only["valid_strict"] and not lenient_only["well_formed"]
    invalid = prediction_row(_row(), "no idea", cfg)
    assert invalid["predicted"] is None and invalid["invalid_reason"] == "no answer"
    # Speaker names: exact label sets, the set's own spelling kept, no emotion synonyms.
    speaker = _row(task="speaker", label_set=["Maya", "Leo"], label="Leo", answer_format="answer_only")
    assert prediction_row(speaker, "<answer>leo</answer>", cfg)["predicted"] == "Leo"
    open_vocab = _row(open_vocabulary=True, label="amazed, happy", labels=["amazed", "happy"])
    parsed = prediction_row(open_vocab, "<think></think><answer>amazed and happy</answer>", cfg)
    assert parsed["predicted_labels"] == ["amazed", "happy"] and parsed["gold_labels"] == ["amazed", "happy"]


def char_tokenizer(folder: Path) -> Path:
    """A real tokenizer folder that spends one token per character (SmolLM2 spends about one per word)."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    vocab = {"<unk>": 0, "<eos>": 1} | {chr(c): i + 2 for i, c in enumerate(range(32, 127))}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="<unk>", eos_token="<eos>")
    tokenizer.chat_template = AutoTokenizer.from_pretrained(str(resolve_model("embedded"))).chat_template
    tokenizer.save_pretrained(folder)
    return folder


def test_raw_prompts_are_measured_with_the_models_tokenizer(built, backend, tmp_path):
    """The history is cut to --max_prompt_tokens counted by the tokenizer the model reads with, not the embedded
    one: a tokenizer with many more tokens per text keeps fewer history turns under the same budget."""
    chars = char_tokenizer(tmp_path / "chars")
    assert PredictConfig(output="-", dataset="jsonl", data_dir="-", model=str(chars)).budget_tokenizer() == str(chars)
    assert PredictConfig(output="-", dataset="jsonl", data_dir="-", backend="openai", base_url="http://x/v1",
                         model="served").budget_tokenizer() == "embedded"  # fmt: skip
    runs = {}
    for name, tokenizer in (("embedded", None), ("chars", str(chars))):
        out = tmp_path / f"{name}.jsonl"
        cfg = PredictConfig(
            output=str(out),
            dataset="jsonl",
            data_dir=str(EXAMPLES),
            label_set="meld",
            window=12,
            max_prompt_tokens=740,  # the full prompts take 156-198 embedded tokens, 683-813 characters
            prompt_tokenizer=tokenizer,
            mode="score",
            show_progress=False,
        )
        predict(cfg, backend)
        runs[name] = {row["id"]: row["context"].count("\n") for row in read_jsonl(out)}
    assert runs["embedded"].keys() == runs["chars"].keys()
    assert all(runs["chars"][i] <= runs["embedded"][i] for i in runs["embedded"])
    assert sum(runs["chars"].values()) < sum(runs["embedded"].values())
