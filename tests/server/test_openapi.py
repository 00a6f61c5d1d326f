"""/openapi.json is true: schemathesis sends every operation requests built from its schema (valid
ones and invalid ones, and methods the path does not serve) and checks each answer against the
document: a documented status, content type, body and headers, no server error, 405s that say what
is allowed, and, under a master key, routes that refuse a request without it.

The gateway runs in this process (`build_runtime` + `create_app`) over the real local upstream, with
one chat and one embedding model; half of the generated requests name one of them, so answers are
checked as well as refusals. Bounded: a few examples an operation, a fixed seed, no example database.
"""

from __future__ import annotations

import json
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import schemathesis.engine
from schemathesis.engine import events
from schemathesis.python.asgi import shutdown_lifespans

from strato.config import Settings
from strato.runtime import build_runtime
from strato.server.app import create_app
from tests.support.inprocess import in_process
from tests.support.upstream import Upstream

MASTER = "sk-master-openapi-test"
CHAT, EMBED = "chat", "embed"
MODEL_FOR = {"/v1/chat/completions": CHAT, "/v1/completions": CHAT, "/v1/embeddings": EMBED}
# Valid requests refused for what is configured or stored, not for their shape (no schema can say):
# (`error.param`, a part of `error.message`).
UNFORESEEABLE = [
    ("model", "does not serve embeddings"),  # a chat model named on /v1/embeddings
    ("model", "is an embedding model"),  # an embedding model on /v1/chat/completions
    ("expires", "is in the past"),  # a key that would be born expired
    ("after", "to page after"),  # a page after a trace that is not stored
]
EXAMPLES = 12  # generated requests per operation, besides schemathesis's coverage cases


def fuzz_config(headers: dict[str, str]) -> schemathesis.Config:
    return schemathesis.Config.from_dict(
        {
            "seed": 20260501,
            "headers": headers,
            "generation": {
                "max-examples": EXAMPLES,
                "deterministic": True,
                "database": "none",
                "codec": "utf-8",
            },
            "phases": {"stateful": {"enabled": False}},
            "operations": [
                # strato answers a request for /admin without the master key 403 (`admin_forbidden`),
                # missing or not; this check wants a missing one to be 401.
                {"include-path-regex": "^/admin/", "checks": {"missing_required_header": {"enabled": False}}},
                # A model entry's other fields are its provider's options, which the provider checks
                # (a llama_cpp model needs a `path` or a `package`, a group models that exist, ...).
                {"include-path": "/admin/models", "checks": {"positive_data_acceptance": {"enabled": False}}},
                # Model entries and key specs are configuration models, as lenient as strato.yaml is
                # ("5" is 5, false is 0.0): values a strict schema calls invalid are accepted.
                {
                    "include-path-regex": "^/admin/(models|keys)$",
                    "include-method": "POST",
                    "checks": {"negative_data_rejection": {"enabled": False}},
                },
            ],
        }
    )


def served_schema(data_dir: Path, upstream: Upstream, server: dict[str, Any]) -> Any:
    settings = Settings.model_validate(
        {
            "store": {"data_dir": str(data_dir), "flush_interval": 0.05},
            "models": [upstream.model(CHAT, "echo"), upstream.model(EMBED, "echo", kind="embed")],
            "server": server,
        }
    )
    app = create_app(build_runtime(settings))
    headers = {"Authorization": f"Bearer {MASTER}"} if server.get("master_key") else {}
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=fuzz_config(headers))

    added: set[str] = set()  # models the fuzzer added through /admin/models

    @schema.hook("map_case")
    def served_models(context: Any, case: schemathesis.Case) -> schemathesis.Case:
        """Every other valid request to a model route names a served model (the rest are 404s).
        The fuzzer learns model names from the answers: it may not remove the served ones, nor
        call those it added (their upstreams, made up, are not there: 502 is right for them)."""
        name, body, meta = MODEL_FOR.get(case.operation.path), case.body, case.meta
        if case.operation.label == "POST /admin/models" and isinstance(body, dict):
            added.add(str(body.get("name")))
        if name and isinstance(body, dict):
            positive = meta is not None and meta.generation.mode.is_positive
            if positive and zlib.crc32(json.dumps(body).encode()) % 2:
                case.body = {**body, "model": name}
            elif str(body.get("model")) in added:
                case.body = {**body, "model": "not-served"}
        if case.operation.label == "DELETE /admin/models/{name}" and case.path_parameters:
            served = case.path_parameters.get("name")
            case.path_parameters["name"] = f"not-{served}" if served in (CHAT, EMBED) else served
        return case

    return schema


@dataclass
class Run:
    """What one schemathesis run found: each failed check, and the statuses each operation got."""

    failures: list[str] = field(default_factory=list)
    statuses: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))


def fuzz(schema: Any) -> Run:
    """`schemathesis run`, in process: every phase but the stateful one, every default check. (Its
    engine, as the command line drives it: the pytest plugin's fixture schemas fail on pytest 9.)"""
    run = Run()
    for event in schemathesis.engine.from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            for interaction in event.recorder.interactions.values():
                if interaction.response is not None:
                    run.statuses[event.recorder.label][interaction.response.status_code] += 1
            for case_id, checks in event.recorder.checks.items():
                interaction = event.recorder.interactions.get(case_id)
                answer = interaction.response.content if interaction and interaction.response else b""
                run.failures += [
                    f"{event.recorder.label}: {check.name}: {check.failure_info.failure.title}\n"
                    f"{check.failure_info.failure.message}\n{check.failure_info.code_sample}\n"
                    f"<- {answer[:600]!r}"
                    for check in checks
                    if check.failure_info is not None
                    and not (check.name == "positive_data_acceptance" and unforeseeable(answer))
                ]
        elif isinstance(event, events.NonFatalError):
            run.failures.append(f"{event.label}: {event.info.format()}")
        elif isinstance(event, events.FatalError):
            run.failures.append(f"schemathesis failed: {event.exception!r}")
    return run


def unforeseeable(answer: bytes) -> bool:
    try:
        error = json.loads(answer)["error"]
    except (ValueError, KeyError, TypeError):
        return False
    return any(
        error.get("param") == param and words in error.get("message", "") for param, words in UNFORESEEABLE
    )


@pytest.fixture(scope="module", params=["open", "master key"])
def api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, upstream: Upstream
) -> Iterator[Any]:
    server = {"master_key": MASTER} if request.param == "master key" else {}
    yield served_schema(tmp_path_factory.mktemp("openapi"), upstream, server)
    shutdown_lifespans()  # the app's lifespan closes its gateway, on the loop that served it


def test_every_answer_is_as_documented(api: Any) -> None:
    run = fuzz(api)
    assert not run.failures, "\n\n".join(dict.fromkeys(run.failures))
    for label in ("POST /v1/chat/completions", "POST /v1/completions", "POST /v1/embeddings"):
        assert run.statuses[label][200], f"no answer to check on {label}: {dict(run.statuses)}"


async def test_a_method_a_path_does_not_serve_is_405_naming_those_it_does(
    tmp_path: Path, upstream: Upstream
) -> None:
    async with in_process(tmp_path, [upstream.model(CHAT)], server={"master_key": MASTER}) as served:
        admin = {"authorization": f"Bearer {MASTER}"}
        document = (await served.http.get("/openapi.json")).json()
        for template, operations in document["paths"].items():
            path = template.replace("{", "x").replace("}", "")
            documented = {method.upper() for method in operations}
            for method in sorted({"GET", "POST", "PUT", "PATCH", "DELETE"} - documented):
                response = await served.http.request(method, path, headers=admin)
                assert response.status_code == 405, (method, path, response.text)
                assert set(response.headers["allow"].split(", ")) == documented, (method, path)
                assert response.json()["error"]["code"] == "method_not_allowed"


@pytest.mark.parametrize("master_key", [None, MASTER], ids=["open", "master key"])
async def test_every_error_is_documented_as_openais_body_and_keys_as_bearer(
    tmp_path: Path, upstream: Upstream, master_key: str | None
) -> None:
    async with in_process(tmp_path, [upstream.model(CHAT)], server={"master_key": master_key}) as served:
        document = (await served.http.get("/openapi.json")).json()
    scheme = document["components"]["securitySchemes"]["bearer"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert "422" not in responses, (method, path)
            for status, response in responses.items():
                if int(status) >= 400:
                    assert response["content"] == {
                        "application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}
                    }, (method, path, status)
            if method == "post" and not path.endswith("/rotate"):
                assert "application/json" in operation["requestBody"]["content"], path
            keyed = path.startswith("/admin/") or (path.startswith("/v1/") and master_key)
            assert (operation.get("security") == [{"bearer": []}]) == bool(keyed), (method, path)
