"""`POST /v1/feedback` end to end, in process: the gateway with a master key, virtual keys made
through the admin API, feedback given over HTTP and read back with the traces API."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.server.test_traces_api import MASTER, Key, chat, get, listed, new_key
from tests.support.inprocess import InProcess, in_process
from tests.support.upstream import Upstream


@pytest.fixture(scope="module")
async def gateway(tmp_path_factory: pytest.TempPathFactory, upstream: Upstream) -> AsyncIterator[InProcess]:
    tmp = tmp_path_factory.mktemp("feedback")
    async with in_process(tmp, [upstream.model("echo")], server={"master_key": MASTER}) as served:
        yield served


@pytest.fixture(scope="module")
async def keys(gateway: InProcess) -> dict[str, Key]:
    a, b = await new_key(gateway, "a"), await new_key(gateway, "b")
    a.traces += [await chat(gateway, a.secret, "echo", f"question {i} from a") for i in range(3)]
    b.traces.append(await chat(gateway, b.secret, "echo", "question from b"))
    return {"a": a, "b": b, "master": Key("master", MASTER, [])}


async def give(gateway: InProcess, key: Key | None, body: Any = None, **fields: Any) -> httpx.Response:
    headers = key.auth if key is not None else {}
    if isinstance(body, bytes):
        return await gateway.http.post("/v1/feedback", content=body, headers=headers, timeout=30)
    return await gateway.http.post(
        "/v1/feedback", json=fields if body is None else body, headers=headers, timeout=30
    )


async def test_feedback_is_stored_and_shown_with_the_trace(gateway: InProcess, keys: dict[str, Key]) -> None:
    a = keys["a"]
    before = time.time()
    response = await give(
        gateway,
        a,
        trace_id=a.traces[0],
        score=0,
        label="wrong_answer",
        comment="It is Paris, not Lyon.",
        correction="The capital of France is Paris.",
        source="user",
    )
    assert response.status_code == 201, response.text
    stored = response.json()
    assert stored["object"] == "feedback" and len(stored["id"]) == 32
    assert {k: stored[k] for k in ("trace_id", "score", "label", "comment", "correction", "source")} == {
        "trace_id": a.traces[0],
        "score": 0.0,
        "label": "wrong_answer",
        "comment": "It is Paris, not Lyon.",
        "correction": "The capital of France is Paris.",
        "source": "user",
    }
    assert before - 1 <= stored["created_at"] <= time.time() + 1
    # A 201 means stored: the trace shows it at once.
    shown = (await get(gateway, f"/v1/traces/{a.traces[0]}", a)).json()
    assert shown["feedback"] == [stored]
    assert shown["anomalies"] == [] and isinstance(shown["spans"], list)


async def test_thumbs_up_and_several_feedbacks(gateway: InProcess, keys: dict[str, Key]) -> None:
    a = keys["a"]
    up = await give(gateway, a, trace_id=a.traces[1], score=True)
    assert up.status_code == 201 and up.json()["score"] == 1.0 and up.json()["source"] == "api"
    assert up.json()["label"] is None and up.json()["comment"] is None and up.json()["correction"] is None
    second = await give(gateway, a, trace_id=a.traces[1], score=0.25, label="too_long")
    assert second.status_code == 201
    feedback = (await get(gateway, f"/v1/traces/{a.traces[1]}", a)).json()["feedback"]
    assert [(f["score"], f["label"]) for f in feedback] == [(1.0, None), (0.25, "too_long")]
    # The list filters by it.
    assert a.traces[1] in await listed(gateway, a, feedback="positive")
    assert a.traces[1] in await listed(gateway, a, feedback="negative")
    assert a.traces[2] in await listed(gateway, a, feedback="none")
    assert a.traces[2] not in await listed(gateway, a, feedback="any")


async def test_feedback_right_after_the_answer(gateway: InProcess, keys: dict[str, Key]) -> None:
    """The trace may still wait for the batched writer when the feedback arrives."""
    a = keys["a"]
    for i in range(5):
        answered = await gateway.http.post(
            "/v1/chat/completions",
            json={"model": "echo", "messages": [{"role": "user", "content": f"quick {i}"}]},
            headers=a.auth,
            timeout=30,
        )
        trace_id = answered.headers["x-strato-trace-id"]
        response = await give(gateway, a, trace_id=trace_id, score=1)
        assert response.status_code == 201, response.text


async def test_unknown_and_other_keys_traces_are_404(gateway: InProcess, keys: dict[str, Key]) -> None:
    a, b = keys["a"], keys["b"]
    for trace_id in ("0123456789abcdef0123456789abcdef", b.traces[0], a.traces[0][:12]):
        response = await give(gateway, a, trace_id=trace_id, score=1)
        assert response.status_code == 404, response.text
        error = response.json()["error"]
        assert error["code"] == "trace_not_found" and error["type"] == "invalid_request_error"
        assert error["message"] == f"No trace with id {trace_id!r}." and error["param"] == "trace_id"
    # Nothing was stored.
    assert (await get(gateway, f"/v1/traces/{b.traces[0]}", b)).json()["feedback"] == []


async def test_the_admin_key_may_give_feedback_on_any_trace(gateway: InProcess, keys: dict[str, Key]) -> None:
    b = keys["b"]
    response = await give(gateway, keys["master"], trace_id=b.traces[0], score=0.9, source="reviewer")
    assert response.status_code == 201, response.text
    shown = (await get(gateway, f"/v1/traces/{b.traces[0]}", b)).json()
    assert [f["source"] for f in shown["feedback"]] == ["reviewer"]


async def test_bad_keys_are_401(gateway: InProcess, keys: dict[str, Key]) -> None:
    for key in (None, Key("x", "sk-strato-not-a-key", [])):
        response = await give(gateway, key, trace_id=keys["a"].traces[0], score=1)
        assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_api_key"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b"{not json", None),
        (b"\xff\xfe", None),
        ([1, 2], None),
        ({"score": 1}, "trace_id"),
        ({"trace_id": "x"}, "score"),
        ({"trace_id": 42, "score": 1}, "trace_id"),
        ({"trace_id": "", "score": 1}, "trace_id"),
        ({"trace_id": "x", "score": 1.5}, "score"),
        ({"trace_id": "x", "score": -0.1}, "score"),
        ({"trace_id": "x", "score": "good"}, "score"),
        ({"trace_id": "x", "score": None}, "score"),
        ({"trace_id": "x", "score": 1, "label": "x" * 129}, "label"),
        ({"trace_id": "x", "score": 1, "label": 5}, "label"),
        ({"trace_id": "x", "score": 1, "comment": ["a"]}, "comment"),
        ({"trace_id": "x", "score": 1, "correction": {"text": "a"}}, "correction"),
        ({"trace_id": "x", "score": 1, "scroe": 1}, "scroe"),
    ],
)
async def test_malformed_bodies_are_400_naming_the_field(
    gateway: InProcess, keys: dict[str, Key], body: Any, param: str | None
) -> None:
    response = await give(gateway, keys["a"], body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param
    if isinstance(body, bytes):
        assert error["code"] == "invalid_json"


async def test_nan_is_no_score(gateway: InProcess, keys: dict[str, Key]) -> None:
    body = b'{"trace_id": "%s", "score": NaN}' % keys["a"].traces[0].encode()
    response = await give(gateway, keys["a"], body)
    assert response.status_code == 400 and response.json()["error"]["param"] == "score"


async def test_without_a_master_key_anyone_may_give_feedback(
    tmp_path_factory: pytest.TempPathFactory, upstream: Upstream
) -> None:
    tmp = tmp_path_factory.mktemp("open")
    async with in_process(tmp, [upstream.model("echo")], server={"master_key": None}) as served:
        trace_id = await chat(served, "anything", "echo", "hello")
        response = await served.http.post("/v1/feedback", json={"trace_id": trace_id, "score": False})
        assert response.status_code == 201 and response.json()["score"] == 0.0
        assert (await served.http.get(f"/v1/traces/{trace_id}")).json()["feedback"][0]["score"] == 0.0
