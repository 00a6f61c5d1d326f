"""What the engine spends: per request and per model, busy time, CPU time and energy (measured
from RAPL counters where the kernel has them, else an estimate labelled as one)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from strato.engine.energy import EnergyMeter
from strato.providers.registry import ModelTable
from strato.types import Compute
from tests.engine.conftest import SMOLLM, chat, entry


async def test_each_answer_carries_its_share_and_the_shares_add_up(models: Callable[..., ModelTable]) -> None:
    table = models(entry("smol", **SMOLLM, watts_per_core=10.0))
    smol = table.generator("smol")
    questions = ["Name a colour.", "What is 2+2?", "Say hello.", "Count to three."]
    answers = await asyncio.gather(
        *(smol.generate(chat("smol", q, max_tokens=12, temperature=0)) for q in questions)
    )
    spends = [a.compute for a in answers]
    assert all(c is not None and c.busy_seconds > 0 and c.cpu_seconds > 0 for c in spends)
    assert all(c is not None and c.source == "estimate" for c in spends)  # no RAPL counter here
    assert all(c is not None and c.energy_joules == pytest.approx(c.cpu_seconds * 10.0) for c in spends)

    (state,) = table.shared.engines.states()
    total = state.spent
    # The engine's own totals are the sum of what it shared out (nothing else ran on it).
    assert sum(c.busy_seconds for c in spends if c) == pytest.approx(total.busy_seconds, rel=1e-6)
    assert sum(c.cpu_seconds for c in spends if c) == pytest.approx(total.cpu_seconds, rel=1e-6)
    assert 0 < total.busy_seconds <= state.loaded_seconds


async def test_a_stream_s_last_chunk_carries_the_spend(models: Callable[..., ModelTable]) -> None:
    smol = models(entry("smol", **SMOLLM)).generator("smol")
    chunks = [c async for c in await smol.stream(chat("smol", "Name a colour.", max_tokens=8))]
    assert [c.compute is not None for c in chunks][-1] and all(c.compute is None for c in chunks[:-1])


def rapl(root: Path, package: int, microjoules: int, wrap: int = 2**32) -> Path:
    """A powercap zone as the kernel lays it out."""
    zone = root / f"intel-rapl:{package}"
    zone.mkdir(parents=True, exist_ok=True)
    (zone / "energy_uj").write_text(f"{microjoules}\n")
    (zone / "max_energy_range_uj").write_text(f"{wrap}\n")
    return zone


def test_rapl_counters_are_read_summed_over_packages_and_unwrapped(tmp_path: Path) -> None:
    first, second = rapl(tmp_path, 0, 1_000_000), rapl(tmp_path, 1, 2**32 - 500_000)
    (tmp_path / "intel-rapl:0:0").mkdir()  # a subzone (the cores of package 0): not counted again
    meter = EnergyMeter(watts_per_core=10.0, powercap=tmp_path)
    assert meter.source == "rapl"
    before = meter.read()
    (first / "energy_uj").write_text("3500000\n")  # +2.5 J
    (second / "energy_uj").write_text("1500000\n")  # wrapped: +2.0 J
    spent = meter.spent(before, meter.read())
    assert spent.source == "rapl" and spent.energy_joules == pytest.approx(4.5)


def test_without_readable_counters_energy_is_an_estimate(tmp_path: Path) -> None:
    zone = rapl(tmp_path, 0, 10)
    (zone / "energy_uj").write_text("not a number")  # a zone whose counter cannot be read
    meter = EnergyMeter(watts_per_core=8.0, powercap=tmp_path)
    assert meter.source == "estimate"
    before = meter.read()
    sum(i * i for i in range(200_000))  # some CPU time
    spent = meter.spent(before, meter.read())
    assert spent == Compute(spent.busy_seconds, spent.cpu_seconds, spent.cpu_seconds * 8.0, "estimate")
    assert spent.cpu_seconds > 0
