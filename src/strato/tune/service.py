"""Fine-tuning jobs a running gateway starts (`POST /admin/tune/jobs`): each is trained in its worker
process and waited for on a thread of the service's own, never on the event loop, one job at a
time (on a small machine a second would only halve the speed of both). A finished job's model is
registered, served by this gateway at once, and judged by the evaluation gate; the gateway keeps
serving throughout. Closing the service stops a running job where it is (resumable)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections import deque
from dataclasses import asdict, replace
from typing import Any

from strato.config import Settings
from strato.evals.datasets import DatasetStore
from strato.evals.runs import RunStore
from strato.evals.targets import GatewayTarget
from strato.gateway import Gateway
from strato.tune.gate import gate_job
from strato.tune.jobs import POLL_SECONDS, Job, NameTaken, TuneJobs
from strato.tune.options import TuneOptions
from strato.tune.registry import TunedModels

log = logging.getLogger(__name__)


class TuneService:
    def __init__(
        self,
        settings: Settings,
        jobs: TuneJobs,
        datasets: DatasetStore,
        registry: TunedModels,
        runs: RunStore,
        gateway: Gateway,
    ) -> None:
        self.settings = settings
        self.jobs = jobs
        self.datasets = datasets
        self.registry = registry
        self.runs = runs
        self.gateway = gateway
        self._queue: deque[str] = deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._done: dict[str, asyncio.Future[Job]] = {}  # per job submitted: resolved when it ends

    async def submit(
        self, dataset: str, version: int | None, base: str, name: str, options: TuneOptions
    ) -> Job:
        """Create a job (its reads and writes on a thread) and queue it. Refuses, in one line,
        what `strato tune run` refuses. The job's serving and gate come back to this event loop."""
        if name in self.gateway.models.generators or name in self.gateway.models.embedders:
            raise NameTaken(f"a model named {name!r} is served already; choose another name")
        self._loop = asyncio.get_running_loop()
        create = self.jobs.from_dataset
        job = await asyncio.to_thread(
            create, self.settings, self.datasets, dataset, version, base, name, options
        )
        self._done[job.id] = self._loop.create_future()
        with self._lock:
            self._queue.append(job.id)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name="strato-tune", daemon=True)
                self._thread.start()
        return job

    def queued(self) -> list[str]:
        with self._lock:
            return list(self._queue)

    def _work(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                if not self._queue:
                    self._thread = None
                    return
                job_id = self._queue[0]
            try:
                self._train(self.jobs.get(job_id))
            except Exception:
                log.exception("fine-tuning job %s failed", job_id)
            finally:
                with self._lock:
                    self._queue.popleft()
                self._settle(job_id)

    def _train(self, job: Job) -> None:
        ended = self.jobs.run(job, stop=self._stop)
        if ended.status != "finished":
            log.warning("fine-tuning job %s %s: %s", ended.id, ended.status, ended.error)
            return
        self.registry.register(ended)
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        served = asyncio.run_coroutine_threadsafe(self._serve_and_gate(ended), loop)
        while True:  # not `result()` alone: a gateway closing waits for this thread, on the loop
            try:
                served.result(timeout=POLL_SECONDS)
                return
            except concurrent.futures.TimeoutError:
                if self._stop.is_set():
                    served.cancel()
                    return

    async def _serve_and_gate(self, job: Job) -> None:
        """On the event loop: serve the new model now, then run the gate through this gateway."""
        model = self.registry.get(job.name)
        if model is None:
            return
        self.gateway.models.add(model.entry())
        target = GatewayTarget(self.gateway, self.settings.server.master_key)
        verdict = await gate_job(target, self.runs, self.datasets, self.registry, job)
        log.info("fine-tuned model %s: %s (%s)", job.name, verdict.stage, verdict.reason)

    def _settle(self, job_id: str) -> None:
        """Resolve `done(job_id)` with the job as it ended, on the loop that submitted it."""
        loop, future = self._loop, self._done.pop(job_id, None)
        if loop is None or future is None or loop.is_closed():
            return
        job = self.jobs.get(job_id)

        def resolve() -> None:
            if not future.done():
                future.set_result(job)

        loop.call_soon_threadsafe(resolve)

    async def done(self, job_id: str) -> Job:
        """The job once it has ended: trained, served and gated, or stopped or failed."""
        future = self._done.get(job_id)
        return await future if future is not None else await asyncio.to_thread(self.jobs.get, job_id)

    def describe(self, job: Job) -> dict[str, Any]:
        """A job as the API shows it: the job, `queued` when it waits its turn, and its model."""
        model = self.registry.get(job.name) if job.status == "finished" else None
        status = "queued" if job.status == "created" and job.id in self.queued() else job.status
        shown = asdict(replace(job, status=status))
        return {"object": "tune.job", **shown, "model": None if model is None else asdict(model)}

    def close(self) -> None:
        """Stop the running job (it is left resumable) and the thread."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=60)
