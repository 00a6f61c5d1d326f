"""The provider seam: everything that turns a request into model output.

A `Provider` generates text (chat or completion), an `Embedder` turns text into vectors. Built-in
implementations and plugins register under the `strato.providers` entry point group and are built
from a `ModelEntry` by `strato.providers.registry.build_models`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, TypeVar, cast, runtime_checkable

from strato.types import (
    Chunk,
    EmbeddingRequest,
    Embeddings,
    Generation,
    GenerationRequest,
    ModelInfo,
    Price,
)

if TYPE_CHECKING:
    from strato.engine.pool import EnginePool

T = TypeVar("T")


@dataclass
class Shared:
    """What the providers built from one configuration share: the local engine pool (one memory
    budget for every local model), the other models by name (model groups route to them), prices,
    and one instance of any state a kind of provider keeps across models (`state`: routing keeps
    what it has learnt about each deployment's health there)."""

    engines: EnginePool
    models: Callable[[str], Provider] | None = None
    embedders: Callable[[str], Embedder] | None = None  # routers embed prompts with them
    prices: dict[str, Price] = field(default_factory=dict)  # per model name, USD per million tokens
    local_price: Price = field(default_factory=lambda: Price())

    _states: dict[type, object] = field(default_factory=dict, repr=False)

    def state(self, kind: type[T]) -> T:
        """The one `kind()` of these providers, made on first use."""
        found = self._states.get(kind)
        if found is None:
            found = self._states[kind] = kind()
        return cast(T, found)

    def generator(self, name: str) -> Provider:
        if self.models is None:
            raise RuntimeError("the model table is not set up yet")
        return self.models(name)

    def embedder(self, name: str) -> Embedder:
        if self.embedders is None:
            raise RuntimeError("the model table is not set up yet")
        return self.embedders(name)


@runtime_checkable
class Provider(Protocol):
    """Serves chat and text completions for one configured model."""

    def info(self) -> ModelInfo: ...

    async def generate(self, request: GenerationRequest) -> Generation:
        """The whole answer at once."""
        ...

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[Chunk, None]:
        """Validate and start the request, then return its chunks as they are produced.

        Errors that can be known before the first token (bad parameters, a prompt longer than the
        context, an upstream that refuses the request) are raised by this call itself, so the server
        can still answer them with a proper HTTP status. Closing the returned generator early
        (`aclose()`) stops generation.
        """
        ...

    async def aclose(self) -> None: ...


@runtime_checkable
class TokenCounter(Protocol):
    """A provider that can count a prompt in its model's own tokens (chat template included)."""

    def count_prompt_tokens(self, request: GenerationRequest) -> int | None:
        """The count, or None when it cannot be known cheaply now (e.g. the model is not loaded)."""
        ...


@runtime_checkable
class Embedder(Protocol):
    """Serves embeddings for one configured model."""

    def info(self) -> ModelInfo: ...

    async def embed(self, request: EmbeddingRequest) -> Embeddings: ...

    async def aclose(self) -> None: ...
