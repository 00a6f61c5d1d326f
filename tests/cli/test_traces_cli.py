"""`strato traces list` and `strato traces show` as a user runs them, against the database of a
running gateway (in process): the filters, anomalies, feedback and spans, and `--json` in the API's
shape."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from strato.cli import app
from strato.store.sql import SQLStore
from tests.cli.test_cli import strato
from tests.support.inprocess import InProcess, in_process
from tests.support.upstream import Upstream

REFUSAL = "I'm sorry, but I can't help with that."


class Made:
    """The traces the fixture made, by what they are."""

    def __init__(self) -> None:
        self.ids: dict[str, str] = {}
        self.started: dict[str, float] = {}


@pytest.fixture(scope="module")
async def gateway(tmp_path_factory: pytest.TempPathFactory, upstream: Upstream) -> AsyncIterator[InProcess]:
    models = [upstream.model("echo"), upstream.model("refuser", f"say:{REFUSAL}")]
    data_dir = tmp_path_factory.mktemp("traces-cli") / "data"
    async with in_process(data_dir, models) as served:  # no master key: auth off
        yield served


@pytest.fixture(scope="module")
async def made(gateway: InProcess) -> Made:
    """Four requests, oldest first: liked (ann), disliked (ann), refused (bob), plain (no user)."""
    found = Made()
    for name, model, content, user in [
        ("liked", "echo", "what is a zebra crossing", "ann"),
        ("disliked", "echo", "what is a pelican crossing", "ann"),
        ("refused", "refuser", "how do I pick a lock", "bob"),
        ("plain", "echo", "hello there", None),
    ]:
        body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": content}]}
        if user:
            body["user"] = user
        response = await gateway.http.post("/v1/chat/completions", json=body, timeout=30)
        assert response.status_code == 200, response.text
        trace = gateway.trace(response.headers["x-strato-trace-id"])
        found.ids[name], found.started[name] = trace.id, trace.started_at  # stored before the next starts
    for name, score in (("liked", 1), ("disliked", 0)):
        feedback = {"trace_id": found.ids[name], "score": score, "comment": f"{name} it"}
        assert (await gateway.http.post("/v1/feedback", json=feedback)).status_code == 201
    return found


def data_dir(gateway: InProcess) -> Path:
    return gateway.runtime.settings.store.data_dir


def cli(gateway: InProcess, *args: str) -> Any:
    result = strato("traces", *args, data_dir=data_dir(gateway))
    assert result.returncode == 0, result.stderr
    return result


def listed(gateway: InProcess, *args: str) -> list[str]:
    lines = cli(gateway, "list", "--json", *args).stdout.splitlines()
    return [json.loads(line)["id"] for line in lines]


async def api(gateway: InProcess, **params: Any) -> list[str]:
    return [t["id"] for t in (await gateway.http.get("/v1/traces", params=params)).json()["data"]]


async def test_filters(gateway: InProcess, made: Made) -> None:
    ids = made.ids
    assert listed(gateway, "--feedback", "positive") == [ids["liked"]]
    assert listed(gateway, "--feedback", "negative") == [ids["disliked"]]
    assert listed(gateway, "--feedback", "any") == [ids["disliked"], ids["liked"]]
    assert listed(gateway, "--feedback", "none") == [ids["plain"], ids["refused"]]
    assert listed(gateway, "--anomaly", "REFUSAL") == [ids["refused"]]
    assert listed(gateway, "--anomaly", "any") == [ids["refused"]]
    assert listed(gateway, "--anomaly", "slow") == []
    assert listed(gateway, "--user", "ann") == [ids["disliked"], ids["liked"]]
    assert listed(gateway, "--search", "crossing") == [ids["disliked"], ids["liked"]]
    assert listed(gateway, "-q", "ZEBRA crossing") == [ids["liked"]]
    assert listed(gateway, "-q", "sorry") == [ids["refused"]]  # in the answer
    assert listed(gateway, "--model", "refuser") == [ids["refused"]]
    assert listed(gateway, "--since", "1h", "--user", "bob") == [ids["refused"]]
    assert listed(gateway, "--until", "2000-01-01") == []
    assert listed(gateway, "--key", "key-nobody") == []
    # The same filters over HTTP give the same traces.
    assert listed(gateway, "--feedback", "negative", "--user", "ann") == await api(
        gateway, feedback="negative", user="ann"
    )
    assert listed(gateway, "--anomaly", "any") == await api(gateway, anomaly="any")


async def test_json_is_the_api_trace_object(gateway: InProcess, made: Made) -> None:
    lines = cli(gateway, "list", "--json", "--feedback", "any").stdout.splitlines()
    api_listed = await gateway.http.get("/v1/traces", params={"feedback": "any"})
    assert [json.loads(line) for line in lines] == api_listed.json()["data"]
    refused = made.ids["refused"]
    shown = json.loads(cli(gateway, "show", refused, "--json").stdout)
    assert shown == (await gateway.http.get(f"/v1/traces/{refused}")).json()
    assert shown["anomalies"] == ["REFUSAL"] and shown["spans"]


def test_the_table_marks_anomalies_and_feedback(gateway: InProcess, made: Made) -> None:
    table = cli(gateway, "list").stdout
    rows = {line.split()[0]: line for line in table.splitlines() if line.strip()}
    assert "refusal" in rows[made.ids["refused"]]
    assert " + " in rows[made.ids["liked"]] and " - " in rows[made.ids["disliked"]]
    assert "refusal" not in rows[made.ids["plain"]]
    assert "fb" in table and "anomalies" in table


async def test_show_has_anomalies_feedback_and_the_span_tree(gateway: InProcess, made: Made) -> None:
    disliked = made.ids["disliked"]
    out = cli(gateway, "show", disliked[:10]).stdout
    assert "feedback" in out and "disliked it" in out and "spans" in out
    spans = (await gateway.http.get(f"/v1/traces/{disliked}")).json()["spans"]
    assert spans
    for span in spans:
        assert span["name"] in out
    # The tree: each span under its parent, in the order they started, with its duration.
    assert _tree(out) == _expected_tree(spans)


def _expected_tree(spans: list[dict[str, Any]]) -> list[tuple[int, str]]:
    children: dict[str | None, list[dict[str, Any]]] = {}
    for span in sorted(spans, key=lambda s: s["started_at"]):
        children.setdefault(span["parent_id"], []).append(span)
    order: list[tuple[int, str]] = []

    def walk(parent: str | None, depth: int) -> None:
        for span in children.get(parent, []):
            order.append((depth, f"{span['name']}  {span['duration_ms']:.1f}ms"))
            walk(span["span_id"], depth + 1)

    walk(None, 0)
    return order


def _tree(out: str) -> list[tuple[int, str]]:
    """(depth, "name  duration") of each line of the spans panel."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if "─ spans ─" in line) + 1
    found: list[tuple[int, str]] = []
    for line in lines[start:]:
        if line.startswith("╰"):
            break
        body = line.strip("│").rstrip()
        text = body.lstrip(" │├└─")
        column = len(body) - len(text)
        name, _, rest = text.partition("  ")
        found.append((column, f"{name}  {rest.split()[0]}"))
    base = found[0][0]
    return [((column - base) // 4, text) for column, text in found]


def test_show_has_the_anomalies(gateway: InProcess, made: Made) -> None:
    refused = cli(gateway, "show", made.ids["refused"]).stdout
    assert "anomalies" in refused and "REFUSAL" in refused


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--anomaly", "BORING"], ["--anomaly", "REFUSAL"]),
        (["--feedback", "meh"], ["--feedback", "positive"]),
        (["--since", "yesterday"], ["--since", "30m"]),
        (["--until", "someday"], ["--until"]),
    ],
)
def test_bad_filters_are_one_line_and_exit_2(gateway: InProcess, args: list[str], words: list[str]) -> None:
    result = strato("traces", "list", *args, data_dir=data_dir(gateway))
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("strato: error: ")
    assert all(w in result.stderr for w in words) and "Traceback" not in result.stderr


def test_the_database_is_opened_once(
    gateway: InProcess, made: Made, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    opened: list[str] = []
    real = SQLStore.open.__func__  # type: ignore[attr-defined]

    def counted(cls: type[SQLStore], url: str) -> SQLStore:
        opened.append(url)
        store: SQLStore = real(cls, url)
        return store

    monkeypatch.setattr(SQLStore, "open", classmethod(counted))
    monkeypatch.setenv("STRATO_DATA_DIR", str(data_dir(gateway)))
    monkeypatch.setenv("STRATO_MASTER_KEY", "")
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    for args in (["list"], ["show", made.ids["liked"]], ["cost"]):
        opened.clear()
        result = runner.invoke(app, ["traces", *args])
        assert result.exit_code == 0, result.output
        assert len(opened) == 1, args
