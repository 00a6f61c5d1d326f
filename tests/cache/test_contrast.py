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


def test_the_stem_joins_forms_of_one_word() -> None:
    assert {stem(w) for w in ("enable", "enables", "enabled", "enabling")} == {"enabl"}
    assert stem("weaknesses") == stem("weakness")
    assert stem("boxes") == stem("box")
