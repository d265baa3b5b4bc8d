"""EMER-style clue overlap: how much of the reference emotion clues a predicted rationale mentions.

Deterministic and local: score = mean of (a) the F1 of two bags of emotion-bearing content words (stopwords
dropped, emotion words grouped through the Plutchik wheel so "furious" meets "rage") and (b) the cosine similarity
of sentence embeddings (all-MiniLM-L6-v2, the package's embedded encoder), clipped at 0. See docs/evaluation.md.
"""

from __future__ import annotations

import os
import re
import threading
from collections import Counter
from collections.abc import Sequence
from typing import Any

from instructerc.eval.openvocab import group, load_wheel, synonym_heads

CLUE_WHEEL, CLUE_LEVEL = "plutchik", 2  # the middle ring: fine enough to keep "annoyed" apart from "furious"

_TOKEN = re.compile(r"[a-z][a-z'’-]*")
# Function words and dialogue filler: they carry no clue. Kept short and explicit so scores are reproducible.
STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being below between both
    but by can could did do does doing down during each few for from further had has have having he her here hers
    herself him himself his how i if in into is it its itself just me more most my myself no nor not now of off on
    once only or other our ours ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were what when where which
    while who whom why will with would you your yours yourself yourselves also says said say saying speaker utterance
    seems seem feel feels feeling felt likely s t don doesn didn isn wasn oh yeah okay ok well really like
    """.split()
)

_ENCODERS: dict[str, Any] = {}  # model path -> SentenceTransformer: loaded once per process
_LOCK = threading.Lock()


def _is_emotion_word(word: str) -> bool:
    return load_wheel(CLUE_WHEEL).lookup(word) is not None or word in synonym_heads()


def clue_bag(text: str) -> Counter[str]:
    """Content words of a text; emotion words replaced by their wheel group, other words lightly de-pluralised."""
    bag: Counter[str] = Counter()
    for token in _TOKEN.findall(text.lower().replace("’", "'")):
        token = token.strip("'-")
        if len(token) < 2 or token in STOPWORDS:
            continue
        if _is_emotion_word(token):
            bag["emo:" + group(token, CLUE_WHEEL, CLUE_LEVEL)] += 1
        else:
            bag[token[:-1] if len(token) > 3 and token.endswith("s") and not token.endswith("ss") else token] += 1
    return bag


def lexical_overlap(predicted: str, reference: str) -> float:
    """F1 of the two bags: overlap = sum of the smaller counts; 0 when either bag is empty."""
    pred, ref = clue_bag(predicted), clue_bag(reference)
    overlap = sum((pred & ref).values())
    if not overlap:
        return 0.0
    precision, recall = overlap / sum(pred.values()), overlap / sum(ref.values())
    return 2 * precision * recall / (precision + recall)


def reference_text(clues: Sequence[str] | None, rationale: str | None) -> str | None:
    """The reference to compare with: the clues (joined as sentences) when there are any, else the rationale."""
    kept = [c.strip().rstrip(".") for c in clues or [] if isinstance(c, str) and c.strip()]
    if kept:
        return ". ".join(kept) + "."
    return rationale.strip() if isinstance(rationale, str) and rationale.strip() else None


def _encoder(model: str) -> Any:
    with _LOCK:
        if model not in _ENCODERS:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the encoder ships with the package: never download
            from sentence_transformers import SentenceTransformer

            from instructerc.models import embedding_model_path

            _ENCODERS[model] = SentenceTransformer(embedding_model_path(model), device="cpu")
        return _ENCODERS[model]


class ClueScorer:
    """Scores predicted rationales against references; the encoder is loaded on first use and shared."""

    def __init__(self, model: str = "embedded", batch_size: int = 32) -> None:
        self.model, self.batch_size = model, batch_size

    def semantic(self, predicted: Sequence[str], references: Sequence[str]) -> list[float]:
        """Cosine similarity of each pair's embeddings, clipped to [0, 1]."""
        if not predicted:
            return []
        encoder = _encoder(self.model)
        texts = list(dict.fromkeys([*predicted, *references]))  # each distinct text is encoded once
        vectors = encoder.encode(
            texts, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        index = {t: i for i, t in enumerate(texts)}
        return [
            min(1.0, max(0.0, float(vectors[index[p]] @ vectors[index[r]])))
            for p, r in zip(predicted, references, strict=True)
        ]

    def score_many(self, predicted: Sequence[str], references: Sequence[str]) -> list[dict[str, float]]:
        """Per pair: lexical (bag F1), semantic (cosine) and score (their mean)."""
        if len(predicted) != len(references):
            raise ValueError(f"{len(predicted)} rationales but {len(references)} references")
        semantic = self.semantic(predicted, references)
        out = []
        for p, r, cos in zip(predicted, references, semantic, strict=True):
            lexical = lexical_overlap(p, r)
            out.append({"lexical": lexical, "semantic": cos, "score": (lexical + cos) / 2})
        return out

    def score(self, predicted: str, reference: str | Sequence[str]) -> dict[str, float]:
        ref = reference if isinstance(reference, str) else reference_text(reference, None) or ""
        return self.score_many([predicted], [ref])[0]


def clue_overlap(predicted: str, reference: str | Sequence[str]) -> dict[str, float]:
    """Clue overlap of one rationale with reference clues (a list) or a reference rationale (a string)."""
    return ClueScorer().score(predicted, reference)


__all__ = ["STOPWORDS", "ClueScorer", "clue_bag", "clue_overlap", "lexical_overlap", "reference_text"]
