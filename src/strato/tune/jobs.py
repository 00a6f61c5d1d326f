"""Fine-tuning jobs: each in a directory of its own under `<data_dir>/tune/`, trained in a worker
process, so that neither a server's event loop nor the CLI's process holds torch or the model.

A job's directory holds `job.json` (what was asked and how far it got: written by the parent
process only, replaced atomically), `examples.jsonl` (the training and held-out examples, fixed
when the job is created), the worker's `checkpoint/`, and once finished the peft `adapter/` and
the GGUF adapter the engine serves. A job killed at any point (`kill -9` included) resumes from its
last checkpoint: `run(job)` again.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import queue
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from strato.config import Settings
from strato.errors import InvalidRequest, StratoError
from strato.evals.datasets import DatasetStore
from strato.tune.examples import Example, examples_from_cases, local_base, split
from strato.tune.options import TuneOptions

POLL_SECONDS = 0.5  # how often the parent looks whether a silent worker is still alive


class JobNotFound(StratoError):
    status = 404
    type = "invalid_request_error"
    code = "tune_job_not_found"


class NameTaken(StratoError):
    status = 409
    type = "invalid_request_error"
    code = "model_name_taken"


@dataclass(frozen=True)
class Job:
    id: str
    name: str  # the model name the adapter is served under
    base: str  # the configured local model it adapts
    base_path: str  # that model's GGUF file
    dataset: str
    version: int
    options: dict[str, Any]
    created_at: float
    status: str = "created"  # created, running, stopped, interrupted, failed, finished
    step: int = 0
    steps: int | None = None
    loss: float | None = None
    error: str | None = None
    train_size: int = 0
    held_out: list[int] = field(default_factory=list)  # positions of the held-out cases
    adapter: str | None = None  # the GGUF adapter, once finished
    updated_at: float | None = None

    @property
    def tune_options(self) -> TuneOptions:
        return TuneOptions.model_validate(self.options)


class TuneJobs:
    def __init__(self, root: Path, bases: Path | None = None) -> None:
        """`bases`: where dequantised base models are kept between jobs (default `root/bases`)."""
        self.root = root
        self.bases = bases or root / "bases"

    def create(
        self,
        name: str,
        base: str,
        base_path: Path,
        dataset: str,
        version: int,
        training: Sequence[Example],
        held_out: Sequence[Example],
        options: TuneOptions,
    ) -> Job:
        taken = [j for j in self.all() if j.name == name and j.status != "failed"]
        if taken:
            raise NameTaken(f"a fine-tuning job already makes a model named {name!r} ({taken[0].id})")
        job = Job(
            id=f"tune-{secrets.token_hex(4)}",
            name=name,
            base=base,
            base_path=str(base_path),
            dataset=dataset,
            version=version,
            options=options.model_dump(mode="json"),
            created_at=time.time(),
            train_size=len(training),
            held_out=[e.position for e in held_out],
        )
        directory = self.root / job.id
        directory.mkdir(parents=True)
        with (directory / "examples.jsonl").open("w") as out:
            for split, examples in (("train", training), ("held_out", held_out)):
                for e in examples:
                    out.write(json.dumps({"split": split, **asdict(e)}) + "\n")
        return self._save(job)

    def from_dataset(
        self,
        settings: Settings,
        datasets: DatasetStore,
        dataset: str,
        version: int | None,
        base: str,
        name: str,
        options: TuneOptions,
    ) -> Job:
        """A job training `base` (a configured local model) on a data set version's cases, with
        `options.held_out` of them held out by `options.seed`: what `strato tune run` and
        `POST /admin/tune/jobs` create."""
        base_path = local_base(settings, base)
        found, cases = datasets.get(dataset, version)
        training, held = split(examples_from_cases(cases, found.name), options.held_out, options.seed)
        return self.create(name, base, base_path, found.name, found.version, training, held, options)

    def get(self, job_id: str) -> Job:
        path = self.root / job_id / "job.json"
        if "/" in job_id or not path.exists():
            raise JobNotFound(f"no fine-tuning job {job_id!r} (see `strato tune list`)")
        return Job(**json.loads(path.read_text()))

    def all(self) -> list[Job]:
        if not self.root.exists():
            return []
        found = [self.get(p.parent.name) for p in self.root.glob("tune-*/job.json")]
        return sorted(found, key=lambda j: j.created_at)

    def examples(self, job: Job, split: str = "train") -> list[Example]:
        rows = [json.loads(line) for line in (self.root / job.id / "examples.jsonl").open()]
        return [
            Example(r["position"], tuple(r["messages"]), r["answer"]) for r in rows if r["split"] == split
        ]

    def run(
        self,
        job: Job,
        on_event: Callable[[dict[str, Any]], None] = lambda event: None,
        stop: threading.Event | None = None,
    ) -> Job:
        """Train `job` (from its checkpoint, if it has one) in a worker process and wait for it,
        passing the worker's progress to `on_event`. Returns the job as it ended; with `stop` set,
        as interrupted (resumable) within half a second."""
        if job.status == "finished":
            raise InvalidRequest(f"{job.id} has finished; its adapter is {job.adapter}")
        context = multiprocessing.get_context("spawn")
        events: Any = context.Queue()
        worker = context.Process(
            target=work, args=(str(self.root / job.id), str(self.bases), events), daemon=True
        )
        job = self._save(replace(job, status="running", error=None))
        worker.start()
        try:
            while True:
                if stop is not None and stop.is_set():
                    worker.terminate()
                    worker.join()
                    return self._save(replace(job, status="interrupted", error="stopped before it finished"))
                try:
                    event = events.get(timeout=POLL_SECONDS)
                except queue.Empty:
                    if not worker.is_alive():
                        job = self._save(replace(job, status="interrupted", error=_died(worker.exitcode)))
                        break
                    continue
                job = self._follow(job, event)
                on_event(event)
                if event["event"] in ("finished", "stopped", "failed"):
                    break
        except BaseException:
            worker.terminate()
            worker.join()
            self._save(replace(job, status="interrupted", error="interrupted"))
            raise
        worker.join()
        return job

    def _follow(self, job: Job, event: dict[str, Any]) -> Job:
        kind = event["event"]
        if kind in ("loaded", "step"):
            loss = event.get("loss", job.loss)
            job = replace(job, step=event["step"], steps=event["steps"], loss=loss)
            return self._save(job) if kind == "loaded" or event["step"] % 5 == 0 else job
        if kind == "finished":
            return self._save(replace(job, status="finished", step=event["step"], adapter=event["adapter"]))
        if kind == "stopped":
            return self._save(replace(job, status="stopped", step=event["step"]))
        if kind == "failed":
            return self._save(replace(job, status="failed", error=event["error"]))
        return job

    def _save(self, job: Job) -> Job:
        job = replace(job, updated_at=time.time())
        path = self.root / job.id / "job.json"
        partial = path.with_name("job.json.partial")
        partial.write_text(json.dumps(asdict(job), indent=1))
        os.replace(partial, path)
        return job


def _died(code: int | None) -> str:
    how = f"was killed by signal {-code}" if code is not None and code < 0 else f"exited with status {code}"
    return f"the training process {how}; resume from the last checkpoint"


def work(directory: str, bases: str, events: Any) -> None:
    """The worker process: train the job in `directory`, export its adapter, report each step."""
    os.environ["TQDM_DISABLE"] = "1"  # transformers' GGUF loader draws a bar of its own
    from strato.tune.export import export_adapter
    from strato.tune.trainer import train

    job_dir = Path(directory)
    jobs = TuneJobs(job_dir.parent)
    job = jobs.get(job_dir.name)
    try:
        examples = jobs.examples(job)
        outcome = train(Path(job.base_path), examples, job.tune_options, job_dir, events.put, Path(bases))
        if outcome.status == "stopped":
            events.put({"event": "stopped", "step": outcome.step, "steps": outcome.steps})
            return
        adapter = export_adapter(
            job_dir / "adapter", Path(job.base_path), job_dir / f"{_file_name(job.name)}.gguf"
        )
        events.put(
            {"event": "finished", "step": outcome.step, "steps": outcome.steps, "adapter": str(adapter)}
        )
    except StratoError as exc:
        events.put({"event": "failed", "error": str(exc)})
    except Exception as exc:  # the parent reports it in one line; the job stays resumable
        events.put({"event": "failed", "error": f"{type(exc).__name__}: {exc}"})


def _file_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
