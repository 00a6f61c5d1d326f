"""A model group: one public name over several deployments (other configured models), with a
strategy to pick one, retries with backoff, fallbacks, and circuit breaking.

A request goes to the deployments in the strategy's order, skipping those that are out (circuit
open) or at a cap: concurrency, requests or tokens per minute (counted by this process). A
deployment's `timeout` bounds each attempt (a stream's: to its first token). A retryable failure
(connection error, timeout, 429, 5xx, or a stream that fails before its first token) is retried
on the same deployment after a backoff with full jitter, or after the upstream's `retry-after`
when it gives one, then the next deployment is tried. When all fail, the group's `fallbacks` are
tried in order; a prompt too long for the model goes to `context_fallbacks` instead. When
everything failed the answer is 503. Every call is recorded as an attempt on the request's trace.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from strato.config import ConfigError, ModelEntry
from strato.errors import ContextLengthExceeded, StratoError, UpstreamTimeout
from strato.observe.call import record_call
from strato.providers import Provider, Shared
from strato.routing.health import Health, HealthBoard
from strato.routing.strategies import Strategy, order
from strato.types import Chunk, Generation, GenerationRequest, ModelInfo, ModelKind, Price

T = TypeVar("T")
Call = Callable[[Provider, GenerationRequest], Awaitable[T]]


class DeploymentOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="A configured model that serves this deployment.")
    weight: float = Field(1.0, gt=0, description="Share of traffic under the `weighted` strategy.")
    input_cost: float | None = Field(
        None, ge=0, description="USD per million prompt tokens (`cost` strategy); unset: the model's price."
    )
    output_cost: float | None = Field(
        None, ge=0, description="USD per million completion tokens; unset: the model's price."
    )
    max_concurrency: int | None = Field(None, ge=1, description="Requests in flight at most; then skip.")
    rpm: int | None = Field(None, ge=1, description="Requests per minute at most; then skip.")
    tpm: int | None = Field(None, ge=1, description="Tokens (prompt + completion) per minute; then skip.")
    timeout: float | None = Field(
        None,
        gt=0,
        description="Seconds this deployment has to answer (a stream: to its first token) before the "
        "attempt counts as a timeout and the next is tried. Unset: the model's own timeouts.",
    )


class GroupOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    deployments: list[DeploymentOptions] = Field(min_length=1, description="Models that serve the group.")
    strategy: Strategy = Field(Strategy.WEIGHTED, description="weighted, least_busy, latency or cost.")
    retries: int = Field(1, ge=0, le=10, description="Retries per deployment on a retryable failure.")
    backoff: float = Field(0.25, ge=0, description="First retry's backoff ceiling, seconds; doubles.")
    backoff_max: float = Field(8.0, ge=0, description="Longest wait before a retry (retry-after too).")
    fallbacks: list[str] = Field(default_factory=list, description="Models or groups tried next, in order.")
    context_fallbacks: list[str] = Field(
        default_factory=list, description="Tried instead when the prompt does not fit the context."
    )
    failure_threshold: int = Field(3, ge=1, description="Consecutive failures that take a deployment out.")
    cooldown: float = Field(30.0, ge=0, description="Seconds out before one probe request is let through.")

    @field_validator("deployments", mode="before")
    @classmethod
    def _names_are_deployments(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"model": v} if isinstance(v, str) else v for v in value]
        return value


class Deployment:
    def __init__(self, options: DeploymentOptions, health: Health, price: Price | None) -> None:
        self.options = options
        self.health = health
        self.cost = (price or Price()).overridden(options.input_cost, options.output_cost)

    @property
    def name(self) -> str:
        return self.options.model

    @property
    def weight(self) -> float:
        return self.options.weight

    @property
    def price(self) -> float:
        return self.cost.input + self.cost.output

    @property
    def in_flight(self) -> int:
        return self.health.in_flight

    @property
    def latency(self) -> float | None:
        return self.health.latency

    def open(self) -> bool:
        """Can take a request now: circuit not open, and under its concurrency and rate caps."""
        cap = self.options.max_concurrency
        if not self.health.available() or (cap is not None and self.health.in_flight >= cap):
            return False
        return self._rate_wait() is None

    def ready_in(self) -> float:
        """Seconds until this deployment may take requests again (0: it is busy, not out)."""
        return max(self.health.retry_in(), self._rate_wait() or 0.0)

    def _rate_wait(self) -> float | None:
        if self.options.rpm is None and self.options.tpm is None:
            return None
        return self.health.rate_wait(self.options.rpm, self.options.tpm)


class NoDeployment(StratoError):
    status = 503
    type = "service_unavailable"
    code = "no_deployment_available"


class ModelGroup:
    """Serves a public model name from the deployments of a group (see the module docstring)."""

    def __init__(self, name: str, options: GroupOptions, shared: Shared, rng: random.Random | None = None):
        self.name = name
        self.options = options
        self.shared = shared
        self.rng = rng or random.Random()
        self.deployments = [
            Deployment(d, self._health(d.model), shared.prices.get(d.model)) for d in options.deployments
        ]

    @classmethod
    def from_entry(cls, entry: ModelEntry, shared: Shared) -> ModelGroup:
        return cls(entry.name, entry.parse_options(GroupOptions), shared)

    @classmethod
    def requires(cls, entry: ModelEntry) -> list[str]:
        """The models a group routes to are built before it."""
        options = entry.parse_options(GroupOptions)
        return [d.model for d in options.deployments] + options.fallbacks + options.context_fallbacks

    def targets(self) -> list[str]:
        """Every model a request to the group may reach: deployments, then fallbacks."""
        return [d.name for d in self.deployments] + self.options.fallbacks + self.options.context_fallbacks

    def check(self) -> None:
        for target in self.targets():
            if target == self.name:
                raise ConfigError(f"model group {self.name!r} names itself")
            try:
                self.shared.generator(target)
            except StratoError:
                raise ConfigError(
                    f"model group {self.name!r}: {target!r} is not a configured chat model"
                ) from None

    def info(self) -> ModelInfo:
        return ModelInfo(
            name=self.name,
            kind=ModelKind.GENERATE,
            provider="group",
            source=", ".join(d.name for d in self.deployments),
            loaded=True,
        )

    async def generate(self, request: GenerationRequest) -> Generation:
        return await self.serve(request, _generate, frozenset())

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[Chunk, None]:
        return await self.serve(request, _open_stream, frozenset())

    async def aclose(self) -> None:
        """The deployments are models of their own; they are closed with the model table."""

    async def serve(self, request: GenerationRequest, call: Call[T], seen: frozenset[str]) -> T:
        seen = seen | {self.name}
        error: StratoError
        targets: list[str]
        try:
            return await self._through_deployments(request, call)
        except ContextLengthExceeded as exc:
            targets, error = self.options.context_fallbacks, exc
        except StratoError as exc:
            if not _retryable(exc):
                raise
            targets, error = self.options.fallbacks, exc
        for target in targets:
            if target in seen:
                continue
            provider = self.shared.generator(target)
            try:
                if isinstance(provider, ModelGroup):
                    return await provider.serve(request, call, seen)
                return await self._try(target, provider, self._health(target), request, call)
            except ContextLengthExceeded as exc:
                error = exc
            except StratoError as exc:
                if not _retryable(exc):
                    raise
                error = exc
        if _retryable(error) and not isinstance(error, NoDeployment):
            raise NoDeployment(
                f"every deployment of {self.name!r} failed (the trace lists each attempt); the last: "
                f"{error.message}",
                headers=error.headers,
                detail=error.detail,
            )
        raise error

    async def _through_deployments(self, request: GenerationRequest, call: Call[T]) -> T:
        ready = [d for d in self.deployments if d.open()]
        if not ready:
            wait = min((d.ready_in() for d in self.deployments), default=0.0)
            raise NoDeployment(
                f"no deployment of {self.name!r} is available (all out after failures, busy, or at "
                "their rate limits)",
                headers={"retry-after": str(max(1, round(wait)))},
            )
        error: StratoError | None = None
        for deployment in order(self.options.strategy, ready, self.rng):
            provider = self.shared.generator(deployment.name)
            try:
                return await self._try(
                    deployment.name, provider, deployment.health, request, call, deployment.options.timeout
                )
            except StratoError as exc:
                if not _retryable(exc):
                    raise
                error = exc
        assert error is not None
        raise error

    async def _try(
        self,
        name: str,
        provider: Provider,
        health: Health,
        request: GenerationRequest,
        call: Call[T],
        limit: float | None = None,
    ) -> T:
        """Call one deployment, retrying retryable failures while its circuit stays closed."""
        for retry in range(self.options.retries + 1):
            started = time.perf_counter()
            health.begin()
            try:
                result = await _within(limit, name, call(provider, request))
            except StratoError as exc:
                health.end()
                (health.failure if _retryable(exc) else health.neutral)()
                record_call(name, provider.info().provider, started, exc)
                last = retry == self.options.retries
                if not _retryable(exc) or last or not health.available():
                    raise
                delay = self._delay(retry, exc)
                if delay is None:  # the upstream asks for a longer wait than the group allows
                    raise
                await asyncio.sleep(delay)
                continue
            except BaseException:
                health.end()
                health.neutral()
                raise
            health.success(time.perf_counter() - started)
            record_call(name, provider.info().provider, started, None)
            if isinstance(result, _Replay):
                result.on_close = health.end  # a stream stays in flight until it ends
                result.on_usage = health.used
            else:
                health.end()
                if isinstance(result, Generation):
                    health.used(result.usage.total_tokens)
            return result
        raise AssertionError("unreachable")

    def _delay(self, retry: int, exc: StratoError) -> float | None:
        """Seconds before the next retry; None when the upstream asks for longer than we wait."""
        after = exc.headers.get("retry-after")
        if after is not None:
            try:
                seconds = float(after)
            except ValueError:
                seconds = self.options.backoff_max
            return seconds if seconds <= self.options.backoff_max else None
        ceiling = min(self.options.backoff_max, self.options.backoff * 2**retry)
        return self.rng.uniform(0, ceiling)

    def _health(self, name: str) -> Health:
        return self.shared.state(HealthBoard).setdefault(
            name, Health(failure_threshold=self.options.failure_threshold, cooldown=self.options.cooldown)
        )


async def _within(seconds: float | None, name: str, work: Awaitable[T]) -> T:
    if seconds is None:
        return await work
    try:
        async with asyncio.timeout(seconds):
            return await work
    except TimeoutError:
        raise UpstreamTimeout(f"deployment {name!r} did not answer within {seconds:g} s") from None


def _retryable(exc: StratoError) -> bool:
    return exc.status == 429 or exc.status >= 500


async def _generate(provider: Provider, request: GenerationRequest) -> Generation:
    return await provider.generate(request)


async def _open_stream(provider: Provider, request: GenerationRequest) -> AsyncGenerator[Chunk, None]:
    """Start a stream and read up to its first token, so a stream that fails before any output
    counts as a failed attempt (and can be retried) rather than reaching the client."""
    chunks = await provider.stream(request)
    head: list[Chunk] = []
    try:
        async for chunk in chunks:
            head.append(chunk)
            if chunk.text or chunk.finish_reason:
                break
    except BaseException:
        await chunks.aclose()
        raise
    return _Replay(head, chunks)


class _Replay(AsyncGenerator[Chunk, None]):
    """The chunks read ahead, then the rest of the stream; `on_close` runs once when it ends."""

    def __init__(self, head: list[Chunk], rest: AsyncGenerator[Chunk, None]) -> None:
        self._head = head
        self._rest = rest
        self.on_close: Callable[[], None] | None = None
        self.on_usage: Callable[[int], None] | None = None  # the tokens of the finished answer

    async def asend(self, value: None) -> Chunk:
        if self._head:
            chunk = self._head.pop(0)
        else:
            try:
                chunk = await self._rest.__anext__()
            except BaseException:
                self._closed()
                raise
        if chunk.usage is not None and self.on_usage is not None:
            self.on_usage(chunk.usage.total_tokens)
        return chunk

    async def athrow(self, typ: Any, val: Any = None, tb: Any = None) -> Chunk:
        await self.aclose()
        raise typ if val is None else val

    async def aclose(self) -> None:
        try:
            await self._rest.aclose()
        finally:
            self._closed()

    def _closed(self) -> None:
        on_close, self.on_close = self.on_close, None
        if on_close is not None:
            on_close()
