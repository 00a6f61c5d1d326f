"""The PII guard through the gateway's HTTP API, in process: the scan endpoint, and the input-guards
step of chat requests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import openai
import pytest

from tests.support.inprocess import InProcess, in_process
from tests.support.upstream import Upstream

GUARDS = {
    "pii": {"enforce": True, "input": {"action": "redact", "entities": {"CREDIT_CARD": "block"}}},
    "models": {"open": {"pii": {"enforce": False}}},
}


@pytest.fixture(scope="module")
async def guarded(tmp_path_factory: pytest.TempPathFactory, upstream: Upstream) -> AsyncIterator[InProcess]:
    models = [upstream.model("echo"), upstream.model("open")]
    async with in_process(tmp_path_factory.mktemp("guards"), models, guards=GUARDS) as served:
        yield served


async def scan(served: InProcess, body: object) -> httpx.Response:
    return await served.http.post("/v1/guards/scan", json=body, timeout=10)


async def test_scan_reports_findings_and_the_policys_action(guarded: InProcess) -> None:
    text = "Mail ann@example.com from 10.1.2.3"
    response = await scan(guarded, {"text": text, "direction": "input"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["action"] == "redact"
    assert body["text"] == "Mail <EMAIL_ADDRESS_1> from <IP_ADDRESS_1>"
    assert [(f["type"], text[f["start"] : f["end"]]) for f in body["findings"]] == [
        ("EMAIL_ADDRESS", "ann@example.com"),
        ("IP_ADDRESS", "10.1.2.3"),
    ]
    assert all(0 < f["score"] <= 1 for f in body["findings"])


async def test_scan_blocks_and_flags_by_direction(guarded: InProcess) -> None:
    card = {"text": "card 4111 1111 1111 1111"}
    assert (await scan(guarded, {**card, "direction": "input"})).json()["action"] == "block"
    output = (await scan(guarded, {**card, "direction": "output"})).json()
    assert output["action"] == "flag" and output["text"] == card["text"]
    assert (await scan(guarded, {"text": "nothing here"})).json() == {
        "object": "guards.scan",
        "action": "allow",
        "guard": "",
        "findings": [],
        "text": "nothing here",
    }


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"direction": "input"}, "text"),
        ({"text": "x", "direction": "sideways"}, "direction"),
        ({"text": 42}, "text"),
        ([1, 2], None),
    ],
)
async def test_scan_refuses_bad_input_in_openais_format(
    guarded: InProcess, body: object, param: str | None
) -> None:
    response = await scan(guarded, body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param


async def test_the_model_sees_placeholders_and_the_caller_its_own_values(
    guarded: InProcess, upstream: Upstream
) -> None:
    raw = await guarded.sdk().chat.completions.with_raw_response.create(
        model="echo", messages=[{"role": "user", "content": "I am ann@example.com, again ann@example.com"}]
    )
    answer = raw.parse().choices[0].message.content
    assert answer == "echo: I am ann@example.com, again ann@example.com"
    assert (
        upstream.requests[-1]["messages"][-1]["content"] == "I am <EMAIL_ADDRESS_1>, again <EMAIL_ADDRESS_1>"
    )
    trace = guarded.trace(raw.headers["x-strato-trace-id"])
    assert "ann@example.com" not in str(trace.request) and "ann@example.com" not in str(trace.completion)
    [decision] = trace.request["guards"]
    assert decision["action"] == "redact" and decision["findings"][0]["type"] == "EMAIL_ADDRESS"


async def test_a_streamed_answer_is_restored(guarded: InProcess, upstream: Upstream) -> None:
    stream = await guarded.sdk().chat.completions.create(
        model="echo", messages=[{"role": "user", "content": "call +1-984-182-0190 now"}], stream=True
    )
    text = "".join([chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices])
    assert text == "echo: call +1-984-182-0190 now"
    assert upstream.requests[-1]["messages"][-1]["content"] == "call <PHONE_NUMBER_1> now"


async def test_a_blocked_entity_is_refused_with_the_guards_code(guarded: InProcess) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await guarded.sdk().chat.completions.create(
            model="echo", messages=[{"role": "user", "content": "card 4111 1111 1111 1111"}]
        )
    assert caught.value.code == "guard_blocked:pii"
    trace = guarded.trace(caught.value.response.headers["x-strato-trace-id"])
    assert trace.status == 400 and trace.error_code == "guard_blocked:pii"
    assert trace.request["guards"][0]["findings"][0]["type"] == "CREDIT_CARD"


async def test_a_model_can_opt_out(guarded: InProcess, upstream: Upstream) -> None:
    content = "card 4111 1111 1111 1111"
    answer = await guarded.sdk().chat.completions.create(
        model="open", messages=[{"role": "user", "content": content}]
    )
    assert answer.choices[0].message.content == f"echo: {content}"
    assert upstream.requests[-1]["messages"][-1]["content"] == content
