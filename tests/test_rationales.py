"""Rationalization: the rationale check, the cache, the endpoint writer against a real local HTTP server, and the
local writer with the embedded model."""

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from examples_data import build_examples

from instructerc.config import ConfigError
from instructerc.labels import get_label_set
from instructerc.train.rationale_writers import EndpointError, EndpointWriter
from instructerc.train.rationales import (
    RationaleCache,
    RationalesConfig,
    check_rationale,
    clean_rationale,
    write_rationales,
)

ROOT = Path(__file__).resolve().parents[1]
MELD = get_label_set("meld")
CONTEXT = (
    "Zoe: Surprise! Happy birthday!\n"
    "Ben: Oh my God, you all planned this? [visual: brow raiser and jaw drop, strong]\n"
    "Zoe: For weeks. You had no idea, did you?"
)


# Validation utterances built label-only (no reference rationale, no clues): the rows to rationalize. The other
# three validation utterances keep their reference rationale.
LABEL_ONLY = {("party-07", 2), ("party-07", 3), ("vet-08", 1), ("vet-08", 2)}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    folder = tmp_path_factory.mktemp("built")
    dialogues = [json.loads(line) for line in (ROOT / "examples" / "dialogues.jsonl").read_text().splitlines()]
    for dialogue in dialogues:
        for utterance in dialogue["utterances"]:
            if (dialogue["id"], utterance["turn"]) in LABEL_ONLY:
                utterance.pop("rationale", None)
                utterance.pop("clues", None)
    source = folder / "dialogues.jsonl"
    source.write_text("".join(json.dumps(d) + "\n" for d in dialogues))
    return build_examples(folder / "examples", source)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('Zoe teases "You had no idea, did you?" with pride in weeks of planning.', None),
        ('Explanation:  Zoe is  playful about "For weeks"\n and laughs.', None),
        ('She is not angry: "You had no idea" is playful and happy.', None),  # a negated other emotion is fine
        ('Zoe says "best day of my life" with a big smile.', "invented_quote: best day of my life"),
        ('She sounds angry when she says "For weeks" to Ben.', "other_emotion: anger"),
        ("Zoe is happy.", "too_short: 3 words"),
        ("word " * 81, "too_long: 81 words"),
        ("<think>Zoe is playful about the weeks of planning</think>", "tags"),
        ("Zoe is playful </ANSWER> about the weeks of planning", "tags"),
        ("   ", "empty"),
        ("Ben: Oh my God, you all planned this? and so on", "copied: ben oh my god you all planned this"),
        # a quote across dialogue lines pastes the dialogue (the same check the grounding reward uses)
        ('Zoe opens with "Happy birthday! Ben: Oh my God" and laughs.', "copied: Happy birthday! Ben: Oh my God"),
    ],
)
def test_check_rationale(text, reason):
    assert check_rationale(text, CONTEXT, "joy", MELD) == reason


def test_check_and_reward_share_one_copy_check():
    from instructerc.train import grounding, rationales

    assert rationales.copied_text is grounding.copied_text
    assert rationales.COPY_RUN_WORDS == grounding.COPY_RUN_WORDS


def test_check_rationale_reads_label_lists_and_prompt_echoes():
    assert check_rationale("She sounds angry about the weeks.", CONTEXT, "joy", list(MELD.labels)).startswith("other")
    echo = "The emotion of Zoe in the target utterance is joy, clearly."
    prompt = "The emotion of Zoe in the target utterance is joy. In one or two sentences, explain..."
    assert check_rationale(echo, CONTEXT, "joy", MELD) is None
    assert check_rationale(echo, CONTEXT, "joy", MELD, prompt=prompt).startswith("copied:")


def test_clean_rationale():
    assert clean_rationale("  Rationale:  She   laughs\n a lot. ") == "She laughs a lot."
    assert clean_rationale(None) == ""


def test_cache_skips_a_half_line_and_never_glues_onto_it(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text('{"key": "a", "text": "one"}\n{"key": "b", "te', encoding="utf-8")  # crashed mid-line
    cache = RationaleCache(path)
    assert cache.entries == {"a": "one"}
    cache.add({"c": "three"})
    assert RationaleCache(path).entries == {"a": "one", "c": "three"}


def test_config_refuses_test_split_same_folder_and_missing_api_model(tmp_path):
    with pytest.raises(ConfigError, match="refusing to rationalize 'test'"):
        RationalesConfig(dataset_dir="a", output_dir="b", splits=["train", "test"]).validate()
    with pytest.raises(ConfigError, match="must differ"):
        RationalesConfig(dataset_dir=str(tmp_path), output_dir=str(tmp_path)).validate()
    with pytest.raises(ConfigError, match="api_model"):
        RationalesConfig(dataset_dir="a", output_dir="b", base_url="http://127.0.0.1:1/v1").validate()


# Replies of the fake teacher, chosen by the target utterance of the prompt.
REPLIES = {
    "Zoe: For weeks.": 'Rationale: Zoe teases "You had no idea, did you?" with pride in weeks of planning.',
    "Ben: None at all.": 'Ben says "best day of my life" with a smile.',
    "Ray: That's awful.": 'Ray sounds angry when he says "That\'s awful" about the dog.',
    "Kim: And the bill": '<think>Kim calls the bill "outrageous" because it costs more than rent.</think>',
}


class FakeTeacher(BaseHTTPRequestHandler):
    """POST /v1/chat/completions; answers 503 to the very first request to exercise retries."""

    def do_POST(self):  # noqa: N802 (http.server's naming)
        server = self.server
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with server.lock:
            server.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
            first = len(server.requests) == 1
        if first:
            self.send_response(503)
            self.end_headers()
            self.wfile.write(b"warming up")
            return
        user = next(m["content"] for m in body["messages"] if m["role"] == "user")
        target = user.split("Target utterance:")[1]
        text = next(reply for start, reply in REPLIES.items() if start in target)
        payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": text}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def teacher():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeTeacher)
    server.requests, server.lock = [], threading.Lock()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _rows(folder, split):
    from datasets import load_from_disk

    return {(r["dialogue_id"], r["turn"]): r for r in load_from_disk(str(folder))[split]}


@pytest.mark.integration
def test_endpoint_rationalizes_checks_caches_and_audits(built, teacher, tmp_path):
    url = f"http://127.0.0.1:{teacher.server_address[1]}/v1"
    config = RationalesConfig(
        dataset_dir=str(built),
        output_dir=str(tmp_path / "out"),
        base_url=url,
        api_model="teacher",
        api_key="sk-secret",
        splits=["validation"],
        cache_dir=str(tmp_path / "cache"),
        show_progress=False,
    )
    report = write_rationales(config)
    assert (report.considered, report.accepted, report.generated, report.cached) == (4, 1, 4, 0)
    assert report.rejected == {"invented_quote": 1, "other_emotion": 1, "tags": 1}
    assert report.kept_reference == 3
    assert len(teacher.requests) == 5  # 4 prompts + 1 retry after the 503
    assert {r["path"] for r in teacher.requests} == {"/v1/chat/completions"}
    assert {r["auth"] for r in teacher.requests} == {"Bearer sk-secret"}
    assert {r["body"]["model"] for r in teacher.requests} == {"teacher"}

    out, before = _rows(tmp_path / "out", "validation"), _rows(built, "validation")
    accepted = out[("party-07", 2)]
    assert accepted["completion"][0]["content"] == (
        '<think>Zoe teases "You had no idea, did you?" with pride in weeks of planning.</think><answer>joy</answer>'
    )
    assert accepted["rationale_source"] == "rationalized:teacher"
    for key in [("party-07", 3), ("vet-08", 1), ("vet-08", 2), ("party-07", 0)]:  # rejected, and a reference row
        assert out[key] == before[key]
    assert out[("party-07", 3)]["completion"][0]["content"] == "<think></think><answer>joy</answer>"
    assert _rows(tmp_path / "out", "train") == _rows(built, "train")

    audit = [json.loads(line) for line in (tmp_path / "out" / "rationales.jsonl").read_text().splitlines()]
    assert [(a["dialogue_id"], a["turn"], a["accepted"]) for a in audit] == [
        ("party-07", 2, True),
        ("party-07", 3, False),
        ("vet-08", 1, False),
        ("vet-08", 2, False),
    ]
    assert audit[1]["reason"] == "invented_quote: best day of my life" and audit[1]["label"] == "joy"
    info_text = (tmp_path / "out" / "build_info.json").read_text()
    info = json.loads(info_text)
    assert info["rationales"]["template"] == "rationale@v1" and info["templates"]["rationale"]["id"] == "rationale@v1"
    assert info["rationales"]["counts"]["accepted"] == 1 and "sk-secret" not in info_text
    assert info["content_hash"] != json.loads((built / "build_info.json").read_text())["content_hash"]
    assert (tmp_path / "out" / "dialogues" / "validation.jsonl").is_file()

    # Same settings again: everything comes from the cache, the server sees no new request.
    again = write_rationales(RationalesConfig(**{**vars(config), "output_dir": str(tmp_path / "out2")}))
    assert (again.generated, again.cached, again.accepted) == (0, 4, 1) and len(teacher.requests) == 5
    assert _rows(tmp_path / "out2", "validation") == out


def _unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_down_server_gives_a_clear_error(built, tmp_path):
    url = f"http://127.0.0.1:{_unused_port()}/v1"
    with pytest.raises(EndpointError, match=r"cannot reach http://127\.0\.0\.1:\d+/v1/chat/completions: is the serv"):
        EndpointWriter(url, "teacher", retries=2, backoff_s=0.01).write([[{"role": "user", "content": "hi"}]])
    config = RationalesConfig(
        dataset_dir=str(built),
        output_dir=str(tmp_path / "out"),
        base_url=url,
        api_model="teacher",
        retries=0,
        cache_dir=str(tmp_path),
        show_progress=False,
    )
    with pytest.raises(EndpointError, match="is the server running"):
        write_rationales(config)
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_local_writer_with_the_embedded_model(built, tmp_path):
    from datasets import load_from_disk

    config = RationalesConfig(
        dataset_dir=str(built),
        output_dir=str(tmp_path / "out"),
        model="embedded",
        splits=["validation"],
        max_examples=2,
        max_new_tokens=24,
        batch_size=2,
        threads=1,
        cache_dir=str(tmp_path),
        show_progress=False,
    )
    report = write_rationales(config)
    assert report.considered == 2 and report.generated == 2
    assert report.accepted + sum(report.rejected.values()) == report.considered
    out, source = load_from_disk(str(tmp_path / "out")), load_from_disk(str(built))
    assert {s: len(d) for s, d in out.items()} == {s: len(d) for s, d in source.items()}
    assert len((tmp_path / "out" / "rationales.jsonl").read_text().splitlines()) == 2
