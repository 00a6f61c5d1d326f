"""PII flags on ordinary traffic: what the PII guard finds in benign requests, answers and documents.

Every text here is ordinary: a question a user asks, an answer a model gives, a scientific article a
retrieval index holds. Nearly every finding is therefore a false positive (a COVID-QA article may
name a real author's e-mail address or a hospital's street, which are real PII); the findings are
printed so a reader can judge each, and written to JSON so two runs can be compared finding by
finding (`--compare before.json`).

Data, read in place from ../shared/datasets:
- requests, scanned with the input policy enforced (`pii.enforce`, redact): the 160 MT-Bench turns,
  the 1,319 GSM8K questions, the 4,500 CLINC150 test requests, the 1,380 COVID-QA questions;
- answers, scanned with the output policy (flag): the MT-Bench GPT-4 reference answers, the GSM8K
  worked solutions, the COVID-QA answer spans;
- documents: the 98 COVID-QA articles (2.3 million characters of scientific prose full of version
  numbers, dates, coordinates and dotted figures), input policy.

    .venv/bin/python benchmarks/pii_benign.py [--json benchmarks/out/pii_benign.json] [--compare OLD]
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any

from strato.config import GuardsSettings
from strato.guards.pii import PIIGuard
from strato.guards.verdict import Direction, ScanContext

ROOT = Path(__file__).resolve().parent.parent
DATASETS = ROOT.parent / "shared" / "datasets"
OUT = ROOT / "benchmarks" / "out" / "pii_benign.json"

Texts = dict[str, tuple[Direction, list[str]]]  # source -> (direction, texts)


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def benign_texts() -> Texts:
    quality = DATASETS / "quality"
    mt_bench = _jsonl(quality / "mt_bench_questions.jsonl")
    references = _jsonl(quality / "mt_bench_reference_gpt4.jsonl")
    gsm8k = _jsonl(quality / "gsm8k_test.jsonl")
    clinc = json.loads((DATASETS / "analytics" / "clinc150_data_full.json").read_text(encoding="utf-8"))
    covid = json.loads((DATASETS / "rag" / "covidqa_200423.json").read_text(encoding="utf-8"))
    paragraphs = [p for article in covid["data"] for p in article["paragraphs"]]
    qas = [qa for p in paragraphs for qa in p["qas"]]
    return {
        "MT-Bench turns": ("input", [turn for q in mt_bench for turn in q["turns"]]),
        "GSM8K questions": ("input", [r["question"] for r in gsm8k]),
        "CLINC150 test requests": ("input", [text for text, _ in clinc["test"]]),
        "COVID-QA questions": ("input", [qa["question"] for qa in qas]),
        "MT-Bench reference answers": (
            "output",
            [t for r in references if r.get("choices") for t in r["choices"][0]["turns"]],
        ),
        "GSM8K solutions": ("output", [r["answer"] for r in gsm8k]),
        "COVID-QA answer spans": ("output", [qa["answers"][0]["text"] for qa in qas if qa["answers"]]),
        "COVID-QA articles": ("input", [p["context"] for p in paragraphs]),
    }


def run(texts: Texts) -> dict[str, Any]:
    guard = PIIGuard(GuardsSettings.model_validate({"pii": {"enforce": True}}))
    results: dict[str, Any] = {}
    for source, (direction, items) in texts.items():
        findings = []
        flagged = 0
        for index, text in enumerate(items):
            verdict = guard.scan_now(text, ScanContext(direction=direction, role="user"))
            flagged += bool(verdict.findings)
            findings += [{"text": index, "type": f.type, "value": f.text} for f in verdict.findings]
        results[source] = {
            "direction": direction,
            "texts": len(items),
            "flagged": flagged,
            "by_type": dict(Counter(f["type"] for f in findings)),
            "findings": findings,
        }
    return results


def print_table(results: dict[str, Any]) -> None:
    print(f"{'source':28s} {'dir':6s} {'texts':>6s} {'flagged':>8s}  findings by type")
    for source, row in results.items():
        types = ", ".join(f"{t} {n}" for t, n in sorted(row["by_type"].items())) or "-"
        print(f"{source:28s} {row['direction']:6s} {row['texts']:6d} {row['flagged']:8d}  {types}")
    for source, row in results.items():
        for f in row["findings"]:
            print(f"  {source} #{f['text']}: {f['type']} {f['value']!r}")


def print_changes(old: dict[str, Any], new: dict[str, Any]) -> None:
    """Findings present in one run and not the other, per source."""

    def keyed(results: dict[str, Any]) -> set[tuple[str, int, str, str]]:
        return {(s, f["text"], f["type"], f["value"]) for s, r in results.items() for f in r["findings"]}

    before, after = keyed(old), keyed(new)
    print(f"\nagainst the earlier run: {len(after - before)} new findings, {len(before - after)} gone")
    for label, changed in (("new", after - before), ("gone", before - after)):
        for source, index, entity, value in sorted(changed):
            print(f"  {label}: {source} #{index}: {entity} {value!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=OUT)
    parser.add_argument("--compare", type=Path, help="an earlier run's JSON: print what changed")
    args = parser.parse_args()
    results = run(benign_texts())
    print_table(results)
    if args.compare:
        print_changes(json.loads(args.compare.read_text()), results)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
