"""The guard steps of the request path: scan the input (block, redact, flag) and the answer.

Every guard scans the text as the caller sent it, so findings' spans refer to that text; redactions
are then applied once, with stable placeholders that the answer can be restored from.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncGenerator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from strato.config import GuardsSettings
from strato.errors import InvalidRequest, RequestTooLarge
from strato.guards.redact import Placeholders
from strato.guards.verdict import (
    Action,
    Direction,
    Guard,
    ScanContext,
    Verdict,
    strictest,
    without_overlaps,
)
from strato.observe.call import stage
from strato.streams import Stream
from strato.types import Chunk, Generation, GenerationRequest, Span

if TYPE_CHECKING:
    from strato.providers.registry import ModelTable

LONGEST_PLACEHOLDER = 48  # characters held back while a streamed "<" may start a placeholder
# The built-in guards whose `scan_now` is their whole scan (plain computation): a long text is
# scanned with it on a worker thread. Other guards (banned topics embed) always run their `scan`.
OFFLOADABLE = frozenset({"secrets", "pii", "injection", "output"})


GUARD_GROUP = "strato.guards"  # the entry point group guards register in, built-ins included


class GuardBlocked(InvalidRequest):
    code = "guard_blocked"


class TextTooLongToScan(RequestTooLarge):
    code = "text_too_long_to_scan"


@dataclass
class Guarded:
    """A request after the input guards: what the model sees, and how to treat its answer."""

    request: GenerationRequest
    settings: GuardsSettings
    placeholders: Placeholders = field(default_factory=Placeholders)
    decisions: list[dict[str, Any]] = field(default_factory=list)  # for the trace
    blocked: list[tuple[str, str]] = field(default_factory=list)  # (guard, finding type) that block
    output_checked: bool = False  # a held stream's answer has been through the output guards

    def record(self) -> dict[str, Any]:
        """What the trace keeps: the request as the model saw it, and the guards' decisions."""
        return {"guards": self.decisions} if self.decisions else {}

    def action(self) -> Action:
        """The strictest decision taken (allow when nothing was found)."""
        return "block" if self.blocked else strictest([d["action"] for d in self.decisions])

    def raise_if_blocked(self) -> None:
        param = "messages" if self.request.messages is not None else "prompt"
        _raise_if_blocked(self.blocked, "request", param)

    @property
    def restores(self) -> bool:
        return self.settings.pii.restore and len(self.placeholders) > 0

    def answer(self, result: Generation) -> Generation:
        if not self.restores:
            return result
        return dataclasses.replace(result, text=self.placeholders.restore(result.text))

    def chunks(self, chunks: AsyncGenerator[Chunk, None]) -> AsyncGenerator[Chunk, None]:
        if not self.restores:
            return chunks
        return Stream(self._restored(chunks), chunks)

    async def _restored(self, chunks: AsyncGenerator[Chunk, None]) -> AsyncGenerator[Chunk, None]:
        """Restore placeholders in a stream, holding back text that may be a placeholder cut in two."""
        held = ""
        try:
            async for chunk in chunks:
                text = held + chunk.text
                cut = text.rfind("<")
                if cut != -1 and ">" not in text[cut:] and len(text) - cut < LONGEST_PLACEHOLDER:
                    text, held = text[:cut], text[cut:]
                else:
                    held = ""
                if chunk.finish_reason or chunk.usage:
                    text, held = text + held, ""
                yield dataclasses.replace(chunk, text=self.placeholders.restore(text))
            if held:
                yield Chunk(text=self.placeholders.restore(held))
        finally:
            await chunks.aclose()


@dataclass
class Checked:
    """An answer after the output guards: the text to return and what was found."""

    text: str
    action: Action
    decisions: list[dict[str, Any]]
    blocked: list[tuple[str, str]]

    def raise_if_blocked(self) -> None:
        _raise_if_blocked(self.blocked, "answer", None)


def _raise_if_blocked(blocked: list[tuple[str, str]], what: str, param: str | None) -> None:
    """400 `guard_blocked:<guard>` naming the first guard that blocked and what it found."""
    if blocked:
        guard = blocked[0][0]
        types = ", ".join(sorted({t for g, t in blocked if g == guard}))
        raise GuardBlocked(
            f"The {what} was blocked by the {guard} guard: it contains {types}.",
            code=f"guard_blocked:{guard}",
            param=param,
        )


class GuardSet:
    """The configured guards, run in order on each input message and on the answer."""

    def __init__(
        self, settings: GuardsSettings, guards: Sequence[Guard], offloadable: frozenset[str] = OFFLOADABLE
    ) -> None:
        self.settings = settings
        self.guards = tuple(guards)
        self._offloadable = offloadable
        self._threads: ThreadPoolExecutor | None = None  # started by the first long text

    def close(self) -> None:
        if self._threads is not None:
            self._threads.shutdown(wait=True, cancel_futures=True)

    async def _scan(self, guard: Guard, text: str, context: ScanContext) -> Verdict:
        """One guard's scan of one text: in place when short, on a worker thread when long (the
        scan still shares the GIL, but the event loop gets it back every few milliseconds instead
        of waiting for the whole scan)."""
        settings = context.settings or self.settings
        if len(text) < settings.offload_chars or guard.name not in self._offloadable:
            return await guard.scan(text, context)
        if self._threads is None:
            self._threads = ThreadPoolExecutor(2, thread_name_prefix="strato-guards")
        blocking = guard.scan_now  # type: ignore[attr-defined]
        return await asyncio.get_running_loop().run_in_executor(self._threads, blocking, text, context)

    def settings_for(self, model: str | None, overrides: Mapping[str, Any] | None = None) -> GuardsSettings:
        return self.settings.resolved(model, overrides)

    async def scan(
        self,
        text: str,
        direction: Direction,
        model: str | None = None,
        overrides: Mapping[str, Any] | None = None,
        system: str | None = None,
    ) -> Verdict:
        """Every guard that runs in `direction` on one text, whether or not it is on the request path
        (what `POST /v1/guards/scan` answers); `system` is the system prompt the text is sent under."""
        settings = self.settings_for(model, overrides)
        _check_length(len(text) + len(system or ""), settings, "text")
        context = ScanContext(direction, model, settings=settings, system=system)
        verdicts = [await self._scan(g, text, context) for g in self.guards if direction in g.directions]
        return _combined(text, verdicts, context)

    async def check_input(self, request: GenerationRequest, overrides: Mapping[str, Any] | None) -> Guarded:
        """Run the input guards on each message (or the prompt): the request the model will see."""
        settings = self.settings_for(request.model, overrides)
        guarded = Guarded(request, settings)
        guards = [g for g in self.guards if "input" in g.directions and g.runs(settings, "input")]
        if request.messages is not None:
            texts = [(m.role, m.content) for m in request.messages]
        else:
            texts = [("user", request.prompt or "")]
        param = "messages" if request.messages is not None else "prompt"
        _check_length(sum(len(text) for _, text in texts), settings, param)
        system = "\n".join(text for role, text in texts if role == "system") or None
        contexts = [
            ScanContext("input", request.model, guarded.placeholders, settings, role, system=system)
            for role, _ in texts
        ]
        # Guard by guard (each over every message), so each guard's time is one span.
        scanned: list[list[Verdict]] = [[] for _ in texts]
        for guard in guards:
            with _timed(guard, "input") as span:
                verdicts = [await self._scan(guard, t, c) for (_, t), c in zip(texts, contexts, strict=True)]
                _describe(span, verdicts)
            for verdict, found in zip(verdicts, scanned, strict=True):
                found.append(verdict)
        outcome: list[str] = []
        for index, ((_, text), context, verdicts) in enumerate(zip(texts, contexts, scanned, strict=True)):
            outcome.append(_combined(text, verdicts, context).text)
            _note(guarded.decisions, guarded.blocked, verdicts, "input", index)
        if outcome == [text for _, text in texts]:
            return guarded  # nothing redacted: the request as it came
        if request.messages is not None:
            messages = tuple(
                dataclasses.replace(m, content=t) for m, t in zip(request.messages, outcome, strict=True)
            )
            guarded.request = dataclasses.replace(request, messages=messages)
        else:
            guarded.request = dataclasses.replace(request, prompt=outcome[0])
        return guarded

    def buffers_stream(self, guarded: Guarded) -> bool:
        """Whether a streamed answer must be held until it is complete: an output guard may change
        or refuse it. With the default actions (flag) the stream flows and is checked at its end."""
        return any(g.rewrites(guarded.settings) for g in self.guards if "output" in g.directions)

    async def check_output(self, text: str, guarded: Guarded, finish_reason: str | None = None) -> Checked:
        """Run the output guards on the answer (as the model wrote it, before placeholders are
        restored: restored values are the caller's own). An answer that is only tool calls has no
        text to judge."""
        if finish_reason == "tool_calls" and not text:
            return Checked(text, "allow", [], [])
        fmt = guarded.request.params.response_format
        json_expected = fmt is not None and fmt.type in ("json_object", "json_schema")
        context = ScanContext(
            "output", guarded.request.model, Placeholders(), guarded.settings, json_expected=json_expected
        )
        verdicts: list[Verdict] = []
        for guard in self.guards:
            if "output" in guard.directions and guard.runs(guarded.settings, "output"):
                with _timed(guard, "output") as span:
                    verdicts.append(await self._scan(guard, text, context))
                    _describe(span, verdicts[-1:])
        verdict = _combined(text, verdicts, context)
        decisions: list[dict[str, Any]] = []
        blocked: list[tuple[str, str]] = []
        _note(decisions, blocked, verdicts, "output", None)
        return Checked(verdict.text, verdict.action, decisions, blocked)


def _check_length(length: int, settings: GuardsSettings, param: str) -> None:
    """Refuse (413) what is too long to scan, rather than pass it on unscanned."""
    if length > settings.max_scan_chars:
        raise TextTooLongToScan(
            f"The text to scan is {length:,} characters; the guards scan at most "
            f"{settings.max_scan_chars:,} in one request (guards.max_scan_chars).",
            param=param,
        )


def _timed(guard: Guard, direction: Direction) -> AbstractContextManager[Span | None]:
    """The span of one guard's scans on a request's way in or out (none outside a request)."""
    return stage(f"strato.guard.{guard.name}", {"strato.guard.direction": direction})


def _describe(span: Span | None, verdicts: list[Verdict]) -> None:
    """What a guard decided, on its span: the strictest action and how many findings."""
    if span is not None:
        span.attributes["strato.guard.action"] = strictest([v.action for v in verdicts])
        span.attributes["strato.guard.findings"] = sum(len(v.findings) for v in verdicts)


def _combined(text: str, verdicts: list[Verdict], context: ScanContext) -> Verdict:
    """One verdict from several guards' on the same text: the strictest action, every finding, and
    the text with the redacted findings replaced (where two overlap, the one found first)."""
    findings = sorted(
        (dataclasses.replace(f, guard=v.guard) for v in verdicts for f in v.findings), key=lambda f: f.start
    )
    action = strictest([v.action for v in verdicts])
    redacted = without_overlaps([f for f in findings if f.action == "redact"], lambda f: f.start)
    if redacted:
        text = context.placeholders.redact(text, redacted)
    return Verdict(action, text, findings, "+".join(v.guard for v in verdicts if v.findings))


def _note(
    decisions: list[dict[str, Any]],
    blocked: list[tuple[str, str]],
    verdicts: list[Verdict],
    direction: Direction,
    index: int | None,
) -> None:
    for verdict in verdicts:
        if not verdict.findings:
            continue
        decision: dict[str, Any] = {"guard": verdict.guard, "direction": direction}
        if index is not None:
            decision["message"] = index
        decision["action"] = verdict.action
        decision["findings"] = [f.as_dict() for f in verdict.findings]
        decisions.append(decision)
        blocked.extend((verdict.guard, f.type) for f in verdict.findings if f.action == "block")


def build_guards(settings: GuardsSettings, models: ModelTable | None = None) -> GuardSet:
    """Every guard registered in the `strato.guards` entry point group (the built-ins register
    there, as a plugin would), built from the settings and run in their `order`: secrets, PII,
    prompt injection, banned words and topics, then (on answers) profanity and content anomalies."""
    factories = sorted((ep.load() for ep in entry_points(group=GUARD_GROUP)), key=lambda f: f.order)
    return GuardSet(settings, [factory.build(settings, models) for factory in factories])
