"""Training examples from a data set's cases: the conversation the model is shown and the answer
it should give (the case's `expected`), split into training and held-out cases by a seed."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from strato.config import Settings
from strato.errors import InvalidRequest, ModelNotFound
from strato.evals.types import Case


class UnusableDataset(InvalidRequest):
    """A data set that cannot train a model: empty, or its cases have no expected answers."""

    code = "unusable_dataset"


@dataclass(frozen=True, slots=True)
class Example:
    """One conversation and the assistant's answer to it. `position`: the case it came from."""

    position: int
    messages: tuple[dict[str, str], ...]
    answer: str


def examples_from_cases(cases: Sequence[Case], dataset: str) -> list[Example]:
    """Every case as an example. Refuses a data set with no cases, or with cases whose expected
    answer is missing (naming the first), rather than train on part of it unawares."""
    if not cases:
        raise UnusableDataset(f"data set {dataset!r} has no cases to train on")
    examples = []
    for case in cases:
        if case.expected is None or case.expected == "":
            raise UnusableDataset(
                f"case {case.position} of data set {dataset!r} has no expected answer to train on; "
                "add one (a correction, or `expected` in the file) or leave the case out"
            )
        answer = case.expected if isinstance(case.expected, str) else json.dumps(case.expected)
        examples.append(Example(case.position, _messages(case.input), answer))
    return examples


def _messages(record: dict[str, Any]) -> tuple[dict[str, str], ...]:
    if isinstance(record.get("messages"), list):
        return tuple(
            {"role": str(m["role"]), "content": str(m.get("content") or "")} for m in record["messages"]
        )
    return ({"role": "user", "content": str(record.get("prompt", ""))},)


def split(examples: Sequence[Example], held_out: float, seed: int) -> tuple[list[Example], list[Example]]:
    """(training, held out): `held_out` of the examples, at least one when there are two or more,
    chosen by `seed`; the same seed always holds out the same cases."""
    order = list(examples)
    random.Random(seed).shuffle(order)
    count = round(len(order) * held_out)
    if held_out > 0 and len(order) >= 2:
        count = min(max(count, 1), len(order) - 1)
    return order[count:], order[:count]


class UnsuitableBase(InvalidRequest):
    code = "unsuitable_base"


def local_base(settings: Settings, name: str) -> Path:
    """The GGUF file of `name`, a configured local llama.cpp model that is not itself a LoRA."""
    from strato.extras import require
    from strato.providers.local import LlamaCppOptions
    from strato.providers.sources import resolve_gguf

    for module in ("torch", "peft", "transformers", "gguf"):
        require(module, "fine-tuning")

    entry = next((m for m in settings.models if m.name == name), None)
    local = [m.name for m in settings.models if m.provider == "llama_cpp" and "base" not in m.options]
    wanted = f"fine-tuning needs a local llama.cpp model ({', '.join(local) or 'none is configured'})"
    if entry is None:
        raise ModelNotFound(f"base {name!r} is not a configured model; {wanted}")
    if entry.provider != "llama_cpp":
        raise UnsuitableBase(f"base {name!r} is served by {entry.provider!r}; {wanted}")
    options = entry.parse_options(LlamaCppOptions)
    if options.base is not None:
        raise UnsuitableBase(
            f"base {name!r} is a LoRA adapter on {options.base!r}; tune {options.base!r} instead"
        )
    return resolve_gguf(options.path, options.package, options.file)
