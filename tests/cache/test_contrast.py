"""The contrast checks refuse look-alike questions that ask something else, and let paraphrases by."""

from __future__ import annotations

import pytest

from strato.cache.contrast import differ, stem


@pytest.mark.parametrize(
    ("a", "b", "reason"),
    [
        ("Why is the sky blue?", "Why is the sky not blue?", "negation"),
        ("Why do cats purr?", "Why don't cats purr?", "negation"),
        ("Can I return it with a receipt?", "Can I return it without a receipt?", "negation"),
        ("What is 17 times 23?", "What is 17 times 24?", "number"),
        ("Book a table for two.", "Book a table for 4.", "number"),
        ("How do I enable dark mode?", "How do I disable dark mode?", "opposite"),
        ("Is it safe to eat raw eggs?", "Is it unsafe to eat raw eggs?", "opposite"),
        ("How do I install numpy?", "How do I uninstall numpy?", "opposite"),
        ("How do I import a CSV file?", "How do I export a CSV file?", "opposite"),
        ("Should I buy bitcoin now?", "Should I sell bitcoin now?", "opposite"),
        ("How do I turn on bluetooth?", "How do I turn off bluetooth?", "opposite"),
        ("What's my name?", "What's your name?", "opposite"),
        ("What is the capital of France?", "What is the capital of Germany?", "named"),
        ("How do I reset my iPhone?", "How do I reset my phone?", "named"),
        ("Flights from Boston to Denver", "Flights from Denver to Boston", "direction"),
        ("Is Python faster than Java?", "Is Java faster than Python?", "direction"),
        ("convert celsius to fahrenheit", "convert fahrenheit to celsius", "order"),
    ],
)
def test_look_alikes_that_ask_something_else_are_refused(a: str, b: str, reason: str) -> None:
    assert differ(a, b) == reason
    assert differ(b, a) == reason


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("How do I reset my password?", "What's the way to reset my password?"),
        ("What is the capital of France?", "Which city is the capital of France?"),
        ("How do I enable dark mode?", "How can I turn on dark mode?"),
        ("How do I convert Celsius to Fahrenheit?", "What's the formula to convert celsius to fahrenheit?"),
        ("What is 15% of 80?", "How much is 15 percent of 80?"),
        (
            "How do I get to the airport from downtown?",
            "What's the best way to get from downtown to the airport?",
        ),
        ("Summarize the plot of Hamlet.", "Give me a summary of the plot of Hamlet."),
        ("Convert five miles to km.", "Convert 5 miles to km."),
        ("How would one request a vacation?", "How do I request a vacation?"),
        ("Tell me a joke about cats.", "Tell me a cat joke."),
    ],
)
def test_paraphrases_pass(a: str, b: str) -> None:
    assert differ(a, b) is None
    assert differ(b, a) is None


@pytest.mark.parametrize(
    ("a", "b", "reason"),
    [
        (  # the pair: a count and a share of the same people in the same report
            "What was the total number of sheltered homeless people in 2008 report?",
            "In 2008 report what percentage of the sheltered homeless population were homeless as "
            "individuals?",
            "asked",
        ),
        (
            "How many patients were admitted last year?",
            "What proportion of patients were admitted last year?",
            "asked",
        ),
        ("How much did the new bridge cost?", "What share of the new bridge cost did the city pay?", "asked"),
        ("When was the trial carried out?", "Where was the trial carried out?", "asked"),
        ("When did the outbreak begin?", "Where did the outbreak begin?", "asked"),
        ("Who designed the first vaccine?", "Why was the first vaccine designed?", "asked"),
        ("Who discovered the virus?", "When was the virus discovered?", "asked"),
        ("Why does the engine overheat?", "How does the engine overheat?", "asked"),
        ("Why were only four studies included?", "Which four studies were included?", "asked"),
        ("Is coffee bad for your heart?", "Why is coffee bad for your heart?", "asked"),
        ("How old is the cathedral?", "How tall is the cathedral?", "asked"),
        ("Can you tell me why my card was declined?", "Can you tell me where my card was declined?", "asked"),
        ("How many sick days have I used?", "How many sick days do I have left?", "asked"),
        (
            "What is the genus of the influenza virus?",
            "What is the family of the influenza virus?",
            "asked-for",
        ),
        (
            "How many infections were reported in Europe?",
            "How many deaths were reported in Europe?",
            "asked-for",
        ),
        (
            "What symptom appears first in measles?",
            "What complication appears first in measles?",
            "asked-for",
        ),
        ("Can you call me Sam from now on?", "Can I call you Sam from now on?", "roles"),
        (
            "What conditions count as upper airway infections?",
            "What conditions count as lower airway infections?",
            "opposite",
        ),
        ("What did the second trial show?", "What did the third trial show?", "number"),
        ("What is Newton's first law?", "What is Newton's second law?", "number"),
        ("Which proteins are non-essential?", "Which proteins are essential?", "prefix"),
        (
            "What are the side effects of anti-inflammatory drugs?",
            "What are the side effects of inflammatory drugs?",
            "prefix",
        ),
        ("What can a migraine trigger?", "What could trigger a migraine?", "cause-effect"),
        ("What does chronic stress lead to?", "What is chronic stress usually due to?", "cause-effect"),
        (
            "What is the effect of caffeine on sleep?",
            "What is caffeine's effect on sleep caused by?",
            "cause-effect",
        ),
    ],
)
def test_questions_asking_for_another_thing_about_the_same_subject_are_refused(
    a: str, b: str, reason: str
) -> None:
    assert differ(a, b) == reason
    assert differ(b, a) == reason


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("What time does the bakery open?", "When does the bakery open?"),
        ("What year did the war end?", "When did the war end?"),
        ("How long should I steep green tea?", "How many minutes should I steep green tea?"),
        ("How long until my passport expires?", "When does my passport expire?"),
        ("What is the melting point of lead?", "At what temperature does lead melt?"),
        ("What's the population of Lagos?", "How many people live in Lagos?"),
        ("Why are leaves green?", "What makes leaves green?"),
        ("Where is the Louvre?", "In which city is the Louvre?"),
        ("What is the capital of Peru?", "Which city is the capital of Peru?"),
        ("Can you tell me why my transfer failed?", "Why did my transfer fail?"),
        ("Do you know where my parcel is?", "Where is my parcel?"),
        ("What percent of my storage is used?", "What percentage of my storage is used?"),
        ("What town were you born in?", "What city were you born in?"),
        ("What is the meaning of entropy?", "What is entropy?"),
        ("What is the car's tire pressure?", "What is the tire pressure of the car?"),
        ("How do I renew my library card?", "Where do I renew my library card?"),
        ("Can you play some jazz?", "Play some jazz."),
        ("Is the traffic heavy downtown?", "How heavy is the traffic downtown?"),
        ("How many vacation days do I have?", "Tell me how many vacation days I have left."),
        ("Could you help me with my tax return?", "Can you help me with my tax return?"),
        ("What happened in the 2nd round?", "What happened in the second round?"),
        ("How many meters does light travel in a second?", "How far does light travel per second?"),
        (
            "What are the nonstructural proteins of the virus?",
            "What are the non-structural proteins of the virus?",
        ),
        ("What causes migraines?", "What triggers migraines?"),
    ],
)
def test_paraphrases_that_ask_the_same_thing_pass(a: str, b: str) -> None:
    assert differ(a, b) is None
    assert differ(b, a) is None


def test_the_stem_joins_forms_of_one_word() -> None:
    assert {stem(w) for w in ("enable", "enables", "enabled", "enabling")} == {"enabl"}
    assert stem("weaknesses") == stem("weakness")
    assert stem("boxes") == stem("box")
