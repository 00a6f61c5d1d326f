"""What the router knows about each deployment: requests in flight, recent latency, requests and
tokens in the last minute (for rpm/tpm caps), and a circuit breaker that takes a deployment out
after repeated failures and lets one probe through after a cooldown (closed -> open -> half-open ->
closed)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from strato.window import MinuteWindow


@dataclass
class Health:
    failure_threshold: int = 3  # consecutive failures that open the circuit
    cooldown: float = 30.0  # seconds a deployment stays out before a probe
    clock: Callable[[], float] = time.monotonic
    in_flight: int = 0
    latency: float | None = None  # running mean of successful calls (to the first token), seconds
    failures: int = 0  # consecutive
    opened_at: float | None = None
    probing: bool = False
    window: MinuteWindow = field(default_factory=MinuteWindow)  # calls and tokens, last minute

    def used(self, tokens: int) -> None:
        """An answer's prompt and completion tokens, counted against a tpm cap."""
        self.window.add_tokens(self.clock(), tokens)

    def rate_wait(self, rpm: int | None, tpm: int | None) -> float | None:
        """Seconds until one more call fits under `rpm` and `tpm`; None when it fits now."""
        return self.window.wait(rpm, tpm, self.clock())

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        return "open" if self.clock() - self.opened_at < self.cooldown else "half_open"

    def available(self) -> bool:
        """Closed, or half-open with no probe running yet."""
        state = self.state
        return state == "closed" or (state == "half_open" and not self.probing)

    def retry_in(self) -> float:
        """Seconds until an open circuit lets a probe through."""
        if self.opened_at is None:
            return 0.0
        return max(0.0, self.cooldown - (self.clock() - self.opened_at))

    def begin(self) -> None:
        self.in_flight += 1
        self.window.add_request(self.clock())
        if self.state == "half_open":
            self.probing = True

    def end(self) -> None:
        self.in_flight -= 1

    def success(self, seconds: float) -> None:
        self.failures, self.opened_at, self.probing = 0, None, False
        self.latency = seconds if self.latency is None else self.latency + 0.2 * (seconds - self.latency)

    def failure(self) -> None:
        self.failures += 1
        if self.probing or self.failures >= self.failure_threshold:
            self.opened_at = self.clock()
        self.probing = False

    def neutral(self) -> None:
        """The call ended for a reason that says nothing about the deployment (a bad request)."""
        self.probing = False


class HealthBoard(dict[str, Health]):
    """Every deployment's health, by model name: one per configuration (`Shared.state`), so two
    groups routing to the same model see the same breaker."""
