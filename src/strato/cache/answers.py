"""The gateway's cache step: which requests are cached and how, lookups, and storing answers.

Caching is opt-in per model (`cache.models` in the config). In `exact` mode a request is answered
from the cache when the same request (same key, see `strato.cache.keys`) was answered in the same
scope within the TTL. In `semantic` mode a chat request whose last message is the user's is also
answered when everything but that last message is identical and that message is close enough in
meaning to one answered before (cosine of the embeddings at least the model's threshold) and
passes the contrast checks of `strato.cache.contrast` and (unless turned off) the coverage check of
`strato.cache.coverage`, which embeds the words of such a candidate pair that it has not seen.
Only complete answers are stored (finish reason `stop` or `length`, no error, a stream read to
its end). A broken cache (Redis down) is
logged and skipped; it never fails a request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from strato.cache import Cache, CachePolicy, Candidate, Entry, Vector
from strato.cache.codec import unit_vector
from strato.cache.contrast import differ
from strato.cache.coverage import Coverage
from strato.cache.keys import bucket_key, exact_key, last_user_turn
from strato.config import CacheSettings, ConfigError
from strato.errors import StratoError
from strato.providers import Embedder
from strato.providers.registry import ModelTable
from strato.streams import Stream
from strato.types import Chunk, EmbeddingRequest, Generation, GenerationRequest, TokenLogprob, Usage

log = logging.getLogger(__name__)

HIT_EXACT, HIT_SEMANTIC, MISS, SKIP = "hit_exact", "hit_semantic", "miss", "skip"
COMPLETE = frozenset({"stop", "length"})  # finish reasons of answers worth storing
CANDIDATES = 8  # nearest stored questions checked for a contrast before giving up


@dataclass(frozen=True, slots=True)
class ModelRule:
    """How one model's answers are cached, with the defaults filled in."""

    mode: Literal["exact", "semantic"]
    ttl: float
    threshold: float
    sampled: bool


@dataclass(frozen=True, slots=True)
class Slot:
    """Where a request's answer will be stored once it is complete."""

    scope: str
    key: str
    ttl: float
    bucket: str | None = None
    question: str | None = None
    vector: Vector | None = None

    def entry(self, answer: Generation, now: float) -> Entry:
        expires_at = now + self.ttl
        return Entry(self.scope, self.key, answer, expires_at, self.bucket, self.question, self.vector)


@dataclass(frozen=True, slots=True)
class Lookup:
    """What the cache step found for one request."""

    result: str | None = None  # HIT_EXACT, HIT_SEMANTIC, MISS, SKIP; None: the model is not cached
    answer: Generation | None = None  # the stored answer, on a hit
    score: float | None = None  # the cosine of a semantic hit
    slot: Slot | None = None  # where to store the answer (None: do not store it)

    @property
    def kind(self) -> str | None:
        """What the trace calls a hit: "exact" or "semantic"."""
        return {HIT_EXACT: "exact", HIT_SEMANTIC: "semantic"}.get(self.result or "")

    def headers(self) -> dict[str, str]:
        """Response headers: `x-strato-cache` (hit-exact, hit-semantic, miss or skip) and, on a
        semantic hit, `x-strato-cache-similarity` (the cosine of the two last user turns)."""
        headers = {"x-strato-cache": (self.result or SKIP).replace("_", "-")}
        if self.result == HIT_SEMANTIC and self.score is not None:
            headers["x-strato-cache-similarity"] = f"{self.score:.3f}"
        return headers


class AnswerCache:
    def __init__(
        self,
        settings: CacheSettings,
        backend: Cache,
        embedder: Callable[[str], Embedder],
        coverage: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`coverage`: with the guard on, also refuse a candidate whose question says something the
        asked one does not (`strato.cache.coverage`). `clock`: the time answers' TTLs count from
        (the backend's own, see `open_answer_cache`)."""
        self.settings = settings
        self._clock = clock
        self.backend = backend
        self._embedder = embedder
        self._coverage = Coverage(self._embed_words) if coverage else None

    @classmethod
    def off(cls) -> AnswerCache:
        """A cache that caches nothing (the default settings), for a gateway built without one."""
        return cls(CacheSettings(), NoCache(), _no_embedder)

    def rule(self, model: str) -> ModelRule | None:
        """How `model` is cached; None when it is not."""
        own = self.settings.models.get(model)
        mode = own.mode if own is not None else self.settings.mode
        if mode == "off":
            return None
        semantic = self.settings.semantic
        return ModelRule(
            mode=mode,
            ttl=own.ttl if own is not None and own.ttl is not None else self.settings.ttl,
            threshold=own.threshold if own is not None and own.threshold is not None else semantic.threshold,
            sampled=own.sampled if own is not None and own.sampled is not None else self.settings.sampled,
        )

    async def lookup(self, request: GenerationRequest, scope: str, policy: CachePolicy) -> Lookup:
        """The stored answer to `request` in `scope`, if the model is cached and `policy` allows."""
        rule = self.rule(request.model)
        if rule is None:
            return Lookup()
        params = request.params
        if not (rule.sampled or params.temperature == 0 or params.seed is not None):
            return Lookup(SKIP)  # a fresh sample was asked for
        if not (policy.read or policy.write):
            return Lookup(SKIP)
        slot = Slot(scope, exact_key(request), rule.ttl)
        try:
            if policy.read and (entry := await self.backend.get(scope, slot.key)) is not None:
                return Lookup(HIT_EXACT, _marked_cached(entry.answer), 1.0)
            question = last_user_turn(request) if rule.mode == "semantic" else None
            if question is not None:
                slot = await self._with_vector(slot, request, question)
            if policy.read and slot.vector is not None:
                found = await self._nearest(slot, rule.threshold)
                if found is not None:
                    return Lookup(HIT_SEMANTIC, _marked_cached(found[0]), found[1])
        except Exception as exc:
            log.warning("answer cache unavailable, answering without it: %s: %s", type(exc).__name__, exc)
            return Lookup(SKIP)
        return Lookup(MISS if policy.read else SKIP, slot=slot if policy.write else None)

    async def store(self, lookup: Lookup, answer: Generation) -> None:
        """Keep `answer` for the request `lookup` was made for, if it is complete and may be stored."""
        if lookup.slot is None or answer.finish_reason not in COMPLETE:
            return
        try:
            await self.backend.put(lookup.slot.entry(answer, self._clock()))
        except Exception as exc:
            log.warning("answer cache unavailable, answer not stored: %s: %s", type(exc).__name__, exc)

    def remember(self, lookup: Lookup, chunks: AsyncGenerator[Chunk, None]) -> AsyncGenerator[Chunk, None]:
        """`chunks`, storing the answer they make once the stream ends (not when it fails or the
        client leaves first)."""
        return chunks if lookup.slot is None else Stream(self._remembered(lookup, chunks), chunks)

    async def aclose(self) -> None:
        await self.backend.aclose()

    async def _remembered(
        self, lookup: Lookup, chunks: AsyncGenerator[Chunk, None]
    ) -> AsyncGenerator[Chunk, None]:
        parts: list[str] = []
        logprobs: list[TokenLogprob] = []
        finish, usage = None, Usage()
        try:
            async for chunk in chunks:
                parts.append(chunk.text)
                logprobs.extend(chunk.logprobs)
                finish = chunk.finish_reason or finish
                usage = chunk.usage or usage
                yield chunk
        finally:
            await chunks.aclose()
        if finish is not None:
            await self.store(lookup, Generation("".join(parts), finish, usage, tuple(logprobs) or None))

    async def _with_vector(self, slot: Slot, request: GenerationRequest, question: str) -> Slot:
        """`slot` with the bucket and embedding of the last user turn (unchanged if it cannot be
        embedded, e.g. longer than the embedding model reads: then only exact hits)."""
        name = self.settings.semantic.embedder
        try:
            result = await self._embedder(name).embed(EmbeddingRequest(model=name, inputs=(question,)))
        except StratoError as exc:
            log.info("semantic cache: not embedding the last user turn: %s", exc.message)
            return slot
        vector = unit_vector(result.vectors[0])
        return replace(slot, bucket=bucket_key(request, name), question=question, vector=vector)

    async def _nearest(self, slot: Slot, threshold: float) -> tuple[Generation, float] | None:
        assert slot.bucket is not None and slot.vector is not None and slot.question is not None
        candidates = await self.backend.nearest(slot.scope, slot.bucket, slot.vector, threshold, CANDIDATES)
        if self.settings.semantic.guard:
            candidates = await self._guarded(slot.question, candidates)
        for candidate in candidates:
            entry = await self.backend.get(slot.scope, candidate.key)
            if entry is not None:
                return entry.answer, candidate.score
        return None

    async def _guarded(self, question: str, candidates: list[Candidate]) -> list[Candidate]:
        """The candidates in which the contrast checks, then the coverage check, find no difference
        (the coverage check only runs on what the cheap checks let through: most lookups have none)."""
        kept = [candidate for candidate in candidates if differ(question, candidate.question) is None]
        if self._coverage is None or not kept:
            return kept
        verdicts = await self._coverage.check([(question, candidate.question) for candidate in kept])
        return [candidate for candidate, why in zip(kept, verdicts, strict=True) if why is None]

    async def _embed_words(self, words: Sequence[str]) -> list[list[float]]:
        """Embeddings of single words, by the embedder of the questions (on its worker thread)."""
        name = self.settings.semantic.embedder
        result = await self._embedder(name).embed(EmbeddingRequest(model=name, inputs=tuple(words)))
        return result.vectors


class NoCache:
    """A backend that keeps nothing."""

    async def get(self, scope: str, key: str) -> Entry | None:
        return None

    async def put(self, entry: Entry) -> None:
        pass

    async def nearest(
        self, scope: str, bucket: str, vector: Vector, min_score: float, limit: int
    ) -> list[Candidate]:
        return []

    async def aclose(self) -> None:
        pass


def _no_embedder(name: str) -> Embedder:
    raise ConfigError("the answer cache has no embedding model")


def _marked_cached(answer: Generation) -> Generation:
    """The stored answer with its original token counts, every prompt token marked as cached."""
    usage = Usage(answer.usage.prompt_tokens, answer.usage.completion_tokens, answer.usage.prompt_tokens)
    return replace(answer, usage=usage)


async def replay(answer: Generation) -> AsyncGenerator[Chunk, None]:
    """A stored answer as a stream: its text, then the finish reason and usage."""
    yield Chunk(text=answer.text, logprobs=answer.logprobs or ())
    yield Chunk(finish_reason=answer.finish_reason, usage=answer.usage)


def open_answer_cache(
    settings: CacheSettings, data_dir: Path, models: ModelTable, clock: Callable[[], float] = time.time
) -> AnswerCache:
    """The configured cache: Redis when `redis_url` is set, else a SQLite file (opened on first use).
    `clock` is the time the SQLite file's answers expire by; Redis expires keys by its own."""
    for name in settings.models:
        if name not in models.generators:
            raise ConfigError(f"cache.models: {name!r} is not a configured chat or completion model")
    modes = {settings.mode, *(m.mode for m in settings.models.values())}
    embedder = settings.semantic.embedder
    if "semantic" in modes and embedder not in models.embedders:
        raise ConfigError(f"cache.semantic.embedder: {embedder!r} is not a configured embedding model")
    backend: Cache
    if settings.redis_url:
        from strato.cache.redis import RedisCache

        backend = RedisCache(settings.redis_url, settings.redis_prefix)
        clock = time.time
    else:
        from strato.cache.sqlite import SQLiteCache

        backend = SQLiteCache(settings.resolved_path(data_dir), clock)
    return AnswerCache(settings, backend, models.embedder, clock=clock)
