"""What the engine spends: busy time, CPU time and energy, measured per decode step and shared out
to the requests in the step by the tokens each had in it.

Energy comes from the kernel's RAPL counters (`/sys/class/powercap/intel-rapl:N/energy_uj`, one
per CPU package) when they are readable; it is then measured, for the whole package while the step
ran. Where the kernel exposes none (most VMs and containers, this machine included) it is an
estimate: the step's CPU seconds times `engine.watts_per_core`, labelled `estimate` everywhere it is
shown.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from strato.types import Compute, EnergySource

POWERCAP = Path("/sys/class/powercap")
MAX_UJ = "max_energy_range_uj"  # the counter wraps after this many microjoules


@dataclass
class Reading:
    at: float  # perf_counter seconds
    cpu: float  # process CPU seconds (every thread: llama.cpp's workers do the work)
    microjoules: list[int]  # one per RAPL package; empty when estimating


class EnergyMeter:
    """Reads the clocks and counters a step is measured with."""

    def __init__(self, watts_per_core: float, powercap: Path = POWERCAP) -> None:
        self.watts_per_core = watts_per_core
        self._packages = _packages(powercap)
        self.source: EnergySource = "rapl" if self._packages else "estimate"

    def read(self) -> Reading:
        return Reading(time.perf_counter(), time.process_time(), [_counter(p) for p, _ in self._packages])

    def spent(self, before: Reading, after: Reading) -> Compute:
        """Between two readings: wall seconds, CPU seconds and joules."""
        cpu = max(0.0, after.cpu - before.cpu)
        if self._packages:
            joules = 0.0
            for (_, wrap), start, end in zip(
                self._packages, before.microjoules, after.microjoules, strict=True
            ):
                joules += ((end - start) % wrap if wrap else max(0, end - start)) / 1e6
        else:
            joules = cpu * self.watts_per_core
        return Compute(max(0.0, after.at - before.at), cpu, joules, self.source)


def _packages(powercap: Path) -> list[tuple[Path, int]]:
    """The readable top-level RAPL zones (`intel-rapl:0`, not its `intel-rapl:0:0` subzones)."""
    found: list[tuple[Path, int]] = []
    for zone in sorted(powercap.glob("intel-rapl:*")):
        if zone.name.count(":") != 1:
            continue
        counter = zone / "energy_uj"
        try:
            _counter(counter)
            wrap = int((zone / MAX_UJ).read_text()) if (zone / MAX_UJ).exists() else 0
        except (OSError, ValueError):
            continue  # present but unreadable (RAPL needs root on most kernels since 2020)
        found.append((counter, wrap))
    return found


def _counter(path: Path) -> int:
    return int(path.read_text())


def portion(spent: Compute, part: float) -> Compute:
    """`part` (0..1) of what a step spent."""
    return Compute(
        spent.busy_seconds * part, spent.cpu_seconds * part, spent.energy_joules * part, spent.source
    )


def plus(total: Compute | None, more: Compute) -> Compute:
    if total is None:
        return more
    return Compute(
        total.busy_seconds + more.busy_seconds,
        total.cpu_seconds + more.cpu_seconds,
        total.energy_joules + more.energy_joules,
        more.source,
    )
