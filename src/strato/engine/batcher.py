"""Continuous batching over one llama.cpp context.

The context holds `slots` sequences, each in its own KV stream of `context_length` cells. A single
engine thread loops: admit waiting jobs into free slots (reusing the longest cached prompt prefix
any slot holds), then build one batch with the next token of every generating sequence plus a
chunk of each prompt still being read, decode it, and sample every sequence that produced logits.
A new request therefore joins at the next step, and a finished or cancelled one frees its slot at
once.

Separate streams keep attention to each sequence's own cells: one unified cache for all slots
made every token attend over (masked) cells of every other sequence, which cost 15-25% of
throughput at 8-16 streams (llama.cpp's batched bench shows the same gap).

Prefix reuse: each slot remembers which tokens its KV cells hold. A new prompt takes over the
slot with the longest common prefix if that slot is free; otherwise a free slot gets a copy of the
other slot's stream (`llama_memory_seq_cp`, done by llama.cpp at the next decode), cut to the shared
prefix. Cached cells stay after a request ends, so a chat whose history grows, or a common system
prompt, skips recomputing what the cache already holds.

LoRA adapters apply to a whole llama.cpp context, so each step decodes the sequences of one
adapter (or of none); groups take turns when several are busy.

A sequence ends at an end-of-generation token, a stop string, `max_tokens`, or (unless the model
turns it off) once its answer is stuck in a loop (`strato.engine.repetition`); it frees its slot
at once, and the other sequences of the batch go on as before.
"""

from __future__ import annotations

import ctypes
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from strato.engine.energy import EnergyMeter, plus, portion
from strato.engine.jobs import Adapter, FairQueue, Job, Outbox
from strato.engine.lookup import DraftCost, Lookup, LookupOptions
from strato.engine.repetition import RepetitionCheck, RepetitionOptions
from strato.engine.sampling import Sampler, SamplingDefaults, logits_at, token_logprob
from strato.engine.weights import EngineError, Weights
from strato.errors import StratoError
from strato.types import Compute, FinishReason

log = logging.getLogger(__name__)


class QueueFull(StratoError):
    """Every slot is busy and the wait queue is at its bound."""

    status = 429
    type = "rate_limit_error"
    code = "queue_full"


@dataclass(frozen=True, slots=True)
class BatcherOptions:
    slots: int = 4
    context_length: int = 2048  # per slot: prompt + completion of one request
    threads: int = 2
    batch_size: int = 512  # most tokens decoded in one step (prompt chunks + generating sequences)
    max_queue: int = 64
    retry_after: int = 1  # seconds suggested to clients refused with 429
    defaults: SamplingDefaults = field(default_factory=SamplingDefaults)
    lookup: LookupOptions = field(default_factory=LookupOptions)
    repetition: RepetitionOptions = field(default_factory=RepetitionOptions)
    watts_per_core: float = 7.5  # the energy estimate's rate where no RAPL counter is readable


@dataclass(slots=True)
class Slot:
    seq: int
    tokens: list[int] = field(default_factory=list)  # what this sequence's KV cells hold, in order
    adapter: str | None = None  # the adapter those cells were computed under
    job: Job | None = None
    last_used: float = 0.0


class Batcher:
    def __init__(self, weights: Weights, options: BatcherOptions) -> None:
        self.weights = weights
        self.options = options
        lib = self.lib = weights.lib
        params = lib.llama_context_default_params()
        params.n_ctx = options.slots * options.context_length
        params.n_batch = options.batch_size
        params.n_ubatch = min(options.batch_size, 512)
        params.n_seq_max = options.slots
        params.n_threads = params.n_threads_batch = options.threads
        params.kv_unified = False  # a KV stream per slot: attention reads only its own cells
        params.no_perf = True
        self.ctx = lib.llama_init_from_model(weights.model, params)
        if not self.ctx:
            raise EngineError(f"llama.cpp could not create a context for {weights.path.name}", status=500)
        self.memory = lib.llama_get_memory(self.ctx)
        self.batch = lib.llama_batch_init(options.batch_size, 0, 1)
        self.slots = [Slot(seq=i) for i in range(options.slots)]
        self.queue = FairQueue()
        self.steps = 0  # llama_decode calls so far
        self.drafted = 0  # prompt-lookup tokens evaluated ahead, and how many of them were right
        self.accepted = 0
        self.draft_cost = DraftCost(options.lookup.cost)
        self.meter = EnergyMeter(options.watts_per_core)
        self.spent = Compute(source=self.meter.source)  # every step since the model loaded
        self.loaded_at = time.perf_counter()
        self._adapters: dict[str, Adapter] = {}
        self._retired: list[Adapter] = []  # detached, freed when no running request uses them
        self._active_adapter: Adapter | None = None
        self._turn = 0
        self._commands: list[Callable[[], None]] = []
        self._cond = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._loop, name=f"strato-engine-{weights.path.stem}")
        self._thread.start()

    # --- called from the event loop --------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return bool(len(self.queue)) or self._running()

    def submit(self, job: Job) -> None:
        with self._cond:
            if self._closing:
                raise EngineError("the model is shutting down", status=503, code="model_unloading")
            free = sum(slot.job is None for slot in self.slots)
            if len(self.queue) - free >= self.options.max_queue:
                raise QueueFull(
                    f"all {self.options.slots} slots are busy and {len(self.queue)} requests are waiting; "
                    "retry shortly",
                    headers={"retry-after": str(self.options.retry_after)},
                )
            self.queue.push(job)
            self._cond.notify()

    def cancel(self, job: Job) -> None:
        """The client is gone: drop the job from the queue, or free its slot at the next step."""
        with self._cond:
            job.cancelled = True
            self.queue.remove(job)
            self._cond.notify()

    def call(self, command: Callable[[], None]) -> None:
        """Run `command` on the engine thread between steps (adapter changes)."""
        with self._cond:
            self._commands.append(command)
            self._cond.notify()

    def adapter(self, name: str) -> Adapter | None:
        return self._adapters.get(name)

    def add_adapter(self, adapter: Adapter) -> None:
        """Engine thread only (through `call`)."""
        self._adapters[adapter.name] = adapter

    def remove_adapter(self, name: str) -> None:
        """Engine thread only. Forget an adapter and the cache computed under it; requests already
        running with it finish, and its memory is freed once the last one has."""
        adapter = self._adapters.pop(name, None)
        if adapter is not None:
            self._retired.append(adapter)
        for slot in self.slots:
            if slot.adapter == name and slot.job is None:
                self._forget(slot)
        self._free_retired()

    def free_adapters(self) -> None:
        """After `close`: free every adapter's memory."""
        self._retired.extend(self._adapters.values())
        self._adapters.clear()
        for adapter in self._retired:
            self.weights.free_adapter(adapter.handle)
        self._retired.clear()

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join()

    # --- the engine thread -----------------------------------------------------------------------

    def _loop(self) -> None:
        try:
            while True:
                with self._cond:
                    while not (self._closing or self._commands or len(self.queue) or self._running()):
                        self._cond.wait()
                    if self._closing:
                        break
                    commands, self._commands = self._commands, []
                    admitted = self._admit()
                    outboxes = _outboxes(slot.job for slot in self.slots)  # the step's, admitted included
                for command in commands:
                    command()
                for slot in admitted:
                    self._start(slot)
                self._reap()
                if self._running():
                    self._step()
                for outbox in outboxes:  # one wake-up per event loop for what the step emitted
                    outbox.flush()
        except Exception as exc:  # a bug or a llama.cpp failure: fail every request, do not hang them
            log.exception("engine for %s stopped", self.weights.path.name)
            self._fail_all(EngineError(f"the engine stopped: {exc}", status=500))
        finally:
            with self._cond:
                self._closing = True  # refuse new work: no thread is left to serve it
            self._fail_all(EngineError("the model was unloaded", status=503, code="model_unloading"))
            self._free()

    def _running(self) -> bool:
        return any(slot.job for slot in self.slots)

    def _admit(self) -> list[Slot]:
        """Hand waiting jobs to free slots; returns the slots that got one."""
        admitted = []
        free = [slot for slot in self.slots if slot.job is None]
        while free and (job := self.queue.pop()) is not None:
            slot = self._choose_slot(job, free)
            free.remove(slot)
            slot.job = job
            admitted.append(slot)
        return admitted

    def _choose_slot(self, job: Job, free: list[Slot]) -> Slot:
        """A free slot whose whole cache the prompt continues (a chat picking up where it left
        off); else an empty slot; else the least recently used. A prefix shared with any other
        slot is copied over in `_start`, so taking a fresh slot loses no reuse, and the caches
        of other conversations survive."""
        continued = [s for s in free if s.tokens and _common(s, job) == len(s.tokens)]
        if continued:
            return max(continued, key=lambda s: len(s.tokens))
        return min(free, key=lambda s: (bool(s.tokens), s.last_used))

    def _start(self, slot: Slot) -> None:
        job = slot.job
        assert job is not None
        own = _common(slot, job)
        # The longest prefix any slot holds (a busy one too: its earlier cells never change).
        source = max(self.slots, key=lambda s: _common(s, job))
        best = _common(source, job)
        limit = len(job.prompt) - 1  # the prompt's last token always runs, for its logits
        if best > own:
            reuse = min(best, limit)
            self._forget(slot)
            # Across streams llama.cpp copies whole streams; the copy's tail is dropped at once.
            self.lib.llama_memory_seq_cp(self.memory, source.seq, slot.seq, -1, -1)
            self.lib.llama_memory_seq_rm(self.memory, slot.seq, reuse, -1)
            slot.tokens = job.prompt[:reuse]
        else:
            reuse = min(own, limit)
            self.lib.llama_memory_seq_rm(self.memory, slot.seq, reuse, -1)
            del slot.tokens[reuse:]
        slot.adapter = job.adapter_name
        job.computed = job.cached = reuse
        try:
            job.sampler = Sampler(
                self.lib,
                self.weights.vocab,
                self.weights.n_vocab,
                job.params,
                self.options.defaults,
                job.grammar,
            )
            if self.options.lookup.enabled:
                job.lookup = Lookup(self.options.lookup, job.prompt)
            if self.options.repetition.enabled:
                job.repetition = RepetitionCheck(self.options.repetition)
        except StratoError as exc:
            job.emit(exc)
            self._release(slot)
        except Exception as exc:  # a bug for this request; the engine keeps serving the others
            log.exception("could not start a request on %s", self.weights.path.name)
            job.emit(EngineError(f"the engine could not start this request: {exc}", status=500))
            self._release(slot)

    def _reap(self) -> None:
        for slot in self.slots:
            if slot.job is not None and slot.job.cancelled:
                self._release(slot)

    def _step(self) -> None:
        adapter, slots = self._next_group()
        self._use_adapter(adapter)
        lib, batch = self.lib, self.batch
        n = 0
        plan: list[tuple[Slot, Job, int, int, list[int]]] = []  # slot, job, tokens, logits at, draft
        generating = [
            s for s in slots if s.job is not None and not s.job.prefilling and s.job.pending is not None
        ]
        lookup = self.options.lookup
        drafting = lookup.enabled and len(generating) <= lookup.max_streams
        cost = self.draft_cost.share
        for slot in generating:  # the next token of each generating sequence, and maybe a draft
            job = slot.job
            assert job is not None and job.pending is not None
            draft: list[int] = []
            if drafting and job.lookup is not None:
                room = self.options.batch_size - n - 1
                draft = job.lookup.draft(min(room, job.max_tokens - job.generated - 1), cost)
            pos = len(slot.tokens)
            self._put(n, job.pending, pos, slot.seq, True)
            for i, token in enumerate(draft, start=1):
                self._put(n + i, token, pos + i, slot.seq, True)
            plan.append((slot, job, 1 + len(draft), n, draft))
            n += 1 + len(draft)
        for slot in slots:  # then chunks of prompts, as far as the batch allows
            job = slot.job
            assert job is not None
            room = self.options.batch_size - n
            if job.prefilling and room > 0:
                start = job.computed
                take = min(room, len(job.prompt) - start)
                for i in range(take):
                    last = start + i == len(job.prompt) - 1
                    self._put(n + i, job.prompt[start + i], start + i, slot.seq, last)
                n += take
                plan.append((slot, job, take, n - 1 if start + take == len(job.prompt) else -1, []))
        if not n:
            return
        batch.n_tokens = n
        before = self.meter.read()
        status = lib.llama_decode(self.ctx, batch)
        spent = self.meter.spent(before, self.meter.read())
        self.steps += 1
        self.spent = plus(self.spent, spent)
        for _, job, tokens, *_ in plan:  # each request's share: the tokens it had in the step
            job.compute = plus(job.compute, portion(spent, tokens / n))
        if status != 0:
            self._decode_failed(status, [slot for slot, *_ in plan])
            return
        if len(plan) == 1 and generating:
            self.draft_cost.observe(n, spent.busy_seconds)
        for slot, job, added, index, draft in plan:
            if job.prefilling:
                slot.tokens.extend(job.prompt[job.computed : job.computed + added])
                job.computed += added
                if index >= 0:
                    job.pending = self._next_token(job, slot, index)
            else:
                self._accept(job, slot, index, draft)

    def _accept(self, job: Job, slot: Slot, index: int, draft: list[int]) -> None:
        """After a step: the pending token is in the cache; sample its successor, then keep every
        drafted token the sampler agrees with. Cells of rejected draft tokens are dropped."""
        assert job.pending is not None
        slot.tokens.append(job.pending)
        self.drafted += len(draft)  # counted before sampling: a finished job's caller sees them
        token = self._next_token(job, slot, index)
        accepted = 0
        while token is not None and accepted < len(draft) and token == draft[accepted]:
            slot.tokens.append(token)
            accepted += 1
            self.accepted += 1
            token = self._next_token(job, slot, index + accepted)
        job.pending = token
        if job.lookup is not None:
            job.lookup.observe(len(draft), accepted)
        if accepted < len(draft):
            self.lib.llama_memory_seq_rm(self.memory, slot.seq, len(slot.tokens), -1)

    def _put(self, i: int, token: int, pos: int, seq: int, logits: bool) -> None:
        batch = self.batch
        batch.token[i] = token
        batch.pos[i] = pos
        batch.n_seq_id[i] = 1
        batch.seq_id[i][0] = seq
        batch.logits[i] = logits

    def _next_token(self, job: Job, slot: Slot, index: int) -> int | None:
        """Sample at batch position `index` and hand the text on; the token if the job goes on."""
        params, weights = job.params, self.weights
        # A view of llama.cpp's logits: the sampler copies them, so they stay as the model gave them.
        logits = logits_at(self.lib, self.ctx, index, weights.n_vocab) if params.logprobs else None
        assert job.sampler is not None
        token = job.sampler.sample(self.ctx, index)
        if weights.is_end(token):
            self._finish(job, slot, "stop")
            return None
        logprob = None
        if logits is not None:
            logprob = token_logprob(logits, token, params.top_logprobs, weights.piece)
        reason = job.feed(weights.piece(token), logprob)
        if reason is not None:
            if job.looping:
                assert job.repetition is not None and job.repetition.found is not None
                log.info(
                    "stopped a runaway repetition (%s) after %d tokens on %s",
                    job.repetition.found[0],
                    job.generated,
                    weights.path.name,
                )
            self._finish(job, slot, reason)
            return None
        if job.lookup is not None:
            job.lookup.append(token)
        return token

    def _finish(self, job: Job, slot: Slot, reason: FinishReason) -> None:
        self._release(slot)  # first, so a caller that sees the end also sees the slot free
        job.finish(reason)

    def _release(self, slot: Slot) -> None:
        job = slot.job
        if job is not None and job.sampler is not None:
            job.sampler.close()
            job.sampler = None
        slot.job = None
        slot.last_used = time.monotonic()
        if slot.adapter is not None and slot.adapter not in self._adapters:
            self._forget(slot)
            self._free_retired()

    def _free_retired(self) -> None:
        in_use = {slot.job.adapter_name for slot in self.slots if slot.job is not None}
        for adapter in [a for a in self._retired if a.name not in in_use]:
            if self._active_adapter is adapter:
                self.lib.llama_set_adapters_lora(self.ctx, None, 0, None)
                self._active_adapter = None
            self.weights.free_adapter(adapter.handle)
            self._retired.remove(adapter)

    def _forget(self, slot: Slot) -> None:
        self.lib.llama_memory_seq_rm(self.memory, slot.seq, -1, -1)
        slot.tokens = []

    def _next_group(self) -> tuple[Adapter | None, list[Slot]]:
        """The busy slots of one adapter (or of the base model); groups take turns step by step."""
        groups: dict[str | None, list[Slot]] = {}
        for slot in self.slots:
            if slot.job is not None:
                groups.setdefault(slot.job.adapter_name, []).append(slot)
        keys = sorted(groups, key=lambda k: k or "")
        self._turn = (self._turn + 1) % len(keys)
        slots = groups[keys[self._turn]]
        assert slots[0].job is not None
        return slots[0].job.adapter, slots

    def _use_adapter(self, adapter: Adapter | None) -> None:
        if adapter is self._active_adapter:
            return
        lib = self.lib
        if adapter is None:
            lib.llama_set_adapters_lora(self.ctx, None, 0, None)
        else:
            handles = (lib.llama_adapter_lora_p_ctypes * 1)(adapter.handle)
            scales = (ctypes.c_float * 1)(adapter.scale)
            lib.llama_set_adapters_lora(self.ctx, handles, 1, scales)
        self._active_adapter = adapter

    def _decode_failed(self, status: int, slots: list[Slot]) -> None:
        log.error("llama_decode returned %s for %s", status, self.weights.path.name)
        for slot in slots:
            assert slot.job is not None
            slot.job.emit(
                EngineError(f"the engine could not decode this request (status {status})", status=500)
            )
            self._release(slot)
            self._forget(slot)

    def _fail_all(self, error: StratoError) -> None:
        with self._cond:
            waiting = list(self.queue)
            for job in waiting:
                self.queue.remove(job)
        outboxes = _outboxes([*waiting, *(slot.job for slot in self.slots)])
        for job in waiting:
            job.emit(error)
        for slot in self.slots:
            if slot.job is not None:
                slot.job.emit(error)
                self._release(slot)
        for outbox in outboxes:
            outbox.flush()

    def _free(self) -> None:
        if self.ctx:
            self.lib.llama_batch_free(self.batch)
            self.lib.llama_free(self.ctx)
            self.ctx = None


def _outboxes(jobs: Iterable[Job | None]) -> set[Outbox]:
    """Where these jobs' items wait to be delivered (one outbox per event loop)."""
    return {job.outbox for job in jobs if job is not None and job.outbox is not None}


def _common(slot: Slot, job: Job) -> int:
    """How many leading prompt tokens `slot`'s cache already holds (under the same adapter)."""
    if slot.adapter != job.adapter_name or not slot.tokens:
        return 0
    n = 0
    for a, b in zip(slot.tokens, job.prompt, strict=False):
        if a != b:
            break
        n += 1
    return n
