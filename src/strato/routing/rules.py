"""A router's rules: cheap checks on a request (its length, code in it, tools, a pattern), evaluated
in order; the first rule whose conditions all hold names the target.

Everything here is plain string work on the request, so a rules-only decision costs microseconds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from strato.config import Name
from strato.tokens import approx_tokens
from strato.types import GenerationRequest

Role = Literal["cheap", "strong"]


# Signs of code in a message: a fenced block, a line that opens like a statement in a common
# language, an SQL statement, or a line that ends the way code lines do. Prose rarely does any.
CODE = re.compile(
    r"```|~~~"
    r"|^[ \t]*(?:def|class|import|from\s+[\w.]+\s+import|function|const|let|var|public|private"
    r"|static|package|func|fn|impl|struct|#include|#define|using\s+namespace)\b[^\n]*[:;{(=]"
    r"|^[ \t]*(?:SELECT|INSERT|UPDATE|DELETE|CREATE|ALTER)\s[^\n]*\b(?:FROM|INTO|SET|TABLE|WHERE)\b"
    r"|[;{}][ \t]*$"
    r"|\b\w+\([^()\n]*\)\s*(?:\{|=>|->)"
    r"|</?[a-z][a-z0-9]*(?:\s[^<>\n]*)?>[^\n]*</[a-z][a-z0-9]*>",
    re.MULTILINE,
)


class RuleOptions(BaseModel):
    """One rule: every condition it sets must hold for it to match."""

    model_config = ConfigDict(extra="forbid")

    name: Name = Field(description="Shown as `reason=rule:<name>` in the header, the trace and reports.")
    target: Role = Field(description="Where a matching request goes: `cheap` or `strong`.")
    min_tokens: int | None = Field(
        None, ge=0, description="Matches prompts of at least this many tokens (approximate: bytes / 4)."
    )
    max_tokens: int | None = Field(
        None, ge=0, description="Matches prompts of at most this many tokens (not the request's max_tokens)."
    )
    has_code: bool | None = Field(
        None, description="true: the user's messages contain code (fences, code-like lines); false: none."
    )
    has_tools: bool | None = Field(None, description="true: the request passes `tools`; false: it does not.")
    pattern: str | None = Field(
        None, description="A Python regular expression searched for in the last user message."
    )

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression ({exc})") from None
        return value

    @model_validator(mode="after")
    def _has_a_condition(self) -> RuleOptions:
        conditions = (self.min_tokens, self.max_tokens, self.has_code, self.has_tools, self.pattern)
        if all(c is None for c in conditions):
            raise ValueError(
                f"rule {self.name!r} has no condition (min_tokens, max_tokens, has_code, has_tools, pattern)"
            )
        return self


@dataclass(frozen=True, slots=True)
class Prompt:
    """What rules look at, read once per request."""

    tokens: int  # approximate, over every message (or the completion prompt)
    user_text: str  # every user message, joined
    last_user: str  # the last user message (the completion prompt for completions)
    has_tools: bool

    @classmethod
    def of(cls, request: GenerationRequest) -> Prompt:
        if request.messages is not None:
            contents = [m.content for m in request.messages]
            users = [m.content for m in request.messages if m.role == "user"]
        else:
            contents = users = [request.prompt or ""]
        tools = request.passthrough.get("tools") or request.passthrough.get("functions")
        return cls(
            tokens=approx_tokens("\n".join(contents)),
            user_text="\n".join(users),
            last_user=users[-1] if users else "",
            has_tools=bool(tools),
        )


def has_code(text: str) -> bool:
    return CODE.search(text) is not None


class Rule:
    def __init__(self, options: RuleOptions) -> None:
        self.options = options
        self.name = options.name
        self.target: Role = options.target
        self._pattern = re.compile(options.pattern) if options.pattern is not None else None

    def matches(self, prompt: Prompt) -> bool:
        o = self.options
        if o.min_tokens is not None and prompt.tokens < o.min_tokens:
            return False
        if o.max_tokens is not None and prompt.tokens > o.max_tokens:
            return False
        if o.has_tools is not None and prompt.has_tools != o.has_tools:
            return False
        if self._pattern is not None and self._pattern.search(prompt.last_user) is None:
            return False
        # Last: the only condition that scans every user message.
        return o.has_code is None or has_code(prompt.user_text) == o.has_code


def first_match(rules: list[Rule], prompt: Prompt) -> Rule | None:
    return next((rule for rule in rules if rule.matches(prompt)), None)
