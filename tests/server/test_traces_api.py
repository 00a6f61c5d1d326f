"""The traces API end to end, in process: the gateway with a master key, virtual keys made through
the admin API, requests sent with the official openai SDK, traces read back over HTTP.

The one test of `strato traces list` runs that command line on the gateway's database."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import openai
import pytest

from tests.cli.test_cli import strato
from tests.support.inprocess import InProcess, in_process
from tests.support.upstream import Upstream

MASTER = "sk-master-traces"
ADMIN = {"authorization": f"Bearer {MASTER}"}
GUARDS = {"pii": {"enforce": True, "input": {"action": "redact"}}}


@dataclass
class Key:
    id: str
    secret: str
    traces: list[str]  # ids of the requests made with it, oldest first

    @property
    def auth(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.secret}"}


async def chat(gateway: InProcess, key: str, model: str, content: str) -> str:
    """Send a chat; the id of its trace, once the trace is stored."""
    try:
        response = await gateway.sdk(key).chat.completions.with_raw_response.create(
            model=model, messages=[{"role": "user", "content": content}]
        )
        trace_id = response.headers["x-strato-trace-id"]
    except openai.APIStatusError as exc:
        trace_id = exc.response.headers["x-strato-trace-id"]
    gateway.trace(trace_id)
    return trace_id


async def new_key(gateway: InProcess, name: str, **spec: Any) -> Key:
    response = await gateway.http.post("/admin/keys", json={"name": name, **spec}, headers=ADMIN)
    assert response.status_code == 201, response.text
    return Key(response.json()["id"], response.json()["key"], [])


@pytest.fixture(scope="module")
async def gateway(tmp_path_factory: pytest.TempPathFactory, upstream: Upstream) -> AsyncIterator[InProcess]:
    models = [
        upstream.model("echo", input_cost=1_000_000.0, output_cost=1_000_000.0),
        upstream.model("other"),
        upstream.model("broken", "fail"),
        upstream.model("silent", "say:"),  # an empty answer: EMPTY_ANSWER
    ]
    data_dir = tmp_path_factory.mktemp("traces") / "data"
    async with in_process(data_dir, models, server={"master_key": MASTER}, guards=GUARDS) as served:
        yield served


@pytest.fixture(scope="module")
async def keys(gateway: InProcess) -> dict[str, Key]:
    """Key a made three requests (one failed), key b two; the master key one. Oldest first."""
    a, b = await new_key(gateway, "a"), await new_key(gateway, "b")
    a.traces.append(await chat(gateway, a.secret, "echo", "first from a"))
    b.traces.append(await chat(gateway, b.secret, "other", "first from b"))
    a.traces.append(await chat(gateway, a.secret, "broken", "a fails"))
    a.traces.append(await chat(gateway, a.secret, "echo", "mail ann@example.com"))
    b.traces.append(await chat(gateway, b.secret, "echo", "second from b"))
    master = Key("master", MASTER, [await chat(gateway, MASTER, "other", "from the master key")])
    return {"a": a, "b": b, "master": master}


async def get(gateway: InProcess, path: str, key: Key | None, **params: Any) -> httpx.Response:
    return await gateway.http.get(path, params=params, headers=key.auth if key else {}, timeout=30)


async def listed(gateway: InProcess, key: Key, **params: Any) -> list[str]:
    response = await get(gateway, "/v1/traces", key, **params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "list"
    return [t["id"] for t in body["data"]]


async def test_a_key_lists_only_its_own_traces_newest_first(gateway: InProcess, keys: dict[str, Key]) -> None:
    a, b = keys["a"], keys["b"]
    assert await listed(gateway, a) == a.traces[::-1]
    assert await listed(gateway, b) == b.traces[::-1]
    # Asking for another key's traces gives none, not theirs.
    assert await listed(gateway, a, api_key=b.id) == []
    assert await listed(gateway, a, api_key=a.id) == a.traces[::-1]


async def test_another_keys_trace_is_404_like_a_missing_one(gateway: InProcess, keys: dict[str, Key]) -> None:
    a, b = keys["a"], keys["b"]
    own = await get(gateway, f"/v1/traces/{a.traces[0]}", a)
    assert own.status_code == 200 and own.json()["id"] == a.traces[0]
    theirs = await get(gateway, f"/v1/traces/{b.traces[0]}", a)
    missing = await get(gateway, "/v1/traces/0123456789abcdef0123456789abcdef", a)
    assert theirs.status_code == missing.status_code == 404
    for response, trace_id in ((theirs, b.traces[0]), (missing, "0123456789abcdef0123456789abcdef")):
        error = response.json()["error"]
        assert error["code"] == "trace_not_found" and error["type"] == "invalid_request_error"
        assert error["message"] == f"No trace with id {trace_id!r}."
    # A unique prefix finds a trace in `strato traces show`, never over HTTP.
    assert (await get(gateway, f"/v1/traces/{a.traces[0][:12]}", a)).status_code == 404


async def test_the_sdk_reads_traces_and_their_errors(gateway: InProcess, keys: dict[str, Key]) -> None:
    a, b = keys["a"], keys["b"]
    client = gateway.sdk(a.secret)
    body = await client.get("/traces", cast_to=object, options={"params": {"limit": 1}})
    assert isinstance(body, dict) and [t["id"] for t in body["data"]] == [a.traces[-1]]
    with pytest.raises(openai.NotFoundError) as caught:
        await client.get(f"/traces/{b.traces[0]}", cast_to=object)
    assert isinstance(caught.value.body, dict) and caught.value.body["code"] == "trace_not_found"


async def test_admin_sees_every_key_and_filters_by_key(gateway: InProcess, keys: dict[str, Key]) -> None:
    a, b, master = keys["a"], keys["b"], keys["master"]
    everything = await listed(gateway, master)
    assert set(a.traces + b.traces + master.traces) <= set(everything)
    assert await listed(gateway, master, api_key=b.id) == b.traces[::-1]
    assert await listed(gateway, master, api_key="master") == master.traces
    assert (await get(gateway, f"/v1/traces/{b.traces[0]}", master)).json()["api_key"] == b.id


async def test_bad_keys_get_401_in_openai_format(gateway: InProcess, keys: dict[str, Key]) -> None:
    revoked = await new_key(gateway, "revoked")
    assert (await gateway.http.delete(f"/admin/keys/{revoked.id}", headers=ADMIN)).status_code == 200
    for key in (None, Key("x", "sk-strato-not-a-key", []), revoked):
        for path in ("/v1/traces", f"/v1/traces/{keys['a'].traces[0]}"):
            response = await get(gateway, path, key)
            assert response.status_code == 401, (path, response.text)
            error = response.json()["error"]
            assert error["code"] == "invalid_api_key" and error["type"] == "invalid_request_error"
    with pytest.raises(openai.AuthenticationError):
        await gateway.sdk("sk-strato-nope").get("/traces", cast_to=object)


async def test_a_trace_object_says_what_happened(gateway: InProcess, keys: dict[str, Key]) -> None:
    a = keys["a"]
    first = (await get(gateway, f"/v1/traces/{a.traces[0]}", a)).json()
    assert first["object"] == "trace" and first["model"] == "echo" and first["deployment"] == "echo"
    assert first["api_key"] == a.id and first["status"] == 200 and first["error"] is None
    assert first["endpoint"] == "chat" and first["stream"] is False
    assert isinstance(first["created"], int) and abs(first["created"] - time.time()) < 300
    assert (
        first["usage"]["total_tokens"]
        == first["usage"]["prompt_tokens"] + first["usage"]["completion_tokens"]
    )
    assert first["usage"]["completion_tokens"] > 0 and first["cost"] > 0
    assert first["latency_ms"] > 0 and first["cache"] is None and first["guards"] is None
    assert first["request"]["messages"] == [{"role": "user", "content": "first from a"}]
    assert first["completion"] == "echo: first from a"
    # No key's secret, nor a field for one (a span may be named "strato.guard.secrets").
    assert '"secret"' not in json.dumps(first) and a.secret not in json.dumps(first)
    assert first["anomalies"] == [] and first["feedback"] == []
    assert first["spans"] and all(s["duration_ms"] >= 0 for s in first["spans"])

    failed = (await get(gateway, f"/v1/traces/{a.traces[1]}", a)).json()
    assert failed["status"] >= 500 and failed["error"]["code"] and failed["error"]["message"]
    assert failed["completion"] is None

    guarded = (await get(gateway, f"/v1/traces/{a.traces[2]}", a)).json()
    assert guarded["guards"][0]["findings"][0]["type"] == "EMAIL_ADDRESS"
    assert "guards" not in guarded["request"]
    assert "ann@example.com" not in json.dumps(guarded["request"])


async def test_filters(gateway: InProcess, keys: dict[str, Key]) -> None:
    a, master = keys["a"], keys["master"]
    assert await listed(gateway, a, model="echo") == [a.traces[2], a.traces[0]]
    assert await listed(gateway, a, status="error") == [a.traces[1]]
    assert await listed(gateway, a, status="5xx") == [a.traces[1]]
    assert await listed(gateway, a, status="ok") == [a.traces[2], a.traces[0]]
    assert await listed(gateway, a, status="200") == [a.traces[2], a.traces[0]]
    started = [(await get(gateway, f"/v1/traces/{t}", a)).json()["started_at"] for t in a.traces]
    assert await listed(gateway, a, since=started[1]) == [a.traces[2], a.traces[1]]
    # ISO has microseconds and fromtimestamp rounds to the nearest one, possibly past the start:
    # a millisecond earlier is still after the first trace began.
    iso = datetime.fromtimestamp(started[1] - 0.001, UTC).isoformat().replace("+00:00", "Z")
    assert await listed(gateway, a, since=iso) == [a.traces[2], a.traces[1]]
    assert await listed(gateway, a, before=started[1]) == [a.traces[0]]
    assert await listed(gateway, master, since=time.time() + 60) == []


async def test_pages_with_after_cursor(gateway: InProcess, keys: dict[str, Key]) -> None:
    a, b = keys["a"], keys["b"]
    seen: list[str] = []
    after: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"after": after} if after else {})}
        body = (await get(gateway, "/v1/traces", a, **params)).json()
        seen += [t["id"] for t in body["data"]]
        assert body["last_id"] == (body["data"][-1]["id"] if body["data"] else None)
        if not body["has_more"]:
            break
        after = body["last_id"]
    assert seen == a.traces[::-1]
    # Another key's trace is no cursor: it is not there for this key.
    refused = await get(gateway, "/v1/traces", a, after=b.traces[0])
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "after"


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"since": "yesterday"}, "since"),
        ({"before": "nan"}, "before"),
        ({"status": "bad"}, "status"),
        ({"status": "700"}, "status"),
        ({"until": "later"}, "until"),
        ({"anomaly": "BORING"}, "anomaly"),
        ({"feedback": "meh"}, "feedback"),
    ],
)
async def test_bad_parameters_are_400_naming_the_parameter(
    gateway: InProcess, keys: dict[str, Key], params: dict[str, Any], param: str
) -> None:
    response = await get(gateway, "/v1/traces", keys["a"], **params)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error"


async def test_limit_caps_a_page(gateway: InProcess, keys: dict[str, Key]) -> None:
    body = (await get(gateway, "/v1/traces", keys["master"], limit=1000)).json()
    assert len(body["data"]) >= 6 and body["has_more"] is False
    one = (await get(gateway, "/v1/traces", keys["master"], limit=1)).json()
    assert len(one["data"]) == 1 and one["has_more"] is True


async def test_filters_by_anomaly_feedback_user_and_words(gateway: InProcess, keys: dict[str, Key]) -> None:
    a, master = keys["a"], keys["master"]
    c = await new_key(gateway, "c")
    response = await gateway.http.post(
        "/v1/chat/completions",
        json={"model": "silent", "messages": [{"role": "user", "content": "say nothing"}], "user": "ann"},
        headers=c.auth,
    )
    empty = response.headers["x-strato-trace-id"]
    gateway.trace(empty)
    assert await listed(gateway, c, anomaly="EMPTY_ANSWER") == [empty]
    assert await listed(gateway, c, anomaly="empty_answer") == [empty]
    assert await listed(gateway, c, anomaly="any") == [empty]
    assert await listed(gateway, a, anomaly="any") == []  # only the caller's own
    assert empty in await listed(gateway, master, anomaly="any")
    assert (await get(gateway, f"/v1/traces/{empty}", c)).json()["anomalies"] == ["EMPTY_ANSWER"]
    assert await listed(gateway, master, user="ann") == [empty]
    assert await listed(gateway, c, user="bob") == []
    # Feedback
    assert await listed(gateway, c, feedback="none") == [empty]
    given = await gateway.http.post("/v1/feedback", json={"trace_id": empty, "score": 0}, headers=c.auth)
    assert given.status_code == 201, given.text
    assert await listed(gateway, c, feedback="negative") == [empty]
    assert await listed(gateway, c, feedback="positive") == await listed(gateway, c, feedback="none") == []
    [shown] = (await get(gateway, "/v1/traces", c)).json()["data"]
    assert [f["score"] for f in shown["feedback"]] == [0.0]
    # Words in the request or the answer, every one of them, any case.
    assert await listed(gateway, a, q="FIRST") == [a.traces[0]]
    assert await listed(gateway, a, q="echo: first") == [a.traces[0]]  # "echo:" is in the answer
    assert await listed(gateway, a, q="first fails") == []
    started = [(await get(gateway, f"/v1/traces/{t}", a)).json()["started_at"] for t in a.traces]
    assert await listed(gateway, a, until=started[1]) == [a.traces[0]]


async def test_the_cli_lists_what_the_api_does(gateway: InProcess, keys: dict[str, Key]) -> None:
    """`strato traces list` itself, a command line of its own, on the database the gateway writes
    (every trace of `keys` is stored by now)."""
    a = keys["a"]
    env = {"STRATO_MASTER_KEY": MASTER}
    data_dir = gateway.runtime.settings.store.data_dir
    result = strato("traces", "list", "--key", a.id, "--json", data_dir=data_dir, env=env)
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["id"] for line in result.stdout.splitlines()] == await listed(gateway, a)


async def test_without_a_master_key_everyone_sees_every_trace(
    tmp_path_factory: pytest.TempPathFactory, upstream: Upstream
) -> None:
    tmp = tmp_path_factory.mktemp("open")
    async with in_process(tmp, [upstream.model("echo")], server={"master_key": None}) as served:
        made = [await chat(served, "anything", "echo", f"open {i}") for i in range(2)]
        for key in (None, Key("x", "sk-strato-whatever", [])):
            assert [t["id"] for t in (await get(served, "/v1/traces", key)).json()["data"]] == made[::-1]
            assert (await get(served, f"/v1/traces/{made[0]}", key)).status_code == 200
