"""Alert webhooks: each anomaly found on a response is POSTed as JSON to the configured URLs.

Sending never touches the request path: `submit` filters, rate-limits and queues in O(1) (a bounded
queue; when it is full the alert is dropped with a warning and counted as held back), and a thread
posts the queue with httpx. At most one alert per (kind, model) goes out in `min_interval_seconds`;
the next one that does says how many were held back in between (`suppressed`). A failed call
(connection refused, timeout, 5xx) is retried once, then logged and dropped.

The payload carries a one-line `text` as well as its fields, so Slack and Mattermost incoming
webhooks show it as a message:

    {"kind": "REFUSAL", "model": "gpt-4o", "trace_id": "3f2a...", "detail": "...",
     "at": "2026-01-31T12:00:00.123+00:00", "suppressed": 0, "text": "strato: REFUSAL on gpt-4o ..."}
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from strato.config.observe import AlertSettings

log = logging.getLogger(__name__)

QUEUE_SIZE = 1000  # alerts waiting to be sent; past that new ones are dropped
RETRY_DELAY = 0.5  # seconds before the one retry of a failed call
CLOSE_TIMEOUT = 10.0  # how long `close` waits for the queue to be sent


@dataclass(frozen=True, slots=True)
class Alert:
    kind: str
    model: str
    trace_id: str
    detail: str
    at: float  # seconds since the epoch

    def payload(self, suppressed: int) -> dict[str, Any]:
        at = datetime.fromtimestamp(self.at, UTC).isoformat(timespec="milliseconds")
        text = f"strato: {self.kind} on {self.model}: {self.detail} (trace {self.trace_id})"
        if suppressed:
            text += f"; {suppressed} more held back since the last alert"
        return {
            "kind": self.kind,
            "model": self.model,
            "trace_id": self.trace_id,
            "detail": self.detail,
            "at": at,
            "suppressed": suppressed,
            "text": text,
        }


@dataclass(slots=True)
class _Window:
    sent_at: float  # time.monotonic() of the last alert queued for this (kind, model)
    suppressed: int = 0  # held back since


class AlertSender:
    """Queues alerts and posts them to every webhook from a thread of its own."""

    def __init__(
        self,
        settings: AlertSettings,
        *,
        queue_size: int = QUEUE_SIZE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.kinds = {k.upper() for k in settings.kinds} if settings.kinds is not None else None
        self._clock = clock
        self._windows: dict[tuple[str, str], _Window] = {}
        self._lock = threading.Lock()
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue(queue_size)
        self._closing = threading.Event()
        self._dropped = 0
        self.sent = 0  # calls that succeeded (for tests and logs)
        self.failed = 0  # alerts given up on
        self._thread = threading.Thread(target=self._send_loop, name="strato alerts", daemon=True)
        self._thread.start()

    def submit(self, alert: Alert) -> bool:
        """Queue an alert unless its kind is filtered out or its (kind, model) sent one too
        recently. Never blocks; returns whether it was queued."""
        if self.kinds is not None and alert.kind not in self.kinds:
            return False
        if self._closing.is_set():
            return False
        with self._lock:
            now = self._clock()
            window = self._windows.get((alert.kind, alert.model))
            if window is not None and now - window.sent_at < self.settings.min_interval_seconds:
                window.suppressed += 1
                return False
            suppressed = window.suppressed if window is not None else 0
            try:
                self._queue.put_nowait(alert.payload(suppressed))
            except queue.Full:
                self._dropped += 1
                if window is not None:
                    window.suppressed += 1  # the next alert that goes out says so
                if self._dropped == 1 or self._dropped % 100 == 0:
                    log.warning(
                        "alert queue full (%d waiting): dropped %d alerts", self._queue.qsize(), self._dropped
                    )
                return False
            self._windows[(alert.kind, alert.model)] = _Window(now)
            return True

    def close(self, timeout: float = CLOSE_TIMEOUT) -> None:
        """Send what is queued, waiting at most `timeout` seconds, then stop the thread."""
        if self._closing.is_set():
            return
        self._closing.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error(
                "alert webhooks: %d alerts not sent within %.0fs of shutdown", self._queue.qsize(), timeout
            )

    def _send_loop(self) -> None:
        with httpx.Client(timeout=self.settings.timeout_seconds) as client:
            while True:
                try:
                    payload = self._queue.get(timeout=0.1)
                except queue.Empty:
                    if self._closing.is_set():
                        return
                    continue
                for url in self.settings.webhooks:
                    self._post(client, url, payload)

    def _post(self, client: httpx.Client, url: str, payload: dict[str, Any]) -> None:
        """POST once, and once more after a failure that may pass (connection, timeout, 5xx)."""
        for attempt in (1, 2):
            try:
                response = client.post(url, json=payload)
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            else:
                if response.status_code < 400:
                    self.sent += 1
                    return
                problem = f"HTTP {response.status_code}"
                if response.status_code < 500:
                    break  # the webhook refuses this payload: a retry would get the same
            if attempt == 1 and not self._closing.is_set():
                time.sleep(RETRY_DELAY)
        self.failed += 1
        log.warning(
            "alert webhook %s failed (%s); %s alert for trace %s not sent",
            _shown(url),
            problem,
            payload["kind"],
            payload["trace_id"],
        )


def _shown(url: str) -> str:
    """A webhook URL for the log: Slack's and Mattermost's carry their secret in the path."""
    parsed = httpx.URL(url)
    return f"{parsed.scheme}://{parsed.host}{':' + str(parsed.port) if parsed.port else ''}/…"
