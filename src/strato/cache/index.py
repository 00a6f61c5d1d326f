"""Nearest-neighbour search over one bucket's questions, in memory.

Each backend keeps its entries where they can be shared (a SQLite file, Redis) and mirrors the
vectors of the buckets it has been asked about here, fetching only what was added since its last
look. A search is exact for small buckets; for large ones it first ranks by the Hamming distance of
the vectors' sign bits (48 bytes per vector for MiniLM, a few hundred microseconds over 100,000
entries) and then computes the true cosine of the best `PREFILTER` of those. The measured effect on
recall is in benchmarks/semantic_cache.py. Not thread-safe: each backend uses one worker thread.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from strato.cache import Candidate, Vector

log = logging.getLogger(__name__)

EXACT_SEARCH_MAX = 2048  # up to this many vectors, score them all
PREFILTER = 512  # in larger buckets, rescore this many nearest by sign bits
COMPACT_EVERY = 30.0  # seconds between sweeps for expired vectors
READ_BATCH = 1000  # stored questions a backend reads into an index at a time


@dataclass(frozen=True, slots=True)
class Row:
    """One stored question as an index holds it."""

    key: str
    question: str
    vector: Vector
    expires_at: float


class BucketIndex:
    """The vectors of one bucket: float16 rows for the cosine, sign bits for the prefilter."""

    def __init__(self) -> None:
        self.size = 0
        self.cursor: object = None  # how far the backend has read: a row id or a stream id
        self.loading: asyncio.Task[None] | None = None  # reading the rest of a large bucket
        self.keys: list[str] = []
        self.questions: list[str] = []
        self._rows = np.empty((0, 0), dtype=np.float16)
        self._bits = np.empty((0, 0), dtype=np.uint64)  # one row per 64-bit word, one column per vector
        self._expires = np.empty(0, dtype=np.float64)
        self._next_compact = time.time() + COMPACT_EVERY

    def add(self, rows: Iterable[Row]) -> None:
        batch = list(rows)
        if not batch:
            return
        vectors = np.stack([row.vector for row in batch]).astype(np.float32)
        self._reserve(self.size + len(batch), vectors.shape[1])
        end = self.size + len(batch)
        self._rows[self.size : end] = vectors
        self._bits[:, self.size : end] = sign_bits(vectors).T
        self._expires[self.size : end] = [row.expires_at for row in batch]
        self.keys.extend(row.key for row in batch)
        self.questions.extend(row.question for row in batch)
        self.size = end

    def search(self, vector: Vector, min_score: float, limit: int, now: float) -> list[Candidate]:
        if self.size == 0 or vector.shape[0] != self._rows.shape[1]:
            return []
        if now >= self._next_compact:
            self._compact(now)
        if self.size <= EXACT_SEARCH_MAX:
            picked = np.arange(self.size)
        else:
            distance = self._hamming(vector)
            picked = np.argpartition(distance, PREFILTER)[:PREFILTER]
        scores = self._rows[picked].astype(np.float32) @ vector
        keep = (scores >= min_score) & (self._expires[picked] > now)
        picked, scores = picked[keep], scores[keep]
        found: list[Candidate] = []
        for i in np.argsort(-scores):
            row = int(picked[i])
            if all(c.key != self.keys[row] for c in found):  # a key stored twice (replaced) counts once
                found.append(Candidate(self.keys[row], self.questions[row], float(scores[i])))
            if len(found) == limit:
                break
        return found

    def _hamming(self, vector: Vector) -> npt.NDArray[np.uint16]:
        query = sign_bits(vector[None, :])[0]
        distance = np.zeros(self.size, dtype=np.uint16)
        for word in range(self._bits.shape[0]):
            distance += np.bitwise_count(self._bits[word, : self.size] ^ query[word])
        return distance

    def _reserve(self, size: int, dim: int) -> None:
        capacity = self._rows.shape[0]
        if size <= capacity and self._rows.shape[1] == dim:
            return
        capacity = max(size, 2 * capacity, 64)
        rows = np.zeros((capacity, dim), dtype=np.float16)
        bits = np.zeros((words(dim), capacity), dtype=np.uint64)
        expires = np.zeros(capacity, dtype=np.float64)
        if self._rows.shape[1] == dim:
            rows[: self.size] = self._rows[: self.size]
            bits[:, : self.size] = self._bits[:, : self.size]
            expires[: self.size] = self._expires[: self.size]
        elif self.size:
            self.size, self.keys, self.questions = 0, [], []  # another embedder: old vectors are useless
        self._rows, self._bits, self._expires = rows, bits, expires

    def _compact(self, now: float) -> None:
        self._next_compact = now + COMPACT_EVERY
        alive = self._expires[: self.size] > now
        if alive.all():
            return
        kept = np.flatnonzero(alive)
        self._rows[: len(kept)] = self._rows[kept]
        self._bits[:, : len(kept)] = self._bits[:, kept]
        self._expires[: len(kept)] = self._expires[kept]
        self.keys = [self.keys[i] for i in kept]
        self.questions = [self.questions[i] for i in kept]
        self.size = len(kept)


async def catch_up(index: BucketIndex, read_batch: Callable[[], Awaitable[bool]]) -> None:
    """Bring `index` up to date through `read_batch` (which reads up to READ_BATCH new questions
    and says whether there may be more). A lookup reads one batch; the rest of a large bucket read
    for the first time (1.4 s for 100,000 questions from SQLite, 6 s from Redis) is read in the
    background, so no lookup waits for it: until then, lookups search what is loaded."""
    if index.loading is not None:
        return
    if await read_batch():
        index.loading = asyncio.ensure_future(_read_rest(index, read_batch))


async def _read_rest(index: BucketIndex, read_batch: Callable[[], Awaitable[bool]]) -> None:
    try:
        while await read_batch():
            pass
    except Exception as exc:  # the next lookup tries again from the cursor
        log.warning("semantic cache: reading a bucket failed: %s: %s", type(exc).__name__, exc)
    finally:
        index.loading = None


class BucketIndexes:
    """The bucket indexes of one process, the least recently searched dropped past `max_buckets`
    (a dropped bucket is read back from the backend when it is next searched)."""

    def __init__(self, max_buckets: int = 1024) -> None:
        self.max_buckets = max_buckets
        self._buckets: OrderedDict[tuple[str, str], BucketIndex] = OrderedDict()

    def get(self, scope: str, bucket: str) -> BucketIndex:
        name = (scope, bucket)
        index = self._buckets.pop(name, None) or BucketIndex()
        self._buckets[name] = index
        while len(self._buckets) > self.max_buckets:
            self._buckets.popitem(last=False)
        return index

    def stop_loading(self) -> None:
        for index in self._buckets.values():
            if index.loading is not None:
                index.loading.cancel()


def words(dim: int) -> int:
    return (dim + 63) // 64


def sign_bits(vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.uint64]:
    """One bit per dimension (set when positive), packed into 64-bit words: shape (n, words)."""
    packed = np.packbits(vectors > 0, axis=1)
    padded = np.zeros((vectors.shape[0], words(vectors.shape[1]) * 8), dtype=np.uint8)
    padded[:, : packed.shape[1]] = packed
    return padded.view(np.uint64)
