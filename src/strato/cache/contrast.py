"""Whether two similar questions ask opposite or different things, which embeddings cannot tell.

all-MiniLM-L6-v2 puts "how do I enable dark mode" and "how do I disable dark mode" at cosine 0.92,
"is it safe to eat raw eggs" and "is it unsafe ..." at 0.99, above most true paraphrases (GPTCache's
known failure: a question answered with its opposite's answer). So a semantic match must also pass
these cheap checks on the words the two questions do not share:

- the same negations (not, never, without, n't, ...);
- the same numbers (digits and number words: "5" and "five" agree) and ordinals ("the second
  postulate" is not "the third", "2nd" and "second" agree);
- the same hyphenated prefixes ("non-structural proteins" is not "structural proteins", nor
  "pre-existing" "existing");
- no opposite words: a pair from a short list (buy/sell, on/off, ...) or two words that are the
  same but for a polarity prefix (enable/disable, install/uninstall, import/export, safe/unsafe);
- no named tokens (a capitalised word inside a sentence, a word mixing letters and digits);
- the same word after `from`, `to` (after `from`), `than`, `into`, `vs` when both have it ("from
  Boston to Denver"), and after the first `to` when both use the same words ("celsius to
  fahrenheit" is not "fahrenheit to celsius").
- the same thing asked for (`strato.cache.asked`): the kind of answer the question word wants
  ("how many" is not "what percentage", "when" not "where", "who" not "why"), the same asked-for
  noun in the same frame ("the genus of" is not "the family of"), a count of what was used not
  set against one of what is left, and who acts on whom not swapped ("can you call me Sam" /
  "can I call you Sam").

A false refusal costs one upstream call; a false match serves a wrong answer. The checks lean to
refusing. Their effect on hit and false-hit rates is measured by benchmarks/semantic_cache.py.
They run on every semantic lookup, for each candidate: plain lookups over the words, and a question
read once is remembered (`read` keeps the last 1,024).
"""

from __future__ import annotations

import functools
import itertools
import re
from dataclasses import dataclass

from strato.cache.asked import Asked, asked, clash

NEGATIONS = frozenset({
    "not", "no", "never", "none", "nothing", "nobody", "nowhere", "neither", "nor", "without", "cannot",
})  # fmt: skip
SMALL_NUMBERS = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
    "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty",
)  # fmt: skip
# "one" is left out: in questions it is a pronoun ("how would one ...") more often than a number.
NUMBER_WORDS = {word: str(value) for value, word in enumerate(SMALL_NUMBERS) if word != "one"} | {
    "thirty": "30",
    "forty": "40",
    "fifty": "50",
    "sixty": "60",
    "seventy": "70",
    "eighty": "80",
    "ninety": "90",
    "hundred": "100",
    "thousand": "1000",
    "million": "1000000",
    "billion": "1000000000",
    "half": "0.5",
    "once": "1x",
    "twice": "2x",
    "double": "2x",
    "triple": "3x",
}
ORDINALS = {
    word: f"{value}{'st' if value == 1 else 'nd' if value == 2 else 'rd' if value == 3 else 'th'}"
    for value, word in enumerate(
        ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth"), 1
    )
}
# "second" is also a unit of time: "wait a second", "per second" are not an ordinal.
NOT_ORDINAL_AFTER = frozenset({"a", "one", "per", "each", "every", "few", "split", "nano", "milli"})
# Written with a hyphen, these make another thing of the word they join ("non-structural").
HYPHEN_PREFIXES = (
    "non", "anti", "pre", "post", "sub", "multi", "semi", "pro", "counter", "inter", "intra", "extra",
    "over", "under", "un", "de", "dis", "mis", "re", "self", "co", "mono", "poly", "bi", "tri",
)  # fmt: skip
HYPHENATED = re.compile(r"\b(" + "|".join(HYPHEN_PREFIXES) + r")-([a-z]+)")
OPPOSITES = [
    ("on", "off"),
    ("start", "stop"),
    ("open", "close"),
    ("add", "remove"),
    ("add", "delete"),
    ("create", "delete"),
    ("raise", "lower"),
    ("buy", "sell"),
    ("up", "down"),
    ("before", "after"),
    ("first", "last"),
    ("min", "max"),
    ("minimum", "maximum"),
    ("more", "less"),
    ("more", "fewer"),
    ("most", "least"),
    ("best", "worst"),
    ("better", "worse"),
    ("good", "bad"),
    ("high", "low"),
    ("higher", "lower"),
    ("upper", "lower"),
    ("highest", "lowest"),
    ("cheap", "expensive"),
    ("cheapest", "expensive"),
    ("fast", "slow"),
    ("true", "false"),
    ("yes", "no"),
    ("allow", "deny"),
    ("allow", "block"),
    ("accept", "reject"),
    ("accept", "decline"),
    ("win", "lose"),
    ("pro", "con"),
    ("love", "hate"),
    ("always", "never"),
    ("hot", "cold"),
    ("warm", "cool"),
    ("big", "small"),
    ("large", "small"),
    ("long", "short"),
    ("old", "new"),
    ("old", "young"),
    ("early", "late"),
    ("left", "right"),
    ("north", "south"),
    ("east", "west"),
    ("plus", "minus"),
    ("positive", "negative"),
    ("above", "below"),
    ("inside", "outside"),
    ("push", "pull"),
    ("send", "receive"),
    ("arrive", "depart"),
    ("arrival", "departure"),
    ("borrow", "lend"),
    ("debit", "credit"),
    ("deposit", "withdraw"),
    ("income", "expense"),
    ("profit", "loss"),
    ("gain", "lose"),
    ("safe", "dangerous"),
    ("light", "dark"),
    ("white", "black"),
    ("day", "night"),
    ("today", "tomorrow"),
    ("today", "yesterday"),
    ("tomorrow", "yesterday"),
    ("male", "female"),
    ("man", "woman"),
    ("men", "women"),
    ("boy", "girl"),
    ("he", "she"),
    ("his", "her"),
    ("my", "your"),  # "what's my name" / "what's your name"
    ("join", "leave"),
    ("hire", "fire"),
    ("show", "hide"),
    ("with", "without"),
    ("increase", "reduce"),
    ("maximize", "minimize"),
    ("ascending", "descending"),
    ("strength", "weakness"),
    ("benefit", "risk"),
    ("pros", "cons"),
    ("cause", "cure"),
    ("mean", "median"),
    ("in", "out"),
    ("rise", "fall"),
    ("bigger", "smaller"),
    ("larger", "smaller"),
    ("heat", "cool"),
    ("sunrise", "sunset"),
    ("enter", "exit"),
    ("login", "logout"),
]
# Prefixes that turn a word into its opposite (or its counterpart): un-lock, dis-able/en-able, ...
POLARITY_PREFIXES = (
    "un", "dis", "in", "im", "il", "ir", "non", "de", "en", "em", "ex", "anti", "up", "down",
    "over", "under", "mis", "counter",
)  # fmt: skip
# The word after these names where a question goes or what it compares: "from Boston to Denver",
# "faster than Java". Compared when both questions have the preposition. ("in" and "of" were
# tried: they refused many true paraphrases and caught nothing the threshold lets through.)
DIRECTIONAL = ("from", "into", "than", "vs", "versus")
DETERMINERS = frozenset({"the", "a", "an", "my", "your", "our", "their", "his", "her", "its", "this", "that"})
CONTRACTIONS = [
    (re.compile(r"\bcan't\b"), "can not"),
    (re.compile(r"\bwon't\b"), "will not"),
    (re.compile(r"\bshan't\b"), "shall not"),
    (re.compile(r"n't\b"), " not"),
]
WORD = re.compile(r"[A-Za-z0-9]+(?:[.,][0-9]+)*")
MIN_STEM = 3


@dataclass(frozen=True, slots=True)
class Words:
    """What the checks need of one question."""

    stems: frozenset[str]
    negations: frozenset[str]
    numbers: frozenset[str]
    named: frozenset[str]
    prefixed: frozenset[str]  # words written with a hyphenated prefix, joined: "nonstructural"
    tokens: frozenset[str]  # every lowercased word, hyphenated prefixes joined
    after: dict[str, frozenset[str]]  # a directional preposition -> the words after it
    asked: Asked  # what the question asks for, its head stemmed


def differ(a: str, b: str) -> str | None:
    """Why `a` and `b` should not share an answer despite being close (None: no reason found)."""
    left, right = read(a), read(b)
    if left.negations != right.negations:
        return "negation"
    if left.numbers != right.numbers:
        return "number"
    if not (left.prefixed <= right.tokens and right.prefixed <= left.tokens):
        return "prefix"
    only_left, only_right = left.stems - right.stems, right.stems - left.stems
    if (left.named & only_left) or (right.named & only_right):
        return "named"
    if any(opposite(x, y) for x in only_left for y in only_right):
        return "opposite"
    for word, objects in left.after.items():
        others = right.after.get(word)
        if word != "to*" and others is not None and not (objects <= others or others <= objects):
            return "direction"
    if left.stems == right.stems and left.after.get("to*") != right.after.get("to*"):
        return "order"  # the same words around "to", swapped: "convert celsius to fahrenheit"
    return clash(left.asked, right.asked, left.stems, right.stems)


@functools.lru_cache(maxsize=1024)
def read(text: str) -> Words:
    """What the checks need of `text`, remembered: a lookup checks one question against up to eight."""
    lowered = text.lower()
    for pattern, replacement in CONTRACTIONS:
        lowered = pattern.sub(replacement, lowered)
    named: set[str] = set()
    for match in WORD.finditer(text):
        word = match.group()
        if _is_named(word, text[max(0, match.start() - 16) : match.start()]):
            named.add(stem(word.lower()))
    prefixed = {prefix + word for prefix, word in HYPHENATED.findall(lowered)}
    lowered = HYPHENATED.sub(r"\1\2", lowered)
    tokens = [m.group() for m in WORD.finditer(lowered)]
    numbers = {NUMBER_WORDS.get(t, t.replace(",", "")) for t in tokens if _is_number(t)}
    numbers |= {
        ORDINALS[t] for t, before in zip(tokens, ["", *tokens], strict=False) if _is_ordinal(t, before)
    }
    negations = {t for t in tokens if t in NEGATIONS}
    after = _objects(tokens)
    stems = [stem(t) for t in tokens if t not in NEGATIONS and not _is_number(t)]
    return Words(
        frozenset(stems),
        frozenset(negations),
        frozenset(numbers),
        frozenset(named),
        frozenset(prefixed),
        frozenset(tokens),
        after,
        asked(tokens, stem),
    )


def _objects(tokens: list[str]) -> dict[str, frozenset[str]]:
    """The words right after each directional preposition (past articles); "to" only after "from",
    and the word after the first "to" as "to*"."""
    found: dict[str, set[str]] = {}
    words = [t for t in tokens if t not in DETERMINERS]
    for token, following in itertools.pairwise(words):
        if token in DIRECTIONAL or (token == "to" and "from" in found):
            found.setdefault(token, set()).add(stem(following))
        if token == "to" and "to*" not in found:
            found["to*"] = {stem(following)}
    return {word: frozenset(objects) for word, objects in found.items()}


def stem(word: str) -> str:
    """A crude English stem, enough to see "enabling", "enables" and "enable" as one word."""
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith("es") and word[:-2].endswith(("s", "x", "z", "ch", "sh")):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith("ss") and len(word) > MIN_STEM + 1:
        word = word[:-1]
    for suffix in ("ing", "ed"):
        if word.endswith(suffix) and len(word) - len(suffix) >= MIN_STEM:
            word = word[: -len(suffix)]
            break
    if word.endswith("e") and len(word) > MIN_STEM:
        word = word[:-1]
    return word


def opposite(a: str, b: str) -> bool:
    """Whether stems `a` and `b` are listed opposites or differ only by a polarity prefix."""
    if (a, b) in _OPPOSITE_STEMS:
        return True
    return bool(_unprefixed(a) & _unprefixed(b))


@functools.lru_cache(maxsize=16384)
def _unprefixed(word: str) -> frozenset[str]:
    """`word` and what is left of it without each polarity prefix it starts with."""
    forms = {word}
    for prefix in POLARITY_PREFIXES:
        if word.startswith(prefix) and len(word) - len(prefix) >= MIN_STEM:
            forms.add(word[len(prefix) :])
    return frozenset(forms)


def _is_number(token: str) -> bool:
    return token in NUMBER_WORDS or token[0].isdigit()


def _is_ordinal(token: str, before: str) -> bool:
    return token in ORDINALS and not (before in NOT_ORDINAL_AFTER or (before and before[0].isdigit()))


def _is_named(word: str, before: str) -> bool:
    """A name, not a capitalised first word: `before` is the text just before `word`."""
    if any(c.isdigit() for c in word) and any(c.isalpha() for c in word):
        return True  # gpt4, ipv6, b12
    if not any(c.isupper() for c in word) or word == "I":
        return False
    head = before.rstrip(" \t\"'(")
    return bool(head) and head[-1] not in ".!?:;\n"


_OPPOSITE_STEMS = {(stem(a), stem(b)) for a, b in OPPOSITES} | {(stem(b), stem(a)) for a, b in OPPOSITES}
