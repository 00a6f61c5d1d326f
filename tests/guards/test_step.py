"""The guard steps skip a guard that has nothing to do under the request's settings."""

from __future__ import annotations

from strato.config import GuardsSettings
from strato.guards.step import GuardSet, build_guards
from strato.guards.verdict import Direction, ScanContext, Verdict
from strato.types import GenerationRequest, Message, SamplingParams


class Counting:
    """A guard that records what it was asked to scan, and says whether it has anything to do."""

    name = "counting"
    directions: tuple[Direction, ...] = ("input", "output")

    def __init__(self, active: bool) -> None:
        self.active = active
        self.scanned: list[tuple[str, str]] = []

    def rewrites(self, settings: GuardsSettings) -> bool:
        return False

    def runs(self, settings: GuardsSettings, direction: Direction) -> bool:
        return self.active

    async def scan(self, text: str, context: ScanContext) -> Verdict:
        self.scanned.append((context.direction, text))
        return Verdict("allow", text, [], self.name)


async def test_a_guard_with_nothing_to_do_is_not_asked_on_the_request_path() -> None:
    idle, busy = Counting(active=False), Counting(active=True)
    guards = GuardSet(GuardsSettings(), [idle, busy])
    request = GenerationRequest(model="m", messages=(Message("user", "hi"),), params=SamplingParams())
    guarded = await guards.check_input(request, None)
    await guards.check_output("an answer", guarded)
    assert idle.scanned == []
    assert busy.scanned == [("input", "hi"), ("output", "an answer")]
    await guards.scan("a text", "input")  # the scan endpoint asks every guard
    assert idle.scanned == [("input", "a text")]


def test_the_built_in_guards_run_by_their_settings() -> None:
    guard = {g.name: g for g in build_guards(GuardsSettings()).guards}
    defaults = GuardsSettings()

    def settings(**sections: object) -> GuardsSettings:
        return GuardsSettings.model_validate(sections)

    assert not guard["pii"].runs(defaults, "input")  # the input policy is opt-in
    assert guard["pii"].runs(defaults, "output")  # answers are flagged
    assert guard["pii"].runs(settings(pii={"enforce": True}), "input")
    assert not guard["pii"].runs(settings(pii={"enabled": False}), "output")
    assert guard["secrets"].runs(defaults, "input") and guard["secrets"].runs(defaults, "output")
    assert not guard["secrets"].runs(settings(secrets={"output_action": "allow"}), "output")
    assert guard["injection"].runs(defaults, "input")
    assert not guard["injection"].runs(settings(injection={"action": "allow"}), "input")
    assert not guard["words"].runs(defaults, "input")  # nothing is banned
    assert guard["words"].runs(settings(words={"words": ["marzipan"]}), "output")
    assert guard["output"].runs(defaults, "output")
    assert not guard["output"].runs(settings(output={"anomalies": "allow", "profanity": "allow"}), "output")
