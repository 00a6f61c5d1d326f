"""The HTML report: one self-contained file with inline SVG plots, every text escaped."""

from __future__ import annotations

import re
from pathlib import Path

from rich.console import Console

from strato.evals.report import RunReport, summary_table, write_html
from strato.evals.runner import summarize
from strato.evals.runs import Result, Run
from strato.evals.types import Case

CASES = [
    Case(0, {"messages": [{"role": "user", "content": "Say <b>hi</b>"}]}, "hi"),
    Case(1, {"prompt": "2+2="}, "4"),
]


def report_of(model: str, outputs: list[str | None], *, judge_raw: str = "") -> RunReport:
    run = Run(f"run{model}", "qa", 1, model, {"scorer_names": ["exact", "judge"]}, 1, 0.0, 1.0, "complete")
    results = []
    for position, output in enumerate(outputs):
        failed = output is None
        results.append(
            Result(
                run.id,
                position,
                0,
                output,
                error="502 upstream_error: <boom>" if failed else None,
                scores={"exact": None if failed else 1.0, "judge": None},
                details={"judge": {"raw": judge_raw, "error": "judge: unparseable verdict"}},
                latency_ms=None if failed else 120.0 + 10 * position,
                cost=None if failed else 0.0001,
            )
        )
    return RunReport(run, results, summarize(run, results, len(CASES)))


def test_the_report_is_one_file_with_plots_and_escaped_text(tmp_path: Path) -> None:
    reports = [
        report_of("alpha", ["<script>alert(1)</script>", "4"], judge_raw="<i>no verdict</i>"),
        report_of("beta", [None, "5"]),
    ]
    path = write_html(tmp_path / "report.html", "strato eval: qa:1 <v2>", reports, CASES)

    page = path.read_text()
    assert page.startswith("<!doctype html>")
    assert page.count("<svg") == 2  # mean score per scorer, latency
    assert "<script" not in page  # the answer's script is shown, never run
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;hi&lt;/b&gt;" in page and "&lt;v2&gt;" in page
    assert "&lt;i&gt;no verdict&lt;/i&gt;" in page  # the judge's raw output, escaped
    assert "judge: unparseable verdict" in page and "502 upstream_error: &lt;boom&gt;" in page
    # Self-contained: nothing fetched (the SVG namespace is a name, not a request).
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "@import" not in page and "<link" not in page
    # A scorer that judged nothing shows "-", never NaN.
    assert not re.search(r"\bnan\b", page, re.IGNORECASE)


def test_the_terminal_summary_shows_dashes_not_nan() -> None:
    report = report_of("alpha", [None, None])
    console = Console(width=200, record=True)
    console.print(summary_table([report.summary]))
    text = console.export_text()
    assert "runalpha" in text and "2/2" in text
    assert not re.search(r"\bnan\b", text, re.IGNORECASE)
    assert "- (0) 2 err" in text
