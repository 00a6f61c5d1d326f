"""What a question asks for: the kind of answer its question word wants, and the thing it names.

Questions written about one subject share nearly every word and sit close in embedding space while
asking different things: "what was the total number of sheltered homeless people in 2008" and
"what percentage of the sheltered homeless population were individuals" (a count, a share), "when
was the study conducted" and "who conducted the study", "what is the genus of the SARS
coronavirus" and "what is its family". `asked` reads, from the lowercased words of a question:

- `kind`: the kind of answer wanted, from the question word and the words right after it (`how
  many` a quantity, `what percentage` a share, `when` / `what year` a time, `where` / `which
  country` a place, `who` a person, `why` / `what causes` a reason, `how do` a manner, `how old` /
  `how far` a degree, `is ...` yes or no, `put ...` / `can you ...` a command); None when the
  question word says nothing of it (`what is ...`, `which ...`, a statement);
- `frame` and `head`: how the asked-for thing is named and its words (`what is the [genus] of`,
  `how many [severe cases] of`, `what [virus] is`), compared only between questions of one frame,
  since "what is the boiling point" and "at what temperature" name one thing in two frames.

Also `tally` (a count of what was used, or of what is left), `acts` (who acts on whom) and
`causal` (whether a cause is asked, "what triggers X", "what is X due to", or an effect, "what
does X cause", "what is the effect of X"). Plain
set and dict lookups over the words, no model: cheap enough to run on every lookup.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

QUESTION_WORDS = frozenset({"what", "which", "who", "whom", "whose", "when", "where", "why", "how"})
BE = frozenset({"is", "are", "was", "were", "s", "re", "am"})
AUXILIARIES = BE | {
    "be", "been", "being", "do", "does", "did", "has", "have", "had", "can", "could", "will", "would",
    "should", "may", "might", "must", "shall",
}  # fmt: skip
# A question opening with one of these asks yes or no, whatever question word follows ("do I need
# a visa when I go to Canada"), unless it is a request ("can you ...") or a wrapper ("do you know").
YES_NO_OPENERS = frozenset({
    "is", "are", "was", "were", "am", "do", "does", "did", "has", "have", "had", "will", "would",
    "should", "can", "could", "may", "might", "must", "shall", "if", "whether",
})  # fmt: skip
# Verbs that open a command ("put milk on my list"), set against "is milk on my list".
COMMAND_VERBS = frozenset({
    "add", "put", "set", "turn", "remove", "delete", "cancel", "book", "schedule", "send", "play",
    "remind", "order", "change", "update", "text", "email", "start", "stop", "make", "create", "call",
    "buy", "pay", "transfer", "reserve", "switch", "mute", "open", "close", "lock", "unlock",
})  # fmt: skip
# A question word right after these opens the question asked: "can you explain [why] ...".
EMBEDDING_VERBS = frozenset({
    "explain", "tell", "show", "know", "out", "see", "check", "figure", "remember", "confirm",
    "wonder", "me", "understand", "learn", "ask", "say", "describe", "and", "about",
})  # fmt: skip
LEADING_FILLERS = frozenset({"please", "so", "ok", "okay", "hey", "and", "but", "now", "about", "exactly"})
# Openers that wrap a question without changing what it asks: "can you tell me how many ...".
WRAPPERS = (
    ("can", "you", "tell", "me"), ("could", "you", "tell", "me"), ("would", "you", "tell", "me"),
    ("will", "you", "tell", "me"), ("can", "you", "let", "me", "know"), ("do", "you", "know"),
    ("i", "want", "to", "know"), ("i", "need", "to", "know"), ("i", "would", "like", "to", "know"),
    ("i", "d", "like", "to", "know"), ("i", "wonder"), ("tell", "me"), ("let", "me", "know"),
    ("please", "tell", "me"), ("find", "out"), ("do", "you", "remember"),
)  # fmt: skip
# Openers of a request to do something: "are you able to play ...", "is it possible for you to".
REQUESTS = (
    ("can", "you"), ("could", "you"), ("would", "you"), ("will", "you"), ("are", "you", "able", "to"),
    ("is", "it", "possible", "for", "you", "to"),
)  # fmt: skip
# What the asked-for noun says about the kind of answer: "what [percentage] of", "which [country]".
KIND_OF_NOUN = {
    "number": "quantity", "numbers": "quantity", "amount": "quantity", "count": "quantity",
    "quantity": "quantity", "total": "quantity", "population": "quantity",
    "percentage": "share", "percentages": "share", "percent": "share", "proportion": "share",
    "proportions": "share", "fraction": "share", "share": "share", "ratio": "share",
    "time": "time", "year": "time", "years": "time", "date": "time", "dates": "time", "day": "time",
    "month": "time", "hour": "time", "century": "time", "decade": "time", "period": "time",
    "country": "place", "countries": "place", "city": "place", "cities": "place", "place": "place",
    "places": "place", "location": "place", "locations": "place", "region": "place",
    "regions": "place", "continent": "place", "town": "place", "address": "place", "site": "place",
    "area": "place",
    "reason": "reason", "reasons": "reason", "cause": "reason", "causes": "reason",
    "person": "person", "age": "degree age", "duration": "duration",
}  # fmt: skip
# "what causes ...", "what made ...": a reason, whatever follows.
REASON_VERBS = frozenset({
    "cause", "causes", "caused", "makes", "made", "leads", "led", "trigger", "triggers", "triggered",
    "induces", "induced", "provokes", "provoked",
})  # fmt: skip
# "how many [meters]": a distance, as "how far" asks.
DISTANCE_UNITS = frozenset({
    "meters", "metres", "kilometers", "kilometres", "km", "miles", "feet", "yards", "inches",
})  # fmt: skip
TIME_UNITS = frozenset({
    "second", "seconds", "minute", "minutes", "hour", "hours", "day", "days", "week", "weeks",
    "month", "months", "year", "years",
})  # fmt: skip
# "how" and the word after it: a degree of something, named by the kind of answer it wants.
DEGREES = {
    "old": "degree age", "far": "degree distance", "tall": "degree height", "high": "degree height",
    "big": "degree size", "large": "degree size", "small": "degree size", "fast": "degree speed",
    "quick": "degree speed", "quickly": "degree speed", "often": "frequency", "frequently": "frequency",
    "come": "reason", "soon": "time",
}  # fmt: skip
DETERMINERS = frozenset({"the", "a", "an", "my", "your", "our", "their", "his", "her", "its", "this", "that"})
ADVERBS = frozenset({"exactly", "actually", "really", "precisely", "currently", "usually", "else"})
# The asked-for thing ends at a preposition, a verb of the question, a pronoun or a conjunction.
HEAD_ENDS = AUXILIARIES | QUESTION_WORDS | {
    "of", "in", "for", "on", "at", "among", "during", "from", "with", "to", "by", "between", "about",
    "per", "after", "before", "than", "into", "over", "under", "within", "without", "through",
    "against", "across", "as", "like", "vs", "versus", "and", "or", "but", "that", "if", "i", "you",
    "he", "she", "it", "we", "they", "me", "there", "this", "these", "those",
}  # fmt: skip
HEAD_SKIPS = frozenset({
    "the", "a", "an", "my", "your", "our", "their", "his", "her", "its", "some", "any", "kind", "type",
    "sort", "kinds", "types", "sorts", "of", "exact", "approximate", "current",
})  # fmt: skip
HEAD_WORDS = 4
# A cause asked ("what could trigger X", "X is due to what") against an effect ("what does X cause").
CAUSAL_VERBS = frozenset({
    "cause", "causes", "caused", "trigger", "triggers", "triggered", "induce", "induces", "induced",
    "produce", "produces", "provoke", "provokes",
})  # fmt: skip
CAUSE_PHRASES = (
    ("due", "to"), ("caused", "by"), ("because", "of"), ("cause", "of"), ("causes", "of"),
    ("triggered", "by"), ("induced", "by"), ("reason", "for"), ("reasons", "for"),
    ("responsible", "for"), ("attributed", "to"), ("origin", "of"), ("source", "of"),
)  # fmt: skip
EFFECT_PHRASES = (
    ("effect", "of"), ("effects", "of"), ("impact", "of"), ("consequence", "of"),
    ("consequences", "of"), ("outcome", "of"), ("outcomes", "of"), ("result", "in"),
    ("results", "in"), ("lead", "to"), ("leads", "to"),
)  # fmt: skip
# A count of what was used up is not a count of what is left: "how many vacation days have I
# taken" / "how many vacation days do I have".
QUANTITY_WORDS = frozenset({"many", "much", "number", "amount", "total", "count"})
USED_WORDS = frozenset({"used", "taken", "spent", "consumed", "gone"})
# Head nouns that name no particular thing: "what is the name of", "what are the steps to".
VAGUE_HEADS = frozenset({
    "name", "thing", "things", "way", "ways", "process", "step", "steps", "method", "procedure",
    "route", "info", "information", "detail", "details", "best", "easiest", "right", "proper",
    "meaning", "definition",
})  # fmt: skip


def _compatible(a: str, b: str) -> bool:
    """Kinds that are not two different things asked: "can I reset it" / "how do I reset it",
    "is the traffic bad" / "how bad is the traffic"."""
    pair = {a, b}
    if "thing" in pair:  # "what is the difference" / "how do they differ"; not "why"
        return "reason" not in pair
    if "duration" in pair:  # a span of time: "how long until" / "when", "how many days"
        return bool(pair & {"time", "quantity"})
    if pair <= {"yes-no", "command", "manner"}:  # "can you do X" / "do X" / "how do I do X"
        return True
    if pair & {"yes-no", "command", "manner"}:
        (other,) = pair - {"yes-no", "command", "manner"}
        # "is the traffic bad" / "how bad is the traffic"; "how" / "where" / "who" to get a form
        return other.startswith("degree") or ("yes-no" not in pair and other in ("place", "person"))
    return False


@dataclass(frozen=True, slots=True)
class Asked:
    """What one question asks for (see the module docstring)."""

    kind: str | None = None
    frame: str | None = None
    head: tuple[str, ...] = ()
    tally: str | None = None  # a quantity question: "used" (what was spent) or "held"
    names: str | None = None  # the kind of answer the head names ("percentage": a share), else "thing"
    acts: str | None = None  # with "you": "I" act ("can I call you Sam") or on "me" ("call me Sam")
    causal: str | None = None  # "cause" (what brings it about is asked) or "effect" (what it brings)


def asked(tokens: list[str], stem: Callable[[str], str]) -> Asked:
    """What the question made of lowercased `tokens` asks for, its head in the form `stem` gives."""
    words = _unwrapped(tokens)
    found = _asked(words)
    tally = None
    if not QUANTITY_WORDS.isdisjoint(tokens):
        tally = "held" if USED_WORDS.isdisjoint(tokens) else "used"
    acts = None
    if "you" in words and ("i" in words) != ("me" in words):
        acts = "I" if "i" in words else "me"
    head = tuple(stem(word) for word in found.head)
    return Asked(found.kind, found.frame, head, tally, found.names, acts, _causal(words))


def _causal(words: list[str]) -> str | None:
    """ "cause" when the question asks what brings something about ("what triggers X", "why",
    "what is X due to"), "effect" when it asks what something brings ("what does X cause", "the
    effect of X"); None when it says neither, or both."""
    pairs = set(itertools.pairwise(words))
    cause = words[:1] == ["why"] or not pairs.isdisjoint(CAUSE_PHRASES)
    effect = not pairs.isdisjoint(EFFECT_PHRASES)
    if words[:1] in (["what"], ["which"]) and len(words) > 2:
        verb = next((i for i, word in enumerate(words) if word in CAUSAL_VERBS), None)
        if verb == 1 or (verb == 2 and words[1] in AUXILIARIES):
            cause = True  # "what causes X", "what could trigger X": the question word does it
        elif verb is not None and words[1] in AUXILIARIES and words[verb + 1 : verb + 2] != ["by"]:
            effect = True  # "what does X cause", "what can X trigger": the question word is done
            # (not "what is X caused by": the passive asks for the cause)
    return None if cause == effect else "cause" if cause else "effect"


def _asked(words: list[str]) -> Asked:
    if not words:
        return Asked()
    if "if" in words[:6] or "whether" in words[:6]:  # "can you check if ...", "tell me whether"
        return Asked("yes-no")
    for i, word in enumerate(words):
        if word in QUESTION_WORDS and (i == 0 or words[i - 1] in EMBEDDING_VERBS):
            return _after_question_word(word, words[i + 1 :])
    if words[0] in COMMAND_VERBS or any(_opens(words, r) for r in _REQUESTS_BY_FIRST.get(words[0], ())):
        return Asked("command")
    if words[0] in YES_NO_OPENERS and words[1:2] != ["there"]:
        return Asked("yes-no")  # a question word further on is a clause: "do I need a visa when ..."
    for i, word in enumerate(words):
        if word in QUESTION_WORDS:
            return _after_question_word(word, words[i + 1 :])
    return Asked()


def _unwrapped(tokens: list[str]) -> list[str]:
    """`tokens` past leading fillers and wrappers ("please", "can you tell me", "do you know")."""
    words, before = tokens, None
    while words and words is not before:
        before = words
        while words and words[0] in LEADING_FILLERS:
            words = words[1:]
        for wrapper in _WRAPPERS_BY_FIRST.get(words[0], ()) if words else ():
            if _opens(words, wrapper):
                words = words[len(wrapper) :]
                break
    return words


def _opens(words: list[str], opener: tuple[str, ...]) -> bool:
    return tuple(words[: len(opener)]) == opener


def clash(a: Asked, b: Asked, a_words: frozenset[str], b_words: frozenset[str]) -> str | None:
    """Why two questions ask for different things: "asked" (another kind of answer, or a count of
    what was used against one of what is left), "roles" (who acts on whom swapped), "asked-for" (in
    the same frame, a thing the other question does not mention), or None. `a_words` and
    `b_words` are the words of each question, in the same form as the heads."""
    if a.kind and b.kind and a.kind != b.kind and not _compatible(a.kind, b.kind):
        return "asked"
    if a.tally and b.tally and a.tally != b.tally:
        return "asked"
    if {a.acts, b.acts} == {"I", "me"}:
        return "roles"  # "can you call me something else" / "can I call you something else"
    if {a.causal, b.causal} == {"cause", "effect"}:
        return "cause-effect"  # "what do the attacks cause" / "what are the attacks due to"
    if a.frame is None or a.frame != b.frame or not a.head or not b.head:
        return None
    if a.names is not None and a.names == b.names != "thing":
        return None  # one kind named two ways: "what percent" / "what percentage", "what town" / "what city"
    if a.head[-1] in b_words or b.head[-1] in a_words:
        return None  # the same thing, or the same things in another order ("tuesday's calendar")
    return "asked-for"


def _after_question_word(word: str, rest: list[str]) -> Asked:
    if word in ("who", "whom", "whose"):
        return Asked("person")
    if word == "when":
        return Asked("time")
    if word == "where":
        return Asked("place")
    if word == "why":
        return Asked("reason")
    if word == "how":
        return _after_how(rest)
    return _after_what(rest)


def _after_how(rest: list[str]) -> Asked:
    if rest[:2] == ["much", "longer"]:  # "how much longer until"
        rest = rest[1:]
    following = rest[0] if rest else ""
    if following in ("many", "much"):
        if rest[1:2] and (rest[1] in TIME_UNITS or rest[1] == "time"):
            return Asked("duration")
        if rest[1:2] == ["times"]:
            return Asked("frequency")
        if rest[1:2] and rest[1] in DISTANCE_UNITS:
            return Asked("degree distance")
        return Asked("quantity", "how-many", _head(rest[1:]))
    if following in ("long", "longer"):
        return Asked("time" if rest[1:2] and rest[1] in ("ago", "until", "till", "before") else "duration")
    if following in DEGREES:
        return Asked(DEGREES[following])
    if not following or following in AUXILIARIES or following in DETERMINERS or following in HEAD_ENDS:
        return Asked("manner")
    return Asked(f"degree {following}")


def _after_what(rest: list[str]) -> Asked:
    """After `what` or `which`: "what is the X of", "what X is", "what causes"."""
    while rest and rest[0] in ADVERBS:
        rest = rest[1:]
    following = rest[0] if rest else ""
    if following in REASON_VERBS:
        return Asked("reason")
    if following in AUXILIARIES and rest[1:2] in (["be"], ["been"]):  # "what could be", "has been"
        rest = rest[1:]
        following = rest[0]
    if following in BE or following in ("be", "been") or following in DETERMINERS:
        head = _head(rest[1:] if following not in DETERMINERS else rest)  # "explain what the X is"
        return Asked(_kind_of(head), "what-is", head, names=_kind_of(head))
    if following in AUXILIARIES or not following or following.endswith("ed"):  # "what happened"
        return Asked()
    head = _head(rest)[:1]  # the noun phrase runs into the verb, which words alone cannot tell
    return Asked(_kind_of(head), "what-noun", head, names=_kind_of(head))


def _kind_of(head: tuple[str, ...]) -> str | None:
    """The kind of answer the asked-for noun names: "what [percentage] of", "which [country]", or
    "thing" for any other noun ("what is the [genus] of")."""
    if not head:
        return None
    return next((KIND_OF_NOUN[word] for word in head if word in KIND_OF_NOUN), "thing")


def _head(words: list[str]) -> tuple[str, ...]:
    """The asked-for noun phrase at the start of `words`, past articles and possessives."""
    start = 0
    while start < len(words) and words[start] in HEAD_SKIPS:
        start += 1
    head: list[str] = []
    for word in words[start:]:
        if word == "s" and head:  # a possessive: "the car's [tire pressure]"
            head = []
            continue
        if word in HEAD_ENDS or word[0].isdigit() or len(head) == HEAD_WORDS:
            break
        if word not in HEAD_SKIPS and word not in VAGUE_HEADS:
            head.append(word)
    return tuple(head)


_WRAPPERS_BY_FIRST = {first: [w for w in WRAPPERS if w[0] == first] for first in {w[0] for w in WRAPPERS}}
_REQUESTS_BY_FIRST = {first: [r for r in REQUESTS if r[0] == first] for first in {r[0] for r in REQUESTS}}
