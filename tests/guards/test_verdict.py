"""Overlapping findings: the preferred one of each overlap is kept, whatever their number."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from strato.guards.verdict import Finding, by_score, without_overlaps


def pairwise(findings: list[Finding], prefer: object) -> list[Finding]:
    """The plain definition: each finding in order of preference, kept unless it overlaps one kept."""
    kept: list[Finding] = []
    for f in sorted(findings, key=prefer):  # type: ignore[call-overload]
        if all(f.end <= k.start or f.start >= k.end for k in kept):
            kept.append(f)
    return sorted(kept, key=order)


def order(f: Finding) -> tuple[int, int, float]:
    return (f.start, f.end, f.score)


spans = st.tuples(st.integers(0, 60), st.integers(0, 12), st.floats(0, 1), st.integers(0, 2))


@settings(max_examples=400, deadline=None)
@given(st.lists(spans, max_size=40))
def test_the_same_findings_as_comparing_every_pair(rows: list[tuple[int, int, float, int]]) -> None:
    findings = [Finding("T", start, start + length, score, "x") for start, length, score, _ in rows]
    for prefer in (by_score, lambda f: (f.start, -f.end), lambda f: (-(f.end - f.start), f.start)):
        kept = without_overlaps(findings, prefer)
        assert [(f.start, f.end) for f in kept] == sorted((f.start, f.end) for f in kept)  # text order
        assert sorted(kept, key=order) == pairwise(findings, prefer)


def test_thousands_of_findings_in_text_order_without_overlaps() -> None:
    # 30,000 findings, as a 1,000,000-character text dense with e-mail addresses gives: each
    # e-mail found twice (a long and a short span), the long one preferred.
    findings = []
    for i in range(15_000):
        findings.append(Finding("EMAIL", i * 60, i * 60 + 30, 0.9, "x"))
        findings.append(Finding("EMAIL", i * 60 + 5, i * 60 + 20, 0.5, "x"))
    kept = without_overlaps(findings, by_score)
    assert [f.start for f in kept] == [i * 60 for i in range(15_000)]
