"""Score mode: exact cached log-likelihoods, a distribution over the label set, agreement with generation."""

from pathlib import Path

import pytest

from instructerc.config import BuildDataConfig
from instructerc.infer.predict import PredictConfig, TransformersBackend, predict
from instructerc.infer.scoring import (
    cached_log_likelihoods,
    candidate_ids,
    candidate_text,
    naive_log_likelihoods,
    prompt_ids,
    score_labels,
)
from instructerc.infer.sources import load_built_rows
from instructerc.infer.writer import read_jsonl

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "dialogues.jsonl"


def build(tmp_path_factory, template: str) -> Path:
    from instructerc.data_builders.build import build_dataset

    out = tmp_path_factory.mktemp(template) / "data"
    build_dataset(
        BuildDataConfig(
            dataset="jsonl",
            data_dir=str(EXAMPLES),
            label_set="meld",
            output_dir=str(out),
            splits=["validation"],
            n_demos=0,
            window=2,
            template=template,
            show_progress=False,
        )
    )
    return out


@pytest.fixture(scope="module")
def think_data(tmp_path_factory):
    return build(tmp_path_factory, "emotion")


@pytest.fixture(scope="module")
def label_only_data(tmp_path_factory):
    return build(tmp_path_factory, "emotion_label_only")


@pytest.fixture(scope="module")
def backend():
    return TransformersBackend.from_config(PredictConfig(output="-", dataset_dir="-", model_dtype="float32", threads=1))


def test_candidates_are_the_training_targets(tokenizer):
    assert candidate_text("joy", "answer_only") == "<answer>joy</answer>"
    assert candidate_text("joy", "think_answer") == "<think></think><answer>joy</answer>"
    (ids,) = candidate_ids(tokenizer, ["joy"], "answer_only")
    assert ids[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(ids) == "<answer>joy</answer>" + tokenizer.eos_token


@pytest.mark.parametrize("which", ["think", "label_only"])
def test_cached_scores_equal_a_full_forward_per_candidate(which, think_data, label_only_data, backend):
    data = think_data if which == "think" else label_only_data
    row = load_built_rows(data, "validation")[2]  # has history: a longer prompt
    prompt = prompt_ids(backend.tokenizer, row["prompt"])
    labels = [*row["label_set"], "very surprised"]  # a multi-word label: suffixes of different lengths
    candidates = candidate_ids(backend.tokenizer, labels, row["answer_format"])
    cached = cached_log_likelihoods(backend.model, prompt, candidates)
    naive = naive_log_likelihoods(backend.model, prompt, candidates)
    assert cached == pytest.approx(naive, abs=1e-3)


def test_cached_scores_without_a_shared_prefix(backend):
    # Speaker-style names share no tokens; one candidate is a single token (nothing fed after the prompt).
    prompt = prompt_ids(backend.tokenizer, [{"role": "user", "content": "Who said hi? Maya or Leo?"}])
    eos = backend.tokenizer.eos_token_id
    name = backend.tokenizer("Maya", add_special_tokens=False)["input_ids"]
    candidates = [name + [eos], [eos]]
    cached = cached_log_likelihoods(backend.model, prompt, candidates)
    assert cached == pytest.approx(naive_log_likelihoods(backend.model, prompt, candidates), abs=1e-3)


def test_score_mode_rows(think_data, backend, tmp_path):
    out = tmp_path / "scores.jsonl"
    cfg = PredictConfig(output=str(out), dataset_dir=str(think_data), mode="score", show_progress=False)
    assert predict(cfg, backend).written == 7
    for row in read_jsonl(out):
        probs = row["probabilities"]
        assert list(probs) == row["label_set"]
        assert sum(probs.values()) == pytest.approx(1.0, abs=1e-5)
        assert row["predicted"] == max(probs, key=probs.get) == row["raw"]
        assert row["valid"] and row["valid_strict"] and row["well_formed"] and row["invalid_reason"] is None
        assert row["mode"] == "score" and row["rationale"] is None


def test_length_normalisation(think_data, backend):
    row = load_built_rows(think_data, "validation")[0]
    plain = score_labels(backend.model, backend.tokenizer, row["prompt"], row["label_set"], row["answer_format"])
    normed = score_labels(
        backend.model, backend.tokenizer, row["prompt"], row["label_set"], row["answer_format"], length_normalize=True
    )
    assert normed.log_likelihoods == pytest.approx(plain.log_likelihoods)  # the same scores, another softmax
    assert sum(normed.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    assert normed.probabilities != plain.probabilities


def test_score_mode_agrees_with_greedy_generation(label_only_data, backend, tmp_path):
    """Where greedy decoding writes a bare label answer, score mode picks that label, with the same likelihood.

    The base model rarely writes `<answer>X</answer>` unprompted, so generation is also run from the prompt plus
    the prefix every candidate shares (`<answer>`): a greedy answer that is exactly a candidate gets the
    log-likelihood generation assigned it along its path, and is the score-mode argmax.
    """
    import torch

    tokenizer, model = backend.tokenizer, backend.model
    rows = load_built_rows(label_only_data, "validation")
    out = tmp_path / "gen.jsonl"
    gen_cfg = PredictConfig(output=str(out), dataset_dir=str(label_only_data), max_new_tokens=16, show_progress=False)
    predict(gen_cfg, backend)
    scores = {
        f"validation/{row['dialogue_id']}/{row['turn']}/emotion": score_labels(
            model, tokenizer, row["prompt"], row["label_set"], "answer_only"
        )
        for row in rows
    }
    for row in read_jsonl(out):  # unforced generation: usually prose for this base model
        if row["valid"] and row["raw"].strip() == f"<answer>{row['predicted']}</answer>":
            assert scores[row["id"]].best == row["predicted"]

    prefix = tokenizer("<answer>", add_special_tokens=False)["input_ids"]
    checked = 0
    for row in rows:
        prompt = prompt_ids(tokenizer, row["prompt"])
        candidates = candidate_ids(tokenizer, row["label_set"], "answer_only")
        assert all(c[: len(prefix)] == prefix for c in candidates)
        context = torch.tensor([prompt + prefix])
        generated = model.generate(
            context,
            attention_mask=torch.ones_like(context),
            max_new_tokens=8,
            do_sample=False,
            output_logits=True,
            return_dict_in_generate=True,
            pad_token_id=tokenizer.eos_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        path = generated.sequences[0, context.shape[1] :].tolist()
        matches = [label for label, cand in zip(row["label_set"], candidates, strict=True) if cand == prefix + path]
        if not matches:
            continue
        (label,) = matches
        path_ll = sum(
            float(torch.log_softmax(step[0].float(), dim=-1)[token])
            for step, token in zip(generated.logits, path, strict=True)
        )
        prefix_ll = naive_log_likelihoods(model, prompt, [prefix])[0]
        scored = scores[f"validation/{row['dialogue_id']}/{row['turn']}/emotion"]
        assert scored.log_likelihoods[scored.labels.index(label)] == pytest.approx(prefix_ll + path_ll, abs=1e-3)
        assert scored.best == label
        checked += 1
    assert checked >= len(rows) // 2  # the check must not pass vacuously
