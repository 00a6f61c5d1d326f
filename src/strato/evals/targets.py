"""Where an evaluation sends its cases: the gateway in this process (`GatewayTarget`, what `strato
eval run` uses by default) or a gateway, or any OpenAI-compatible server, over HTTP (`HTTPTarget`).

Both answer every case with an `Answer`: a failing call becomes `Answer(text=None, error="<status>
<code>: <message>")` and never an exception, so one bad case cannot stop a run. Latency is measured
by the caller (the whole call, as a client sees it). Both go around the answer cache: an evaluation
measures the model, and a cached answer would report another request's output at no latency or cost.

A case's input is `{"messages": [...]}` (chat) or `{"prompt": str}` (a text completion, which like
OpenAI's /v1/completions gets at most 16 tokens unless `max_tokens` says otherwise), optionally with
`"params"`: temperature, top_p, max_tokens, seed, stop, response_format (OpenAI's shape, or the
`{"type", "schema", "name"}` shape older traces recorded), top_k, min_p, presence_penalty, frequency_penalty.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Protocol

import httpx

from strato.cache import CachePolicy
from strato.errors import InvalidRequest, StratoError
from strato.evals.types import Answer
from strato.gateway import CallContext, Gateway
from strato.types import EmbeddingRequest, GenerationRequest
from strato.wire.requests import read_generation, request_body

# The request fields a case's `params` may set; the rest of a request body comes from the case.
CASE_PARAMS = (
    "temperature",
    "top_p",
    "max_tokens",
    "seed",
    "stop",
    "top_k",
    "min_p",
    "presence_penalty",
    "frequency_penalty",
    "response_format",
)
IGNORED_PARAMS = ("logprobs", "top_logprobs", "n", "stream", "user")  # no bearing on a scored answer
TRACE_WAIT = 5.0  # seconds to wait for a remote strato to store the trace that holds an answer's cost


class InvalidCase(StratoError):
    status = 400
    type = "invalid_request_error"
    code = "invalid_case"


def error_line(status: int, code: str | None, message: str) -> str:
    """How an answer's error reads in results and reports: `429 rate_limited: slow down`."""
    return f"{status} {code or 'error'}: {' '.join(message.split())}"


def generation_request(model: str, case_input: dict[str, Any]) -> GenerationRequest:
    """The gateway request for one case's input, read as the server reads a request body (text
    completions get OpenAI's 16 tokens unless `max_tokens` says otherwise). Raises `InvalidCase`
    for an input of another shape."""
    body: dict[str, Any] = {**case_params(case_input.get("params") or {}), "model": model}
    if "messages" in case_input:
        messages = case_input["messages"]
        if not isinstance(messages, list) or not messages:
            raise InvalidCase("`messages` must be a non-empty list")
        body["messages"] = messages
    elif isinstance(case_input.get("prompt"), str):
        body["prompt"] = case_input["prompt"]
    else:
        raise InvalidCase('a case input needs "messages" (a list) or "prompt" (a string)')
    try:
        return read_generation(body)
    except InvalidRequest as exc:
        raise InvalidCase(exc.message, param=exc.param) from None


def case_params(params: Any) -> dict[str, Any]:
    """A case's `params` as request fields: unknown names are refused (a typo in a data set must
    not go unnoticed), fields with no bearing on a scored answer are dropped, and a response format
    in the shape older traces recorded (`{"type", "schema", "name"}`) is written OpenAI's way."""
    if not isinstance(params, dict):
        raise InvalidCase("`params` must be an object")
    unknown = set(params) - {*CASE_PARAMS, *IGNORED_PARAMS}
    if unknown:
        raise InvalidCase(f"unknown parameter(s): {', '.join(sorted(unknown))}")
    fields = {k: v for k, v in params.items() if k in CASE_PARAMS and v is not None}
    fmt = fields.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema" and "json_schema" not in fmt:
        fields["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": fmt.get("name") or "response", "schema": fmt.get("schema") or {}},
        }
    return fields


class Closing(Protocol):
    async def aclose(self) -> None: ...


class GatewayTarget:
    """The gateway in this process: every call is traced and priced as a served request would be.
    `api_key` is the key the calls present when the gateway runs with auth (a virtual key, so that
    they count against its budget, or the master key)."""

    def __init__(self, gateway: Gateway, api_key: str | None = None, owner: Closing | None = None) -> None:
        """`owner`: what built the gateway (the composition root's `Runtime`), closed with the
        target; None when the caller closes it."""
        self.gateway = gateway
        self.api_key = api_key
        self.owner = owner

    async def check_model(self, model: str) -> None:
        """Raise `ModelNotFound` (or `InvalidRequest` for an embedding model) before a run starts."""
        self.gateway.models.generator(model)

    async def complete(self, model: str, case_input: dict[str, Any]) -> Answer:
        try:
            request = generation_request(model, case_input)
        except StratoError as exc:
            return Answer(None, error=error_line(exc.status, exc.code, exc.message))
        ctx = CallContext(credential=self.api_key, cache=CachePolicy(read=False, write=False))
        started = time.perf_counter()
        try:
            result = await self.gateway.generate(request, ctx)
        except StratoError as exc:
            latency = _ms_since(started)
            return Answer(
                None, latency, trace_id=ctx.trace_id, error=error_line(exc.status, exc.code, exc.message)
            )
        usage = result.usage
        return Answer(
            result.text,
            latency_ms=_ms_since(started),
            cost=ctx.cost,  # as the gateway priced the call's trace
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            trace_id=ctx.trace_id,
        )

    async def embed(self, model: str, texts: list[str]) -> list[list[float]]:
        request = EmbeddingRequest(model=model, inputs=tuple(texts))
        result = await self.gateway.embed(request, CallContext(credential=self.api_key))
        return result.vectors

    async def aclose(self) -> None:
        if self.owner is not None:
            await self.owner.aclose()


class HTTPTarget:
    """A running gateway over HTTP (`base_url` with or without `/v1`). Against strato, each answer's
    trace id comes from `x-strato-trace-id` and its cost from `GET /v1/traces/{id}` (strato writes
    traces in batches, so that waits up to `TRACE_WAIT` seconds); any other server gives no cost."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = 600.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """`transport`: how requests reach `base_url` (httpx's default: over the network)."""
        root = base_url.rstrip("/")
        self.base_url = root.removesuffix("/v1")
        headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        headers["x-strato-cache"] = "off"  # strato's opt-out of its answer cache; others ignore it
        self.client = httpx.AsyncClient(
            base_url=self.base_url, headers=headers, timeout=timeout, transport=transport
        )
        self._traces_readable = True  # cleared when the server refuses this key its traces

    async def check_model(self, model: str) -> None:
        """Raise a 404 `StratoError` when the server lists its models and `model` is not one of them."""
        try:
            response = await self.client.get("/v1/models")
        except httpx.HTTPError as exc:
            raise StratoError(
                f"cannot reach {self.base_url}: {exc}", status=503, code="unreachable"
            ) from None
        if response.status_code != 200:
            return  # a server that does not list its models: the cases will say
        names = {m.get("id") for m in response.json().get("data", []) if isinstance(m, dict)}
        if model not in names:
            available = ", ".join(sorted(str(n) for n in names)) or "none"
            raise StratoError(
                f"{self.base_url} has no model {model!r}. Available: {available}",
                status=404,
                code="model_not_found",
            )

    async def complete(self, model: str, case_input: dict[str, Any]) -> Answer:
        try:
            path, body = request_body(generation_request(model, case_input), model)
        except StratoError as exc:
            return Answer(None, error=error_line(exc.status, exc.code, exc.message))
        path = f"/v1/{path}"
        started = time.perf_counter()
        try:
            response = await self.client.post(path, json=body)
        except httpx.TimeoutException as exc:
            return Answer(None, _ms_since(started), error=error_line(504, "timeout", f"{path}: {exc!r}"))
        except httpx.HTTPError as exc:
            return Answer(
                None, _ms_since(started), error=error_line(503, "unreachable", f"{self.base_url}: {exc}")
            )
        latency = _ms_since(started)
        trace_id = response.headers.get("x-strato-trace-id")
        if response.status_code != 200:
            return Answer(None, latency, trace_id=trace_id, error=_http_error(response))
        try:
            data = response.json()
            choice = data["choices"][0]
            text = choice["message"]["content"] if "message" in choice else choice["text"]
        except (ValueError, KeyError, IndexError, TypeError):
            return Answer(
                None, latency, trace_id=trace_id, error=error_line(502, "bad_response", response.text[:200])
            )
        usage = data.get("usage") or {}
        cost = await self._cost(trace_id) if trace_id else None
        return Answer(
            text or "",
            latency_ms=latency,
            cost=cost,
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            trace_id=trace_id,
        )

    async def embed(self, model: str, texts: list[str]) -> list[list[float]]:
        try:
            response = await self.client.post("/v1/embeddings", json={"model": model, "input": texts})
        except httpx.HTTPError as exc:
            raise StratoError(
                f"cannot reach {self.base_url}: {exc}", status=503, code="unreachable"
            ) from None
        if response.status_code != 200:
            raise StratoError(_http_error(response), status=response.status_code, code="embedding_failed")
        rows = sorted(response.json()["data"], key=lambda row: row["index"])
        return [list(row["embedding"]) for row in rows]

    async def aclose(self) -> None:
        await self.client.aclose()

    async def _cost(self, trace_id: str) -> float | None:
        """The cost strato recorded on the trace, once its batched writer has stored it."""
        delay, deadline = 0.05, time.monotonic() + TRACE_WAIT
        while self._traces_readable:
            try:
                response = await self.client.get(f"/v1/traces/{trace_id}")
            except httpx.HTTPError:
                return None
            if response.status_code == 200:
                cost = response.json().get("cost")
                return float(cost) if cost is not None else None
            if response.status_code != 404:
                self._traces_readable = False  # 401/403: this key may not read traces; stop asking
            elif time.monotonic() + delay > deadline:
                return None
            else:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.5)
        return None


def _http_error(response: httpx.Response) -> str:
    try:
        error = response.json()["error"]
        code = error.get("code") or error.get("type")
        message = str(error.get("message") or response.reason_phrase)
    except (ValueError, KeyError, TypeError, AttributeError):
        code, message = None, response.text[:200] or response.reason_phrase
    return error_line(response.status_code, code, message)


def _ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1000
