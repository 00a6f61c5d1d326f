"""Whether each of two look-alike questions is covered by the other: every word that carries its
meaning is in the other question, or a near-synonym of it is.

Questions written about one passage share their subject and most of their words, and MiniLM puts
them as close as true paraphrases: "what is the mortality rate of the virus in children" / "...
in adults" (cosine 0.97), "what are the applications of the phage" / "what do applications of
the phage depend on" (0.93), "what is the hallmark finding of X" / "what could trigger X". The
word checks of `strato.cache.contrast` see no negation, number or opposite there; this check sees
that a word of each question is missing from the other.

A question is read as its content words: lowercased, crudely lemmatised (`contrast.stem`, plus the
irregular verbs), common phrases rewritten ("turn on" is "enable", "stand for" an abbreviation),
and light words left out: function words, the words of a question's frame ("tell me", "explain",
"the way to"), light verbs ("get", "make", "take"), "now" / "current", "good" / "best", and the
words naming the kind of answer ("time", "year", "city", "number"), which `strato.cache.asked`
compares. A word of one question is covered when the other has the same lemma, a word that starts
the same way ("differ" / "difference", "reduced" / "reduction"), a listed synonym, or else a word
whose embedding is within cosine `NEAR` of its own (the cache's own embedder: "buy" / "purchase"
0.87, "kids" / "children" 0.88; "children" / "adults" is 0.56, "get" / "obtain" 0.65, so common
synonyms below that are listed).

The verdict: a word of each question that the other does not cover is another thing asked
("coverage"). Words that only one question adds are refused when one of them is what that
question asks for (its asked-for head: "what is CHIKV [marked] by" / "what is CHIKV", or the verb
of "what do X [depend] on" / "what are the applications of X"), when there are more than
`MAX_ADDED` of them, or when one is a superlative ("the [strongest] risk factor" / "the risk
factors"), and allowed otherwise: "is drinking coffee bad for your health" asks what "is coffee
bad for you" does.

Only pairs that already pass the threshold and the word checks get here, so the embedding call
is rare: one batch of the words not yet seen, on the embedder's own worker thread, for all of a
lookup's candidates. Word vectors are remembered (`WORD_VECTORS` of them).
"""

from __future__ import annotations

import functools
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import numpy as np

from strato.cache.asked import ADVERBS, AUXILIARIES, BE, KIND_OF_NOUN, TIME_UNITS, VAGUE_HEADS, asked
from strato.cache.contrast import CONTRACTIONS, NUMBER_WORDS, ORDINALS, WORD, opposite, stem

NEAR = 0.8  # least cosine of two words' embeddings for one to cover the other
WORD_VECTORS = 8192  # word vectors remembered
MIN_SHARED = 5  # "differ" / "difference": a shared beginning of at least this many letters
MAX_ADDED = 2  # content words one question may add ("is [drinking] coffee bad for your [health]")

FUNCTION_WORDS = frozenset({
    "a", "an", "the", "this", "that", "these", "those", "my", "your", "our", "their", "his", "her",
    "its", "i", "me", "you", "he", "she", "it", "we", "they", "us", "them", "mine", "yours",
    "myself", "yourself", "one", "ones", "someone", "something", "anything", "everything", "of",
    "in", "on", "at", "for", "from", "with", "to", "by", "about", "as", "into", "over", "under",
    "between", "among", "through", "during", "after", "before", "than", "per", "via", "within",
    "without", "against", "and", "or", "but", "nor", "so", "if", "whether", "because", "while",
    "although", "though", "since", "until", "unless", "up", "out", "is", "are", "was", "were",
    "be", "been", "being", "am", "do", "does", "did", "done", "doing", "have", "has", "had",
    "having", "can", "could", "will", "would", "should", "may", "might", "must", "shall", "s",
    "re", "d", "ll", "ve", "t", "m", "what", "which", "who", "whom", "whose", "when", "where",
    "why", "how", "there", "here", "also", "just", "only", "very", "much", "many", "more", "some",
    "any", "all", "each", "every", "other", "such", "own", "too", "again", "further", "then",
    "once", "usually", "often", "still", "even", "ever", "already", "yet", "else", "whats", "hows",
    "wanna", "gonna", "gotta", "lets",
})  # fmt: skip
# Words of a question's frame, not of what it asks: "can you tell me", "explain", "the way to".
FRAME_WORDS = frozenset({
    "please", "tell", "explain", "know", "let", "want", "need", "like", "love", "wish", "wonder",
    "help", "assist", "assistance", "show", "give", "say", "find", "look", "see", "check",
    "figure", "mean", "means", "define", "defined", "definition", "meaning", "way", "ways",
    "thing", "things", "kind", "kinds", "type", "types", "sort", "sorts", "method", "process",
    "step", "steps", "procedure", "info", "information", "detail", "details", "possible", "able",
    "sure", "think", "hey", "okay", "ok", "well", "located", "location",
}) | VAGUE_HEADS  # fmt: skip
# Verbs that say little alone: "how do I get there" asks what "how do I reach it" does.
LIGHT_VERBS = frozenset({
    "get", "gets", "got", "getting", "gotten", "go", "goes", "going", "went", "gone", "make",
    "makes", "made", "making", "take", "takes", "took", "taken", "taking", "put", "puts",
    "putting", "set", "sets", "setting", "use", "uses", "used", "using", "come", "comes", "came",
    "coming", "keep", "keeps", "kept",
})  # fmt: skip
OTHER_LIGHT = frozenset({
    "now", "current", "currently", "today", "presently", "right", "good", "great", "best", "nice",
    "proper", "correct",
})  # fmt: skip
# Words that name the kind of answer; `strato.cache.asked` compares the kinds.
KIND_WORDS = frozenset(KIND_OF_NOUN) | TIME_UNITS | {"long", "often", "far"}
LIGHT = FRAME_WORDS | LIGHT_VERBS | OTHER_LIGHT | KIND_WORDS | ADVERBS
# "What do/can/did X [verb]": the verb is what is asked about X ("what did the trial [show]").
DOING = AUXILIARIES - BE - {"be", "been", "being"}
# Superlatives single out one of the things the other question asks about.
SUPERLATIVES = frozenset({
    "most", "least", "main", "primary", "major", "leading", "top", "strongest", "weakest",
    "largest", "biggest", "smallest", "highest", "lowest", "greatest", "earliest", "latest",
    "oldest", "newest", "youngest", "longest", "shortest", "fastest", "slowest", "cheapest",
    "closest", "nearest", "commonest",
})  # fmt: skip
IRREGULAR = {
    "wrote": "write", "written": "write", "bought": "buy", "sold": "sell", "found": "find",
    "told": "tell", "began": "begin", "begun": "begin", "ran": "run", "paid": "pay", "sent": "send",
    "spent": "spend", "lost": "lose", "left": "leave", "held": "hold", "brought": "bring",
    "thought": "think", "knew": "know", "known": "know", "drew": "draw", "drawn": "draw",
    "chose": "choose", "chosen": "choose", "ate": "eat", "eaten": "eat", "drank": "drink",
    "drunk": "drink", "forgot": "forget", "forgotten": "forget", "gave": "give", "given": "give",
    "saw": "see", "seen": "see", "spoke": "speak", "spoken": "speak", "broke": "break",
    "broken": "break", "grew": "grow", "grown": "grow", "fell": "fall", "fallen": "fall",
    "felt": "feel", "built": "build", "caught": "catch", "taught": "teach", "met": "meet",
    "children": "child", "people": "person", "men": "man", "women": "woman", "mice": "mouse",
    "feet": "foot", "teeth": "tooth", "better": "good", "worse": "bad",
}  # fmt: skip
# Phrases that say in two words what another question says in one.
PHRASES = [
    (re.compile(rf"\b{pattern}\b"), replacement)
    for pattern, replacement in [
        (r"(?:turn|switch) on", "enable"), (r"(?:turn|switch) off", "disable"),
        (r"(?:stand|stands|short) for", "abbreviation"), (r"abbreviation (?:of|for)", "abbreviation"),
        (r"get rid of", "remove"), (r"look up", "find"), (r"find out", "find"), (r"set up", "setup"),
        (r"log (?:in|on)", "login"), (r"sign in", "login"), (r"log out", "logout"),
        (r"sign up", "register"), (r"many (?:people|persons) live", "population"),
    ]
]  # fmt: skip
# Near-synonyms MiniLM puts under NEAR, each group one meaning.
SYNONYM_GROUPS = [
    "enable activate", "disable deactivate", "change modify edit update alter adjust",
    "fix repair", "remove delete erase", "get obtain receive acquire", "begin start",
    "end finish", "find locate search", "speak talk", "call phone", "use utilize employ",
    "buy purchase", "need require", "write author", "restart reboot", "cost price",
    "inform notify", "symptom sign", "frequent common", "big large", "small little",
    "quick fast rapid", "kid child", "doctor physician", "illness disease",
    "study research", "method approach technique", "goal aim purpose", "result outcome finding",
    "benefit advantage", "drawback disadvantage downside", "problem issue",
    "show display", "allow permit", "happen occur", "create generate", "stop halt",
    "switch swap change", "substitute replace swap", "increase raise boost", "decrease reduce",
    "next upcoming following", "fun interesting", "return revert", "pay payment", "fee charge",
    "job work", "teach lesson", "arrive deliver", "choose pick select", "book reserve",
]  # fmt: skip
SYNONYMS: dict[str, frozenset[str]] = {}
for _group in SYNONYM_GROUPS:
    _lemmas = frozenset(stem(word) for word in _group.split())
    for _lemma in _lemmas:
        SYNONYMS[_lemma] = SYNONYMS.get(_lemma, frozenset()) | _lemmas


@dataclass(frozen=True, slots=True)
class Content:
    """What the check needs of one question."""

    words: dict[str, str]  # lemma -> the word, of each content word
    lemmas: frozenset[str]  # the lemma of every word, light ones too
    head: frozenset[str]  # lemmas of the content words of what the question asks for


@dataclass(frozen=True, slots=True)
class Gaps:
    """The content words of each question that the other has not covered by lemma, shared
    beginning or listed synonym: left for the embeddings to judge."""

    left: Content
    right: Content
    left_only: dict[str, str]
    right_only: dict[str, str]

    def words(self) -> set[str]:
        """The words whose embeddings the judgement compares."""
        if not self.left_only and not self.right_only:
            return set()
        return (
            set(self.left_only.values())
            | set(self.right.words.values())
            | (set(self.right_only.values()) | set(self.left.words.values()))
        )


@functools.lru_cache(maxsize=1024)
def read(text: str) -> Content:
    """The content words of `text`, remembered: a lookup checks one question against up to eight."""
    lowered = text.lower()
    for pattern, replacement in CONTRACTIONS:
        lowered = pattern.sub(replacement, lowered)
    tokens = [m.group() for m in WORD.finditer(lowered)]
    for pattern, replacement in PHRASES:
        lowered = pattern.sub(replacement, lowered)
    words = [m.group() for m in WORD.finditer(lowered)]
    content = {lemma(word): word for word in words if _is_content(word)}
    found = asked(tokens, lemma)
    head = {word for word in found.head if word in content and not _names_a_tool(found.head, tokens)}
    if words[:1] in (["what"], ["which"]) and words[1:2] and words[1] in DOING and content:
        head.add(lemma(next(reversed([w for w in words if _is_content(w)]))))  # "what do they [depend] on"
    return Content(content, frozenset(lemma(word) for word in words), frozenset(head))


def gaps(a: str, b: str) -> Gaps:
    left, right = read(a), read(b)
    return Gaps(left, right, _uncovered(left, right), _uncovered(right, left))


def judge(found: Gaps, similarity: Callable[[str, str], float]) -> str | None:
    """Whether the two questions of `found` ask different things ("coverage") or one covers the
    other (None), with `similarity` (the cosine of two words' embeddings) for the words left."""
    left = _not_near(found.left_only, found.right, similarity)
    right = _not_near(found.right_only, found.left, similarity)
    if left and right:
        return "coverage"  # each says something the other does not: another thing asked
    for added, question in ((left, found.left), (right, found.right)):
        if not added:
            continue
        if len(added) > MAX_ADDED:
            return "coverage"  # it says much more: "tracked [across tissue monolayers via ...]"
        if any(word in question.head or written in SUPERLATIVES for word, written in added.items()):
            return "coverage"  # what the question asks for, or which one of them, is added
    return None


class Coverage:
    """The check with word embeddings from `embed` (texts in, vectors out), the last
    `WORD_VECTORS` of them remembered."""

    def __init__(self, embed: Callable[[Sequence[str]], Awaitable[Sequence[Sequence[float]]]]) -> None:
        self._embed = embed
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()

    async def check(self, pairs: Sequence[tuple[str, str]]) -> list[str | None]:
        """For each (asked, stored) pair, "coverage" or None, with at most one embedding call for
        the words of all the pairs whose embeddings are not remembered."""
        found = [gaps(a, b) for a, b in pairs]
        needed = set().union(*(item.words() for item in found))
        missing = sorted(needed - self._vectors.keys())
        if missing:
            for word, vector in zip(missing, await self._embed(missing), strict=True):
                array = np.asarray(vector, dtype=np.float32)
                self._vectors[word] = array / (np.linalg.norm(array) or 1.0)
        verdicts = [judge(item, self._similarity) for item in found]
        for word in needed:
            self._vectors.move_to_end(word)
        while len(self._vectors) > WORD_VECTORS:
            self._vectors.popitem(last=False)
        return verdicts

    def _similarity(self, a: str, b: str) -> float:
        return float(self._vectors[a] @ self._vectors[b])


def lemma(word: str) -> str:
    return stem(IRREGULAR.get(word, word))


def _is_content(word: str) -> bool:
    if word in NUMBER_WORDS or word in ORDINALS or word[0].isdigit():
        return False  # compared by `strato.cache.contrast`
    return not (word in FUNCTION_WORDS or word in LIGHT or lemma(word) in _LIGHT_LEMMAS)


def _names_a_tool(head: tuple[str, ...], tokens: list[str]) -> bool:
    """Whether the asked-for thing is the means to an end: "what's the [command] to install it"
    asks what "how do I install it" does."""
    if not head:
        return False
    last = [i for i, token in enumerate(tokens) if lemma(token) == head[-1]]
    return bool(last) and tokens[last[0] + 1 : last[0] + 2] == ["to"]


def _uncovered(question: Content, other: Content) -> dict[str, str]:
    """The content words of `question` that `other` has no word for: the same lemma, a shared
    beginning or a listed synonym."""
    return {
        word: written
        for word, written in question.words.items()
        if word not in other.lemmas
        and not any(_shared_beginning(word, o) for o in other.lemmas)
        and SYNONYMS.get(word, frozenset()).isdisjoint(other.lemmas)
    }


def _not_near(
    only: dict[str, str], other: Content, similarity: Callable[[str, str], float]
) -> dict[str, str]:
    """The words of `only` (lemma -> word) that no content word of `other` is near, opposites aside."""
    return {
        word: written
        for word, written in only.items()
        if not any(
            similarity(written, theirs) >= NEAR and not opposite(word, lemma_)
            for lemma_, theirs in other.words.items()
        )
    }


def _shared_beginning(a: str, b: str) -> bool:
    shared = len(a) if b.startswith(a) else len(b) if a.startswith(b) else _common_prefix(a, b)
    return shared >= MIN_SHARED and shared >= 0.7 * min(len(a), len(b))


def _common_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


_LIGHT_LEMMAS = frozenset(lemma(word) for word in LIGHT)
