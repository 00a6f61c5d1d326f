"""One request's life in the engine (`Job`), the fair wait queue, and the stop-string scanner."""

from __future__ import annotations

import codecs
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from strato.engine.lookup import Lookup
from strato.engine.repetition import RepetitionCheck
from strato.engine.sampling import Sampler
from strato.types import Chunk, Compute, FinishReason, SamplingParams, TokenLogprob, Usage

Emit = Callable[[Chunk | BaseException | None], None]


class Outbox(Protocol):
    """Where a job's `emit` puts its items until the engine's step is done (`strato.engine.handoff`)."""

    def flush(self) -> None:
        """Deliver what was emitted since the last flush."""
        ...


@dataclass(frozen=True, slots=True)
class Adapter:
    """A LoRA adapter attached to a model under its own name."""

    name: str
    handle: object  # llama.cpp's llama_adapter_lora pointer
    scale: float


@dataclass(eq=False)
class Job:
    """A request from admission to its last token. Fields below `emit` belong to the engine thread."""

    prompt: list[int]
    params: SamplingParams
    max_tokens: int
    adapter: Adapter | None
    user: str
    emit: Emit
    grammar: str | None = None  # GBNF for structured output, converted once by the caller
    outbox: Outbox | None = None  # flushed by the engine after each step, when `emit` feeds one
    cancelled: bool = False  # set from the event loop when the client goes away
    queued_at: float = field(default_factory=time.perf_counter)
    sampler: Sampler | None = None
    lookup: Lookup | None = None  # n-gram index for prompt-lookup drafts, when the model uses them
    repetition: RepetitionCheck | None = None  # cuts a runaway loop, unless the model turned it off
    computed: int = 0  # prompt tokens whose KV state is in the cache (reused or evaluated)
    cached: int = 0  # of those, how many came from a cached prefix
    pending: int | None = None  # the last sampled token, to be evaluated next step
    generated: int = 0
    text: StopScanner = field(init=False)
    decoder: codecs.IncrementalDecoder = field(init=False)
    logprobs: list[TokenLogprob] = field(default_factory=list)
    compute: Compute | None = None  # its shares of the engine steps it was in

    def __post_init__(self) -> None:
        self.text = StopScanner(self.params.stop)
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    @property
    def adapter_name(self) -> str | None:
        return self.adapter.name if self.adapter else None

    @property
    def prefilling(self) -> bool:
        return self.computed < len(self.prompt)

    @property
    def looping(self) -> bool:
        """Whether the answer was cut as a runaway repetition (`strato.engine.repetition`)."""
        return self.repetition is not None and self.repetition.found is not None

    def feed(self, piece: bytes, logprob: TokenLogprob | None) -> FinishReason | None:
        """Take one generated token and emit the text that is safe to show; why the job ends now, if
        it does: `stop` for a stop string, `length` at `max_tokens` or in a runaway repetition."""
        self.generated += 1
        if logprob is not None:
            self.logprobs.append(logprob)
        decoded = self.decoder.decode(piece)
        text, hit = self.text.feed(decoded)
        if text or self.logprobs:
            self.emit(Chunk(text=text, logprobs=tuple(self.logprobs)))
            self.logprobs = []
        if hit:
            return "stop"
        if self.repetition is not None and self.repetition.feed(decoded):
            return "length"
        return "length" if self.generated >= self.max_tokens else None

    def finish(self, reason: FinishReason) -> None:
        # A cut loop ends as judged: the bytes of a character not yet complete are dropped, not
        # shown as U+FFFD, which would hide the loop from the anomaly watch.
        last = "" if self.looping else self.decoder.decode(b"", final=True)
        tail = "" if self.text.hit else self.text.flush(last)
        usage = Usage(
            prompt_tokens=len(self.prompt), completion_tokens=self.generated, cached_tokens=self.cached
        )
        logprobs = tuple(self.logprobs)
        self.emit(
            Chunk(text=tail, finish_reason=reason, usage=usage, logprobs=logprobs, compute=self.compute)
        )
        self.emit(None)


class FairQueue:
    """Waiting jobs, served round-robin across users so one busy caller cannot starve the rest."""

    def __init__(self) -> None:
        self._by_user: OrderedDict[str, deque[Job]] = OrderedDict()
        self._length = 0

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[Job]:
        for jobs in self._by_user.values():
            yield from jobs

    def push(self, job: Job) -> None:
        self._by_user.setdefault(job.user, deque()).append(job)
        self._length += 1

    def pop(self) -> Job | None:
        if not self._by_user:
            return None
        user, jobs = next(iter(self._by_user.items()))
        job = jobs.popleft()
        del self._by_user[user]
        if jobs:  # this user goes to the back of the line
            self._by_user[user] = jobs
        self._length -= 1
        return job

    def remove(self, job: Job) -> bool:
        jobs = self._by_user.get(job.user)
        if jobs is None or job not in jobs:
            return False
        jobs.remove(job)
        if not jobs:
            del self._by_user[job.user]
        self._length -= 1
        return True


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
