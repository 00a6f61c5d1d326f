"""Build the configured models: each entry's `provider` names a class in the `strato.providers`
entry point group (built-ins register there too), whose `from_entry` validates its options."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Protocol

from strato.config import ConfigError, ModelEntry
from strato.errors import InvalidRequest, ModelNotFound
from strato.providers import Embedder, Provider
from strato.types import ModelInfo

ENTRY_POINT_GROUP = "strato.providers"


class ProviderFactory(Protocol):
    def from_entry(self, entry: ModelEntry) -> Provider | Embedder: ...


def provider_factory(name: str) -> ProviderFactory:
    found = entry_points(group=ENTRY_POINT_GROUP, name=name)
    if not found:
        known = ", ".join(sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)))
        raise ConfigError(f"unknown provider {name!r} (installed: {known})")
    factory: ProviderFactory = next(iter(found)).load()
    return factory


@dataclass
class ModelTable:
    """The public model names and what serves each."""

    generators: dict[str, Provider]
    embedders: dict[str, Embedder]

    def generator(self, name: str) -> Provider:
        if name in self.generators:
            return self.generators[name]
        if name in self.embedders:
            raise InvalidRequest(f"model {name!r} is an embedding model; use /v1/embeddings", param="model")
        raise ModelNotFound(f"The model {name!r} does not exist. Available: {self._names()}", param="model")

    def embedder(self, name: str) -> Embedder:
        if name in self.embedders:
            return self.embedders[name]
        if name in self.generators:
            raise InvalidRequest(f"model {name!r} does not serve embeddings", param="model")
        raise ModelNotFound(f"The model {name!r} does not exist. Available: {self._names()}", param="model")

    def infos(self) -> list[ModelInfo]:
        return [p.info() for p in self.generators.values()] + [e.info() for e in self.embedders.values()]

    def default_generator(self) -> str | None:
        return next(iter(self.generators), None)

    async def aclose(self) -> None:
        for provider in self.generators.values():
            await provider.aclose()
        for embedder in self.embedders.values():
            await embedder.aclose()

    def _names(self) -> str:
        return ", ".join([*self.generators, *self.embedders]) or "none"


def build_models(entries: list[ModelEntry]) -> ModelTable:
    table = ModelTable(generators={}, embedders={})
    for entry in entries:
        built = provider_factory(entry.provider).from_entry(entry)
        if isinstance(built, Embedder) and built.info().kind == "embed":
            table.embedders[entry.name] = built
        elif isinstance(built, Provider):
            table.generators[entry.name] = built
        else:
            raise ConfigError(
                f"model {entry.name!r}: provider {entry.provider!r} serves nothing strato knows"
            )
    return table
