"""The guard seam: a `Guard` scans text and returns a `Verdict` built from `Finding`s."""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from strato.guards.redact import Placeholders

if TYPE_CHECKING:
    from strato.config import GuardsSettings

Action = Literal["allow", "flag", "redact", "block"]
Direction = Literal["input", "output"]

# Most severe wins when findings ask for different actions.
SEVERITY: dict[Action, int] = {"allow": 0, "flag": 1, "redact": 2, "block": 3}
REWRITING: frozenset[Action] = frozenset({"redact", "block"})  # actions that change or refuse a text


@dataclass(frozen=True)
class Finding:
    """One thing a guard found: its type, where it is in the text it was given, how sure it is."""

    type: str
    start: int
    end: int
    score: float
    text: str
    action: Action = "flag"  # what the policy does with it
    guard: str = ""  # which guard found it, once several guards' findings are put together

    def as_dict(self) -> dict[str, object]:
        """What a trace or an API response shows: never the matched text itself."""
        shown: dict[str, object] = {
            "type": self.type,
            "start": self.start,
            "end": self.end,
            "score": round(self.score, 3),
            "action": self.action,
        }
        if self.guard:
            shown["guard"] = self.guard
        return shown


@dataclass(frozen=True)
class ScanContext:
    """What a guard may want to know about the text it scans. `settings` are the guard settings for
    this request (global, the model's and the key's overrides merged); None: the guard's own."""

    direction: Direction = "input"
    model: str | None = None
    placeholders: Placeholders = field(default_factory=lambda: _placeholders())
    settings: GuardsSettings | None = None
    # On a request: the message's role ("tool": text the model's tools returned). None: a text
    # scanned on its own (/v1/guards/scan), which every guard reads whatever its request policy.
    role: str | None = None
    system: str | None = None  # the conversation's system prompt, for guards that judge a turn against it
    json_expected: bool = False  # on output: the request asked for JSON (response_format)


@dataclass
class Verdict:
    """The outcome of a scan: the action, the text to use from here on, and why."""

    action: Action
    text: str
    findings: list[Finding] = field(default_factory=list)
    guard: str = ""


class Guard(Protocol):
    """A scanner on the request path. `name` appears in error codes (`guard_blocked:<name>`).
    `directions` says where it runs: on input (each message), on output (the answer), or both."""

    name: str
    directions: tuple[Direction, ...]

    async def scan(self, text: str, context: ScanContext) -> Verdict: ...

    def rewrites(self, settings: GuardsSettings) -> bool:
        """Whether, under these settings, it may change or refuse an answer (a redact or block
        action on output): a streamed answer is then held until it is complete."""
        ...

    def runs(self, settings: GuardsSettings, direction: Direction) -> bool:
        """Whether, under these settings, it has anything to do on requests (`input`) or answers
        (`output`). One that has not is skipped on the request path: no scan, no span on the
        trace. `/v1/guards/scan` still asks every guard."""
        ...


def strictest(actions: list[Action]) -> Action:
    return max(actions, key=SEVERITY.__getitem__, default="allow")


def without_overlaps(findings: list[Finding], prefer: Callable[[Finding], Any]) -> list[Finding]:
    """Of overlapping findings keep the one `prefer` ranks first (smallest key), so a redaction
    replaces each span once; in text order."""
    # Kept findings never overlap, so in (start, end) order their ends rise too: only the last one
    # starting at or before a new finding's start and the first one after it can overlap it. A
    # text with thousands of findings is resolved in n log n, not n squared.
    kept: list[Finding] = []
    spans: list[tuple[int, float]] = []
    for f in sorted(findings, key=prefer):
        after = bisect.bisect_right(spans, (f.start, math.inf))  # the first one starting after f
        # An empty finding at a kept one's start does not overlap it: look before those.
        before = after if f.end > f.start else bisect.bisect_left(spans, (f.start, -math.inf))
        if before > 0 and kept[before - 1].end > f.start:
            continue
        if after < len(kept) and kept[after].start < f.end:
            continue
        at = bisect.bisect_left(spans, (f.start, f.end))
        kept.insert(at, f)
        spans.insert(at, (f.start, f.end))
    return kept


def by_score(f: Finding) -> tuple[float, int, int]:
    """The higher score, then the longer span, then the earlier."""
    return (-f.score, -(f.end - f.start), f.start)


def _placeholders() -> Placeholders:
    return Placeholders()
