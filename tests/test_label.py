"""`instructerc label` with the embedded model: every utterance gets a row, valid or counted invalid."""

import json

import pytest

from instructerc.cli import main
from instructerc.infer.label import LabelConfig, format_table, label_conversations

pytestmark = pytest.mark.slow
TRANSCRIPT = "Ana: I finally got the job!\nBen: No way, that's amazing!\nAna: I start on Monday.\n"


def test_open_vocabulary_labels_every_utterance_with_wheel_groups(tmp_path):
    path = tmp_path / "chat.txt"
    path.write_text(TRANSCRIPT)
    rows = label_conversations(
        LabelConfig(
            input=str(path), max_new_tokens=24, threads=1, show_progress=False, output=str(tmp_path / "out.jsonl")
        )
    )
    assert [r["text"] for r in rows] == ["I finally got the job!", "No way, that's amazing!", "I start on Monday."]
    assert all(r["open_vocabulary"] and r["gold"] is None for r in rows)
    for row in rows:
        if row["valid"]:
            assert row["predicted_labels"] and len(row["groups"]) >= 1
        else:  # unparsable output is counted invalid, never turned into a label
            assert row["predicted_labels"] == [] and row["invalid_reason"]
    written = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["id"] for r in written] == [r["id"] for r in rows]
    table = format_table(rows)
    assert table.splitlines()[0].split() == ["speaker", "utterance", "emotion", "group", "rationale"]
    assert len(table.splitlines()) == 2 + len(rows)


class CannedBackend:
    """A backend that answers with fixed texts, in order: what the embedded model writes, without running it."""

    name = "canned"

    def __init__(self, outputs: list[str]):
        self.outputs, self.rows = list(outputs), []

    def generate(self, rows, config):
        self.rows += rows
        return [self.outputs.pop(0) for _ in rows]

    def close(self):
        pass


def test_open_vocabulary_rows_from_untagged_answers_are_valid(tmp_path, monkeypatch):
    # The embedded model answers without tags ("The emotion expressed is amusement."): such rows must be read,
    # not all counted invalid.
    backend = CannedBackend(
        [
            "Ana: I finally got the job!\n\nThe emotion expressed is amusement.",
            "The emotions are joy and surprise.",
            "Ben feels joy and pride.",
        ]
    )
    monkeypatch.setattr("instructerc.infer.predict.make_backend", lambda config: backend)
    path = tmp_path / "chat.txt"
    path.write_text(TRANSCRIPT)
    rows = label_conversations(LabelConfig(input=str(path), threads=1, show_progress=False))
    assert len(backend.rows) == 3 and all(r["open_vocabulary"] for r in backend.rows)
    assert [r["valid"] for r in rows] == [True, True, True]
    assert [r["invalid_reason"] for r in rows] == [None, None, None]
    assert [r["predicted_labels"] for r in rows] == [["amusement"], ["joy", "surprise"], ["joy", "pride"]]
    assert [r["predicted"] for r in rows] == ["amusement", "joy, surprise", "joy, pride"]
    assert [r["groups"] for r in rows] == [["joy"], ["joy", "surprise"], ["joy", "pride"]]  # Plutchik level 1
    assert [r["valid_strict"] for r in rows] == [False, False, False]  # strict mode still needs the tags
    table = format_table(rows)
    assert "(invalid)" not in table and "amusement" in table and "joy, surprise" in table


def test_open_vocabulary_prose_answers_are_invalid(tmp_path, monkeypatch):
    backend = CannedBackend(
        [
            "<think>r</think><answer>I'm sorry, I can't help with that.</answer>",
            "<think>r</think><answer>None</answer>",
            "<think>She got the job.</think><answer>Happy (because she got the job)</answer>",
        ]
    )
    monkeypatch.setattr("instructerc.infer.predict.make_backend", lambda config: backend)
    path = tmp_path / "chat.txt"
    path.write_text(TRANSCRIPT)
    rows = label_conversations(LabelConfig(input=str(path), threads=1, show_progress=False))
    assert [r["valid"] for r in rows] == [False, False, True]
    assert rows[0]["invalid_reason"].startswith("not emotion words") and rows[0]["predicted_labels"] == []
    assert rows[1]["invalid_reason"] == "no emotion" and rows[1]["predicted_labels"] == []
    assert rows[2]["predicted_labels"] == ["happy"] and rows[2]["valid_strict"] is True


def test_closed_set_from_stdin_through_the_cli(monkeypatch, capsys):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(TRANSCRIPT))
    assert (
        main(
            [
                "label",
                "--input",
                "-",
                "--labels",
                "joy,anger,neutral",
                "--max_new_tokens",
                "24",
                "--threads",
                "1",
                "--no-show_progress",
            ]
        )
        == 0
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 + 3
    for line in lines[2:]:  # each row shows a label of the set or says it was invalid
        assert any(word in line for word in ("joy", "anger", "neutral", "(invalid)"))


def test_bad_wheel_is_a_clean_error(tmp_path, capsys):
    path = tmp_path / "chat.txt"
    path.write_text(TRANSCRIPT)
    assert main(["label", "--input", str(path), "--wheel", "rainbow"]) == 2
    assert "wheel: expected one of plutchik, parrott, willcox" in capsys.readouterr().err
