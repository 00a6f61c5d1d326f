"""Values nested too deeply for the code behind the edge are a clear 400, not a RecursionError 500."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.inprocess import InProcess, in_process
from tests.support.upstream import Upstream

JSON = {"content-type": "application/json"}


@pytest.fixture
async def served(tmp_path: Path, upstream: Upstream) -> AsyncIterator[InProcess]:
    async with in_process(tmp_path, [upstream.model("echo")], cache={"mode": "exact"}) as s:
        yield s


def nested_schema(levels: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(levels // 2):  # each level of properties is two objects deep
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


async def test_a_json_schema_nested_900_levels_on_a_cached_model_is_a_400(served: InProcess) -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": nested_schema(900)}}
    body = {"model": "echo", "messages": [{"role": "user", "content": "hi"}], "response_format": fmt}
    response = await served.http.post("/v1/chat/completions", content=json.dumps(body), headers=JSON)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == "response_format.json_schema.schema" and "64 levels" in error["message"]


async def test_a_real_schema_still_works(served: InProcess) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    body = {
        "model": "echo",
        "messages": [{"role": "user", "content": "hi"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
    }
    assert (await served.http.post("/v1/chat/completions", json=body)).status_code == 200


async def test_a_deep_parameter_passed_to_the_upstream_is_a_400(served: InProcess) -> None:
    deep: Any = 1
    for _ in range(100):
        deep = [deep]
    body = {"model": "echo", "messages": [{"role": "user", "content": "hi"}], "logit_bias_extra": deep}
    response = await served.http.post("/v1/chat/completions", json=body)
    assert response.status_code == 400 and response.json()["error"]["param"] == "logit_bias_extra"


async def test_a_body_too_deep_to_parse_says_so_and_bad_bytes_say_utf_8(served: InProcess) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    response = await served.http.post("/v1/chat/completions", content=deep, headers=JSON)
    assert response.status_code == 400
    assert "too deeply" in response.json()["error"]["message"]
    assert "UTF-8" not in response.json()["error"]["message"]
    latin1 = '{"model": "echo", "messages": [{"role": "user", "content": "café"}]}'.encode("latin-1")
    response = await served.http.post("/v1/chat/completions", content=latin1, headers=JSON)
    assert response.status_code == 400 and "UTF-8" in response.json()["error"]["message"]
