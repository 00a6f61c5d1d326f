"""The local models in memory: loaded on first use, unloaded least-recently-used under a budget."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from strato.engine.batcher import Batcher, BatcherOptions
from strato.engine.jobs import Adapter
from strato.engine.weights import EngineError, Weights
from strato.errors import ModelNotFound
from strato.types import EngineState

log = logging.getLogger(__name__)

# llama.cpp's compute buffers and the runtime's own overhead, on top of weights and KV cache.
OVERHEAD_BYTES = 64 * 2**20


@dataclass(frozen=True)
class EngineSpec:
    """How to load one base model: where its GGUF is (resolved on first load) and how to run it."""

    name: str
    locate: Callable[[], Path]
    options: BatcherOptions


@dataclass(eq=False)
class Engine:
    """A loaded model: its weights, its batching context, and who is using it."""

    spec: EngineSpec
    weights: Weights
    batcher: Batcher
    memory_bytes: int
    leases: int = 0
    last_used: float = field(default_factory=time.monotonic)

    @property
    def idle(self) -> bool:
        return self.leases == 0 and not self.batcher.busy

    def close(self) -> None:
        self.batcher.close()
        self.batcher.free_adapters()
        self.weights.close()


class EnginePool:
    def __init__(self, memory_budget_bytes: int | None = None) -> None:
        self.budget = memory_budget_bytes
        self.specs: dict[str, EngineSpec] = {}
        self.engines: dict[str, Engine] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def register(self, spec: EngineSpec) -> None:
        self.specs[spec.name] = spec

    def loaded(self, name: str) -> Engine | None:
        return self.engines.get(name)

    async def acquire(self, name: str) -> Engine:
        """The loaded engine for `name`, loading it (and unloading idle ones) if needed. Call
        `release` when done; an engine with leases is never unloaded."""
        spec = self.specs.get(name)
        if spec is None:
            raise ModelNotFound(f"no local model named {name!r} is configured", param="model")
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            engine = self.engines.get(name)
            if engine is None:
                engine = await self._load(spec)
            engine.leases += 1
            engine.last_used = time.monotonic()
        return engine

    def release(self, engine: Engine) -> None:
        engine.leases -= 1
        engine.last_used = time.monotonic()

    async def _load(self, spec: EngineSpec) -> Engine:
        log.info("loading model %s", spec.name)
        started = time.perf_counter()
        weights = await asyncio.to_thread(lambda: Weights(spec.locate()))
        options = spec.options
        need = (
            weights.size_bytes
            + weights.kv_bytes_per_token() * options.slots * options.context_length
            + OVERHEAD_BYTES
        )
        try:
            await self._make_room(spec.name, need)
            batcher = await asyncio.to_thread(Batcher, weights, options)
        except BaseException:
            weights.close()
            raise
        engine = Engine(spec=spec, weights=weights, batcher=batcher, memory_bytes=need)
        self.engines[spec.name] = engine
        log.info(
            "loaded model %s in %.1fs (%.0f MiB: weights, KV cache for %d slots x %d tokens)",
            spec.name,
            time.perf_counter() - started,
            need / 2**20,
            options.slots,
            options.context_length,
        )
        return engine

    async def _make_room(self, name: str, need: int) -> None:
        if self.budget is None:
            return
        if need > self.budget:
            raise EngineError(
                f"model {name!r} needs about {need // 2**20} MiB, more than the engine's memory budget "
                f"of {self.budget // 2**20} MiB (raise engine.memory_budget_mb or lower slots/context)",
                status=503,
                code="insufficient_memory",
            )
        while sum(e.memory_bytes for e in self.engines.values()) + need > self.budget:
            idle = [e for e in self.engines.values() if e.idle]
            if not idle:
                busy = ", ".join(self.engines)
                raise EngineError(
                    f"not enough memory budget to load {name!r} while {busy} are serving requests; "
                    "retry shortly",
                    status=503,
                    code="insufficient_memory",
                    headers={"retry-after": "5"},
                )
            victim = min(idle, key=lambda e: e.last_used)
            await self.unload(victim.spec.name)

    async def unload(self, name: str) -> None:
        engine = self.engines.pop(name, None)
        if engine is not None:
            log.info("unloading model %s (least recently used)", name)
            await asyncio.to_thread(engine.close)

    async def ensure_adapter(self, engine: Engine, name: str, path: Path, scale: float) -> Adapter:
        """The adapter `name` on `engine`, loaded from `path` on the engine thread if needed."""
        existing = engine.batcher.adapter(name)
        if existing is not None and existing.scale == scale:
            return existing
        done: concurrent.futures.Future[Adapter] = concurrent.futures.Future()

        def load() -> None:
            try:
                found = engine.batcher.adapter(name)
                if found is not None and found.scale != scale:
                    engine.batcher.remove_adapter(name)  # its cached prefixes were computed at the old scale
                    found = None
                if found is None:
                    found = Adapter(name=name, handle=engine.weights.load_adapter(path), scale=scale)
                    engine.batcher.add_adapter(found)
                done.set_result(found)
            except BaseException as exc:
                done.set_exception(exc)

        engine.batcher.call(load)
        return await asyncio.wrap_future(done)

    async def detach_adapter(self, base: str, name: str) -> None:
        """Forget adapter `name` on `base` (if loaded); freed once no running request uses it."""
        engine = self.engines.get(base)
        if engine is None:
            return
        engine.batcher.call(lambda: engine.batcher.remove_adapter(name))

    def states(self) -> list[EngineState]:
        return [
            EngineState(
                model=name,
                slots=len(engine.batcher.slots),
                busy_slots=sum(slot.job is not None for slot in engine.batcher.slots),
                queued=len(engine.batcher.queue),
                memory_bytes=engine.memory_bytes,
                drafted_tokens=engine.batcher.drafted,
                accepted_tokens=engine.batcher.accepted,
                loaded_seconds=time.perf_counter() - engine.batcher.loaded_at,
                spent=engine.batcher.spent,
            )
            for name, engine in self.engines.items()
        ]

    async def aclose(self) -> None:
        for name in list(self.engines):
            await self.unload(name)
