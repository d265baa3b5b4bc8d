import dataclasses
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from instructerc.cli import VERBS, main
from instructerc.config import BuildDataConfig
from instructerc.resources import shipped_dir

EXE = shutil.which("instructerc", path=str(Path(sys.executable).parent))
EXAMPLES = str(shipped_dir("examples") / "dialogues.jsonl")


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_every_verb_has_truthful_help(verb):
    out = subprocess.run([EXE, *verb.split(), "--help"], capture_output=True, text=True, check=True).stdout
    assert f"usage: instructerc {verb}" in out
    config_cls = VERBS[verb].config() if VERBS[verb].config else None
    if config_cls is not None:
        for field in dataclasses.fields(config_cls):
            assert f"--{field.name}" in out
            # The help text shown is the one the config declares.
            assert field.metadata["help"].split()[0] in out


def test_top_level_help_lists_the_verbs():
    out = subprocess.run([EXE, "--help"], capture_output=True, text=True, check=True).stdout
    for verb in VERBS:
        assert verb.split()[0] in out
    train = subprocess.run([EXE, "train", "--help"], capture_output=True, text=True, check=True).stdout
    assert "sft" in train and "supervised fine-tuning" in train


def test_help_shows_defaults():
    out = subprocess.run([EXE, "build-data", "--help"], capture_output=True, text=True, check=True).stdout
    assert "default: 12" in out and "default: 'embedded'" in out
    assert "[str; required]" in out and "default: None]" not in out.split("--output_dir")[0]


@pytest.mark.parametrize(
    "kind, expected",
    [
        ("datasets", ["meld", "emorynlp", "iemocap", "dailydialog", "jsonl", "hf", "my_pkg.module:load"]),
        ("prompts", ["emotion", "v1", "emotion_open_vocab", "speaker", "impact", "think_answer"]),
        ("labels", ["meld", "neutral, surprise, fear", "unified"]),
    ],
)
def test_ls(kind, expected, capsys):
    assert main(["ls", kind]) == 0
    out = capsys.readouterr().out
    for word in expected:
        assert word in out


def test_unknown_config_key_is_a_clean_error(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text(f"dataset: jsonl\ndata_dir: {EXAMPLES}\nlabel_set: meld\nwindw: 3\n")
    assert main(["build-data", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "instructerc build-data: error:" in err and "unknown keys windw" in err and "Traceback" not in err


def test_missing_data_is_a_clean_error(tmp_path, capsys):
    assert main(["build-data", "--dataset", "meld", "--data_dir", str(tmp_path / "nope")]) == 2
    assert "nope: no such file or folder" in capsys.readouterr().err


def test_unknown_dataset_lists_the_known_ones(capsys):
    assert main(["build-data", "--dataset", "meldd", "--data_dir", EXAMPLES]) == 2
    err = capsys.readouterr().err
    assert "meldd" in err and "emorynlp" in err


def test_dry_run_prints_two_examples_and_token_statistics(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    # The YAML asks for 5 history turns and no progress bar; the flags override n_demos and add dry_run.
    config.write_text(
        f"dataset: jsonl\ndata_dir: {EXAMPLES}\nlabel_set: meld\nwindow: 5\nshow_progress: false\n"
        f"output_dir: {tmp_path / 'out'}\nn_demos: 3\n"
    )
    assert main(["build-data", "--config", str(config), "--n_demos", "0", "--dry_run"]) == 0
    out = capsys.readouterr().out
    assert out.count("===== train / emotion") == 1 and out.count("===== validation / emotion") == 1
    assert "0 demos" in out and "Labeled examples" not in out  # the flag won over the YAML's n_demos: 3
    assert "<|im_start|>assistant" in out
    assert "prompt tokens (budget 1024)" in out and "train        emotion  n=24" in out
    assert "(dry run, nothing written)" in out and not (tmp_path / "out").exists()


def test_build_data_cli_writes_the_dataset(tmp_path, capsys):
    out_dir = tmp_path / "out"
    assert (
        main(
            [
                "build-data",
                "--dataset",
                "jsonl",
                "--data_dir",
                EXAMPLES,
                "--label_set",
                "meld",
                "--n_demos",
                "0",
                "--output_dir",
                str(out_dir),
                "--no-show_progress",
                "--tasks",
                "emotion,speaker",
            ]
        )
        == 0
    )
    assert "built 62 examples (train 48, validation 14)" in capsys.readouterr().out
    assert (out_dir / "dataset_dict.json").is_file()


def test_every_shipped_data_config_parses():
    from instructerc.config import load_config

    configs = sorted((shipped_dir("configs") / "data").glob("*.yaml"))
    assert len(configs) >= 6
    for path in configs:
        config = load_config(BuildDataConfig, path)
        assert config.dataset and config.output_dir


@pytest.mark.parametrize("folder, config_name", [("sft", "SFTTrainConfig"), ("grpo", "GRPOTrainConfig")])
def test_every_shipped_training_recipe_parses(folder, config_name):
    import instructerc.train.configs as configs
    from instructerc.config import load_config

    recipes = sorted((shipped_dir("configs") / folder).glob("*.yaml"))
    assert recipes
    for path in recipes:
        config = load_config(getattr(configs, config_name), path)
        assert config.use_cpu  # CPU machines need no extra flag


def test_export_cli_errors_are_clean(tmp_path, capsys):
    assert main(["export", "--adapter", str(tmp_path / "missing"), "--output_dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "instructerc export: error:" in err and "missing" in err and not (tmp_path / "out").exists()


def test_evaluate_cli_prints_the_headline_and_writes_the_report(tmp_path, capsys):
    import json

    from tests.test_evaluate import ROWS

    predictions = tmp_path / "predictions.jsonl"
    predictions.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    out = tmp_path / "eval"
    assert main(["evaluate", "--predictions", str(predictions), "--output_dir", str(out), "--no-clues"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    results = json.loads((out / "results.json").read_text())
    assert f"weighted F1 {results['closed_set']['emotion']['weighted_f1']:.3f}" in line
    assert "open vocabulary level1 F" in line and line.endswith("report.md")
    assert (out / "report.md").is_file() and (out / "confusion.png").read_bytes()[:4] == b"\x89PNG"
