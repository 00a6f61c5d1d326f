"""Cache keys: every field that changes an answer changes the key; nothing else does."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from strato.cache.keys import bucket_key, exact_key, last_user_turn
from strato.types import GenerationRequest, Message, ResponseFormat, SamplingParams

BASE = GenerationRequest(
    model="chat",
    messages=(Message("system", "Be brief."), Message("user", "How do I reset my password?")),
    params=SamplingParams(temperature=0.0),
)


def with_params(**changes: Any) -> GenerationRequest:
    return dataclasses.replace(BASE, params=dataclasses.replace(BASE.params, **changes))


@pytest.mark.parametrize(
    "changed",
    [
        dataclasses.replace(BASE, model="other-group"),
        dataclasses.replace(BASE, messages=(BASE.messages[0], Message("user", "How do I reset my PIN?"))),
        dataclasses.replace(BASE, messages=(Message("system", "Be verbose."), BASE.messages[1])),
        dataclasses.replace(BASE, messages=(BASE.messages[1],)),
        dataclasses.replace(
            BASE, messages=(BASE.messages[0], Message("user", BASE.messages[1].content, "bob"))
        ),
        dataclasses.replace(BASE, messages=None, prompt="How do I reset my password?"),
        dataclasses.replace(BASE, passthrough={"tools": [{"type": "function", "function": {"name": "f"}}]}),
        with_params(temperature=0.7),
        with_params(top_p=0.9),
        with_params(seed=7),
        with_params(stop=("\n",)),
        with_params(max_tokens=16),
        with_params(logprobs=True),
        with_params(top_logprobs=2, logprobs=True),
        with_params(top_k=40),
        with_params(min_p=0.05),
        with_params(presence_penalty=0.5),
        with_params(frequency_penalty=0.5),
        with_params(response_format=ResponseFormat("json_object")),
        with_params(response_format=ResponseFormat("json_schema", {"type": "object"}, "answer")),
    ],
)
def test_anything_that_shapes_the_answer_changes_the_key(changed: GenerationRequest) -> None:
    assert exact_key(changed) != exact_key(BASE)


def test_the_end_user_name_and_field_order_do_not_change_the_key() -> None:
    assert exact_key(dataclasses.replace(BASE, user="alice")) == exact_key(BASE)
    tools = {"tools": [{"type": "function", "function": {"name": "f", "parameters": {"a": 1, "b": 2}}}]}
    reordered = {"tools": [{"function": {"parameters": {"b": 2, "a": 1}, "name": "f"}, "type": "function"}]}
    assert exact_key(dataclasses.replace(BASE, passthrough=tools)) == exact_key(
        dataclasses.replace(BASE, passthrough=reordered)
    )


def test_the_bucket_is_everything_but_the_last_user_turn() -> None:
    paraphrase = dataclasses.replace(
        BASE, messages=(BASE.messages[0], Message("user", "What's the way to reset my password?"))
    )
    assert bucket_key(paraphrase, "minilm") == bucket_key(BASE, "minilm")
    assert exact_key(paraphrase) != exact_key(BASE)
    other_system = dataclasses.replace(BASE, messages=(Message("system", "Be verbose."), BASE.messages[1]))
    assert bucket_key(other_system, "minilm") != bucket_key(BASE, "minilm")
    assert bucket_key(with_params(max_tokens=5), "minilm") != bucket_key(BASE, "minilm")
    assert bucket_key(BASE, "other-embedder") != bucket_key(BASE, "minilm")


def test_only_a_final_user_message_is_compared_by_meaning() -> None:
    assert last_user_turn(BASE) == "How do I reset my password?"
    prefilled = dataclasses.replace(BASE, messages=(*BASE.messages, Message("assistant", "Sure:")))
    assert last_user_turn(prefilled) is None
    assert last_user_turn(dataclasses.replace(BASE, messages=None, prompt="Once upon")) is None
