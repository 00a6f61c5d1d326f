"""A router: one public model name that sends each request to a cheap or a strong target (each a
configured model or model group), by rules first, then by a learned classifier, then a default.

Rules (in order, first match wins) look at the prompt's length, code in it, tools and a pattern.
When none matches and a classifier is configured, it embeds the last user message and estimates
P(the strong target is needed); at or above the threshold the request goes to the strong target.
The decision goes on the trace (`route`) and the `x-strato-route` response header, and the chosen
target serves the request as if it had been asked for (a group still retries and falls back).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field

from strato.config import ConfigError, ModelEntry
from strato.errors import StratoError
from strato.observe.call import decide, record_call
from strato.providers import Embedder, Provider, Shared
from strato.routing.attempts import Decision
from strato.routing.group import Call, ModelGroup
from strato.routing.learned import Classifier, LearnedOptions, embed_texts, resolve_embedder
from strato.routing.rules import Prompt, Role, Rule, RuleOptions, first_match
from strato.types import Chunk, Generation, GenerationRequest, ModelInfo, ModelKind

log = logging.getLogger(__name__)
T = TypeVar("T")


class RouterOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cheap: str = Field(description="The model or model group for requests the cheap target handles well.")
    strong: str = Field(description="The model or model group for the rest.")
    rules: list[RuleOptions] = Field(
        default_factory=list, description="Checked in order before the classifier; the first match wins."
    )
    learned: LearnedOptions | None = Field(
        None, description="The classifier for requests no rule matches (`strato router train`)."
    )
    default: Role = Field(
        "cheap", description="Where requests go when no rule matches and no classifier decides."
    )


class Router:
    """Serves a public model name by choosing its cheap or strong target per request."""

    def __init__(
        self, name: str, options: RouterOptions, shared: Shared, classifier: Classifier | None = None
    ) -> None:
        self.name = name
        self.options = options
        self.shared = shared
        self.rules = [Rule(r) for r in options.rules]
        self.classifier = classifier
        self.threshold = options.learned.threshold if options.learned is not None else 0.5
        self._embedder: Embedder | None = None
        self._owns_embedder = False

    @classmethod
    def from_entry(cls, entry: ModelEntry, shared: Shared) -> Router:
        options = entry.parse_options(RouterOptions)
        classifier = None
        if options.learned is not None:
            try:
                classifier = Classifier.load(options.learned.model_path)
            except ConfigError as exc:
                raise ConfigError(f"model {entry.name!r}: {exc}") from None
            if classifier.embedder != options.learned.embedder:
                raise ConfigError(
                    f"model {entry.name!r}: {options.learned.model_path} was trained on embeddings of "
                    f"{classifier.embedder!r}, but learned.embedder is {options.learned.embedder!r}"
                )
        return cls(entry.name, options, shared, classifier)

    @classmethod
    def requires(cls, entry: ModelEntry) -> list[str]:
        """Its targets, and the embedding model a learned router scores prompts with."""
        options = entry.parse_options(RouterOptions)
        embedder = [options.learned.embedder] if options.learned is not None else []
        return [options.cheap, options.strong, *embedder]

    def targets(self) -> list[str]:
        """The models a request to the router may reach."""
        return [self.options.cheap, self.options.strong]

    def check(self) -> None:
        """Cross-model rules, once the models this router chooses from are built."""
        if self.options.cheap == self.options.strong:
            raise ConfigError(f"router {self.name!r}: cheap and strong are both {self.options.cheap!r}")
        for role, target in (("cheap", self.options.cheap), ("strong", self.options.strong)):
            if target == self.name:
                raise ConfigError(f"router {self.name!r} names itself as its {role} target")
            try:
                self.shared.generator(target)
            except StratoError:
                raise ConfigError(
                    f"router {self.name!r}: {role} target {target!r} is not a configured chat model or group"
                ) from None
        if self.options.learned is not None and self.classifier is not None:
            try:
                self._embedder, self._owns_embedder = resolve_embedder(
                    self.shared, self.options.learned.embedder
                )
            except ConfigError as exc:
                raise ConfigError(f"router {self.name!r}: learned.embedder: {exc}") from None

    def info(self) -> ModelInfo:
        return ModelInfo(
            name=self.name,
            kind=ModelKind.GENERATE,
            provider="router",
            source=f"cheap: {self.options.cheap}, strong: {self.options.strong}",
            loaded=True,
        )

    def target(self, role: Role) -> str:
        return self.options.cheap if role == "cheap" else self.options.strong

    async def choose(self, request: GenerationRequest) -> Decision:
        """Which target serves `request`, and why."""
        started = time.perf_counter()
        prompt = Prompt.of(request)
        rule = first_match(self.rules, prompt)
        role: Role = self.options.default
        reason, score = "default", None
        if rule is not None:
            role, reason = rule.target, f"rule:{rule.name}"
        elif self.classifier is not None and prompt.last_user.strip():
            score = await self._score(prompt.last_user)
            if score is not None:
                role, reason = ("strong" if score >= self.threshold else "cheap"), "learned"
        return Decision(
            router=self.name,
            target=self.target(role),
            reason=reason,
            score=None if score is None else round(score, 4),
            decision_ms=round((time.perf_counter() - started) * 1000, 3),
        )

    async def _score(self, text: str) -> float | None:
        """P(strong needed), or None when the embedder fails: routing then falls to the default
        rather than failing a request the targets could serve."""
        assert self.classifier is not None and self._embedder is not None and self.options.learned
        try:
            vectors = await embed_texts(self._embedder, self.options.learned.embedder, [text])
            return float(self.classifier.probabilities(vectors)[0])
        except (StratoError, ConfigError, ValueError) as exc:  # ConfigError: the model would not load
            log.warning("router %s: the classifier could not score a request: %s", self.name, exc)
            return None

    async def generate(self, request: GenerationRequest) -> Generation:
        return await self._serve(request, _generate)

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[Chunk, None]:
        return await self._serve(request, _stream)

    async def _serve(self, request: GenerationRequest, call: Call[T]) -> T:
        """Decide, then call the target. A plain model as target is one call, recorded as a group's
        deployment would be (so the trace names the model that answered, and is priced at its
        price); groups and routers record their own calls."""
        decision = await self.choose(request)
        decide(decision)
        provider = self.shared.generator(decision.target)
        if isinstance(provider, ModelGroup | Router):
            return await call(provider, request)
        started = time.perf_counter()
        try:
            result = await call(provider, request)
        except StratoError as exc:
            record_call(decision.target, provider.info().provider, started, exc)
            raise
        record_call(decision.target, provider.info().provider, started, None)
        return result

    async def aclose(self) -> None:
        """The targets are models of their own, closed with the model table; an embedder the
        router built for itself is closed here."""
        if self._owns_embedder and self._embedder is not None:
            await self._embedder.aclose()
        self._embedder = None


async def _generate(provider: Provider, request: GenerationRequest) -> Generation:
    return await provider.generate(request)


async def _stream(provider: Provider, request: GenerationRequest) -> AsyncGenerator[Chunk, None]:
    return await provider.stream(request)
