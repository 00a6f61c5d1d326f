"""Build the configured models: each entry's `provider` names a class in the `strato.providers`
entry point group (built-ins register there too), whose `from_entry` validates its options."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Protocol, runtime_checkable

from strato.config import ConfigError, ModelEntry
from strato.engine.pool import EnginePool
from strato.errors import InvalidRequest, ModelNotFound
from strato.providers import Embedder, Provider, Shared
from strato.types import ModelInfo, Price

ENTRY_POINT_GROUP = "strato.providers"
LOCAL_PROVIDERS = frozenset({"llama_cpp"})  # priced at the engine's compute cost unless set


class ProviderFactory(Protocol):
    def from_entry(self, entry: ModelEntry, shared: Shared) -> Provider | Embedder: ...


@runtime_checkable
class DependentFactory(Protocol):
    """A provider built on other configured models (a LoRA on its base, a group on its deployments
    and fallbacks, a router on its targets) says which, so that they are built first."""

    def requires(self, entry: ModelEntry) -> list[str]: ...


def provider_factory(name: str) -> ProviderFactory:
    found = entry_points(group=ENTRY_POINT_GROUP, name=name)
    if not found:
        known = ", ".join(sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)))
        raise ConfigError(f"unknown provider {name!r} (installed: {known})")
    factory: ProviderFactory = next(iter(found)).load()
    return factory


@runtime_checkable
class Routed(Protocol):
    """A provider that serves a name by sending requests on to other configured models."""

    def targets(self) -> list[str]: ...


@dataclass
class ModelTable:
    """The public model names and what serves each."""

    generators: dict[str, Provider]
    embedders: dict[str, Embedder]
    shared: Shared

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

    def add(self, entry: ModelEntry) -> Provider | Embedder:
        """Build `entry` and serve it under its name (at start-up, or later through the admin API)."""
        if entry.name in self.generators or entry.name in self.embedders:
            raise ConfigError(f"model name {entry.name!r} is configured twice")
        built = provider_factory(entry.provider).from_entry(entry, self.shared)
        check = getattr(built, "check", None)
        if check is not None:
            check()  # cross-entry rules, e.g. a LoRA model's base must be a local model
        price = self._price(entry)
        if price is not None:
            self.shared.prices[entry.name] = price
        if isinstance(built, Embedder) and built.info().kind == "embed":
            self.embedders[entry.name] = built
        elif isinstance(built, Provider):
            self.generators[entry.name] = built
        else:
            raise ConfigError(
                f"model {entry.name!r}: provider {entry.provider!r} serves nothing strato knows"
            )
        return built

    async def remove(self, name: str) -> None:
        """Stop serving `name` (requests already running finish)."""
        provider: Provider | Embedder | None = self.generators.pop(name, None) or self.embedders.pop(
            name, None
        )
        if provider is None:
            raise ModelNotFound(f"The model {name!r} does not exist.", param="model")
        await provider.aclose()

    async def aclose(self) -> None:
        for provider in self.generators.values():
            await provider.aclose()
        for embedder in self.embedders.values():
            await embedder.aclose()
        await self.shared.engines.aclose()

    def price(self, name: str | None) -> Price | None:
        """The price of a configured model, None when none is known (a remote model without one)."""
        return self.shared.prices.get(name) if name is not None else None

    def worst_price(self, name: str | None, seen: frozenset[str] = frozenset()) -> Price | None:
        """What a budget hold prices a request to `name` at: its own price, else, for a group or a
        router, the dearest input and output prices among the models it may reach."""
        own = self.price(name)
        provider = self.generators.get(name or "")
        if own is not None or name is None or name in seen or not isinstance(provider, Routed):
            return own
        prices = [p for t in provider.targets() if (p := self.worst_price(t, seen | {name})) is not None]
        if not prices:
            return None
        return Price(max(p.input for p in prices), max(p.output for p in prices))

    def _price(self, entry: ModelEntry) -> Price | None:
        local = self.shared.local_price if entry.provider in LOCAL_PROVIDERS else None
        if entry.input_cost is None and entry.output_cost is None:
            return local
        return (local or Price()).overridden(entry.input_cost, entry.output_cost)

    def _names(self) -> str:
        return ", ".join([*self.generators, *self.embedders]) or "none"


def build_models(
    entries: list[ModelEntry], memory_budget_mb: int | None = None, local_price: Price | None = None
) -> ModelTable:
    """`local_price` is what local models cost when they set no price (the engine's compute)."""
    budget = memory_budget_mb * 2**20 if memory_budget_mb else None
    shared = Shared(engines=EnginePool(budget), local_price=local_price or Price())
    table = ModelTable(generators={}, embedders={}, shared=shared)
    table.shared.models = table.generator
    table.shared.embedders = table.embedder
    for entry in build_order(entries):
        table.add(entry)
    # Keep the configured order for listings.
    order = {entry.name: i for i, entry in enumerate(entries)}
    table.generators = dict(sorted(table.generators.items(), key=lambda kv: order[kv[0]]))
    return table


def build_order(entries: list[ModelEntry]) -> list[ModelEntry]:
    """The entries with every model built after the configured models it requires (its factory's
    `requires`), otherwise in the configured order. Raises ConfigError for models that require
    each other; a required name that is not configured is left to the model's own check."""
    names = {entry.name for entry in entries}
    needs: dict[str, set[str]] = {}
    for entry in entries:
        factory = provider_factory(entry.provider)
        required = factory.requires(entry) if isinstance(factory, DependentFactory) else []
        needs[entry.name] = {name for name in required if name in names and name != entry.name}
    ordered: list[ModelEntry] = []
    built: set[str] = set()
    pending = list(entries)
    while pending:
        ready = next((entry for entry in pending if needs[entry.name] <= built), None)
        if ready is None:
            circle = ", ".join(sorted(entry.name for entry in pending))
            raise ConfigError(f"models {circle} require each other; none can be built first")
        ordered.append(ready)
        built.add(ready.name)
        pending.remove(ready)
    return ordered
