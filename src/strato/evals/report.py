"""What a run looks like to a person: rich tables for the terminal, and one self-contained HTML file
(inline SVG plots drawn by matplotlib, no script, no network asset) with every case's answers."""

from __future__ import annotations

import html
import io
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from strato.evals.compare import CaseDelta, Comparison
from strato.evals.runner import Summary, by_case
from strato.evals.runs import Result, Run
from strato.evals.types import Case
from strato.extras import require
from strato.observe.export import ms, usd

PREVIEW = 80  # characters of an input shown in terminal tables
SHOWN_CASES = 10  # better / worse cases listed under a comparison


@dataclass(frozen=True, slots=True)
class RunReport:
    """One run with its results and summary: what a report shows for one model."""

    run: Run
    results: list[Result]
    summary: Summary


# --- terminal -------------------------------------------------------------------------------------


def summary_table(summaries: Sequence[Summary], *, listing: bool = False) -> Table:
    """How much each run did, each scorer's mean (values scored, errors), latency, cost and
    agreement (runs with several samples). A few runs (`strato eval run`, `show`) read down a
    column each, so the table fits a narrow terminal; `listing` (`strato eval runs`) gives a row
    per run, with the data set and the status."""
    if not listing:
        return _summary_columns(summaries)
    names: list[str] = []
    for s in summaries:
        names += [x.name for x in s.scorers if x.name not in names]
    sampled = any(s.run.samples > 1 for s in summaries)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    table.add_column("run", no_wrap=True)
    table.add_column("model", overflow="fold")
    if listing:
        table.add_column("data set", overflow="fold")
        table.add_column("status")
    table.add_column("results", justify="right", no_wrap=True)
    table.add_column("failed", justify="right")
    for name in names:
        table.add_column(name, justify="right")
    for column in ("p50", "p95", "cost"):
        table.add_column(column, justify="right", no_wrap=True)
    if sampled:
        table.add_column("agreement", justify="right")
    for s in summaries:
        by_name = {x.name: x for x in s.scorers}
        cells: list[str | Text] = [
            s.run.id,
            s.run.model,
            *([f"{s.run.dataset}:{s.run.version}", s.run.status] if listing else []),
            f"{s.results}/{s.expected}" if s.expected is not None else str(s.results),
            Text(str(s.failed), style="red" if s.failed else ""),
        ]
        for name in names:
            x = by_name.get(name)
            cells.append(_scorer_cell(x.mean, x.scored, x.errors) if x else Text("-"))
        cells += [ms(s.latency_p50), ms(s.latency_p95), usd(s.cost)]
        if sampled:
            cells.append(number(s.agreement))
        table.add_row(*cells)
    return table


def _summary_columns(summaries: Sequence[Summary]) -> Table:
    names: list[str] = []
    for s in summaries:
        names += [x.name for x in s.scorers if x.name not in names]
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    table.add_column("run", no_wrap=True)
    for s in summaries:
        table.add_column(s.run.id, justify="right", overflow="fold")
    table.add_row("model", *(s.run.model for s in summaries))
    table.add_row(
        "results",
        *(f"{s.results}/{s.expected}" if s.expected is not None else str(s.results) for s in summaries),
    )
    table.add_row("failed", *(Text(str(s.failed), style="red" if s.failed else "") for s in summaries))
    for name in names:
        cells: list[str | Text] = []
        for s in summaries:
            x = next((x for x in s.scorers if x.name == name), None)
            cells.append(_scorer_cell(x.mean, x.scored, x.errors) if x else Text("-"))
        table.add_row(name, *cells)
    table.add_row("latency p50", *(ms(s.latency_p50) for s in summaries))
    table.add_row("latency p95", *(ms(s.latency_p95) for s in summaries))
    table.add_row("cost", *(usd(s.cost) for s in summaries))
    if any(s.run.samples > 1 for s in summaries):
        table.add_row("agreement", *(number(s.agreement) if s.run.samples > 1 else "-" for s in summaries))
    return table


def comparison_view(c: Comparison, cases: dict[int, Case] | None = None) -> Group:
    """Means, the difference with its interval, and the cases that moved most."""
    head = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for column in ("", "run", "model", c.scorer):
        head.add_column(column, justify="right" if column == c.scorer else "left")
    head.add_row("A", c.run_a.id, c.run_a.model, number(c.mean_a))
    head.add_row("B", c.run_b.id, c.run_b.model, number(c.mean_b))
    interval = "-" if c.ci_low is None else f"[{c.ci_low:+.4f}, {c.ci_high:+.4f}]"
    diff = "-" if c.mean_diff is None else f"{c.mean_diff:+.4f}"
    style = ""
    if c.ci_low is not None and c.ci_high is not None:
        style = "green" if c.ci_low > 0 else "red" if c.ci_high < 0 else ""
    unchanged = len(c.cases) - len(c.better) - len(c.worse)
    parts: list[Any] = [
        head,
        Text(f"mean difference B - A: {diff}   95% bootstrap CI: {interval}", style=style),
        Text(
            f"{len(c.cases)} cases compared, {c.dropped} dropped (not scored in both runs); "
            f"{len(c.better)} better, {len(c.worse)} worse, {unchanged} unchanged"
        ),
    ]
    if c.failed_b:
        parts.append(Text(f"B failed to answer {len(c.failed_b)} cases that A was scored on", style="red"))
    for title, moved in (("better in B", c.better), ("worse in B", c.worse)):
        if moved:
            parts.append(_moved_table(title, moved[:SHOWN_CASES], len(moved), cases or {}))
    return Group(*parts)


def results_table(results: Sequence[Result], width: int = 120) -> Table:
    """Every case-sample of a run: its output (one line), scores and error."""
    table = Table("case", "sample", "output", "scores", "error", box=box.SIMPLE_HEAD, show_edge=False)
    for r in results:
        scores = ", ".join(f"{k}={number(v) if v is None else f'{v:.3g}'}" for k, v in r.scores.items())
        output = " ".join((r.output or "").split())
        table.add_row(str(r.position), str(r.sample), output[:width], scores, r.error or "")
    return table


def _moved_table(title: str, moved: Sequence[CaseDelta], total: int, cases: dict[int, Case]) -> Table:
    more = f" (first {len(moved)} of {total})" if total > len(moved) else ""
    table = Table(title=f"{title}{more}", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("case", justify="right")
    table.add_column("A", justify="right")
    table.add_column("B", justify="right")
    table.add_column("input", overflow="ellipsis", no_wrap=True, max_width=PREVIEW)
    for d in moved:
        case = cases.get(d.position)
        table.add_row(str(d.position), number(d.a), number(d.b), preview(case.input) if case else "")
    return table


def _scorer_cell(mean: float | None, scored: int, errors: int) -> Text:
    text = Text(f"{number(mean)} ({scored})")
    if errors:
        text.append(f" {errors} err", style="red")
    return text


def number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def preview(case_input: dict[str, Any], width: int = PREVIEW) -> str:
    """A case's input in one line: the last user message (or the prompt)."""
    messages = case_input.get("messages")
    if isinstance(messages, list) and messages:
        users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"] or messages
        text = str(users[-1].get("content", "")) if isinstance(users[-1], dict) else str(users[-1])
    else:
        text = str(case_input.get("prompt", ""))
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


# --- HTML -----------------------------------------------------------------------------------------


STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2rem; color: #1d1d1f; }
table { border-collapse: collapse; margin: .5rem 0 1.5rem; }
th, td { border: 1px solid #d0d0d5; padding: .3rem .5rem; vertical-align: top; text-align: left; }
th { background: #f2f2f5; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
pre { white-space: pre-wrap; word-break: break-word; margin: 0; max-width: 40rem; font-size: 13px; }
.error { color: #b00020; }
.muted { color: #6b6b73; }
figure { margin: 0 0 1.5rem; }
figure svg { max-width: 100%; height: auto; }
"""


def write_html(path: Path, title: str, reports: Sequence[RunReport], cases: Sequence[Case]) -> Path:
    """Write the report of `reports` (runs over the same cases) to `path` as one HTML file."""
    require("matplotlib", "the HTML report (or pass --no-report)")
    body = [
        f"<h1>{_e(title)}</h1>",
        f'<p class="muted">{len(cases)} cases; written {_e(time.strftime("%Y-%m-%d %H:%M:%S %Z"))}</p>',
        "<h2>Summary</h2>",
        *(_summary_html(r) for r in reports),
    ]
    if any(x.scored for r in reports for x in r.summary.scorers):
        body += ["<h2>Mean score per scorer</h2>", _figure(score_chart(reports))]
    if any(r.summary.latency_p50 is not None for r in reports):
        body += ["<h2>Latency</h2>", _figure(latency_chart(reports))]
    body += ["<h2>Cases</h2>", _cases_html(reports, cases)]
    document = (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{_e(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )
    path.write_text(document, encoding="utf-8")
    return path


def _summary_html(r: RunReport) -> str:
    s = r.summary
    facts = [
        ("run", r.run.id),
        ("model", r.run.model),
        ("status", r.run.status),
        ("results", f"{s.results}/{s.expected}" if s.expected is not None else str(s.results)),
        ("failed answers", str(s.failed)),
        ("latency p50 / p95", f"{ms(s.latency_p50)} / {ms(s.latency_p95)}"),
        ("cost", f"{usd(s.cost)} ({s.priced} priced)"),
        ("samples", str(r.run.samples)),
    ]
    if s.agreement is not None:
        facts.append(("agreement", number(s.agreement)))
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in facts)
    scorer_rows = "".join(
        f"<tr><td>{_e(x.name)}</td><td class=num>{number(x.mean)}</td><td class=num>{x.scored}</td>"
        f"<td class=num>{x.errors}</td><td class=num>{number(x.spread)}</td></tr>"
        for x in s.scorers
    )
    return (
        f"<h3>{_e(r.run.model)}</h3>\n<table>{rows}</table>\n"
        "<table><tr><th>scorer</th><th>mean</th><th>scored</th><th>errors</th><th>spread</th></tr>"
        f"{scorer_rows}</table>"
    )


def _cases_html(reports: Sequence[RunReport], cases: Sequence[Case]) -> str:
    by_run = [by_case(r.results) for r in reports]
    head = "<tr><th>#</th><th>input</th><th>expected</th>" + "".join(
        f"<th>{_e(r.run.model)}<br><span class=muted>{_e(r.run.id)}</span></th>" for r in reports
    )
    rows = [head + "</tr>"]
    for case in cases:
        cells = [
            f"<td class=num>{case.position}</td>",
            f"<td>{_text_block(_input_text(case.input))}</td>",
            f"<td>{_text_block(_value_text(case.expected))}</td>",
        ]
        for report, results in zip(reports, by_run, strict=True):
            agreement = report.summary.case_agreement.get(case.position)
            cells.append(f"<td>{_answers_html(results.get(case.position, []), agreement)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return "<table>\n" + "\n".join(rows) + "\n</table>"


def _answers_html(results: Sequence[Result], agreement: float | None) -> str:
    if not results:
        return '<span class="muted">not run</span>'
    parts = [] if agreement is None else [f'<p class="muted">agreement {number(agreement)}</p>']
    for r in results:
        label = f'<p class="muted">sample {r.sample}</p>' if len(results) > 1 else ""
        answer = (
            f'<pre class="error">{_e(r.error)}</pre>' if r.error is not None else _text_block(r.output or "")
        )
        scores = ", ".join(f"{_e(k)}: {number(v)}" for k, v in r.scores.items())
        parts.append(f"{label}{answer}<p>{scores}</p>{_details_html(r.details)}")
    return "".join(parts)


def _details_html(details: dict[str, dict[str, Any]]) -> str:
    """Scorer errors in plain sight, other detail (a judge's raw output) folded."""
    parts = []
    for name, detail in details.items():
        if detail.get("error"):
            parts.append(f'<p class="error">{_e(name)}: {_e(str(detail["error"]))}</p>')
        rest = {k: v for k, v in detail.items() if k != "error"}
        if rest:
            lines = "\n".join(f"{k}: {_value_text(v)}" for k, v in rest.items())
            parts.append(f"<details><summary>{_e(name)} detail</summary><pre>{_e(lines)}</pre></details>")
    return "".join(parts)


def _text_block(text: str, fold: int = 600) -> str:
    if len(text) <= fold:
        return f"<pre>{_e(text)}</pre>"
    return f"<details><summary>{_e(text[:200])}…</summary><pre>{_e(text)}</pre></details>"


def _input_text(case_input: dict[str, Any]) -> str:
    messages = case_input.get("messages")
    if isinstance(messages, list):
        return "\n\n".join(
            f"[{m.get('role', '?')}] {m.get('content', '')}" if isinstance(m, dict) else str(m)
            for m in messages
        )
    return str(case_input.get("prompt", case_input))


def _value_text(value: Any) -> str:
    return "" if value is None else value if isinstance(value, str) else repr(value)


def _e(text: str) -> str:
    return html.escape(text, quote=True)


# --- plots ----------------------------------------------------------------------------------------


def score_chart(reports: Sequence[RunReport]) -> str:
    """Mean score per scorer per model, one panel per scorer (scorers have different scales)."""
    from matplotlib.figure import Figure  # imported here: a second or so, paid only for a report

    names: list[str] = []
    for r in reports:
        names += [x.name for x in r.summary.scorers if x.name not in names]
    fig = Figure(figsize=(max(3.0, 2.6 * len(names)), 2.8 + 0.15 * len(reports)), layout="constrained")
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    labels = [_label(r) for r in reports]
    for ax, name in zip(axes, names, strict=True):
        means = []
        for r in reports:
            found = next((x for x in r.summary.scorers if x.name == name), None)
            means.append(found.mean if found is not None and found.mean is not None else 0.0)
        bars = ax.bar(range(len(reports)), means, color=[f"C{i}" for i in range(len(reports))])
        ax.bar_label(bars, fmt="%.3g", fontsize=8)
        ax.set_title(name, fontsize=10)
        ax.set_xticks(range(len(reports)), labels, rotation=20, ha="right", fontsize=8)
        ax.margins(y=0.15)
    return _svg(fig)


def latency_chart(reports: Sequence[RunReport]) -> str:
    """A histogram of answer latency per model (answers that are not errors)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.0, 3.2), layout="constrained")
    ax = fig.subplots()
    series = [
        [x.latency_ms for x in r.results if x.error is None and x.latency_ms is not None] for r in reports
    ]
    every = [v for values in series for v in values]
    bins = min(30, max(5, len(every) // 3))
    edges = _edges(min(every), max(every), bins)
    for i, (r, values) in enumerate(zip(reports, series, strict=True)):
        if values:
            ax.hist(values, bins=edges, alpha=0.55, color=f"C{i}", label=_label(r))
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel("answers")
    ax.legend(fontsize=8)
    return _svg(fig)


def _edges(low: float, high: float, bins: int) -> list[float]:
    if high <= low:
        low, high = low - 0.5, high + 0.5
    step = (high - low) / bins
    return [low + i * step for i in range(bins + 1)]


def _label(r: RunReport) -> str:
    return f"{r.run.model} ({r.run.id[:6]})"


def _svg(fig: Any) -> str:
    """The figure as an inline <svg> element: text stays text, ids are stable across runs."""
    from matplotlib import rc_context

    buffer = io.StringIO()
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": "strato"}):
        fig.savefig(buffer, format="svg", metadata=dict.fromkeys(("Creator", "Date", "Format", "Type")))
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _figure(svg: str) -> str:
    return f"<figure>{svg}</figure>"
