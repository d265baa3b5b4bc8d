import pytest

from instructerc.config import BuildDataConfig, ConfigError, load_config


def test_defaults_then_yaml_then_flags(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("dataset: meld\ndata_dir: data/meld\nwindow: 5\nn_demos: 3\nsplits: [train]\n")
    config = load_config(BuildDataConfig, path, {"window": "7"})
    assert config.window == 7  # the flag wins over the file
    assert config.n_demos == 3  # the file wins over the default
    assert config.max_prompt_tokens == 1024  # the default stays
    assert config.splits == ["train"]


def test_unknown_yaml_key_is_an_error_naming_file_and_key(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("dataset: meld\ndata_dir: x\nwindw: 5\n")
    with pytest.raises(ConfigError, match=r"c.yaml: unknown keys windw \(valid keys: dataset, data_dir"):
        load_config(BuildDataConfig, path)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"window": "many"}, "--window: expected int, got 'many'"),
        ({"on_error": "ignore"}, "--on_error: expected raise \\| drop, got 'ignore'"),
        ({"tasks": "emotion,poetry"}, "tasks: unknown \\['poetry'\\]"),
        ({"dry_run": "perhaps"}, "--dry_run: expected bool"),
    ],
)
def test_bad_values_say_what_was_expected(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(BuildDataConfig, None, {"dataset": "meld", "data_dir": "x", **overrides})


def test_required_options_and_type_coercion():
    with pytest.raises(ConfigError, match="missing required options: dataset, data_dir"):
        load_config(BuildDataConfig, None, {})
    config = load_config(
        BuildDataConfig,
        None,
        {
            "dataset": "hf",
            "data_dir": "x",
            "max_prompt_tokens": "null",
            "builder_options": "{columns: {text: utt}}",
            "tasks": "emotion, speaker",
            "dry_run": "true",
        },
    )
    assert config.max_prompt_tokens is None and config.dry_run is True
    assert config.builder_options == {"columns": {"text": "utt"}}
    assert config.tasks == ["emotion", "speaker"]


def test_none_stays_a_string_where_strings_are_allowed():
    from instructerc.config import _coerce

    assert _coerce("none", str | list[str] | None, "--report_to") == "none"
    assert _coerce("null", str | None, "--label_set") is None
    assert _coerce("none", int | None, "--max_prompt_tokens") is None
