"""LoRA adapters: a GGUF adapter the test writes itself, attached to SmolLM2 under its own name."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from strato.config import ConfigError
from strato.errors import ModelNotFound
from strato.providers.registry import ModelTable
from strato.types import GenerationRequest
from tests.engine.conftest import SMOLLM, chat, entry, local
from tests.engine.test_batcher import assert_identical
from tests.support.lora import write_lora


def question(model: str) -> GenerationRequest:
    return chat(
        model, "What is the capital of France?", temperature=0, max_tokens=16, logprobs=True, top_logprobs=2
    )


async def test_attach_serve_and_detach(models: Callable[..., ModelTable], tmp_path: Path) -> None:
    table = models(entry("s", **SMOLLM, slots=4, context_length=512))
    base = local(table, "s")
    before = await base.generate(question("s"))

    adapter = write_lora(tmp_path / "lora.gguf")
    table.add(entry("s-tuned", provider="llama_cpp", base="s", adapter=str(adapter)))
    tuned = local(table, "s-tuned")
    assert not tuned.info().loaded
    changed = await tuned.generate(question("s-tuned"))
    assert changed.text != before.text
    assert tuned.info().loaded and tuned.info().source.startswith("s + LoRA")

    # Base and adapter requests in flight together each get their own model's answer.
    both = await asyncio.gather(base.generate(question("s")), tuned.generate(question("s-tuned")))
    assert_identical(before, both[0])
    assert_identical(changed, both[1])

    await table.remove("s-tuned")
    with pytest.raises(ModelNotFound):
        table.generator("s-tuned")
    after = await base.generate(question("s"))
    assert after.text == before.text
    engine = base.pool.loaded("s")
    assert engine is not None and engine.batcher.adapter("s-tuned") is None


async def test_adapter_scale_zero_is_the_base_model(
    models: Callable[..., ModelTable], tmp_path: Path
) -> None:
    adapter = write_lora(tmp_path / "lora.gguf")
    table = models(
        entry("s", **SMOLLM, slots=2, context_length=512),
        entry("s-off", provider="llama_cpp", base="s", adapter=str(adapter), adapter_scale=0.0),
    )
    base = await local(table, "s").generate(question("s"))
    off = await local(table, "s-off").generate(question("s-off"))
    assert_identical(base, off)


async def test_bad_adapters_are_clear_errors(models: Callable[..., ModelTable], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="base 'nope'"):
        models(entry("x", provider="llama_cpp", base="nope", adapter=str(tmp_path / "a.gguf")))
    table = models(
        entry("s", **SMOLLM, slots=1, context_length=512),
        entry("missing", provider="llama_cpp", base="s", adapter=str(tmp_path / "missing.gguf")),
    )
    with pytest.raises(Exception, match="does not exist") as refused:
        await local(table, "missing").generate(question("missing"))
    assert getattr(refused.value, "status", None) == 400
