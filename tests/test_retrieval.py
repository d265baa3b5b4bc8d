"""Demonstration retrieval with the real embedded MiniLM encoder (no network)."""

from __future__ import annotations

import numpy as np
import pytest

from instructerc.data_builders.retrieval import Demonstration, DemonstrationRetriever
from instructerc.schema import Dialogue, Utterance


def _dialogue(did: str, split: str, rows: list[tuple[str, str, str | None]]) -> Dialogue:
    utts = [Utterance(turn=i, speaker=s, text=t, label=lab) for i, (s, t, lab) in enumerate(rows)]
    return Dialogue(id=did, split=split, utterances=utts)


@pytest.fixture(scope="module")
def train() -> list[Dialogue]:
    return [
        _dialogue(
            "0",
            "train",
            [
                ("Ross", "I got the job! This is the best day of my life!", "joy"),
                ("Rachel", "Oh my god, congratulations!", "surprise"),
                ("Ross", "Unlabeled filler line that must never be returned.", None),
            ],
        ),
        _dialogue(
            "1",
            "train",
            [
                ("Monica", "The quarterly tax form is due on the fifteenth.", "neutral"),
                ("Chandler", "I can't believe you threw away my stuff, I'm furious.", "anger"),
            ],
        ),
        _dialogue(
            "2",
            "train",
            [
                ("Joey", "My grandmother passed away last night.", "sadness"),
                ("Phoebe", "We are so thrilled, everything turned out wonderful!", "joy"),
            ],
        ),
    ]


@pytest.fixture(scope="module")
def retriever(train, tmp_path_factory) -> DemonstrationRetriever:
    return DemonstrationRetriever(train, cache_dir=tmp_path_factory.mktemp("emb"))


def _keys(demos: list[Demonstration]) -> list[tuple[str | None, str, int]]:
    return [(d.split, d.dialogue_id, d.turn) for d in demos]


def test_pool_is_labeled_training_utterances_only(retriever):
    assert len(retriever) == 6
    demos = retriever.retrieve([(Dialogue("x", [], split="test"), Utterance(0, "A", "filler line"))], k=50)[0]
    assert len(demos) == 6
    assert all(d.split == "train" and d.label for d in demos)
    assert "Unlabeled filler line that must never be returned." not in {d.text for d in demos}


def test_eval_split_pool_is_refused():
    with pytest.raises(ValueError, match="training data only"):
        DemonstrationRetriever([_dialogue("0", "dev", [("A", "hi", "neutral")])])


def test_no_leak_from_a_dialogue_with_the_target_id_whatever_its_split(retriever, train):
    # A train target never sees its own dialogue.
    own = train[0]
    for demos in retriever.retrieve([(own, u) for u in own.utterances], k=10):
        assert demos and all(d.dialogue_id != "0" for d in demos)
        assert len(demos) == 4  # the pool minus dialogue "0"
    # A dev dialogue with the id "0" may be the same dialogue as train "0" (a file without split information
    # gives the same rows to both splits), so train "0" is never used for it either.
    dev = _dialogue("0", "dev", [("Ross", "I got the job! Best day of my life!", "joy")])
    demos = retriever.retrieve([(dev, dev.utterances[0])], k=10)[0]
    assert len(demos) == 4 and all(d.dialogue_id != "0" and d.split == "train" for d in demos)


def test_the_copy_of_the_target_is_never_a_demonstration(retriever, train):
    # The same dialogue loaded as validation from a file with no split information: its own utterances, gold
    # labels included, must not come back as demonstrations, neither through its id nor through its text.
    copy = _dialogue("0", "validation", [(u.speaker, u.text, u.label) for u in train[0].utterances])
    renamed = _dialogue("validation_0", "validation", [(u.speaker, u.text, u.label) for u in train[0].utterances])
    for dialogue in (copy, renamed):
        targets = [(dialogue, u) for u in dialogue.utterances]
        for (_, target), demos in zip(targets, retriever.retrieve(targets, k=6), strict=True):
            assert demos and all(d.text.strip() != target.text.strip() for d in demos)
            if dialogue is copy:
                assert all(d.dialogue_id != "0" for d in demos)


def test_exact_duplicate_text_from_another_dialogue_is_excluded(tmp_path):
    pool = [
        _dialogue("a", "train", [("S", "Okay.", "neutral"), ("S", "That is wonderful news!", "joy")]),
        _dialogue("b", "train", [("S", "  Okay.  ", "anger")]),
    ]
    retriever = DemonstrationRetriever(pool, cache_dir=tmp_path)
    target = _dialogue("t", "test", [("S", "Okay.", None)])
    demos = retriever.retrieve([(target, target.utterances[0])], k=3)[0]
    assert [d.text for d in demos] == ["That is wonderful news!"]


def test_semantic_ranking(retriever):
    dev = _dialogue("q", "dev", [("A", "I am so happy, this is wonderful!", None)])
    demos = retriever.retrieve([(dev, dev.utterances[0])], k=6)[0]
    ranked = [d.text for d in demos]
    joyful = "We are so thrilled, everything turned out wonderful!"
    assert ranked.index(joyful) < ranked.index("The quarterly tax form is due on the fifteenth.")
    assert demos[0].label == "joy"
    scores = [d.score for d in demos]
    assert scores == sorted(scores, reverse=True) and all(-1.0001 <= s <= 1.0001 for s in scores)


def test_deterministic_and_cache_hits(train, tmp_path):
    targets = [(d, u) for d in train for u in d.utterances]
    first = DemonstrationRetriever(train, cache_dir=tmp_path)
    out1 = first.retrieve(targets, k=3)
    assert first.cache_misses == 2 and first.cache_hits == 0 and first.model_loaded  # pool + queries
    assert list((tmp_path / "embeddings").glob("*/*.npy"))

    second = DemonstrationRetriever(train, cache_dir=tmp_path)
    out2 = second.retrieve(targets, k=3)
    assert out1 == out2
    assert second.cache_misses == 0 and second.cache_hits == 2
    assert second._model is None  # served entirely from disk: the encoder was never loaded

    # A third retriever without the cache re-encodes and still gives identical output.
    third = DemonstrationRetriever(train, cache_dir=tmp_path / "other")
    assert third.retrieve(targets, k=3) == out1
    assert third.cache_misses == 2


def test_ties_broken_by_pool_order(tmp_path):
    same = "Exactly the same sentence."
    pool = [_dialogue(str(i), "train", [("S", same, lab)]) for i, lab in enumerate(["joy", "anger", "fear"])]
    retriever = DemonstrationRetriever(pool, cache_dir=tmp_path)
    target = _dialogue("t", "test", [("S", "Exactly the same sentence!", None)])  # not the same text: allowed
    demos = retriever.retrieve([(target, target.utterances[0])], k=2)[0]
    assert [d.label for d in demos] == ["joy", "anger"]
    assert demos[0].score == demos[1].score


def test_k_clamped_and_k_zero_loads_nothing(train, tmp_path):
    retriever = DemonstrationRetriever(train, cache_dir=tmp_path)
    dev = _dialogue("9", "dev", [("A", "hello", None), ("B", "bye", None)])
    targets = [(dev, u) for u in dev.utterances]
    assert retriever.retrieve(targets, k=0) == [[], []]
    assert retriever._model is None and retriever.cache_hits == retriever.cache_misses == 0
    assert not (tmp_path / "embeddings").exists()
    out = retriever.retrieve(targets, k=1000)
    assert [len(x) for x in out] == [6, 6]
    with pytest.raises(ValueError):
        retriever.retrieve(targets, k=-1)


def test_chunked_scoring_matches_full(train, tmp_path, monkeypatch):
    from instructerc.data_builders import retrieval

    targets = [(d, u) for d in train for u in d.utterances]
    full = DemonstrationRetriever(train, cache_dir=tmp_path).retrieve(targets, k=4)
    monkeypatch.setattr(retrieval, "SCORE_BUDGET_BYTES", 1)  # one query per chunk
    chunked = DemonstrationRetriever(train, cache_dir=tmp_path).retrieve(targets, k=4)
    # BLAS may round a 1-row product differently in the last bits, so compare scores approximately.
    assert [_keys(x) for x in chunked] == [_keys(x) for x in full]
    for a, b in zip(chunked, full, strict=True):
        assert [d.score for d in a] == pytest.approx([d.score for d in b], abs=1e-5)


def test_embed_cache_is_normalised_float32(retriever):
    vectors = retriever.embed(["one sentence", "another sentence"])
    assert vectors.dtype == np.float32 and vectors.shape == (2, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
