"""Optional parts of strato and the extra that installs each. `pip install strato` is the gateway
(remote models, guards, cache, traces, keys, evaluation); `strato[local]` adds the embedded engine
and the local embedding model, `strato[reports]` the charts of evaluation reports, `strato[train]`
the learned router's and the injection classifier's training, `strato[tune]` fine-tuning (peft,
transformers, gguf; with `local` for torch and the base models). `make install` installs them all."""

from __future__ import annotations

import importlib.util

from strato.config import ConfigError

EXTRAS = {
    "llama_cpp": "local",
    "sentence_transformers": "local",
    "torch": "local",
    "matplotlib": "reports",
    "sklearn": "train",
    "peft": "tune",
    "transformers": "tune",
    "gguf": "tune",
}


def require(module: str, needed_for: str) -> None:
    """Raise a one-line ConfigError naming the extra to install when `module` is missing."""
    if importlib.util.find_spec(module) is None:
        extra = EXTRAS[module]
        raise ConfigError(f"{needed_for} needs strato's `{extra}` extra: pip install 'strato[{extra}]'")
