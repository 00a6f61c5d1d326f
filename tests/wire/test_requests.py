"""One reading and one writing of OpenAI request bodies: what strato writes it reads back the same,
and an evaluation case is read exactly as the server reads a request."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strato.errors import InvalidRequest
from strato.evals.targets import InvalidCase, generation_request
from strato.types import GenerationRequest, Message, ResponseFormat, SamplingParams
from strato.wire.requests import read_generation, request_body, request_record

texts = st.text(max_size=40)
names = st.text(min_size=1, max_size=12)
unit = st.floats(0, 1, allow_nan=False)
penalties = st.floats(-2, 2, allow_nan=False)
formats = st.one_of(
    st.none(),
    st.sampled_from(["text", "json_object"]).map(lambda t: ResponseFormat(type=t)),  # type: ignore[arg-type]
    st.builds(
        lambda name, props: ResponseFormat(
            type="json_schema", name=name, schema={"type": "object", "properties": props}
        ),
        names,
        st.dictionaries(names, st.just({"type": "string"}), max_size=3),
    ),
)


@st.composite
def sampling(draw: st.DrawFn, *, chat: bool) -> SamplingParams:
    logprobs = draw(st.booleans())
    return SamplingParams(
        temperature=draw(st.floats(0, 2, allow_nan=False)),
        top_p=draw(unit),
        # A text completion without max_tokens gets OpenAI's 16, so the round trip needs one.
        max_tokens=draw(st.integers(1, 4096) if not chat else st.none() | st.integers(1, 4096)),
        stop=tuple(draw(st.lists(texts, max_size=4))),
        seed=draw(st.none() | st.integers(-(2**40), 2**40)),
        top_k=draw(st.none() | st.integers(0, 100)),
        min_p=draw(st.none() | unit),
        presence_penalty=draw(penalties),
        frequency_penalty=draw(penalties),
        logprobs=logprobs,
        top_logprobs=draw(st.integers(0, 20 if chat else 5)) if logprobs else 0,
        response_format=draw(formats),
    )


@st.composite
def requests(draw: st.DrawFn) -> GenerationRequest:
    chat = draw(st.booleans())
    model = draw(names)
    user = draw(st.none() | names)
    params = draw(sampling(chat=chat))
    if not chat:
        return GenerationRequest(model=model, prompt=draw(texts), params=params, user=user)
    message = st.builds(
        Message,
        role=st.sampled_from(["system", "user", "assistant", "tool"]),
        content=texts,
        name=st.none() | names,
    )
    messages = tuple(draw(st.lists(message, min_size=1, max_size=4)))
    return GenerationRequest(model=model, messages=messages, params=params, user=user)


@settings(max_examples=300, deadline=None)
@given(requests())
def test_what_strato_writes_it_reads_back_the_same(request: GenerationRequest) -> None:
    path, body = request_body(request, request.model)
    assert path == ("chat/completions" if request.messages is not None else "completions")
    assert read_generation(json.loads(json.dumps(body))) == request


def test_a_stream_asks_for_usage_and_passed_fields_never_override_strato_s() -> None:
    request = GenerationRequest(
        model="m",
        messages=(Message("user", "hi"),),
        params=SamplingParams(temperature=0.2),
        passthrough={"temperature": 1.9, "model": "other", "logit_bias": {"1": 2}},
    )
    _, body = request_body(request, "upstream-name", stream=True)
    assert (body["model"], body["temperature"], body["logit_bias"]) == ("upstream-name", 0.2, {"1": 2})
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


def test_the_trace_record_is_the_body_without_model_and_user() -> None:
    request = GenerationRequest(
        model="m", messages=(Message("user", "hi"),), params=SamplingParams(seed=3), user="bob"
    )
    assert request_record(request) == {
        "temperature": 1.0,
        "top_p": 1.0,
        "seed": 3,
        "messages": [{"role": "user", "content": "hi"}],
    }


def test_a_case_is_read_as_the_server_reads_a_body() -> None:
    """Content parts, the developer role and OpenAI's response_format shape work in a case as in a
    request; the same bad value is refused with the same message."""
    case = {
        "messages": [{"role": "developer", "content": [{"type": "text", "text": "Be brief."}]}],
        "params": {"temperature": 0, "response_format": {"type": "json_object"}},
    }
    request = generation_request("m", case)
    assert request.messages == (Message("system", "Be brief."),)
    assert request.params.temperature == 0 and request.params.response_format == ResponseFormat("json_object")
    bad: dict[str, Any] = {"model": "m", "messages": case["messages"], "temperature": 5}
    with pytest.raises(InvalidRequest) as server_says:
        read_generation(bad)
    with pytest.raises(InvalidCase) as case_says:
        generation_request("m", {"messages": case["messages"], "params": {"temperature": 5}})
    assert case_says.value.message == server_says.value.message
    assert "temperature" in case_says.value.message


def test_a_response_format_as_older_traces_recorded_it_still_reads() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    old = {"type": "json_schema", "schema": schema, "name": "answer"}
    request = generation_request("m", {"prompt": "x", "params": {"response_format": old}})
    assert request.params.response_format == ResponseFormat("json_schema", schema=schema, name="answer")
    assert request.params.max_tokens == 16  # a text completion's default, as on /v1/completions


def test_unknown_case_parameters_are_refused() -> None:
    with pytest.raises(InvalidCase, match="unknown parameter"):
        generation_request("m", {"prompt": "x", "params": {"temprature": 0}})
