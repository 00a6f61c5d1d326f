"""Anomaly detection on responses and the alert webhooks: each kind on real answers (and the
benign answers it must leave alone), the latency and cost norms, the webhook sender against a real
HTTP receiver, and the gateway's HTTP API end to end (in process): an upstream that answers badly
gets its traces flagged, counted in /metrics, and alerts posted, rate-limited, to a webhook."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from strato.config.observe import AlertSettings, AnomalySettings, ObserveSettings
from strato.observe.alerts import Alert, AlertSender
from strato.observe.anomalies import AnomalyWatch, Norms
from strato.observe.languages import LanguageCheck, _identifier, likely_language
from strato.observe.metrics import GatewayMetrics
from strato.observe.refusals import refusal_phrase
from strato.types import Endpoint, Trace
from tests.support.inprocess import InProcess, in_process
from tests.support.upstream import LocalServer, Upstream, free_port

QUALITY = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "quality"

REFUSALS = [
    "I'm sorry, but I can't assist with that.",
    "I’m sorry, but I can’t help with that request.",
    "I'm sorry, but I cannot provide instructions for making weapons. If you have other questions, "
    "I'd be happy to help.",
    "As an AI language model, I cannot provide medical diagnoses. Please consult a healthcare professional.",
    "I cannot provide information on how to get into someone else's account without their permission.",
    "I won't write that. Creating malware is illegal and can cause real harm to people.",
    "Sorry, I can't do that.",
    "I apologize, but I'm unable to fulfill this request.",
    "Unfortunately, I am not able to help with that.",
    "I must respectfully decline this request.",
    "That's not something I can help with.",
    "I'm sorry, but I can't help with that, but I can point you to resources on staying safe online.",
    "Je suis désolé, mais je ne peux pas vous aider avec cette demande.",
    "Désolé, je ne peux pas répondre à cette question.",
    "En tant qu'IA, je ne peux pas fournir de conseils médicaux.",
    "Es tut mir leid, aber ich kann dir dabei nicht helfen.",
    "Leider kann ich diese Anfrage nicht erfüllen.",
    "Lo siento, pero no puedo ayudarte con eso.",
    "Lo siento, no puedo proporcionar esa información.",
]

NOT_REFUSALS = [
    "I can't stress enough how important backups are. Here are three ways to make them.",
    "I'm sorry to hear that you're feeling unwell. I can't imagine how hard that is. Rest, drink "
    "water, and see a doctor if it gets worse.",
    "I can't give you an exact figure, but it is about 5 million people.",
    "The function cannot return a negative number, because its input is squared.",
    "As an AI language model, I don't have personal opinions, but here are the main arguments on "
    "each side of the debate.",
    "If you cannot provide the password, the system locks the account after three attempts.",
    "I'm sorry, but I can't browse the internet. However, here is what I know about the topic. "
    + "Paris has been the capital of France for centuries. " * 14,
    "Unfortunately, the library cannot help with that format; use pandas instead.",
    "You can't do that in SQL without a subquery.",
    "Je ne sais pas si c'est la bonne réponse, mais voici mon raisonnement.",
    "Ich kann dir gerne dabei helfen! Hier ist ein Rezept für Pfannkuchen.",
    "No puedo creer lo rápido que pasa el tiempo. Aquí tienes el resumen.",
    # A long answer that opens with a refusal of one part and then does the work is no refusal.
    "I cannot provide real-time stock prices. " + "A stock's price reflects supply and demand. " * 40,
]

DE_QUESTION = (
    "Kannst du mir bitte erklären, wie die Photosynthese bei Pflanzen funktioniert und warum sie so "
    "wichtig ist?"
)
FR_QUESTION = (
    "Pouvez-vous m'expliquer comment fonctionne la photosynthèse chez les plantes et pourquoi elle "
    "est importante ?"
)
EN_ANSWER = (
    "Photosynthesis is the process by which green plants use sunlight, water and carbon dioxide to "
    "make glucose and release oxygen. It matters because nearly all life on Earth depends on it."
)
DE_ANSWER = (
    "Bei der Photosynthese wandeln Pflanzen mithilfe von Sonnenlicht Wasser und Kohlendioxid in "
    "Traubenzucker und Sauerstoff um. Sie ist wichtig, weil fast alles Leben davon abhängt."
)
EN_QUESTION = "Explain photosynthesis to me, in two sentences, for a school project please."


def trace(
    answer: str | None,
    question: str = "What is the capital of France?",
    *,
    status: int = 200,
    endpoint: Endpoint = Endpoint.CHAT,
    system: str | None = None,
    **fields: Any,
) -> Trace:
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": question}
    ]
    request: dict[str, Any] = {"messages": messages, **fields.pop("request", {})}
    return Trace(
        "t" + str(time.monotonic_ns()),
        time.time(),
        endpoint,
        "m",
        request,
        completion=answer,
        status=status,
        deployment="m",
        **fields,
    )


@pytest.fixture(scope="module")
def watch() -> AnomalyWatch:
    found = AnomalyWatch(ObserveSettings(), GatewayMetrics())
    assert found.languages.load(60), "py3langid's model did not load"
    return found


def kinds(watch: AnomalyWatch, checked: Trace) -> list[str]:
    watch.check(checked, "m")
    return checked.anomalies


# ---------------------------------------------------------------------------------------------------
# Each kind


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("", ["EMPTY_ANSWER"]),
        ("  \n ... ", ["EMPTY_ANSWER"]),
        ("A" * 80, ["REPEATED_CHARACTER"]),
        ("!!!!!!!!!!!!!!!!!!!!", ["EMPTY_ANSWER", "REPEATED_CHARACTER"]),
        ("the " * 30, ["REPEATED_TOKEN"]),
        (
            "Sure, here is the list you asked for. " + "I will keep going with the list now. " * 12,
            ["RUNAWAY_REPETITION"],
        ),
        ("Paris is the capital of France.", []),
    ],
)
def test_content_anomalies(watch: AnomalyWatch, answer: str, expected: list[str]) -> None:
    assert kinds(watch, trace(answer)) == expected


def test_invalid_json_only_when_json_was_asked_for(watch: AnomalyWatch) -> None:
    asked = {"response_format": {"type": "json_object", "schema": None, "name": None}}
    assert kinds(watch, trace("Sure! {name: Ann}", request=asked)) == ["INVALID_JSON"]
    assert kinds(watch, trace('```json\n{"name": "Ann"}\n```', request=asked)) == []
    assert kinds(watch, trace("Sure! {name: Ann}")) == []


def test_only_successful_answers_are_judged_for_content(watch: AnomalyWatch) -> None:
    assert kinds(watch, trace("", status=502, error="upstream down")) == []
    assert kinds(watch, trace(None)) == []
    assert kinds(watch, trace("", finish_reason="tool_calls")) == []  # only tool calls
    assert kinds(watch, trace("", endpoint=Endpoint.EMBEDDING)) == []
    assert kinds(watch, trace("", endpoint=Endpoint.COMPLETION)) == ["EMPTY_ANSWER"]


@pytest.mark.parametrize("answer", REFUSALS)
def test_refusals(watch: AnomalyWatch, answer: str) -> None:
    assert kinds(watch, trace(answer)) == ["REFUSAL"]


@pytest.mark.parametrize("answer", NOT_REFUSALS)
def test_not_refusals(answer: str) -> None:
    assert refusal_phrase(answer) is None


def test_a_refusal_alert_names_the_phrase_not_the_answer() -> None:
    assert refusal_phrase("I'm sorry, but I can't help with that. It is dangerous.") == (
        "I'm sorry, but I can't help"
    )


def test_language_switch(watch: AnomalyWatch) -> None:
    assert kinds(watch, trace(EN_ANSWER, DE_QUESTION)) == ["LANGUAGE_SWITCH"]
    assert kinds(watch, trace(EN_ANSWER, FR_QUESTION)) == ["LANGUAGE_SWITCH"]
    assert kinds(watch, trace(DE_ANSWER, EN_QUESTION)) == ["LANGUAGE_SWITCH"]
    switched = watch.languages.switch({"messages": [{"role": "user", "content": DE_QUESTION}]}, EN_ANSWER)
    assert switched is not None and switched.startswith("asked in de") and "answered in en" in switched


def test_no_language_switch(watch: AnomalyWatch) -> None:
    assert kinds(watch, trace(DE_ANSWER, DE_QUESTION)) == []
    assert kinds(watch, trace(EN_ANSWER, EN_QUESTION)) == []
    # A switch that was asked for: a translation, a language named, by the user or the system prompt.
    assert kinds(watch, trace(DE_ANSWER, "Translate this for my slides please: " + EN_ANSWER)) == []
    assert kinds(watch, trace(DE_ANSWER, "Explain photosynthesis in German, in two sentences please.")) == []
    assert kinds(watch, trace(DE_ANSWER, EN_QUESTION, system="Always answer in Deutsch.")) == []
    # Too little text to tell: a greeting, an answer that is code.
    assert kinds(watch, trace(EN_ANSWER, "Hallo!")) == []
    code = "```python\ndef factorial(n):\n    return 1 if n <= 1 else n * factorial(n - 1)\n```"
    assert (
        kinds(watch, trace(code, "Schreib mir bitte eine Funktion, die die Fakultät einer Zahl berechnet."))
        == []
    )


def test_function_words_decide_the_common_case() -> None:
    assert likely_language(EN_ANSWER) == "en"
    assert likely_language(DE_ANSWER) == "de"
    assert likely_language("x + y = 4z, express x - y in z") is None


def test_the_language_model_loads_off_the_request_path() -> None:
    _identifier.cache_clear()  # as in a new process
    check = LanguageCheck()
    request = {"messages": [{"role": "user", "content": DE_QUESTION}]}
    started = time.perf_counter()
    first = check.switch(request, EN_ANSWER)  # starts the load, does not wait for it
    assert time.perf_counter() - started < 0.5 and first is None
    assert check.load(60)
    assert check.switch(request, EN_ANSWER) is not None


def _benign(name: str) -> list[tuple[str, str]]:
    path = QUALITY / name
    if not path.exists():
        pytest.skip(f"{path} is not here (../shared/datasets)")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if name.startswith("mt_bench"):
        questions = {
            q["question_id"]: q["turns"]
            for q in map(json.loads, (QUALITY / "mt_bench_questions.jsonl").read_text().splitlines())
        }
        return [
            (question, answer)
            for row in rows
            for question, answer in zip(
                questions[row["question_id"]], row["choices"][0]["turns"], strict=True
            )
        ]
    return [(row["question"], row["answer"]) for row in rows]


@pytest.mark.parametrize("name", ["mt_bench_reference_gpt4.jsonl", "gsm8k_test.jsonl"])
def test_benign_answers_raise_no_flags(watch: AnomalyWatch, name: str) -> None:
    """Real answers (GPT-4's MT-Bench references, GSM8K's worked solutions) are no refusals and
    no language switches."""
    flagged = [
        (question[:60], answer[:60], checked.anomalies)
        for question, answer in _benign(name)
        if kinds(watch, checked := trace(answer, question))
    ]
    assert flagged == []


# ---------------------------------------------------------------------------------------------------
# Norms


def timed(latency_ms: float, cost: float | None = None, **fields: Any) -> Trace:
    return trace("Paris is the capital of France.", latency_ms=latency_ms, cost=cost, **fields)


def test_slow_and_expensive_against_the_models_median() -> None:
    settings = ObserveSettings(anomalies=AnomalySettings(history=10, min_history=5))
    watch = AnomalyWatch(settings, GatewayMetrics())
    for latency in (100, 110, 90, 105):
        assert kinds(watch, timed(latency, 0.001)) == []
    assert kinds(watch, timed(2000, 0.1)) == []  # four previous responses: too few to judge
    # Judged from now on: the median of the five before is 105 ms and $0.001.
    assert kinds(watch, timed(600, 0.004)) == ["SLOW"]  # > 5 x 105 ms
    assert kinds(watch, timed(100, 0.01)) == ["EXPENSIVE"]
    assert kinds(watch, timed(10_000, 1.0)) == ["EXPENSIVE", "SLOW"]
    assert kinds(watch, timed(400, 0.003)) == []


def test_an_outlier_does_not_raise_its_own_norm() -> None:
    norms = Norms(history=10, min_history=5)
    for value in (10.0, 10.0, 10.0, 10.0, 10.0):
        norms.judge("m", "latency", value)
    assert norms.judge("m", "latency", 1000.0) == (10.0, 5)
    assert norms.judge("m", "latency", 10.0) == (10.0, 6)  # the outlier counts from now on
    for _ in range(20):
        norms.judge("m", "latency", 20.0)
    assert norms.judge("m", "latency", 20.0) == (20.0, 10)  # only the last `history` count
    assert norms.judge("other", "latency", 5.0) is None  # per model


def test_failures_and_cached_answers_do_not_shape_the_norm() -> None:
    settings = ObserveSettings(anomalies=AnomalySettings(history=10, min_history=5))
    watch = AnomalyWatch(settings, GatewayMetrics())
    for _ in range(5):
        kinds(watch, timed(100))
    for _ in range(10):
        kinds(watch, timed(1, cache="exact"))  # instant answers from the cache
        kinds(watch, timed(30_000, status=504, error="timeout"))
    assert kinds(watch, timed(400)) == []
    assert kinds(watch, timed(30_000, status=504, error="timeout")) == []
    assert kinds(watch, timed(600)) == ["SLOW"]


def test_anomalies_are_counted_per_model_and_kind() -> None:
    metrics = GatewayMetrics()
    watch = AnomalyWatch(ObserveSettings(), metrics)
    for answer in ("", "", "I'm sorry, but I can't help with that."):
        watch.check(trace(answer), "gpt-x")
    text = metrics.render().decode()
    assert 'strato_anomalies_total{kind="EMPTY_ANSWER",model="gpt-x"} 2.0' in text
    assert 'strato_anomalies_total{kind="REFUSAL",model="gpt-x"} 1.0' in text


def test_switched_off() -> None:
    watch = AnomalyWatch(ObserveSettings(anomalies=AnomalySettings(enabled=False)), GatewayMetrics())
    assert kinds(watch, trace("")) == []


def test_a_failing_check_never_fails_the_request(caplog: pytest.LogCaptureFixture) -> None:
    watch = AnomalyWatch(ObserveSettings(), GatewayMetrics())
    broken = trace("Paris.")
    broken.completion = 12345  # type: ignore[assignment]
    with caplog.at_level(logging.ERROR):
        watch.check(broken, "m")
    assert broken.anomalies == [] and "anomaly check" in caplog.text


# ---------------------------------------------------------------------------------------------------
# Webhooks


class Receiver(LocalServer):
    """A webhook receiver: stores what is posted, answering with the statuses queued in `replies`
    (then 200)."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.replies: list[int] = []
        self.arrived = threading.Condition()
        super().__init__([Route("/hook/{secret}", self._hook, methods=["POST"])])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook/T000-secret"

    async def _hook(self, request: Request) -> Response:
        body = await request.json()
        status = self.replies.pop(0) if self.replies else 200
        with self.arrived:
            self.received.append({"status": status, **body})
            self.arrived.notify_all()
        return JSONResponse({"ok": status < 400}, status)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.received) >= count, timeout)
            return list(self.received)

    def wait_for_model(self, model: str, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """What was posted about `model`, once there are `count` of those (or `timeout` has passed)."""

        def about() -> list[dict[str, Any]]:
            return [r for r in self.received if r["model"] == model]

        with self.arrived:
            self.arrived.wait_for(lambda: len(about()) >= count, timeout)
            return about()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    yield server
    server.stop()


def alert(kind: str = "REFUSAL", model: str = "m", trace_id: str = "t1") -> Alert:
    return Alert(kind, model, trace_id, "the answer is a refusal", 1767225600.5)


def test_the_payload_shows_in_slack_and_says_what_happened(receiver: Receiver) -> None:
    sender = AlertSender(AlertSettings(webhooks=[receiver.url]))
    assert sender.submit(alert())
    (posted,) = receiver.wait_for(1)
    sender.close()
    assert posted == {
        "status": 200,
        "kind": "REFUSAL",
        "model": "m",
        "trace_id": "t1",
        "detail": "the answer is a refusal",
        "at": "2026-01-01T00:00:00.500+00:00",
        "suppressed": 0,
        "text": "strato: REFUSAL on m: the answer is a refusal (trace t1)",
    }


def test_rate_limited_per_kind_and_model(receiver: Receiver) -> None:
    now = [1000.0]
    sender = AlertSender(
        AlertSettings(webhooks=[receiver.url], min_interval_seconds=60), clock=lambda: now[0]
    )
    assert sender.submit(alert(trace_id="a"))
    assert not sender.submit(alert(trace_id="b"))  # held back
    assert not sender.submit(alert(trace_id="c"))
    assert sender.submit(alert(kind="SLOW", trace_id="d"))  # another kind
    assert sender.submit(alert(model="other", trace_id="e"))  # another model
    now[0] += 61
    assert sender.submit(alert(trace_id="f"))
    received = receiver.wait_for(4)
    sender.close()
    assert [(r["trace_id"], r["suppressed"]) for r in received] == [("a", 0), ("d", 0), ("e", 0), ("f", 2)]
    assert "2 more held back since the last alert" in received[-1]["text"]


def test_only_the_kinds_asked_for(receiver: Receiver) -> None:
    sender = AlertSender(AlertSettings(webhooks=[receiver.url], kinds=["slow"]))
    assert not sender.submit(alert("REFUSAL"))
    assert sender.submit(alert("SLOW"))
    sender.close()
    assert [r["kind"] for r in receiver.received] == ["SLOW"]


def test_a_failed_call_is_retried_once(receiver: Receiver, caplog: pytest.LogCaptureFixture) -> None:
    receiver.replies = [503, 200, 500, 502, 404]
    sender = AlertSender(AlertSettings(webhooks=[receiver.url], min_interval_seconds=0))
    with caplog.at_level(logging.WARNING):
        for trace_id in ("ok-on-retry", "lost", "refused"):
            sender.submit(alert(trace_id=trace_id))
        sender.close()
    assert [(r["trace_id"], r["status"]) for r in receiver.received] == [
        ("ok-on-retry", 503),
        ("ok-on-retry", 200),
        ("lost", 500),
        ("lost", 502),
        ("refused", 404),  # a 4xx will not change: not retried
    ]
    assert sender.sent == 1 and sender.failed == 2
    assert "HTTP 502" in caplog.text and "HTTP 404" in caplog.text
    assert "T000-secret" not in caplog.text  # the URL's secret path is not logged


def test_an_unreachable_webhook_is_logged_and_never_blocks(caplog: pytest.LogCaptureFixture) -> None:
    settings = AlertSettings(webhooks=[f"http://127.0.0.1:{free_port()}/hook"], min_interval_seconds=0)
    sender = AlertSender(settings)
    with caplog.at_level(logging.WARNING):
        started = time.perf_counter()
        for i in range(50):
            sender.submit(alert(trace_id=str(i)))
        assert time.perf_counter() - started < 0.1
        sender.close(timeout=30)
    assert sender.failed == 50 and "ConnectError" in caplog.text


def test_a_full_queue_drops_and_says_so(receiver: Receiver, caplog: pytest.LogCaptureFixture) -> None:
    settings = AlertSettings(webhooks=[receiver.url], min_interval_seconds=0)
    sender = AlertSender(settings, queue_size=2)
    with caplog.at_level(logging.WARNING):
        queued = sum(sender.submit(alert(trace_id=str(i))) for i in range(200))
        sender.close()
    assert queued < 200 and len(receiver.received) == queued
    assert "alert queue full" in caplog.text


def test_close_sends_what_is_queued(receiver: Receiver) -> None:
    sender = AlertSender(AlertSettings(webhooks=[receiver.url, receiver.url], min_interval_seconds=0))
    for i in range(20):
        sender.submit(alert(trace_id=str(i)))
    sender.close()
    assert len(receiver.received) == 40  # each alert to each webhook
    assert not sender.submit(alert())  # closed


def test_alert_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="BORING"):
        AlertSettings(kinds=["boring"])
    with pytest.raises(ValueError, match="not an http"):
        AlertSettings(webhooks=["slack.com/hook"])
    with pytest.raises(ValueError, match="min_history"):
        AnomalySettings(history=10, min_history=20)


# ---------------------------------------------------------------------------------------------------
# End to end: the gateway's HTTP API, in process


REFUSAL = "I'm sorry, but I can't help with that."
LOOP = "Here you go. " + "I will repeat this sentence again. " * 12
INTERVAL = 3.0  # the webhooks' min_interval_seconds


@pytest.fixture(scope="module")
def hook() -> Iterator[Receiver]:
    server = Receiver().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
async def gateway(
    tmp_path_factory: pytest.TempPathFactory, upstream: Upstream, hook: Receiver
) -> AsyncIterator[InProcess]:
    models = [
        upstream.model("empty", "say:"),
        upstream.model("refuser", f"say:{REFUSAL}"),
        upstream.model("looper", f"say:{LOOP}"),
        upstream.model("echo"),
    ]
    observe = {"alerts": {"webhooks": [hook.url], "min_interval_seconds": INTERVAL}}
    async with in_process(tmp_path_factory.mktemp("anomalies") / "data", models, observe=observe) as served:
        yield served


async def send(gateway: InProcess, model: str, *, stream: bool = False) -> str:
    """Ask `model` something; the answer's trace id."""
    body = {
        "model": model,
        "messages": [{"role": "user", "content": "Tell me about the sea."}],
        "stream": stream,
    }
    response = await gateway.http.post("/v1/chat/completions", json=body, timeout=30)
    assert response.status_code == 200, response.text
    return response.headers["x-strato-trace-id"]


def stored(gateway: InProcess, trace_id: str) -> Trace:
    trace = gateway.trace(trace_id)
    return trace


async def ask(gateway: InProcess, model: str, *, stream: bool = False) -> Trace:
    """Ask `model` something; the answer's trace, once stored."""
    return stored(gateway, await send(gateway, model, stream=stream))


async def test_served_answers_are_flagged_counted_and_alerted(gateway: InProcess, hook: Receiver) -> None:
    empty = await ask(gateway, "empty")
    looped = await ask(gateway, "looper", stream=True)
    assert empty.anomalies == ["EMPTY_ANSWER"]
    assert looped.anomalies == ["RUNAWAY_REPETITION"]
    assert (await ask(gateway, "echo")).anomalies == []
    metrics = (await gateway.http.get("/metrics")).text
    assert 'strato_anomalies_total{kind="EMPTY_ANSWER",model="empty"} 1.0' in metrics
    assert 'strato_anomalies_total{kind="RUNAWAY_REPETITION",model="looper"} 1.0' in metrics
    received = [r for r in hook.wait_for(2) if r["model"] in ("empty", "looper")]
    assert {(r["kind"], r["model"], r["trace_id"]) for r in received} == {
        ("EMPTY_ANSWER", "empty", empty.id),
        ("RUNAWAY_REPETITION", "looper", looped.id),
    }
    assert all(r["text"].startswith(f"strato: {r['kind']} on {r['model']}") for r in received)
    # The traces API shows them too.
    shown = (await gateway.http.get("/v1/traces", params={"anomaly": "any"})).json()["data"]
    assert {t["id"] for t in shown} >= {empty.id, looped.id}


async def test_served_alerts_are_rate_limited(
    gateway: InProcess, hook: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sender's clock stands still for the first four refusals and moves on by the interval
    before the fifth: no waiting, and no test that is too slow to see the rate limit."""
    watch = gateway.runtime.watch
    assert watch is not None and watch.alerts is not None
    now = time.monotonic()
    monkeypatch.setattr(watch.alerts, "_clock", lambda: now)
    refused = [await send(gateway, "refuser") for _ in range(4)]
    now += INTERVAL
    later = await send(gateway, "refuser")
    assert all(stored(gateway, t).anomalies == ["REFUSAL"] for t in [*refused, later])
    alerts = hook.wait_for_model("refuser", 2)
    assert [(a["trace_id"], a["suppressed"]) for a in alerts] == [(refused[0], 0), (later, 3)]
    metrics = (await gateway.http.get("/metrics")).text
    assert 'strato_anomalies_total{kind="REFUSAL",model="refuser"} 5.0' in metrics  # every one counted
