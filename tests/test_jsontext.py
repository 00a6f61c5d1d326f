"""JSON text on the hot path: orjson's output, and json's for what orjson refuses."""

from __future__ import annotations

import json
import math

import pytest

from strato.jsontext import dumps


@pytest.mark.parametrize(
    "value",
    [
        {"a": "é ünïcode", "b": [1, 2.5, None, True], "c": {"nested": "x\u0000y"}},
        "plain",
        [1764811200.123456, -0.0, 1e-300],
        {"big": 2**70},  # over 64 bits: orjson refuses, json writes it
        {1: "an integer key"},  # json writes it as "1"
        {"lone": "x\ud800y"},  # a lone surrogate: json keeps it, for the caller to escape
    ],
)
def test_what_json_writes_reads_back_the_same(value: object) -> None:
    text = dumps(value)
    assert json.loads(text) == json.loads(json.dumps(value, ensure_ascii=False))


def test_non_ascii_is_kept_and_nan_is_null() -> None:
    assert dumps({"a": "é"}) == '{"a":"é"}'
    assert json.loads(dumps({"x": math.nan})) == {"x": None}
