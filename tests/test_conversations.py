import io
import json

import pytest

from instructerc.infer.conversations import read_conversations
from instructerc.schema import DataError


def test_plain_transcript_with_comments_and_blank_line_separated_dialogues(tmp_path):
    path = tmp_path / "chat.txt"
    path.write_text("# a comment\nAna: I got the job!\nBen: No way, congratulations!\n\nCid: My cat is sick.\n")
    dialogues = read_conversations(str(path))
    assert [len(d.utterances) for d in dialogues] == [2, 1]
    assert (dialogues[0].utterances[1].speaker, dialogues[0].utterances[1].text) == ("Ben", "No way, congratulations!")
    assert dialogues[1].id == "conversation-2" and dialogues[1].utterances[0].turn == 0


def test_transcript_lines_without_a_speaker_are_errors_with_line_numbers(tmp_path):
    path = tmp_path / "chat.txt"
    path.write_text("Ana: hi\njust some text\nBen: ok\nanother\n")
    with pytest.raises(DataError) as info:
        read_conversations(str(path))
    assert f"{path}:2: expected 'Speaker: text'" in str(info.value) and f"{path}:4:" in str(info.value)


@pytest.mark.parametrize(
    "payload, sizes",
    [
        ([{"speaker": "A", "text": "hi"}, {"speaker": "B", "text": "hello"}], [2]),  # a bare list of turns
        ({"utterances": [{"speaker": "A", "text": "hi"}]}, [1]),
        ([{"id": "x", "utterances": [{"speaker": "A", "text": "hi"}]}, {"utterances": [{"text": "yo"}]}], [1, 1]),
    ],
)
def test_json_shapes(tmp_path, payload, sizes):
    path = tmp_path / "c.json"
    path.write_text(json.dumps(payload))
    assert [len(d.utterances) for d in read_conversations(str(path))] == sizes


def test_canonical_jsonl_and_stdin(tmp_path, monkeypatch):
    line = json.dumps({"id": "d", "utterances": [{"turn": 0, "speaker": "A", "text": "hi", "label": "joy"}]})
    monkeypatch.setattr("sys.stdin", io.StringIO(line + "\n" + line.replace('"d"', '"e"') + "\n"))
    dialogues = read_conversations("-")
    assert [d.id for d in dialogues] == ["d", "e"] and dialogues[0].utterances[0].label == "joy"
    monkeypatch.setattr("sys.stdin", io.StringIO("Ana: hello there\n"))
    assert read_conversations("-")[0].utterances[0].text == "hello there"


def test_bad_inputs(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n")
    with pytest.raises(DataError, match="is empty"):
        read_conversations(str(empty))
    with pytest.raises(FileNotFoundError):
        read_conversations(str(tmp_path / "nope.txt"))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"utterances": [{"speaker": "A", "text": ""}]}))
    with pytest.raises(DataError, match=r"utterances\[0\].text: is empty"):
        read_conversations(str(bad))
