import json
import os
import stat

import pytest

from instructerc.io import atomic_directory, atomic_open, atomic_write_json, atomic_write_text
from instructerc.schema import DataError, Dialogue, Utterance, read_dialogues, write_dialogues


def _write(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


GOOD = {
    "id": "d1",
    "split": "train",
    "utterances": [
        {"turn": 0, "speaker": "A", "text": "Hello!", "label": "joy", "audio_cue": "loud"},
        {"turn": 1, "speaker": "B", "text": "Hi.", "labels": ["calm", "content"], "start": 1.0, "end": 2.5},
    ],
}


def test_round_trip_keeps_every_field(tmp_path):
    path = _write(tmp_path / "d.jsonl", [GOOD])
    dialogues, dropped = read_dialogues(path)
    assert dropped == 0
    assert dialogues[0].utterances[0].cues == {"audio": "loud"}
    assert dialogues[0].utterances[1].labels == ["calm", "content"]
    out = tmp_path / "out.jsonl"
    assert write_dialogues(out, dialogues) == 1
    assert json.loads(out.read_text()) == GOOD


def test_every_problem_is_reported_with_file_line_and_field(tmp_path):
    bad = {
        "id": "d2",
        "utterances": [
            {"turn": 0, "speaker": "A", "text": "  "},
            {"turn": 0, "speaker": "B", "text": "ok", "lable": "joy"},
            {"turn": 2, "speaker": "C", "text": "x", "start": 3, "end": 1},
        ],
    }
    path = _write(tmp_path / "d.jsonl", [GOOD, bad])
    with pytest.raises(DataError) as info:
        read_dialogues(path)
    message = str(info.value)
    assert f"{path}:2: utterances[0].text: is empty" in message
    assert f"{path}:2: utterances[1].turn: duplicate turn id 0" in message
    assert f"{path}:2: utterances[1].lable: unknown field" in message
    assert f"{path}:2: utterances[2].end: ends (1) before it starts (3)" in message
    assert len(info.value.problems) == 4


def test_drop_mode_counts_bad_dialogues_and_keeps_good_ones(tmp_path):
    path = _write(tmp_path / "d.jsonl", [GOOD, {"id": "d3", "utterances": []}])
    dialogues, dropped = read_dialogues(path, on_error="drop")
    assert [d.id for d in dialogues] == ["d1"] and dropped == 1


def test_invalid_json_and_bytes_name_the_line(tmp_path):
    path = _write(tmp_path / "d.jsonl", [GOOD, "{not json"])
    with pytest.raises(DataError, match=r"d.jsonl:2: invalid JSON"):
        read_dialogues(path)
    raw = tmp_path / "raw.jsonl"
    raw.write_bytes(json.dumps(GOOD).encode() + b"\n" + b'{"id": "\xff"}\n')
    with pytest.raises(DataError, match=r"raw.jsonl:2: not valid UTF-8"):
        read_dialogues(raw)


def test_every_unreadable_line_is_listed_at_once(tmp_path):
    raw = tmp_path / "raw.jsonl"
    good = json.dumps(GOOD).encode()
    raw.write_bytes(b"\n".join([good, b'{"id": "\xff"}', b"{not json", good, b'{"id": "\xc3"}', b"[1,", b""]))
    with pytest.raises(DataError) as info:
        read_dialogues(raw)
    assert [(p.line, p.message.split(" (")[0]) for p in info.value.problems] == [
        (2, "not valid UTF-8"),
        (3, "invalid JSON: Expecting property name enclosed in double quotes"),
        (5, "not valid UTF-8"),
        (6, "invalid JSON: Expecting value"),
    ]


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_atomic_writes_get_the_permissions_of_a_plain_open(tmp_path, umask):
    previous = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
        atomic_write_json(tmp_path / "b.json", {})
        with atomic_open(tmp_path / "c.bin", "wb") as handle:
            handle.write(b"x")
        with atomic_directory(tmp_path / "folder") as tmp:
            (tmp / "inside.txt").write_text("x")
        with atomic_directory(tmp_path / "folder") as tmp:  # replacing an existing folder
            (tmp / "inside.txt").write_text("y")
    finally:
        os.umask(previous)
    for name in ("a.txt", "b.json", "c.bin", "folder/inside.txt"):
        assert _mode(tmp_path / name) == 0o666 & ~umask, name
    assert _mode(tmp_path / "folder") == 0o777 & ~umask


def test_duplicate_dialogue_ids_in_one_split_are_errors(tmp_path):
    path = _write(tmp_path / "d.jsonl", [GOOD, GOOD])
    with pytest.raises(DataError, match="duplicate dialogue id 'd1' \\(first on line 1\\)"):
        read_dialogues(path)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_dialogues(tmp_path / "absent.jsonl")


def test_failed_write_leaves_previous_file_intact(tmp_path):
    path = tmp_path / "out.jsonl"
    write_dialogues(path, [Dialogue("d", [Utterance(0, "A", "hi")])])
    before = path.read_text()
    with pytest.raises(RuntimeError):
        with atomic_open(path) as handle:
            handle.write("partial")
            raise RuntimeError("crash mid-write")
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]  # no temp file left behind
