"""Prompt injection and jailbreak detection: attack-pattern rules plus a linear classifier.

The rules (`injection_rules.py`) catch the constructions attacks are built from and almost never
fire on benign text; the classifier, a logistic regression over hashed word and character n-grams,
catches the long tail (persona jailbreaks, payloads in documents). A text's score is the higher of
the two. Both read normalised text (zero-width characters dropped, look-alike letters folded), so
the usual tricks aimed at filters do not hide an attack.

The classifier's weights ship with strato (`data/injection.npz`, about 2.4 MB);
`benchmarks/injection.py --train` rebuilds them from about 39,000 labelled texts of 31 public
sources, each source's weight capped so that the large benign ones do not outvote the rest. Scanning
a chat turn costs under a millisecond, and the cost grows linearly with the text.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from strato.config import GuardsSettings
from strato.guards.hashing import columns
from strato.guards.injection_context import context_hits
from strato.guards.injection_rules import rule_hits
from strato.guards.normalize import Normalized, normalize
from strato.guards.verdict import Direction, Finding, ScanContext, Verdict

if TYPE_CHECKING:
    import numpy as np

    from strato.providers.registry import ModelTable

SMALL = 1_024  # n-grams up to which a text is scored in plain Python: numpy's calls cost more there
WINDOW = 2_000  # characters the classifier reads at a time; longer texts are read in windows
STRIDE = 1_500
N_FEATURES = 2**18  # per hasher (words, characters)


def _hashers() -> tuple[Any, Any]:
    from sklearn.feature_extraction.text import HashingVectorizer

    words = HashingVectorizer(
        n_features=N_FEATURES, ngram_range=(1, 2), alternate_sign=False, norm=None, lowercase=False
    )
    chars = HashingVectorizer(
        n_features=N_FEATURES,
        analyzer="char_wb",
        ngram_range=(3, 5),
        alternate_sign=False,
        norm=None,
        lowercase=False,
    )
    return words, chars


@dataclass
class InjectionModel:
    """Logistic regression over sublinear tf-idf of hashed word 1-2-grams and character 3-5-grams."""

    coef: np.ndarray  # (2 * N_FEATURES,)
    intercept: float
    idf: np.ndarray  # (2 * N_FEATURES,)

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        import numpy as np

        return np.asarray([self.probability(t) for t in texts])

    def probability(self, text: str) -> float:
        """The classifier's score for one text: the same as `weigh(hashed_counts(...))` times the
        coefficients, computed on this text's n-grams alone (`strato.guards.hashing`), so inference
        needs neither scikit-learn nor scipy and pays no sparse-matrix overhead. A chat turn's few
        hundred n-grams are summed in plain Python: numpy's calls would cost more than the sums,
        and each gives the GIL away (to the trace writer, for up to its switch interval)."""
        indices = columns(text, N_FEATURES)
        if not indices:
            return 1.0 / (1.0 + math.exp(-self.intercept))
        if len(indices) <= SMALL:
            idf, coef = self.idf.data, self.coef.data  # memoryviews: indexing gives Python floats
            dot = norm = 0.0
            for column, count in Counter(indices).items():
                weight = (1.0 + math.log(count)) * idf[column]
                dot += weight * coef[column]
                norm += weight * weight
            logit = dot / math.sqrt(norm) + self.intercept
        else:
            import numpy as np

            found, counts = np.unique(np.asarray(indices), return_counts=True)
            weights = (1.0 + np.log(counts)) * self.idf[found]
            logit = float(weights @ self.coef[found]) / float(np.sqrt(weights @ weights)) + self.intercept
        return 1.0 / (1.0 + math.exp(-logit))

    def features(self, texts: Sequence[str]) -> Any:
        """The rows the coefficients multiply, as training builds them (scikit-learn and scipy)."""
        return self.weigh(hashed_counts(texts))

    def weigh(self, counts: Any) -> Any:
        """Sublinear tf-idf, l2-normalised, of `hashed_counts` rows: what the coefficients multiply."""
        import numpy as np
        from sklearn.preprocessing import normalize as l2

        weighted = counts.astype(np.float64)
        weighted.data = 1.0 + np.log(weighted.data)  # sublinear term frequency
        return l2(weighted.multiply(self.idf).tocsr())

    @classmethod
    def train(
        cls,
        texts: Sequence[str],
        labels: Sequence[int],
        attack_weight: float = 1.0,
        c: float = 1.0,
        weights: Sequence[float] | None = None,
    ) -> InjectionModel:
        """Fit on labelled texts (1: injection or jailbreak), each read from its start (the first
        window). `attack_weight` counts each attack as that many benign examples (above 1 the
        classifier's 0.5 flags more of both); `weights` weighs each text, so that a large source
        does not outvote the rest."""
        prepared = [prepare(t)[:WINDOW] for t in texts]
        return cls.fit(hashed_counts(prepared), labels, attack_weight, c, weights)

    @classmethod
    def fit(
        cls,
        counts: Any,
        labels: Sequence[int],
        attack_weight: float = 1.0,
        c: float = 1.0,
        weights: Sequence[float] | None = None,
    ) -> InjectionModel:
        """Fit on `hashed_counts` of prepared texts: the idf comes from these rows, then a weighted
        logistic regression."""
        import numpy as np
        from sklearn.linear_model import LogisticRegression

        y = np.asarray(labels)
        sample = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=np.float64)
        sample = sample * np.where(y == 1, attack_weight, 1.0)
        documents = np.bincount(counts.indices, minlength=counts.shape[1])
        idf = (np.log((1 + counts.shape[0]) / (1 + documents)) + 1.0).astype(np.float32)
        model = cls(np.zeros(counts.shape[1], np.float32), 0.0, idf)
        classifier = LogisticRegression(C=c, max_iter=3000)
        classifier.fit(model.weigh(counts), y, sample_weight=sample)
        model.coef = classifier.coef_[0].astype(np.float32)
        model.intercept = float(classifier.intercept_[0])
        return model

    def save(self, path: Path) -> None:
        import numpy as np

        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as out:
            np.savez_compressed(out, coef=self.coef, intercept=np.float32(self.intercept), idf=self.idf)

    @classmethod
    def load(cls, path: Path | None = None) -> InjectionModel:
        import numpy as np

        if path is None:
            with resources.as_file(resources.files("strato.guards") / "data" / "injection.npz") as shipped:
                return cls.load(shipped)
        with np.load(path) as data:
            return cls(data["coef"], float(data["intercept"]), data["idf"])


def hashed_counts(texts: Sequence[str]) -> Any:
    """Counts of each text's hashed word 1-2-grams, then character 3-5-grams (a scipy CSR matrix)."""
    from scipy import sparse

    words, chars = _hashers()
    return sparse.hstack([words.transform(texts), chars.transform(texts)]).tocsr()


def prepare(text: str) -> str:
    """What both the rules and the classifier read: normalised, lower-cased, whitespace collapsed."""
    return " ".join(normalize(text).text.lower().split())


class InjectionDetector:
    """Scores a text 0..1 for prompt injection; `findings` says where and why."""

    def __init__(self, model: InjectionModel | None = None) -> None:
        self._model = model
        self._lock = threading.Lock()

    @property
    def model(self) -> InjectionModel:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = InjectionModel.load()
        return self._model

    def load(self) -> None:
        """Load the classifier now (at startup) rather than on the first scan."""
        _ = self.model

    def detect(
        self, text: str, threshold: float, kind: str = "PROMPT_INJECTION", system: str | None = None
    ) -> list[Finding]:
        """Findings at or above `threshold`: each rule match (the strongest where they overlap), a
        request for what the system prompt guards or forbids, and each classifier window that none
        of those already covers. Spans refer to `text`."""
        norm, candidates = self._candidates(text, system)
        spans: list[tuple[int, int, float]] = []  # in the normalised text
        for start, end, score in candidates:
            if score >= threshold and not _overlaps(spans, start, end):
                spans.append((start, end, score))
        findings = []
        for start, end, score in sorted(spans):
            origin_start, origin_end = norm.span(start, end)
            findings.append(Finding(kind, origin_start, origin_end, score, text[origin_start:origin_end]))
        return findings

    def score(self, text: str, system: str | None = None) -> float:
        """The text's injection score: the highest of its rules, its requests against the system
        prompt and its windows' probabilities."""
        return max((score for _, _, score in self._candidates(text, system)[1]), default=0.0)

    def _candidates(self, text: str, system: str | None) -> tuple[Normalized, list[tuple[int, int, float]]]:
        """Every scored span of the normalised text, in the order `detect` prefers them: rule
        matches (strongest first), requests against the system prompt, the classifier's windows."""
        norm = normalize(text)
        lowered = norm.text.lower()
        hits = sorted(rule_hits(lowered), key=lambda hit: -hit[0].score)
        candidates = [(start, end, rule.score) for rule, start, end in hits]
        if system:
            candidates += [(h.start, h.end, h.score) for h in context_hits(norm.text, normalize(system).text)]
        windows = _windows(lowered)
        if windows:
            scores = self.model.probabilities([" ".join(w.split()) for _, _, w in windows])
            candidates += [(start, end, float(p)) for (start, end, _), p in zip(windows, scores, strict=True)]
        return norm, candidates


def _overlaps(spans: list[tuple[int, int, float]], start: int, end: int) -> bool:
    return any(s < end and e > start for s, e, _ in spans)


def _windows(text: str) -> list[tuple[int, int, str]]:
    if not text.strip():
        return []
    if len(text) <= WINDOW:
        return [(0, len(text), text)]
    starts = [*list(range(0, len(text) - WINDOW, STRIDE)), len(text) - WINDOW]
    return [(s, s + WINDOW, text[s : s + WINDOW]) for s in starts]


class InjectionGuard:
    """The `Guard` for prompt injection. On input it reads the roles `injection.roles` names; a
    finding in a `tool` message (text a tool or a retrieval step returned) is an INDIRECT_INJECTION."""

    name = "injection"
    directions: tuple[Direction, ...] = ("input",)
    order = 30

    @classmethod
    def build(cls, settings: GuardsSettings, models: ModelTable | None) -> InjectionGuard:
        guard = cls()
        if settings.injection.enabled:
            guard.detector.load()  # at startup, not on the first request
        return guard

    def rewrites(self, settings: GuardsSettings) -> bool:
        return False  # it reads requests only

    def runs(self, settings: GuardsSettings, direction: Direction) -> bool:
        return direction == "input" and settings.injection.enabled and settings.injection.action != "allow"

    def __init__(self, detector: InjectionDetector | None = None) -> None:
        self.detector = detector or InjectionDetector()

    async def scan(self, text: str, context: ScanContext) -> Verdict:
        return self.scan_now(text, context)

    def scan_now(self, text: str, context: ScanContext) -> Verdict:
        guards = context.settings or GuardsSettings()
        settings = guards.injection
        skipped_role = context.role is not None and context.role not in settings.roles
        if not self.runs(guards, context.direction) or skipped_role:
            return Verdict("allow", text, [], self.name)
        kind = "INDIRECT_INJECTION" if context.role == "tool" else "PROMPT_INJECTION"
        findings = [
            Finding(f.type, f.start, f.end, f.score, f.text, settings.action)
            for f in self.detector.detect(text, settings.threshold, kind, context.system)
        ]
        action = settings.action if findings else "allow"
        if action == "redact":  # an injection cannot be redacted away safely: refuse it instead
            action = "block"
            findings = [Finding(f.type, f.start, f.end, f.score, f.text, "block") for f in findings]
        return Verdict(action, text, findings, self.name)
