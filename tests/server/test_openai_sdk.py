"""The official `openai` SDK against the gateway running the real SmolLM2 model."""

from __future__ import annotations

import base64
import struct
from typing import Any

import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.conftest import CHAT_MODEL, EMBED_MODEL
from tests.support.inprocess import InProcess

QUESTION: list[ChatCompletionMessageParam] = [{"role": "user", "content": "What is 2+2?"}]


async def test_chat_completion_answers_with_usage_and_trace_header(strato: InProcess) -> None:
    raw = await strato.sdk().chat.completions.with_raw_response.create(
        model=CHAT_MODEL, messages=QUESTION, temperature=0, seed=7, max_tokens=40
    )
    completion = raw.parse()
    answer = completion.choices[0].message.content or ""
    assert "4" in answer
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == CHAT_MODEL
    assert completion.usage is not None
    assert completion.usage.prompt_tokens > 5
    assert 0 < completion.usage.completion_tokens < 40
    assert (
        completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    )

    trace = strato.trace(raw.headers["x-strato-trace-id"])
    assert trace.status == 200
    assert trace.completion == answer
    assert trace.request["messages"] == QUESTION
    assert trace.deployment == CHAT_MODEL and trace.provider == "llama_cpp"
    assert (trace.prompt_tokens, trace.completion_tokens) == (
        completion.usage.prompt_tokens,
        completion.usage.completion_tokens,
    )
    assert trace.latency_ms is not None and trace.latency_ms > 0


async def test_streaming_equals_non_streaming_at_temperature_zero(strato: InProcess) -> None:
    client = strato.sdk()
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Name three colours."}]
    params = {"temperature": 0, "max_tokens": 30, "logprobs": True, "top_logprobs": 2}
    whole = await client.chat.completions.create(model=CHAT_MODEL, messages=messages, **params)  # type: ignore[call-overload]
    stream = await client.chat.completions.create(
        model=CHAT_MODEL, messages=messages, stream=True, stream_options={"include_usage": True}, **params
    )  # type: ignore[call-overload]
    pieces, tokens, finish, usage = [], [], None, None
    async for chunk in stream:
        if chunk.choices:
            pieces.append(chunk.choices[0].delta.content or "")
            finish = chunk.choices[0].finish_reason or finish
            if chunk.choices[0].logprobs and chunk.choices[0].logprobs.content:
                tokens.extend(chunk.choices[0].logprobs.content)
        if chunk.usage:
            usage = chunk.usage
    assert whole.choices[0].logprobs is not None and whole.choices[0].logprobs.content is not None
    whole_tokens = whole.choices[0].logprobs.content
    assert "".join(pieces) == "".join(t.token for t in tokens)
    if "".join(pieces) != whole.choices[0].message.content:
        # Both runs found the prompt cached, maybe in other KV cells; float rounding may then flip a
        # near tie (see tests/engine/test_batcher.py). Anything else is a bug.
        i = next(
            i
            for i, (a, b) in enumerate(zip([*whole_tokens, None], [*tokens, None], strict=False))
            if a is None or b is None or a.token != b.token
        )
        top = (whole_tokens[i] if i < len(whole_tokens) else tokens[i]).top_logprobs
        assert top[0].logprob - top[1].logprob < 0.5, (i, top)
        return
    assert finish == whole.choices[0].finish_reason
    assert usage is not None and whole.usage is not None
    assert usage.completion_tokens == whole.usage.completion_tokens
    assert usage.prompt_tokens == whole.usage.prompt_tokens


async def test_stream_without_include_usage_sends_no_usage_chunk(strato: InProcess) -> None:
    stream = await strato.sdk().chat.completions.create(
        model=CHAT_MODEL, messages=QUESTION, max_tokens=5, temperature=0, stream=True
    )
    chunks = [chunk async for chunk in stream]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(chunk.usage is None for chunk in chunks)
    assert chunks[-1].choices[0].finish_reason in {"stop", "length"}


async def test_max_tokens_cuts_with_finish_reason_length(strato: InProcess) -> None:
    limits: list[dict[str, Any]] = [{"max_tokens": 3}, {"max_completion_tokens": 3}]
    for limit in limits:
        completion = await strato.sdk().chat.completions.create(
            model=CHAT_MODEL,
            messages=[{"role": "user", "content": "Tell me a long story."}],
            temperature=0,
            **limit,
        )
        assert completion.choices[0].finish_reason == "length"
        assert completion.usage is not None and completion.usage.completion_tokens == 3


async def test_stop_sequence_ends_the_answer_before_it(strato: InProcess) -> None:
    client = strato.sdk()
    full = await client.chat.completions.create(
        model=CHAT_MODEL, messages=QUESTION, temperature=0, max_tokens=40
    )
    text = full.choices[0].message.content or ""
    words = text.split()
    assert len(words) >= 3, text
    stop = " " + words[2]
    cut = await client.chat.completions.create(
        model=CHAT_MODEL, messages=QUESTION, temperature=0, max_tokens=40, stop=[stop]
    )
    assert cut.choices[0].message.content == text[: text.index(stop)]
    assert cut.choices[0].finish_reason == "stop"


async def test_same_seed_same_text_when_sampling(strato: InProcess) -> None:
    async def ask(seed: int) -> str:
        completion = await strato.sdk().chat.completions.create(
            model=CHAT_MODEL,
            messages=[{"role": "user", "content": "Write a sentence about the sea."}],
            temperature=1.0,
            top_p=0.95,
            seed=seed,
            max_tokens=20,
        )
        return completion.choices[0].message.content or ""

    # Same seed, same text: checked in tests/engine/test_sampling.py on an engine whose cache state
    # repeats. Here other tests share the server, and the prompt's cached KV cells can sit in a
    # different order, which moves logits by float rounding and can flip a draw near a boundary.
    assert await ask(11)
    assert len({await ask(s) for s in (1, 2, 3)}) > 1  # seeds matter: not everything is greedy


async def test_user_and_system_messages_reach_the_trace(strato: InProcess) -> None:
    messages: list[ChatCompletionMessageParam] = [
        {"role": "system", "content": "Answer in one word."},
        {"role": "user", "content": "Capital of France?"},
    ]
    raw = await strato.sdk().chat.completions.with_raw_response.create(
        model=CHAT_MODEL, messages=messages, temperature=0, max_tokens=10, user="alice", n=1
    )
    trace = strato.trace(raw.headers["x-strato-trace-id"])
    assert trace.user == "alice"
    assert trace.request["messages"] == messages


async def test_async_client_streams(strato: InProcess) -> None:
    async with strato.streaming() as http:  # the stream read as it is sent, as a server would send it
        client = strato.sdk(http=http)
        stream = await client.chat.completions.create(
            model=CHAT_MODEL, messages=QUESTION, temperature=0, max_tokens=20, stream=True
        )
        text = "".join([chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices])
        whole = await client.chat.completions.create(
            model=CHAT_MODEL, messages=QUESTION, temperature=0, max_tokens=20
        )
    assert text == whole.choices[0].message.content


async def test_text_completion_streaming_and_not(strato: InProcess) -> None:
    client = strato.sdk()
    raw = await client.completions.with_raw_response.create(
        model=CHAT_MODEL, prompt="The capital of France is", temperature=0, max_tokens=8
    )
    whole = raw.parse()
    assert "Paris" in whole.choices[0].text
    assert whole.object == "text_completion"
    assert whole.usage is not None and whole.usage.completion_tokens == 8
    streamed = await client.completions.create(
        model=CHAT_MODEL, prompt="The capital of France is", temperature=0, max_tokens=8, stream=True
    )
    assert "".join([c.choices[0].text async for c in streamed if c.choices]) == whole.choices[0].text
    trace = strato.trace(raw.headers["x-strato-trace-id"])
    assert trace.endpoint == "completion" and trace.request["prompt"] == "The capital of France is"


async def test_text_completion_defaults_to_sixteen_tokens(strato: InProcess) -> None:
    completion = await strato.sdk().completions.create(
        model=CHAT_MODEL, prompt="Once upon a time", temperature=0
    )
    assert completion.usage is not None
    assert completion.usage.completion_tokens <= 16


async def test_embeddings_batched_float_and_base64(strato: InProcess) -> None:
    client = strato.sdk()
    texts = ["A cat sits on the mat.", "A kitten rests on a rug.", "Quarterly revenue grew by 8%."]
    raw = await client.embeddings.with_raw_response.create(
        model=EMBED_MODEL, input=texts, encoding_format="float"
    )
    result = raw.parse()
    vectors = [item.embedding for item in result.data]
    assert [item.index for item in result.data] == [0, 1, 2]
    assert all(len(v) == 384 for v in vectors)

    def cosine(a: list[float], b: list[float]) -> float:
        dot = sum(x * y for x, y in zip(a, b, strict=True))
        return float(dot / (sum(x * x for x in a) ** 0.5 * sum(y * y for y in b) ** 0.5))

    assert cosine(vectors[0], vectors[1]) > cosine(vectors[0], vectors[2]) + 0.2
    assert result.usage.prompt_tokens > 10

    # The SDK asks for base64 by default and decodes it; compare with floats requested directly.
    decoded = (await client.embeddings.create(model=EMBED_MODEL, input=texts[0])).data[0].embedding
    assert decoded == pytest.approx(vectors[0], abs=1e-6)
    trace = strato.trace(raw.headers["x-strato-trace-id"])
    assert trace.endpoint == "embedding" and trace.request["input"] == texts


async def test_embeddings_base64_is_little_endian_float32(strato: InProcess) -> None:
    body = {"model": EMBED_MODEL, "input": "hello", "encoding_format": "base64"}
    encoded = (await strato.http.post("/v1/embeddings", json=body)).json()["data"][0]["embedding"]
    raw = base64.b64decode(encoded)
    assert len(raw) == 384 * 4
    floats = struct.unpack("<384f", raw)
    assert abs(sum(x * x for x in floats) - 1.0) < 1e-3  # MiniLM vectors are normalised


async def test_models_lists_every_configured_model(strato: InProcess) -> None:
    names = {model.id async for model in strato.sdk().models.list()}
    assert {CHAT_MODEL, EMBED_MODEL, "remote-echo", "remote-down"} <= names
