"""Guards come from the `strato.guards` entry point group, built-ins and plugins alike: a plugin
guard registered there runs in its order, and one that may rewrite answers makes streamed answers
wait for it, as the built-in output guards do."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from strato.config import GuardsSettings
from strato.guards import step
from strato.guards.verdict import Direction, Finding, ScanContext, Verdict
from strato.providers.registry import ModelTable
from tests.support.inprocess import InProcess, in_process
from tests.support.upstream import Upstream

FORBIDDEN = "marzipan"


class MarzipanGuard:
    """A plugin's guard: refuses answers that mention marzipan."""

    name = "marzipan"
    directions: tuple[Direction, ...] = ("output",)
    order = 45  # after the banned words, before the content anomalies

    @classmethod
    def build(cls, settings: GuardsSettings, models: ModelTable | None) -> MarzipanGuard:
        return cls()

    def rewrites(self, settings: GuardsSettings) -> bool:
        return True

    def runs(self, settings: GuardsSettings, direction: Direction) -> bool:
        return True

    async def scan(self, text: str, context: ScanContext) -> Verdict:
        at = text.find(FORBIDDEN)
        if at < 0:
            return Verdict("allow", text, guard=self.name)
        finding = Finding(
            "MARZIPAN", at, at + len(FORBIDDEN), 1.0, FORBIDDEN, action="block", guard=self.name
        )
        return Verdict("block", text, [finding], guard=self.name)


@pytest.fixture
def plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    """The plugin as an installed package would register it, next to the built-ins."""
    installed = metadata.entry_points(group=step.GUARD_GROUP)
    ours = metadata.EntryPoint("marzipan", f"{__name__}:MarzipanGuard", step.GUARD_GROUP)

    def entry_points(**selection: Any) -> Any:
        assert selection == {"group": step.GUARD_GROUP}
        return [*installed, ours]

    monkeypatch.setattr(step, "entry_points", entry_points)


@pytest.fixture
async def served(plugin: None, tmp_path: Path, upstream: Upstream) -> AsyncIterator[InProcess]:
    async with in_process(tmp_path, [upstream.model("echo")]) as s:
        yield s


def test_the_built_ins_and_the_plugin_run_in_their_order(plugin: None) -> None:
    names = [g.name for g in step.build_guards(GuardsSettings()).guards]
    assert names == ["secrets", "pii", "injection", "words", "marzipan", "output"]


async def test_a_plugin_that_rewrites_holds_back_a_stream_and_refuses_it(served: InProcess) -> None:
    body = {"model": "echo", "messages": [{"role": "user", "content": f"I love {FORBIDDEN}"}], "stream": True}
    refused = await served.http.post("/v1/chat/completions", json=body)
    assert refused.status_code == 400, refused.text  # held until complete, so refused before it began
    assert refused.json()["error"]["code"] == "guard_blocked:marzipan"
    fine = await served.http.post(
        "/v1/chat/completions", json={**body, "messages": [{"role": "user", "content": "hi"}]}
    )
    assert fine.status_code == 200
    events = [json.loads(line[6:]) for line in fine.text.splitlines() if line.startswith("data: {")]
    assert "".join(e["choices"][0]["delta"].get("content") or "" for e in events) == "echo: hi"
