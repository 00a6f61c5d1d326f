"""The input-guards step of the request path: scan every message, block or redact, restore the answer."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

from strato.errors import InvalidRequest
from strato.guards.pii import PIIGuard
from strato.guards.redact import Placeholders
from strato.guards.verdict import Action, ScanContext, Verdict, strictest
from strato.types import Chunk, Generation, GenerationRequest

LONGEST_PLACEHOLDER = 48  # characters held back while a streamed "<" may start a placeholder


class GuardBlocked(InvalidRequest):
    code = "guard_blocked"


@dataclass
class Guarded:
    """A request after the input guards: what the model sees, and how to restore its answer."""

    request: GenerationRequest
    placeholders: Placeholders = field(default_factory=Placeholders)
    decisions: list[dict[str, Any]] = field(default_factory=list)  # for the trace
    restore: bool = False
    blocked: list[str] = field(default_factory=list)  # entity types the policy blocks
    guard: str = "pii"

    def record(self) -> dict[str, Any]:
        """What the trace keeps: the request as the model saw it, and the guards' decisions."""
        return {"guards": self.decisions} if self.decisions else {}

    def action(self) -> Action:
        """The strictest decision taken on any message (allow when nothing was found)."""
        return "block" if self.blocked else strictest([d["action"] for d in self.decisions])

    def raise_if_blocked(self) -> None:
        if self.blocked:
            raise GuardBlocked(
                f"The request was blocked by the {self.guard} guard: it contains {', '.join(self.blocked)}.",
                code=f"guard_blocked:{self.guard}",
                param="messages" if self.request.messages is not None else "prompt",
            )

    def answer(self, result: Generation) -> Generation:
        if not self.restore or not len(self.placeholders):
            return result
        return dataclasses.replace(result, text=self.placeholders.restore(result.text))

    def chunks(self, chunks: AsyncGenerator[Chunk, None]) -> AsyncGenerator[Chunk, None]:
        if not self.restore or not len(self.placeholders):
            return chunks
        return self._restored(chunks)

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


def guard_input(guard: PIIGuard, request: GenerationRequest) -> Guarded:
    """Apply the PII policy to the request's messages (or prompt). Raises GuardBlocked."""
    policy = guard.policy(request.model)
    guarded = Guarded(request, restore=policy.restore)
    if not (policy.enabled and policy.enforce):
        return guarded
    context = ScanContext("input", request.model, guarded.placeholders)
    if request.messages is not None:
        verdicts = [guard.scan_now(m.content, context) for m in request.messages]
        messages = tuple(
            dataclasses.replace(m, content=v.text) for m, v in zip(request.messages, verdicts, strict=True)
        )
        guarded.request = dataclasses.replace(request, messages=messages)
    else:
        verdicts = [guard.scan_now(request.prompt or "", context)]
        guarded.request = dataclasses.replace(request, prompt=verdicts[0].text)
    guarded.decisions = [_decision(i, v) for i, v in enumerate(verdicts) if v.findings]
    guarded.blocked = sorted({f.type for v in verdicts for f in v.findings if f.action == "block"})
    return guarded


def _decision(index: int, verdict: Verdict) -> dict[str, Any]:
    return {
        "guard": verdict.guard,
        "direction": "input",
        "message": index,
        "action": verdict.action,
        "findings": [f.as_dict() for f in verdict.findings],
    }
