"""The answer cache: a stored answer to a repeated request, or (semantic mode) to a paraphrase of it.

`Cache` is the storage seam (SQLite in `strato.cache.sqlite`, Redis in `strato.cache.redis`);
`AnswerCache` in `strato.cache.answers` is the gateway's cache step on top of it: which models are
cached and how, the keys, the embedding of the last user turn, and the guard against opposite
questions. Every entry lives in a scope (the tenant: an API key's id), and nothing crosses scopes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from strato.types import Generation

Vector = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class CachePolicy:
    """What one request allows the cache to do; the server sets it from the request's headers."""

    read: bool = True  # may be answered from the cache (`Cache-Control: no-cache` clears it)
    write: bool = True  # its answer may be stored (`Cache-Control: no-store` clears it)


@dataclass(frozen=True, slots=True)
class Entry:
    """One stored answer. `bucket`, `question` and `vector` are set in semantic mode: the key of
    everything but the last user turn, that turn's text, and its unit-length embedding."""

    scope: str
    key: str
    answer: Generation
    expires_at: float  # seconds since the epoch
    bucket: str | None = None
    question: str | None = None
    vector: Vector | None = None


@dataclass(frozen=True, slots=True)
class Candidate:
    """A stored question near the asked one, in the same scope and bucket; `score` is the cosine."""

    key: str
    question: str
    score: float


class Cache(Protocol):
    """Where answers are kept. Implementations never raise on a missing or expired entry."""

    async def get(self, scope: str, key: str) -> Entry | None:
        """The unexpired entry stored under `key` in `scope`."""
        ...

    async def put(self, entry: Entry) -> None:
        """Store `entry`, replacing one with the same scope and key."""
        ...

    async def nearest(
        self, scope: str, bucket: str, vector: Vector, min_score: float, limit: int
    ) -> list[Candidate]:
        """Unexpired questions of `bucket` whose cosine to `vector` is at least `min_score`, best first."""
        ...

    async def aclose(self) -> None: ...
