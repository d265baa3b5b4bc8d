"""Demonstration retrieval: for each target utterance, the k most similar labeled training utterances.

The pool holds only utterances with a gold `label` from the dialogues the retriever was built from (the
training split; evaluation splits are refused), so dev/test text can never come back as a demonstration. A
target never gets demonstrations
  * from a dialogue with its own dialogue id, whatever the split: ids are unique only within a split in some
    corpora (MELD), so this may also skip a different training dialogue that shares the id, but when train
    and evaluation data come from the same rows (a file with no split information) it is the copy of the
    target's own dialogue, whose gold labels would leak into the prompt;
  * with exactly the target's text (after stripping surrounding whitespace), which would show its gold label.

Similarity is the cosine of normalised sentence embeddings of the utterance texts (the query is the target's
text alone; the speaker is not embedded). Ties are broken by pool order (dialogue order, then utterance
order), so the same inputs give the same output. Embeddings are cached on disk under
`<cache_dir>/embeddings/<model-slug>/<sha256>.npy`, keyed by the model identity and the exact list of texts;
a cache hit does not load the encoder at all.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from instructerc.io import atomic_open, sha256_bytes, sha256_json
from instructerc.models import EMBEDDED, default_cache_dir, embedding_model_path
from instructerc.schema import Dialogue, Utterance

EVAL_SPLITS = frozenset({"dev", "val", "valid", "validation", "test"})
CACHE_FORMAT = "instructerc-embeddings-v1"
SCORE_DECIMALS = 5
SCORE_BUDGET_BYTES = 32 << 20  # at most this much float32 similarity matrix at once


@dataclass
class Demonstration:
    speaker: str
    text: str
    label: str
    dialogue_id: str
    turn: int
    score: float
    split: str | None = None


def _model_identity(name: str, path: str) -> dict[str, Any]:
    """What the cache key depends on: for a local folder its config and weight sizes, otherwise the hub id."""
    folder = Path(path)
    if not folder.is_dir():
        return {"hub_id": path}
    config = folder / "config.json"
    suffixes = {".safetensors", ".bin", ".pt"}
    weights = {p.name: p.stat().st_size for p in sorted(folder.iterdir()) if p.suffix in suffixes}
    return {
        "name": name if name == EMBEDDED else folder.name,
        "config_sha256": sha256_bytes(config.read_bytes()) if config.is_file() else None,
        "weights": weights,
    }


def _model_slug(name: str, path: str) -> str:
    if name == EMBEDDED:
        return "embedded-all-MiniLM-L6-v2"
    base = Path(path).name if Path(path).is_dir() else path.strip("/")
    return re.sub(r"[^A-Za-z0-9._-]+", "_", base) or "model"


class DemonstrationRetriever:
    """Nearest labeled training utterances by embedding similarity; see the module doc for the guarantees."""

    def __init__(
        self,
        train: Sequence[Dialogue],
        model: str = EMBEDDED,
        cache_dir: str | os.PathLike | None = None,
        batch_size: int = 64,
        device: str = "cpu",
        show_progress: bool = False,
    ):
        bad = sorted({d.split for d in train if d.split is not None and d.split.lower() in EVAL_SPLITS})
        if bad:
            raise ValueError(f"the demonstration pool must come from training data only, got split(s) {bad}")
        self.model_name = model
        self.model_path = embedding_model_path(model)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.batch_size = batch_size
        self.device = device
        self.show_progress = show_progress
        self.cache_hits = 0
        self.cache_misses = 0
        self._model: Any = None
        self._identity = _model_identity(model, self.model_path)
        self._slug = _model_slug(model, self.model_path)
        keys: dict[str, int] = {}  # dialogue id -> code
        texts: dict[str, int] = {}  # stripped text -> code
        self._pool: list[tuple[Dialogue, Utterance]] = []
        codes: list[int] = []
        text_codes: list[int] = []
        for dialogue in train:
            code = keys.setdefault(str(dialogue.id), len(keys))
            for utt in dialogue.utterances:
                if utt.label:
                    self._pool.append((dialogue, utt))
                    codes.append(code)
                    text_codes.append(texts.setdefault(utt.text.strip(), len(texts)))
        self._keys = keys
        self._texts = texts
        self._codes = np.asarray(codes, dtype=np.int64)
        self._text_codes = np.asarray(text_codes, dtype=np.int64)
        self._pool_embeddings: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self._pool)

    @property
    def model_loaded(self) -> bool:
        return self._model is not None

    def stats(self) -> dict[str, int]:
        return {"pool": len(self._pool), "cache_hits": self.cache_hits, "cache_misses": self.cache_misses}

    def _encoder(self) -> Any:
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(self.model_path, device=self.device)
        return self._model

    def _cache_path(self, texts: list[str]) -> Path:
        texts_sha256 = sha256_bytes(*texts)
        key = sha256_json({"format": CACHE_FORMAT, "model": self._identity, "texts_sha256": texts_sha256})
        return self.cache_dir / "embeddings" / self._slug / f"{key}.npy"

    def embed(self, texts: list[str]) -> np.ndarray:
        """Normalised float32 embeddings of `texts` (one row each), from the disk cache when possible."""
        path = self._cache_path(texts)
        try:
            cached = np.load(path, allow_pickle=False)
            if cached.dtype == np.float32 and cached.ndim == 2 and cached.shape[0] == len(texts):
                self.cache_hits += 1
                return cached
        except (OSError, ValueError):
            pass  # missing or unreadable: encode again and overwrite
        self.cache_misses += 1
        vectors = self._encoder().encode(
            texts,
            batch_size=self.batch_size,
            show_progress_bar=self.show_progress,
            normalize_embeddings=True,
            convert_to_numpy=True,
        )
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(texts), -1)
        with atomic_open(path, "wb") as handle:
            np.save(handle, vectors, allow_pickle=False)
        meta = path.with_suffix(".json")
        if not meta.exists():
            with atomic_open(meta, "w") as handle:
                json.dump({"model": self._identity, "count": len(texts), "dim": vectors.shape[1]}, handle)
        return vectors

    def pool_embeddings(self) -> np.ndarray:
        if self._pool_embeddings is None:
            self._pool_embeddings = self.embed([utt.text for _, utt in self._pool])
        return self._pool_embeddings

    def retrieve(self, targets: Sequence[tuple[Dialogue, Utterance]], k: int) -> list[list[Demonstration]]:
        """For each (dialogue, utterance) target, up to k demonstrations, most similar first.

        Fewer than k come back only when the pool, minus the dialogues with the target's dialogue id and the
        utterances with the target's exact text, is smaller than k.
        """
        if k < 0:
            raise ValueError(f"k must be >= 0, got {k}")
        results: list[list[Demonstration]] = [[] for _ in targets]
        if k == 0 or not targets or not self._pool:
            return results
        pool = self.pool_embeddings()
        queries = self.embed([utt.text for _, utt in targets])
        own = np.asarray([self._keys.get(str(d.id), -1) for d, _ in targets], dtype=np.int64)
        same_text = np.asarray([self._texts.get(u.text.strip(), -1) for _, u in targets], dtype=np.int64)
        size = len(self._pool)
        k = min(k, size)
        chunk = max(1, SCORE_BUDGET_BYTES // (4 * size))
        for start in range(0, len(targets), chunk):
            # Rounded so that scores equal up to float noise (the same text embedded twice in one batch can
            # differ in the last bits, BLAS may round differently) are ties, broken by pool order.
            scores = np.round(queries[start : start + chunk] @ pool.T, SCORE_DECIMALS)
            scores[self._codes[None, :] == own[start : start + chunk, None]] = -np.inf
            scores[self._text_codes[None, :] == same_text[start : start + chunk, None]] = -np.inf
            kth = np.partition(scores, size - k, axis=1)[:, size - k]
            for row_index, row in enumerate(scores):
                # Every entry >= the k-th largest score (ties included), in pool order; a stable sort on
                # -score then breaks ties by pool order, whatever argpartition chose among equal scores.
                candidates = np.flatnonzero(row >= kth[row_index])
                order = candidates[np.argsort(-row[candidates], kind="stable")][:k]
                demos = [self._demo(i, float(row[i])) for i in order if np.isfinite(row[i])]
                results[start + row_index] = demos
        return results

    def _demo(self, index: int, score: float) -> Demonstration:
        dialogue, utt = self._pool[index]
        assert utt.label is not None
        return Demonstration(
            speaker=utt.speaker,
            text=utt.text,
            label=utt.label,
            dialogue_id=str(dialogue.id),
            turn=utt.turn,
            score=score,
            split=dialogue.split,
        )
