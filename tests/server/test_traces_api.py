"""The traces API end to end: `strato serve` with a master key, virtual keys made through the admin
API, requests sent with the official openai SDK, traces read back over HTTP."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import openai
import pytest

from tests.cli.test_cli import strato
from tests.support.gateway import GatewayProcess, gateway_process
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


def sdk(gateway: GatewayProcess, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0, timeout=30)


def chat(gateway: GatewayProcess, key: str, model: str, content: str) -> str:
    """Send a chat; the id of its trace, once the trace is stored."""
    with sdk(gateway, key) as client:
        try:
            response = client.chat.completions.with_raw_response.create(
                model=model, messages=[{"role": "user", "content": content}]
            )
            trace_id = response.headers["x-strato-trace-id"]
        except openai.APIStatusError as exc:
            trace_id = exc.response.headers["x-strato-trace-id"]
    gateway.trace(trace_id)
    return trace_id


def new_key(gateway: GatewayProcess, name: str, **spec: Any) -> Key:
    response = httpx.post(f"{gateway.url}/admin/keys", json={"name": name, **spec}, headers=ADMIN)
    assert response.status_code == 201, response.text
    return Key(response.json()["id"], response.json()["key"], [])


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, upstream: Upstream) -> Iterator[GatewayProcess]:
    models = [
        upstream.model("echo", input_cost=1_000_000.0, output_cost=1_000_000.0),
        upstream.model("other"),
        upstream.model("broken", "fail"),
        upstream.model("silent", "say:"),  # an empty answer: EMPTY_ANSWER
    ]
    env = {"STRATO_MASTER_KEY": MASTER}
    with gateway_process(tmp_path_factory.mktemp("traces"), models, env=env, guards=GUARDS) as process:
        yield process


@pytest.fixture(scope="module")
def keys(gateway: GatewayProcess) -> dict[str, Key]:
    """Key a made three requests (one failed), key b two; the master key one. Oldest first."""
    a, b = new_key(gateway, "a"), new_key(gateway, "b")
    a.traces.append(chat(gateway, a.secret, "echo", "first from a"))
    b.traces.append(chat(gateway, b.secret, "other", "first from b"))
    a.traces.append(chat(gateway, a.secret, "broken", "a fails"))
    a.traces.append(chat(gateway, a.secret, "echo", "mail ann@example.com"))
    b.traces.append(chat(gateway, b.secret, "echo", "second from b"))
    master = Key("master", MASTER, [chat(gateway, MASTER, "other", "from the master key")])
    return {"a": a, "b": b, "master": master}


def get(gateway: GatewayProcess, path: str, key: Key | None, **params: Any) -> httpx.Response:
    return httpx.get(f"{gateway.url}{path}", params=params, headers=key.auth if key else {}, timeout=30)


def listed(gateway: GatewayProcess, key: Key, **params: Any) -> list[str]:
    response = get(gateway, "/v1/traces", key, **params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "list"
    return [t["id"] for t in body["data"]]


def test_a_key_lists_only_its_own_traces_newest_first(gateway: GatewayProcess, keys: dict[str, Key]) -> None:
    a, b = keys["a"], keys["b"]
    assert listed(gateway, a) == a.traces[::-1]
    assert listed(gateway, b) == b.traces[::-1]
    # Asking for another key's traces gives none, not theirs.
    assert listed(gateway, a, api_key=b.id) == []
    assert listed(gateway, a, api_key=a.id) == a.traces[::-1]


def test_another_keys_trace_is_404_like_a_missing_one(gateway: GatewayProcess, keys: dict[str, Key]) -> None:
    a, b = keys["a"], keys["b"]
    own = get(gateway, f"/v1/traces/{a.traces[0]}", a)
    assert own.status_code == 200 and own.json()["id"] == a.traces[0]
    theirs = get(gateway, f"/v1/traces/{b.traces[0]}", a)
    missing = get(gateway, "/v1/traces/0123456789abcdef0123456789abcdef", a)
    assert theirs.status_code == missing.status_code == 404
    for response, trace_id in ((theirs, b.traces[0]), (missing, "0123456789abcdef0123456789abcdef")):
        error = response.json()["error"]
        assert error["code"] == "trace_not_found" and error["type"] == "invalid_request_error"
        assert error["message"] == f"No trace with id {trace_id!r}."
    # A unique prefix finds a trace in `strato traces show`, never over HTTP.
    assert get(gateway, f"/v1/traces/{a.traces[0][:12]}", a).status_code == 404


def test_the_sdk_reads_traces_and_their_errors(gateway: GatewayProcess, keys: dict[str, Key]) -> None:
    a, b = keys["a"], keys["b"]
    with sdk(gateway, a.secret) as client:
        body = client.get("/traces", cast_to=object, options={"params": {"limit": 1}})
        assert isinstance(body, dict) and [t["id"] for t in body["data"]] == [a.traces[-1]]
        with pytest.raises(openai.NotFoundError) as caught:
            client.get(f"/traces/{b.traces[0]}", cast_to=object)
    assert isinstance(caught.value.body, dict) and caught.value.body["code"] == "trace_not_found"


def test_admin_sees_every_key_and_filters_by_key(gateway: GatewayProcess, keys: dict[str, Key]) -> None:
    a, b, master = keys["a"], keys["b"], keys["master"]
    everything = listed(gateway, master)
    assert set(a.traces + b.traces + master.traces) <= set(everything)
    assert listed(gateway, master, api_key=b.id) == b.traces[::-1]
    assert listed(gateway, master, api_key="master") == master.traces
    assert get(gateway, f"/v1/traces/{b.traces[0]}", master).json()["api_key"] == b.id


def test_bad_keys_get_401_in_openai_format(gateway: GatewayProcess, keys: dict[str, Key]) -> None:
    revoked = new_key(gateway, "revoked")
    assert httpx.delete(f"{gateway.url}/admin/keys/{revoked.id}", headers=ADMIN).status_code == 200
    for key in (None, Key("x", "sk-strato-not-a-key", []), revoked):
        for path in ("/v1/traces", f"/v1/traces/{keys['a'].traces[0]}"):
            response = get(gateway, path, key)
            assert response.status_code == 401, (path, response.text)
            error = response.json()["error"]
            assert error["code"] == "invalid_api_key" and error["type"] == "invalid_request_error"
    with sdk(gateway, "sk-strato-nope") as client, pytest.raises(openai.AuthenticationError):
        client.get("/traces", cast_to=object)


def test_a_trace_object_says_what_happened(gateway: GatewayProcess, keys: dict[str, Key]) -> None:
    a = keys["a"]
    first = get(gateway, f"/v1/traces/{a.traces[0]}", a).json()
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

    failed = get(gateway, f"/v1/traces/{a.traces[1]}", a).json()
    assert failed["status"] >= 500 and failed["error"]["code"] and failed["error"]["message"]
    assert failed["completion"] is None

    guarded = get(gateway, f"/v1/traces/{a.traces[2]}", a).json()
    assert guarded["guards"][0]["findings"][0]["type"] == "EMAIL_ADDRESS"
    assert "guards" not in guarded["request"]
    assert "ann@example.com" not in json.dumps(guarded["request"])


def test_filters(gateway: GatewayProcess, keys: dict[str, Key]) -> None:
    a, master = keys["a"], keys["master"]
    assert listed(gateway, a, model="echo") == [a.traces[2], a.traces[0]]
    assert listed(gateway, a, status="error") == [a.traces[1]]
    assert listed(gateway, a, status="5xx") == [a.traces[1]]
    assert listed(gateway, a, status="ok") == [a.traces[2], a.traces[0]]
    assert listed(gateway, a, status="200") == [a.traces[2], a.traces[0]]
    started = [get(gateway, f"/v1/traces/{t}", a).json()["started_at"] for t in a.traces]
    assert listed(gateway, a, since=started[1]) == [a.traces[2], a.traces[1]]
    # ISO has microseconds and fromtimestamp rounds to the nearest one, possibly past the start:
    # a millisecond earlier is still after the first trace began.
    iso = datetime.fromtimestamp(started[1] - 0.001, UTC).isoformat().replace("+00:00", "Z")
    assert listed(gateway, a, since=iso) == [a.traces[2], a.traces[1]]
    assert listed(gateway, a, before=started[1]) == [a.traces[0]]
    assert listed(gateway, master, since=time.time() + 60) == []


def test_pages_with_after_cursor(gateway: GatewayProcess, keys: dict[str, Key]) -> None:
    a, b = keys["a"], keys["b"]
    seen: list[str] = []
    after: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"after": after} if after else {})}
        body = get(gateway, "/v1/traces", a, **params).json()
        seen += [t["id"] for t in body["data"]]
        assert body["last_id"] == (body["data"][-1]["id"] if body["data"] else None)
        if not body["has_more"]:
            break
        after = body["last_id"]
    assert seen == a.traces[::-1]
    # Another key's trace is no cursor: it is not there for this key.
    refused = get(gateway, "/v1/traces", a, after=b.traces[0])
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
def test_bad_parameters_are_400_naming_the_parameter(
    gateway: GatewayProcess, keys: dict[str, Key], params: dict[str, Any], param: str
) -> None:
    response = get(gateway, "/v1/traces", keys["a"], **params)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error"


def test_limit_caps_a_page(gateway: GatewayProcess, keys: dict[str, Key]) -> None:
    body = get(gateway, "/v1/traces", keys["master"], limit=1000).json()
    assert len(body["data"]) >= 6 and body["has_more"] is False
    one = get(gateway, "/v1/traces", keys["master"], limit=1).json()
    assert len(one["data"]) == 1 and one["has_more"] is True


def test_filters_by_anomaly_feedback_user_and_words(gateway: GatewayProcess, keys: dict[str, Key]) -> None:
    a, master = keys["a"], keys["master"]
    c = new_key(gateway, "c")
    response = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json={"model": "silent", "messages": [{"role": "user", "content": "say nothing"}], "user": "ann"},
        headers=c.auth,
    )
    empty = response.headers["x-strato-trace-id"]
    gateway.trace(empty)
    assert listed(gateway, c, anomaly="EMPTY_ANSWER") == [empty]
    assert listed(gateway, c, anomaly="empty_answer") == [empty]
    assert listed(gateway, c, anomaly="any") == [empty]
    assert listed(gateway, a, anomaly="any") == []  # only the caller's own
    assert empty in listed(gateway, master, anomaly="any")
    assert get(gateway, f"/v1/traces/{empty}", c).json()["anomalies"] == ["EMPTY_ANSWER"]
    assert listed(gateway, master, user="ann") == [empty]
    assert listed(gateway, c, user="bob") == []
    # Feedback
    assert listed(gateway, c, feedback="none") == [empty]
    given = httpx.post(f"{gateway.url}/v1/feedback", json={"trace_id": empty, "score": 0}, headers=c.auth)
    assert given.status_code == 201, given.text
    assert listed(gateway, c, feedback="negative") == [empty]
    assert listed(gateway, c, feedback="positive") == listed(gateway, c, feedback="none") == []
    [shown] = get(gateway, "/v1/traces", c).json()["data"]
    assert [f["score"] for f in shown["feedback"]] == [0.0]
    # Words in the request or the answer, every one of them, any case.
    assert listed(gateway, a, q="FIRST") == [a.traces[0]]
    assert listed(gateway, a, q="echo: first") == [a.traces[0]]  # "echo:" is in the answer
    assert listed(gateway, a, q="first fails") == []
    started = [get(gateway, f"/v1/traces/{t}", a).json()["started_at"] for t in a.traces]
    assert listed(gateway, a, until=started[1]) == [a.traces[0]]


def test_the_cli_lists_what_the_api_does(gateway: GatewayProcess, keys: dict[str, Key]) -> None:
    a = keys["a"]
    env = {"STRATO_MASTER_KEY": MASTER}
    result = strato("traces", "list", "--key", a.id, "--json", data_dir=gateway.data_dir, env=env)
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["id"] for line in result.stdout.splitlines()] == listed(gateway, a)


def test_without_a_master_key_everyone_sees_every_trace(
    tmp_path_factory: pytest.TempPathFactory, upstream: Upstream
) -> None:
    tmp = tmp_path_factory.mktemp("open")
    with gateway_process(tmp, [upstream.model("echo")], env={"STRATO_MASTER_KEY": ""}) as process:
        made = [chat(process, "anything", "echo", f"open {i}") for i in range(2)]
        for key in (None, Key("x", "sk-strato-whatever", [])):
            assert [t["id"] for t in get(process, "/v1/traces", key).json()["data"]] == made[::-1]
            assert get(process, f"/v1/traces/{made[0]}", key).status_code == 200
