"""A sliding minute of requests and tokens: what rpm and tpm limits count, per API key
(`strato.auth`) and per deployment of a model group (`strato.routing`)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

WINDOW = 60.0  # seconds: rpm and tpm count the last minute


@dataclass
class MinuteWindow:
    requests: deque[float] = field(default_factory=deque)  # when each request of the minute started
    tokens: deque[tuple[float, int]] = field(default_factory=deque)  # (when, tokens) of answers
    token_total: int = 0

    def add_request(self, now: float) -> None:
        self.trim(now)
        self.requests.append(now)

    def add_tokens(self, now: float, tokens: int) -> None:
        if tokens > 0:
            self.trim(now)
            self.tokens.append((now, tokens))
            self.token_total += tokens

    def wait(self, rpm: int | None, tpm: int | None, now: float) -> float | None:
        """Seconds until one more request fits under `rpm` and `tpm`; None when it fits now."""
        self.trim(now)
        if rpm is not None and len(self.requests) >= rpm:
            return self.requests[0] + WINDOW - now
        if tpm is not None and self.token_total >= tpm:
            # Wait until enough of the minute's tokens have left the window.
            excess, total = self.token_total - tpm, 0
            for at, tokens in self.tokens:
                total += tokens
                if total > excess:
                    return at + WINDOW - now
        return None

    def trim(self, now: float) -> None:
        while self.requests and self.requests[0] <= now - WINDOW:
            self.requests.popleft()
        while self.tokens and self.tokens[0][0] <= now - WINDOW:
            self.token_total -= self.tokens.popleft()[1]
