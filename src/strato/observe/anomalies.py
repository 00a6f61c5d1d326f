"""Anomaly detection on every response: what a model's answer, its latency or its cost says is wrong.

`AnomalyWatch.check` runs on each finished request, before it is counted and recorded. It sets
`trace.anomalies` (the kinds found, sorted), counts each in `strato_anomalies_total{model,kind}`
and hands them to the alert webhooks (`strato.observe.alerts`). The kinds:

- EMPTY_ANSWER, REPEATED_CHARACTER, REPEATED_TOKEN, RUNAWAY_REPETITION, INVALID_JSON (when JSON was
  asked for): the output guard's detectors (`strato.guards.anomalies.content_anomalies`);
- REFUSAL: the answer is a refusal (`strato.observe.refusals`);
- LANGUAGE_SWITCH: the answer is in another language than the question (`strato.observe.languages`);
- SLOW / EXPENSIVE: latency or cost above `latency_factor` / `cost_factor` times the median of the
  model's `history` previous responses on the same endpoint, judged once there are `min_history`
  of them (the value judged joins the history after: an outlier does not raise its own norm).

The answer's content is judged on successful chat and completion answers (not on an answer that is
only tool calls); latency and cost on every successful response not served from the answer cache.
A check takes tens of microseconds; nothing in it can fail a request (an error is logged and the
trace goes on without anomalies).
"""

from __future__ import annotations

import bisect
import collections
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from prometheus_client import Counter

from strato.config.observe import ANOMALY_KINDS, ObserveSettings
from strato.guards.anomalies import content_anomalies
from strato.observe.alerts import Alert, AlertSender
from strato.observe.languages import LanguageCheck
from strato.observe.metrics import GatewayMetrics
from strato.observe.refusals import refusal_phrase
from strato.types import Endpoint, Trace

log = logging.getLogger(__name__)

EMPTY_ANSWER = "EMPTY_ANSWER"
REPEATED_CHARACTER = "REPEATED_CHARACTER"
REPEATED_TOKEN = "REPEATED_TOKEN"
RUNAWAY_REPETITION = "RUNAWAY_REPETITION"
INVALID_JSON = "INVALID_JSON"
REFUSAL = "REFUSAL"
LANGUAGE_SWITCH = "LANGUAGE_SWITCH"
SLOW = "SLOW"
EXPENSIVE = "EXPENSIVE"
CONTENT_KINDS = (EMPTY_ANSWER, REPEATED_CHARACTER, REPEATED_TOKEN, RUNAWAY_REPETITION, INVALID_JSON)
KINDS = ANOMALY_KINDS  # (*CONTENT_KINDS, REFUSAL, LANGUAGE_SWITCH, SLOW, EXPENSIVE)

_CONTENT_DETAIL = {
    EMPTY_ANSWER: "the answer is empty",
    REPEATED_CHARACTER: "the answer is (or ends in) one character repeated",
    REPEATED_TOKEN: "the answer repeats one word over and over",
    RUNAWAY_REPETITION: "the answer ends in a loop, repeating itself",
    INVALID_JSON: "JSON was asked for and the answer is not JSON",
}


@dataclass(frozen=True, slots=True)
class Anomaly:
    kind: str
    detail: str  # one line for people (alerts); never the answer itself


class AnomalyWatch:
    """Checks each finished request; keeps the per-model latency and cost norms."""

    def __init__(self, settings: ObserveSettings, metrics: GatewayMetrics) -> None:
        self.settings = settings.anomalies
        self.counter = Counter(
            "strato_anomalies",
            "Anomalies found in responses, by model and kind (EMPTY_ANSWER, REFUSAL, SLOW, ...).",
            ["model", "kind"],
            registry=metrics.registry,
        )
        self.norms = Norms(self.settings.history, self.settings.min_history)
        self.languages = LanguageCheck()
        alerts = settings.alerts
        self.alerts = AlertSender(alerts) if alerts.webhooks else None

    def check(self, trace: Trace, model_label: str) -> None:
        """Set `trace.anomalies`, count them, and queue alerts. Called once per finished request."""
        if not self.settings.enabled:
            return
        try:
            found = self.find(trace, model_label)
        except Exception:
            log.exception("anomaly check of trace %s failed", trace.id)
            return
        if not found:
            return
        trace.anomalies = sorted({a.kind for a in found})
        for kind in trace.anomalies:
            self.counter.labels(model_label, kind).inc()
        if self.alerts is not None:
            for anomaly in found:
                self.alerts.submit(
                    Alert(
                        anomaly.kind,
                        model_label,
                        trace.id,
                        anomaly.detail,
                        trace.ended_at or trace.started_at,
                    )
                )

    def find(self, trace: Trace, model_label: str) -> list[Anomaly]:
        found = answer_anomalies(trace, self.languages) if judged(trace) else []
        if trace.status >= 400 or trace.cache is not None:
            return found  # a failure's or a cached answer's timing says nothing of the model's norm
        norm = f"{model_label} {trace.endpoint}"
        if trace.latency_ms is not None:
            slow = self._beyond(
                norm, "latency", trace.latency_ms, self.settings.latency_factor, _milliseconds
            )
            found += [Anomaly(SLOW, slow)] if slow else []
        if trace.cost is not None:
            dear = self._beyond(norm, "cost", trace.cost, self.settings.cost_factor, _dollars)
            found += [Anomaly(EXPENSIVE, dear)] if dear else []
        return found

    def _beyond(
        self, norm: str, measure: str, value: float, factor: float, shown: Callable[[float], str]
    ) -> str | None:
        """What is wrong with `value` when it is over `factor` times the norm, else None."""
        judged = self.norms.judge(norm, measure, value)
        if judged is None:
            return None
        median, count = judged
        if median <= 0 or value <= factor * median:
            return None
        return (
            f"{measure} {shown(value)} is {value / median:.1f}x the median {shown(median)} of the "
            f"model's last {count} responses"
        )

    def close(self) -> None:
        """Send the alerts still queued."""
        if self.alerts is not None:
            self.alerts.close()


def judged(trace: Trace) -> bool:
    """Whether the answer's content is judged: a successful chat or completion answer with text (an
    answer that is only tool calls has none)."""
    if trace.endpoint not in (Endpoint.CHAT, Endpoint.COMPLETION) or trace.status >= 400:
        return False
    if trace.completion is None:
        return False
    return not (trace.finish_reason == "tool_calls" and not trace.completion.strip())


def answer_anomalies(trace: Trace, languages: LanguageCheck | None = None) -> list[Anomaly]:
    """The content anomalies, refusal and language switch of a trace's answer."""
    answer = trace.completion or ""
    found = [Anomaly(kind, _CONTENT_DETAIL[kind]) for kind in _content_kinds(trace, answer)]
    if found and found[0].kind == EMPTY_ANSWER:
        return found
    refusal = refusal_phrase(answer)
    if refusal is not None:
        found.append(Anomaly(REFUSAL, f'the answer is a refusal ("{refusal}")'))
    elif languages is not None:
        switch = languages.switch(trace.request, answer)
        if switch is not None:
            found.append(Anomaly(LANGUAGE_SWITCH, switch))
    return found


def _content_kinds(trace: Trace, answer: str) -> list[str]:
    """The output guard's content anomalies (it has usually just judged this answer: the result
    is then remembered, see `content_anomalies`)."""
    fmt = trace.request.get("response_format")
    json_expected = isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema")
    return sorted({f.type for f in content_anomalies(answer, json_expected)})


# ---------------------------------------------------------------------------------------------------
# Latency and cost norms


class Norms:
    """Per model (and measure), the last `history` values, kept sorted too so a median is a lookup."""

    def __init__(self, history: int, min_history: int) -> None:
        self.history = history
        self.min_history = min_history
        self._recent: dict[tuple[str, str], collections.deque[float]] = {}
        self._sorted: dict[tuple[str, str], list[float]] = {}
        self._lock = threading.Lock()

    def judge(self, model: str, measure: str, value: float) -> tuple[float, int] | None:
        """The median of the previous values and how many there were (None before `min_history`),
        then remember `value`: an outlier does not raise the norm it is judged by."""
        key = (model, measure)
        with self._lock:
            recent = self._recent.setdefault(key, collections.deque())
            ordered = self._sorted.setdefault(key, [])
            judged = (_median(ordered), len(ordered)) if len(ordered) >= self.min_history else None
            if len(recent) >= self.history:
                del ordered[bisect.bisect_left(ordered, recent.popleft())]
            recent.append(value)
            bisect.insort(ordered, value)
        return judged


def _median(ordered: Sequence[float]) -> float:
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _milliseconds(value: float) -> str:
    return f"{value:.0f} ms"


def _dollars(value: float) -> str:
    return f"${value:.6f}".rstrip("0").rstrip(".") if value < 1 else f"${value:.2f}"
