"""Taking PII and secrets out of cases made from traces, with the guards' own scanners.

A value becomes a placeholder such as `<EMAIL_ADDRESS_1>`, the same one wherever it appears in a
case (its input and its expected answer), and it is never put back: a data set outlives the request
it came from, and it is shared more widely than the trace store.
"""

from __future__ import annotations

from strato.config import GuardsSettings
from strato.guards.ner import SpacyEntities
from strato.guards.pii import PIIScanner
from strato.guards.redact import Placeholders
from strato.guards.secrets import SecretsScanner
from strato.guards.verdict import Finding, without_overlaps


class Scrubber:
    """Every PII type the PII guard recognises and every secret the secrets guard does, whatever
    the guards' actions are set to: a data set keeps none of them."""

    def __init__(
        self,
        pii: PIIScanner | None = None,
        secrets: SecretsScanner | None = None,
        threshold: float = GuardsSettings().pii.score_threshold,
    ) -> None:
        self.pii = pii or PIIScanner()
        self.secrets = secrets or SecretsScanner()
        self.threshold = threshold

    @classmethod
    def from_settings(cls, guards: GuardsSettings) -> Scrubber:
        """With the configured PII score threshold and the spaCy pipeline (names, places), if set."""
        ner = SpacyEntities(guards.pii.ner_model) if guards.pii.ner_model else None
        if ner is not None:
            ner.load()  # a missing package is a configuration error, said before any work
        return cls(PIIScanner(ner=ner), SecretsScanner(), guards.pii.score_threshold)

    def findings(self, text: str) -> list[Finding]:
        """What would be replaced: secrets first (a key inside a URL is a key), then PII."""
        found = self.secrets.detect(text) + self.pii.detect(text, self.threshold)
        rank = {id(finding): i for i, finding in enumerate(found)}
        return without_overlaps(found, lambda f: rank[id(f)])

    def scrub(self, text: str, placeholders: Placeholders) -> str:
        """`text` with each finding replaced by its placeholder (shared through `placeholders`)."""
        if not text:
            return text
        findings = self.findings(text)
        return placeholders.redact(text, findings) if findings else text
