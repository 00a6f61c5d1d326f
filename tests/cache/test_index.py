"""The in-memory bucket index: the sign-bit prefilter finds what a full scan finds, and expired
vectors are dropped."""

from __future__ import annotations

import time

import numpy as np

from strato.cache.codec import unit_vector
from strato.cache.index import EXACT_SEARCH_MAX, BucketIndex, BucketIndexes, Row


def rows(vectors: np.ndarray, expires_at: float = float("inf"), name: str = "k") -> list[Row]:
    return [Row(f"{name}{i}", f"q{i}", v, expires_at) for i, v in enumerate(vectors)]


def unit_rows(count: int, dim: int = 384, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((count, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_the_prefilter_finds_the_same_best_match_as_a_full_scan() -> None:
    vectors = unit_rows(EXACT_SEARCH_MAX * 4)
    index = BucketIndex()
    index.add(rows(vectors))
    rng = np.random.default_rng(1)
    for target in rng.integers(0, len(vectors), 20):
        query = unit_vector((vectors[target] + 0.8 * rng.standard_normal(384) / np.sqrt(384)).tolist())
        found = index.search(query, 0.0, 1, time.time())
        assert found[0].key == f"k{int(np.argmax(vectors @ query))}"
        assert abs(found[0].score - float(vectors[target] @ query)) < 5e-3


def test_expired_vectors_are_not_found_and_are_compacted_away() -> None:
    vectors = unit_rows(10)
    index = BucketIndex()
    index.add(rows(vectors[:5], expires_at=time.time() - 1, name="gone"))
    index.add(rows(vectors[5:], name="live"))
    assert index.search(vectors[0], 0.9, 3, time.time()) == []
    assert [c.key for c in index.search(vectors[5], 0.9, 3, time.time())] == ["live0"]
    index.search(vectors[5], 0.9, 3, time.time() + 3600)  # past the next sweep
    assert index.size == 5


def test_the_least_recently_searched_bucket_is_dropped() -> None:
    indexes = BucketIndexes(max_buckets=2)
    a = indexes.get("scope", "a")
    indexes.get("scope", "b")
    assert indexes.get("scope", "a") is a
    indexes.get("scope", "c")
    assert indexes.get("scope", "a") is a
    assert indexes.get("scope", "b").size == 0
