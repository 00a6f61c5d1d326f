"""One suite for both cache backends (SQLite file, real Redis): answers round-trip, expire, stay in
their scope, and the nearest stored questions are found, also by another process's instance."""

from __future__ import annotations

import asyncio
import time

import numpy as np

from strato.cache import Cache, Entry, Vector
from strato.cache.codec import unit_vector
from strato.cache.index import READ_BATCH
from strato.types import Generation, TokenLogprob, TopLogprob, Usage

DIM = 384
rng = np.random.default_rng(7)


def random_vector() -> Vector:
    return unit_vector(rng.standard_normal(DIM).tolist())


def near(vector: Vector, noise: float) -> Vector:
    return unit_vector((vector + noise * rng.standard_normal(DIM) / np.sqrt(DIM)).tolist())


def answer(text: str = "Paris.") -> Generation:
    return Generation(text=text, finish_reason="stop", usage=Usage(12, 3))


def entry(
    key: str, *, scope: str = "tenant-a", ttl: float = 60, text: str = "Paris.", **semantic: object
) -> Entry:
    return Entry(scope, key, answer(text), time.time() + ttl, **semantic)  # type: ignore[arg-type]


async def test_an_answer_round_trips_with_its_usage_and_logprobs(backend: Cache) -> None:
    logprobs = (TokenLogprob("Par", -0.1, (80, 97, 114), (TopLogprob("Lon", -2.5, (76, 111, 110)),)),)
    stored = Generation("Paris.", "length", Usage(12, 3), logprobs)
    await backend.put(Entry("tenant-a", "k1", stored, time.time() + 60))
    found = await backend.get("tenant-a", "k1")
    assert found is not None
    assert found.answer == stored
    assert await backend.get("tenant-a", "missing") is None


async def test_scopes_do_not_see_each_other(backend: Cache) -> None:
    vector = random_vector()
    await backend.put(entry("k1", scope="tenant-a", bucket="b", question="q", vector=vector))
    assert await backend.get("tenant-b", "k1") is None
    assert await backend.nearest("tenant-b", "b", vector, 0.5, 5) == []
    assert [c.key for c in await backend.nearest("tenant-a", "b", vector, 0.5, 5)] == ["k1"]


async def test_entries_expire(backend: Cache) -> None:
    vector = random_vector()
    await backend.put(entry("short", ttl=0.3, bucket="b", question="q", vector=vector))
    await backend.put(entry("long", ttl=60, bucket="b", question="q2", vector=near(vector, 0.1)))
    assert await backend.get("tenant-a", "short") is not None
    await asyncio.sleep(0.4)
    assert await backend.get("tenant-a", "short") is None
    assert [c.key for c in await backend.nearest("tenant-a", "b", vector, 0.5, 5)] == ["long"]


async def test_a_put_replaces_the_answer_under_the_same_key(backend: Cache) -> None:
    await backend.put(entry("k1", text="first"))
    await backend.put(entry("k1", text="second"))
    found = await backend.get("tenant-a", "k1")
    assert found is not None and found.answer.text == "second"


async def test_nearest_is_best_first_above_the_threshold_within_the_bucket(backend: Cache) -> None:
    query = random_vector()
    close, closer, far = near(query, 0.5), near(query, 0.2), random_vector()
    for key, vector in [("close", close), ("closer", closer), ("far", far)]:
        await backend.put(entry(key, bucket="b1", question=key, vector=vector))
    await backend.put(entry("other-bucket", bucket="b2", question="x", vector=query))
    found = await backend.nearest("tenant-a", "b1", query, 0.5, 5)
    assert [c.key for c in found] == ["closer", "close"]
    assert [c.question for c in found] == ["closer", "close"]
    assert found[0].score > found[1].score >= 0.5
    assert abs(found[0].score - float(closer @ query)) < 1e-2
    assert [c.key for c in await backend.nearest("tenant-a", "b1", query, 0.5, 1)] == ["closer"]


async def test_another_instance_finds_what_was_stored_before_and_after_its_first_search(
    backend: Cache, second_backend: Cache
) -> None:
    first, second = random_vector(), random_vector()
    await backend.put(entry("first", bucket="b", question="one", vector=first))
    try:
        assert [c.key for c in await second_backend.nearest("tenant-a", "b", first, 0.9, 5)] == ["first"]
        await backend.put(entry("second", bucket="b", question="two", vector=second))
        assert [c.key for c in await second_backend.nearest("tenant-a", "b", second, 0.9, 5)] == ["second"]
        found = await second_backend.get("tenant-a", "second")
        assert found is not None and found.answer.text == "Paris."
    finally:
        await second_backend.aclose()


async def test_a_large_bucket_is_searched_while_the_rest_of_it_loads(backend: Cache) -> None:
    """A lookup reads one batch of a bucket it has not seen; the rest loads in the background
    (past a few thousand vectors the search also goes through the sign-bit prefilter)."""
    vectors = np.stack([random_vector() for _ in range(READ_BATCH * 3)])
    for i, vector in enumerate(vectors):
        await backend.put(entry(f"k{i}", bucket="big", question=f"q{i}", vector=vector))
    first = await backend.nearest("tenant-a", "big", near(vectors[0], 0.3), 0.8, 3)
    assert [c.key for c in first] == ["k0"]
    last = len(vectors) - 1
    deadline = time.monotonic() + 10
    while not await backend.nearest("tenant-a", "big", near(vectors[last], 0.3), 0.8, 3):
        assert time.monotonic() < deadline, "the rest of the bucket never loaded"
        await asyncio.sleep(0.05)
    for i in (1234, 2100, last):
        found = await backend.nearest("tenant-a", "big", near(vectors[i], 0.3), 0.8, 3)
        assert [c.key for c in found] == [f"k{i}"]
