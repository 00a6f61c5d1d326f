"""The pairs of questions benchmarks/semantic_cache.py measures the semantic cache on: written
pairs, and pairs read from CLINC150 and COVID-QA in place (../shared/datasets, never copied). What
each set holds is described in semantic_cache.py's docstring."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import numpy as np

from strato.providers import Embedder
from strato.types import EmbeddingRequest

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
DATASET = DATASETS / "analytics" / "clinc150_data_full.json"
COVIDQA = DATASETS / "rag" / "covidqa_200423.json"
HAND_PARAPHRASES = [
    ("How do I reset my password?", "What's the way to reset my password?"),
    ("How do I reset my password?", "I forgot my password, how can I reset it?"),
    ("What is the capital of France?", "Which city is the capital of France?"),
    ("How do I enable dark mode?", "How can I turn on dark mode?"),
    ("What's the weather like in Paris today?", "How is the weather in Paris today?"),
    ("How many calories are in an apple?", "How many calories does an apple have?"),
    ("How do I cancel my subscription?", "How can I cancel my subscription?"),
    ("What time does the store close?", "When does the store close?"),
    ("How do I make pancakes?", "What's a good way to make pancakes?"),
    ("Who wrote Pride and Prejudice?", "Who is the author of Pride and Prejudice?"),
    ("How do I install numpy?", "What's the command to install numpy?"),
    ("What is the boiling point of water?", "At what temperature does water boil?"),
    ("Can you recommend a good book on Python?", "Recommend me a good Python book."),
    ("How long does it take to boil an egg?", "How many minutes should I boil an egg?"),
    ("Translate good morning into Spanish.", "How do you say good morning in Spanish?"),
    ("What is a black hole?", "Explain what a black hole is."),
    ("How do I delete my account?", "How can I delete my account?"),
    ("What's the difference between TCP and UDP?", "How does TCP differ from UDP?"),
    ("How do I change my email address?", "How can I update my email address?"),
    ("Summarize the plot of Hamlet.", "Give me a summary of the plot of Hamlet."),
    ("What are the symptoms of the flu?", "What symptoms does the flu cause?"),
    ("How do I center a div in CSS?", "How can I center a div with CSS?"),
    ("What is 15% of 80?", "How much is 15 percent of 80?"),
    ("How do I undo the last git commit?", "How can I undo my last commit in git?"),
    ("What's the population of Tokyo?", "How many people live in Tokyo?"),
    ("Is coffee bad for you?", "Is drinking coffee bad for your health?"),
    (
        "How do I get to the airport from downtown?",
        "What's the best way to get from downtown to the airport?",
    ),
    ("What does HTTP stand for?", "What is HTTP short for?"),
    ("How do I convert Celsius to Fahrenheit?", "What's the formula to convert celsius to fahrenheit?"),
    ("Tell me a joke about cats.", "Tell me a cat joke."),
    ("How do I sort a list in Python?", "What's the way to sort a list in Python?"),
    ("Why is the sky blue?", "What makes the sky blue?"),
    ("How can I improve my sleep?", "What are ways to sleep better?"),
    ("What is the meaning of life?", "What's the meaning of life?"),
    ("How do I take a screenshot on Windows?", "How to take a screenshot on Windows?"),
    ("Where is the Eiffel Tower?", "Where is the Eiffel Tower located?"),
    ("How do I turn off notifications?", "How can I disable notifications?"),
    (
        "When was the Declaration of Independence signed?",
        "What year was the Declaration of Independence signed?",
    ),
    ("What is photosynthesis?", "Can you explain photosynthesis?"),
    ("How do I boil pasta?", "How should I cook pasta?"),
]

# Written before the coverage check (strato.cache.coverage) was, and measured once it was done:
# paraphrases that no rule of it was made for.
HAND_PARAPHRASES_HELD_OUT = [
    ("How do I clear my browser cache?", "How can I clear the cache in my browser?"),
    ("What is the speed of light?", "How fast does light travel?"),
    ("How do I make a cup of tea?", "What's the way to make a cup of tea?"),
    ("What's the best way to learn Spanish?", "How should I learn Spanish?"),
    ("How do I restart my router?", "How can I reboot my router?"),
    ("What is the tallest mountain in the world?", "Which mountain is the tallest in the world?"),
    ("How do I print a PDF?", "How can I print a PDF file?"),
    ("What are the side effects of aspirin?", "What side effects does aspirin have?"),
    ("How do I get rid of hiccups?", "How can I stop hiccups?"),
    ("Who painted the Mona Lisa?", "Who was the painter of the Mona Lisa?"),
    ("How many legs does a spider have?", "How many legs do spiders have?"),
    (
        "What's the time difference between London and New York?",
        "How many hours ahead is London of New York?",
    ),
    ("How do I merge two branches in git?", "How can I merge two git branches?"),
    ("What is the chemical formula of water?", "What's water's chemical formula?"),
    ("How do I check my credit score?", "Where can I check my credit score?"),
    ("What should I eat before a run?", "What's good to eat before running?"),
    ("How do I remove a stain from a shirt?", "How can I get a stain out of a shirt?"),
    ("What does CPU stand for?", "What is CPU an abbreviation of?"),
    ("How do I create a virtual environment in Python?", "How can I make a Python virtual environment?"),
    ("Why do we yawn?", "What causes yawning?"),
    ("How do I unclog a drain?", "What's the best way to unclog a drain?"),
    ("How far is the moon from the earth?", "What is the distance from the earth to the moon?"),
    ("Can you give me a recipe for banana bread?", "How do I make banana bread?"),
    ("What's the capital of Japan?", "Which city is Japan's capital?"),
    ("How do I set up two-factor authentication?", "How can I enable two-factor authentication?"),
    ("What is inflation?", "Explain inflation to me."),
    ("How do I write a cover letter?", "What's the best way to write a cover letter?"),
    ("When did World War II end?", "What year did World War II end?"),
    ("How much water should I drink a day?", "How much water should I drink daily?"),
    ("How do I find my IP address?", "How can I see my IP address?"),
    ("What is the largest ocean?", "Which ocean is the largest?"),
    ("How do I list files in a directory in Linux?", "How can I list the files of a directory on Linux?"),
    ("What is machine learning?", "Can you explain what machine learning is?"),
    ("How do I lower my blood pressure?", "What can I do to lower my blood pressure?"),
    ("How do I fix a flat bike tire?", "How can I repair a flat tire on my bike?"),
    ("What are good exercises for back pain?", "Which exercises help with back pain?"),
    ("How do I join a Zoom meeting?", "How can I join a meeting on Zoom?"),
    ("What is the freezing point of water?", "At what temperature does water freeze?"),
    ("How long should I cook spaghetti?", "How many minutes do I cook spaghetti for?"),
    ("How do I back up my iPhone?", "What's the way to back up my iPhone?"),
]

HAND_DIFFERENT: dict[str, list[tuple[str, str]]] = {
    "hand negation": [
        ("Why is the sky blue?", "Why is the sky not blue?"),
        ("Can I take ibuprofen with alcohol?", "Can I take ibuprofen without alcohol?"),
        ("Is Python a compiled language?", "Is Python not a compiled language?"),
        ("Which foods are gluten free?", "Which foods are not gluten free?"),
        ("Why is the museum open on Sundays?", "Why isn't the museum open on Sundays?"),
        ("Should I use tabs for indentation?", "Should I not use tabs for indentation?"),
        (
            "What happens if I pay my credit card bill on time?",
            "What happens if I don't pay my credit card bill on time?",
        ),
        ("Is it normal to feel tired after eating?", "Is it normal to not feel tired after eating?"),
        ("Does vitamin C prevent colds?", "Does vitamin C not prevent colds?"),
        ("Why do cats purr?", "Why don't cats purr?"),
        ("Can dogs eat grapes?", "Can dogs never eat grapes?"),
        ("What should I do when my code compiles?", "What should I do when my code doesn't compile?"),
        ("Is the bank open today?", "Is the bank not open today?"),
        ("Why does my phone charge?", "Why won't my phone charge?"),
        ("Can I return an item with a receipt?", "Can I return an item without a receipt?"),
    ],
    "hand opposite": [
        ("How do I enable dark mode?", "How do I disable dark mode?"),
        ("Is it safe to eat raw eggs?", "Is it unsafe to eat raw eggs?"),
        ("How do I install numpy?", "How do I uninstall numpy?"),
        ("What are the advantages of nuclear power?", "What are the disadvantages of nuclear power?"),
        ("How to increase my credit score?", "How to decrease my credit score?"),
        ("Should I buy bitcoin now?", "Should I sell bitcoin now?"),
        ("How do I lock my screen?", "How do I unlock my screen?"),
        ("How do I turn on bluetooth?", "How do I turn off bluetooth?"),
        ("How do I encrypt a file?", "How do I decrypt a file?"),
        ("How do I zoom in?", "How do I zoom out?"),
        ("What is the best programming language?", "What is the worst programming language?"),
        ("How do I upload photos to Google Drive?", "How do I download photos from Google Drive?"),
        ("What's the maximum dose of ibuprofen?", "What's the minimum dose of ibuprofen?"),
        ("How do I follow someone on Twitter?", "How do I unfollow someone on Twitter?"),
        ("How to gain weight quickly?", "How to lose weight quickly?"),
        ("How do I subscribe to the newsletter?", "How do I unsubscribe from the newsletter?"),
        ("What are the pros of remote work?", "What are the cons of remote work?"),
        ("What are the strengths of this plan?", "What are the weaknesses of this plan?"),
        ("How do I add a user to the group?", "How do I remove a user from the group?"),
        ("Why do prices rise?", "Why do prices fall?"),
        ("How do I start the server?", "How do I stop the server?"),
        ("How do I make the text bigger?", "How do I make the text smaller?"),
        ("How do I show hidden files?", "How do I hide hidden files?"),
        ("How do I mute the microphone?", "How do I unmute the microphone?"),
        ("How do I log in to my account?", "How do I log out of my account?"),
    ],
    "hand entity": [
        ("What is the capital of France?", "What is the capital of Germany?"),
        ("What's the weather in Paris?", "What's the weather in London?"),
        ("Who is the CEO of Apple?", "Who is the CEO of Microsoft?"),
        ("How tall is the Eiffel Tower?", "How tall is the Empire State Building?"),
        ("Translate hello into Spanish.", "Translate hello into French."),
        ("What is the population of Canada?", "What is the population of Australia?"),
        ("How do I reset my iPhone?", "How do I reset my Android phone?"),
        ("what is the weather in paris", "what is the weather in london"),
        ("give me a recipe for chicken curry", "give me a recipe for beef curry"),
        ("how do i learn python", "how do i learn java"),
        ("who won the world cup in brazil", "who won the world cup in russia"),
        ("how do i cook rice", "how do i cook quinoa"),
        ("what is the price of gold", "what is the price of silver"),
        ("when does the train to boston leave", "when does the train to chicago leave"),
        ("how do I bake bread", "how do I bake cookies"),
    ],
    "hand number": [
        ("What is 17 times 23?", "What is 17 times 24?"),
        ("Convert 5 miles to km.", "Convert 50 miles to km."),
        ("What was the weather on March 3?", "What was the weather on March 4?"),
        ("Set an alarm for 7 am.", "Set an alarm for 8 am."),
        ("What happened in 1969?", "What happened in 1996?"),
        ("Is 97 a prime number?", "Is 91 a prime number?"),
        ("How many days until December 25?", "How many days until December 24?"),
        ("What's the square root of 144?", "What's the square root of 169?"),
        ("How do I say two in French?", "How do I say three in French?"),
        ("Book a table for two.", "Book a table for four."),
        ("What is 2 to the power of 10?", "What is 2 to the power of 16?"),
        ("Is a 3% raise good?", "Is a 5% raise good?"),
    ],
    "hand direction": [
        (
            "What's the exchange rate from dollars to euros?",
            "What's the exchange rate from euros to dollars?",
        ),
        ("Flights from Boston to Denver", "Flights from Denver to Boston"),
        ("Is Python faster than Java?", "Is Java faster than Python?"),
        ("convert celsius to fahrenheit", "convert fahrenheit to celsius"),
        ("translate this from english into german", "translate this from german into english"),
        ("how far is it from new york to los angeles", "how far is it from los angeles to new york"),
    ],
}
PARAPHRASE_SETS = (
    "hand paraphrase",
    "hand paraphrase (held out)",
    "clinc near same-intent",
    "clinc random same-intent",
)
# The words a question is the same without: "what are the appealing qualities of the vector" and
# "what is the appealing quality of the vector" ask one thing.
SAME_WITHOUT = frozenset({
    "the", "a", "an", "is", "are", "was", "were", "be", "been", "being", "do", "does", "did", "can",
    "could", "may", "might", "will", "would", "should", "has", "have", "had", "this", "that", "these",
    "those", "of", "in", "on", "for", "to",
})  # fmt: skip
DEV = " (dev)"


async def embed_all(embedder: Embedder, texts: list[str], batch: int = 256) -> np.ndarray:
    vectors = []
    for i in range(0, len(texts), batch):
        result = await embedder.embed(
            EmbeddingRequest(model="all-minilm-l6-v2", inputs=tuple(texts[i : i + batch]))
        )
        vectors.extend(result.vectors)
    array = np.asarray(vectors, dtype=np.float32)
    return array / np.linalg.norm(array, axis=1, keepdims=True)


def clinc_pairs(
    texts: list[str], intents: list[str], vectors: np.ndarray
) -> dict[str, list[tuple[int, int]]]:
    """Index pairs: nearest same-intent, random same-intent and nearest other-intent question."""
    rng = random.Random(0)
    labels = np.asarray(intents)
    by_intent: dict[str, list[int]] = {}
    for i, intent in enumerate(intents):
        by_intent.setdefault(intent, []).append(i)
    near_same, random_same, near_other = set(), set(), set()
    for start in range(0, len(texts), 1000):  # 1,000 rows of similarities at a time: train has 15,000
        sims = vectors[start : start + 1000] @ vectors.T
        for row, i in enumerate(range(start, start + len(sims))):
            sims[row, i] = -2
            same = labels == labels[i]
            j = int(np.argmax(np.where(same, sims[row], -2)))
            k = int(np.argmax(np.where(same, -2, sims[row])))
            r = rng.choice([x for x in by_intent[intents[i]] if x != i])
            near_same.add((min(i, j), max(i, j)))
            near_other.add((min(i, k), max(i, k)))
            random_same.add((min(i, r), max(i, r)))
    return {
        "clinc near same-intent": sorted(near_same),
        "clinc random same-intent": sorted(random_same),
        "clinc near other-intent": sorted(near_other),
    }


def covidqa_questions() -> list[dict[str, Any]]:
    """COVID-QA's questions with their article's number, paragraph and gold answer span."""
    found = []
    for article, entry in enumerate(json.loads(COVIDQA.read_text())["data"]):
        for paragraph, part in enumerate(entry["paragraphs"]):
            for qa in part["qas"]:
                answer = qa["answers"][0]
                start, text = answer["answer_start"], answer["text"]
                span = (start, start + len(text))
                found.append({"article": article, "paragraph": paragraph, "question": qa["question"],
                              "answer": " ".join(text.lower().split()), "span": span})  # fmt: skip
    return found


def written_twice(a: str, b: str) -> bool:
    """The same question written twice: "the advantage of the AAV vector" / "of AAV vectors"."""

    def plain(text: str) -> list[str]:
        words = re.findall(r"[a-z0-9]+", text.lower())
        return [w.removesuffix("s") for w in words if w not in ("the", "a", "an")]

    return plain(a) == plain(b)


def same_words(a: str, b: str) -> bool:
    """The same question in other grammar: the same words but for articles, auxiliaries, a few
    prepositions, a final s, and order ("what gives protection against clinical
    disease" / "what can give protection against clinical disease")."""

    def words(text: str) -> set[str]:
        found = set()
        for word in re.findall(r"[a-z0-9]+", text.lower()):
            if word not in SAME_WITHOUT:
                found.add(word[:-3] + "y" if word.endswith("ies") else word.removesuffix("s"))
        return found

    return words(a) == words(b)


def covidqa_pairs(questions: list[dict[str, Any]], vectors: np.ndarray, half: int) -> list[tuple[int, int]]:
    """Each question of the articles numbered `half` modulo 2 with its nearest question on the same
    paragraph that has another answer: the spans do not overlap, the texts differ."""
    pairs = set()
    for i, q in enumerate(questions):
        if q["article"] % 2 != half:
            continue
        best, nearest = -2.0, None
        for j, other in enumerate(questions):
            if j == i or (other["article"], other["paragraph"]) != (q["article"], q["paragraph"]):
                continue
            (a, b), (c, d) = q["span"], other["span"]
            if (a < d and c < b) or q["answer"] == other["answer"]:
                continue
            if written_twice(q["question"], other["question"]):
                continue
            score = float(vectors[i] @ vectors[j])
            if score > best:
                best, nearest = score, j
        if nearest is not None:
            pairs.add((min(i, nearest), max(i, nearest)))
    return sorted(pairs)


async def pair_sets(embedder: Embedder, dev: bool) -> dict[str, list[tuple[str, str, float]]]:
    """Every pair set as (question, stored question, cosine); the `(dev)` sets only if `dev`."""
    data = json.loads(DATASET.read_text())
    sets: dict[str, list[tuple[str, str, float]]] = {}
    for split, suffix in [("test", ""), *([("train", DEV)] if dev else [])]:
        texts, intents = [row[0] for row in data[split]], [row[1] for row in data[split]]
        vectors = await embed_all(embedder, texts)
        for name, pairs in clinc_pairs(texts, intents, vectors).items():
            if suffix and "random" in name:
                continue
            sets[name + suffix] = [(texts[i], texts[j], float(vectors[i] @ vectors[j])) for i, j in pairs]
    questions = covidqa_questions()
    vectors = await embed_all(embedder, [q["question"] for q in questions])
    for half, suffix in [(1, ""), *([(0, DEV)] if dev else [])]:
        pairs = covidqa_pairs(questions, vectors, half)
        found = [
            (questions[i]["question"], questions[j]["question"], float(vectors[i] @ vectors[j]))
            for i, j in pairs
        ]
        sets["covidqa same-paragraph" + suffix] = found
        sets["covidqa distinct questions" + suffix] = [(a, b, s) for a, b, s in found if not same_words(a, b)]
    written = [
        ("hand paraphrase", HAND_PARAPHRASES),
        ("hand paraphrase (held out)", HAND_PARAPHRASES_HELD_OUT),
    ]
    for name, hand in [*written, *HAND_DIFFERENT.items()]:
        left = await embed_all(embedder, [a for a, _ in hand])
        right = await embed_all(embedder, [b for _, b in hand])
        sets[name] = [(a, b, float(x @ y)) for (a, b), x, y in zip(hand, left, right, strict=True)]
    return sets
