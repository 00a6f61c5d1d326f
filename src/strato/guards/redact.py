"""Stable placeholders for redacted values, and putting the values back into an answer.

Within one request the same value always gets the same placeholder (`<EMAIL_ADDRESS_1>`), so a model
can still tell two people's addresses apart and refer back to them; `restore` swaps the placeholders
in the model's answer for the values the caller sent.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Protocol

from strato.guards.normalize import normalize

PLACEHOLDER = re.compile(r"<([A-Z][A-Z_]*?)_(\d+)>")


class Span(Protocol):
    """What redaction needs of a finding (`strato.guards.verdict.Finding`)."""

    @property
    def type(self) -> str: ...
    @property
    def start(self) -> int: ...
    @property
    def end(self) -> int: ...


class Placeholders:
    """The placeholders handed out in one request (one per distinct value and type)."""

    def __init__(self) -> None:
        self._by_value: dict[tuple[str, str], str] = {}
        self._originals: dict[str, str] = {}
        self._counts: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._originals)

    def placeholder(self, entity: str, value: str) -> str:
        key = (entity, normalize(value).text)
        if key not in self._by_value:
            self._counts[entity] = self._counts.get(entity, 0) + 1
            name = f"<{entity}_{self._counts[entity]}>"
            self._by_value[key] = name
            self._originals[name] = value
        return self._by_value[key]

    def redact(self, text: str, findings: Iterable[Span]) -> str:
        """`text` with each finding's span replaced by its placeholder (spans must not overlap)."""
        parts: list[str] = []
        last = 0
        for finding in sorted(findings, key=lambda f: f.start):
            parts.append(text[last : finding.start])
            parts.append(self.placeholder(finding.type, text[finding.start : finding.end]))
            last = finding.end
        parts.append(text[last:])
        return "".join(parts)

    def restore(self, text: str) -> str:
        """Put the original values back; placeholders this request did not hand out stay as they are."""
        if not self._originals:
            return text
        return PLACEHOLDER.sub(lambda m: self._originals.get(m.group(0), m.group(0)), text)
