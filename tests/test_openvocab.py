"""Open-vocabulary set metrics: hand-computed precision/recall/F after grouping through the wheels."""

from __future__ import annotations

import pytest

from instructerc.eval import openvocab
from instructerc.eval.openvocab import (
    LEVELS,
    WHEELS,
    WheelError,
    canonical,
    group,
    load_wheel,
    open_vocab_scores,
    set_scores,
    synonym_heads,
)


def test_the_brief_example_at_plutchik_level_1_and_2():
    gold, predicted = ["happy", "surprised"], ["joyful", "amazed", "angry"]
    # level 1: {joy, surprise} vs {joy, surprise, anger}
    assert set_scores(gold, predicted, "plutchik", 1) == (2 / 3, 1.0)
    # level 2: amazement is the intense surprise, a different node than surprise itself: 1 hit of 3 and of 2
    assert set_scores(gold, predicted, "plutchik", 2) == (1 / 3, 1 / 2)


def test_word_forms_synonyms_and_uncovered_words():
    assert {group(w, "plutchik", 1) for w in ["happy", "happiness", "happily", "joyful", "glad"]} == {"joy"}
    assert {group(w, "parrott", 1) for w in ["angry", "anger", "angrily", "furious"]} == {"anger"}
    assert group("worried", "parrott", 2) == group("anxious", "parrott", 2) == "fear/nervousness"
    assert group("scared", "parrott", 2) == "fear/horror"  # via the synonym table: scared -> fear
    # Willcox has no surprise: the word is its own group, in any of its forms
    assert group("surprised", "willcox", 1) == group("surprise", "willcox", 2) == "surprise"
    assert group("xyzzy", "willcox", 1) == "xyzzy" and canonical("sadly") == "sad"
    # Willcox: surprise is uncovered (itself), happy and joyful are both "joyful"
    assert set_scores(["happy", "surprised"], ["joyful", "amazed", "angry"], "willcox", 1) == (2 / 3, 1.0)
    # Parrott: scared and worried fall in different middle-ring nodes but the same core emotion
    assert set_scores(["anxious"], ["worried", "scared"], "parrott", 2) == (1 / 2, 1.0)
    assert set_scores(["anxious"], ["worried", "scared"], "parrott", 1) == (1.0, 1.0)
    # two gold words of one group are one element of the gold set
    assert set_scores(["happy", "glad"], ["joyful"], "plutchik", 1) == (1.0, 1.0)
    with pytest.raises(ValueError, match="level"):
        group("happy", "plutchik", 3)


def test_averages_skip_empty_gold_score_empty_predictions_zero_and_f_from_averages():
    gold = [["happy", "surprised"], ["sad"], [], ["angry"]]
    predicted = [["joyful", "amazed", "angry"], [], ["happy"], ["furious", "sad"]]
    summary, per_sample = open_vocab_scores(gold, predicted, wheels=["plutchik"], levels=[1])
    assert (summary["n"], summary["skipped"]) == (3, 1)
    assert per_sample[2] is None
    assert per_sample[1] == {"plutchik": {"level1": {"precision": 0.0, "recall": 0.0}}}
    assert per_sample[3] == {"plutchik": {"level1": {"precision": 0.5, "recall": 1.0}}}
    p, r = (2 / 3 + 0 + 1 / 2) / 3, (1 + 0 + 1) / 3
    scores = summary["wheels"]["plutchik"]["level1"]
    assert scores["precision"] == pytest.approx(7 / 18) and scores["recall"] == pytest.approx(2 / 3)
    assert scores["f1"] == pytest.approx(28 / 57) == 2 * p * r / (p + r)
    assert scores["f1"] != pytest.approx((0.8 + 0 + 2 / 3) / 3)  # not the mean of per-sample F scores
    assert summary["average"]["level1"] == scores


def test_results_per_wheel_and_averaged_over_wheels():
    summary, _ = open_vocab_scores([["happy", "surprised"]], [["joyful", "amazed", "angry"]])
    assert set(summary["wheels"]) == set(WHEELS) and set(summary["average"]) == {"level1", "level2"}
    for level in ("level1", "level2"):
        for metric in ("precision", "recall", "f1"):
            mean = sum(summary["wheels"][w][level][metric] for w in WHEELS) / 3
            assert summary["average"][level][metric] == pytest.approx(mean)
    assert summary["wheels"]["plutchik"]["level1"]["precision"] == pytest.approx(2 / 3)


def test_wheel_files_cover_300_words_and_validate():
    words: set[str] = set()
    for name in WHEELS:
        wheel = load_wheel(name)
        tops = {node[0] for node in wheel.exact.values()}
        assert wheel.source and len(tops) >= 6
        for word, (top, middle) in wheel.exact.items():
            assert middle.startswith(f"{top}/"), word  # every word has a level-1 and a level-2 node
            assert wheel.lookup(word) == (top, middle)
        words |= wheel.words
    assert len(load_wheel("parrott").exact) >= 130 and len({n[0] for n in load_wheel("willcox").exact.values()}) == 6
    assert len(words) >= 300
    assert len(words | set(synonym_heads())) >= 400


def test_a_malformed_wheel_is_rejected(monkeypatch):
    bad = {"name": "bad", "tree": {"joy": {"joy": ["happy"]}, "anger": {"rage": ["happy"]}}}
    monkeypatch.setattr(openvocab, "_load_yaml", lambda name: bad)
    with pytest.raises(WheelError, match="'happy' is under both 'joy/joy' and 'anger/rage'"):
        load_wheel.__wrapped__("bad")
    bad = {"name": "bad", "tree": {"joy": {"joy": ["Happy!"]}}}
    with pytest.raises(WheelError, match="not a clean lower-case word"):
        load_wheel.__wrapped__("bad")


GOEMOTIONS = (
    "admiration amusement anger annoyance approval caring confusion curiosity desire disappointment disapproval "
    "disgust embarrassment excitement fear gratitude grief joy love nervousness optimism pride realization relief "
    "remorse sadness surprise neutral"
).split()
# No sensible place on the wheel: neutral is no emotion of any wheel; Willcox's wheel has no surprise.
UNPLACED = {"plutchik": {"neutral"}, "parrott": {"neutral"}, "willcox": {"neutral", "surprise"}}


@pytest.mark.parametrize("wheel", WHEELS)
def test_every_goemotions_label_reaches_a_wheel_node(wheel):
    assert len(GOEMOTIONS) == 28
    nodes = load_wheel(wheel).exact.values()
    level1, level2 = {n[0] for n in nodes}, {n[1] for n in nodes}
    placed = [w for w in GOEMOTIONS if w not in UNPLACED[wheel]]
    assert [w for w in placed if group(w, wheel, 1) not in level1] == []
    assert [w for w in placed if group(w, wheel, 2) not in level2] == []
    for word in UNPLACED[wheel]:  # stays its own group: matches itself only
        assert group(word, wheel, 1) == group(word, wheel, 2) == word


def test_wheel_placements_of_common_words():
    # Plutchik: joy takes excitement, amusement, gratitude and relief; excited now matches joy as on Parrott
    assert (
        set_scores(["joy"], ["excited"], "plutchik", 1) == (1.0, 1.0) == set_scores(["joy"], ["excited"], "parrott", 1)
    )
    assert {group(w, "plutchik", 1) for w in ["excitement", "amused", "grateful", "thankful", "relieved"]} == {"joy"}
    assert group("relief", "plutchik", 2) == "joy/serenity" and group("excited", "plutchik", 2) == "joy/joy"
    assert group("confused", "plutchik", 1) == group("realization", "plutchik", 1) == "surprise"
    assert group("desire", "plutchik", 1) == group("longing", "plutchik", 1) == "anticipation"
    assert group("approval", "plutchik", 2) == "trust/acceptance"
    assert group("sarcastic", "plutchik", 1) == "contempt"
    for wheel in WHEELS:
        for level in LEVELS:
            # sarcasm and nostalgia meet their adjectives, at a node of the wheel
            node_names = {n[level - 1] for n in load_wheel(wheel).exact.values()}
            assert group("sarcasm", wheel, level) == group("sarcastic", wheel, level) in node_names
            assert set_scores(["nostalgia"], ["nostalgic"], wheel, level) == (1.0, 1.0)
            assert group("nostalgic", wheel, level) in node_names
    assert group("sarcasm", "parrott", 2) == "anger/disgust" and group("sarcastic", "willcox", 2) == "mad/critical"


def test_wheel_files_cite_their_sources():
    import re

    for name, author in (("plutchik", "Plutchik"), ("parrott", "Parrott"), ("willcox", "Willcox")):
        source = load_wheel(name).source
        assert author in source and re.search(r"\b(?:19|20)\d\d\b", source), source


def test_evaluate_summary_says_when_open_vocabulary_rows_were_skipped(tmp_path):
    import json

    from instructerc.cli import _evaluation_summary
    from instructerc.eval.evaluate import evaluate_predictions
    from tests.test_evaluate import _row

    # zero-shot `label` output: open-vocabulary predictions without gold words, nothing to score
    rows = [_row(1, [], ["happy"]), _row(2, [], ["amused"])]
    path = tmp_path / "predictions.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    results = evaluate_predictions(path, tmp_path / "eval", clues=False)
    assert (results["open_vocabulary"]["n"], results["open_vocabulary"]["skipped"]) == (0, 2)
    line = _evaluation_summary(results, "out")
    assert "F 0.000" not in line and "level1 F" not in line
    assert "open vocabulary: not scored, 2 rows without gold labels skipped" in line

    rows.append(_row(3, ["happy"], ["joyful"]))
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    line = _evaluation_summary(evaluate_predictions(path, tmp_path / "eval", clues=False), "out")
    assert "open vocabulary level1 F 1.000" in line and "open vocabulary: 2 rows without gold labels skipped" in line
