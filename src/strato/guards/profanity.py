"""Profanity in a model's answer: English profanity and slurs, also when disguised (leetspeak,
repeated letters, "f.u.c.k", zero-width characters), matched as whole words only so that
"Scunthorpe" or "cockpit" are not flagged. Pure, and tens of microseconds on a typical answer.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator

from strato.guards.normalize import normalize
from strato.guards.verdict import Finding, without_overlaps

# Whole words, with their inflections. Left out on purpose, for their innocent meanings: hell, damned,
# bloody, prick, knob, cum, homo, dyke, coon, chink, spic, retard(ed), spastic, nonce, tit(s), craps.
PROFANITIES = frozenset(
    """
    arse arses arsehole arseholes ass asses asshat asshats asshole assholes assclown asswipe badass
    dumbass dumbasses jackass jackasses smartass kissass
    bastard bastards bellend bellends bitch bitches bitched bitching bitchy sonofabitch
    blowjob blowjobs handjob handjobs bollocks bugger buggered buggers buggering
    bullshit bullshits bullshitted bullshitter bullshitting horseshit chickenshit dipshit dipshits
    batshit apeshit shit shits shite shitted shitting shitty shittier shittiest shithead shitheads
    shitface shitbag shithole shitholes shitstorm shitshow
    cock cocks cocksucker cocksuckers cocksucking crap crappy crapped crapper
    cumshot cumshots cunt cunts damn damnit dammit goddamn goddamned goddammit goddamnit
    dick dicks dickhead dickheads dildo dildos douchebag douchebags
    fuk fuker fukin fuking fukker fukkin jizz knobhead knobheads milf
    piss pissed pisser pisses pissing pissy pissoff pillock pillocks pussy pussies
    scumbag scumbags skank skanks skanky slut sluts slutty tosser tossers titties titty
    turd turds twat twats wank wanked wanker wankers wanking whore whores whoring
    beaner beaners faggot faggots faggy fag fags gook gooks kike kikes nigga niggas nigger niggers
    paki pakis raghead ragheads sandnigger shemale towelhead towelheads wetback wetbacks
    """.split()  # noqa: SIM905 - a word list reads better as text
)
PROFANE_STEMS = ("fuck",)  # no English word contains these innocently: "motherfucking", "clusterfuck"
# Also names ("Philip K. Dick", "Moby-Dick", "Pussy Riot"): flagged only when not capitalised.
NAMES = frozenset({"dick", "dicks", "cock", "pussy"})

_LEET = str.maketrans("@0134$57", "aoieasst")
# Han, kana, Hangul and CJK punctuation fold to nothing Latin: `normalize` can skip them.
_CJK = "\u2e80-\u2fff\u3000-\u9fff\uac00-\ud7af"
_FOLDABLE = re.compile(rf"[^\x00-\x7f{_CJK}]+")
_WORD_EDGE = re.compile(rf"[\s{_CJK}]")
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")
# The patterns run on an ASCII stand-in of the text (several times faster than Unicode classes): a
# letter of another script is "Q", so that "crapé" stays one word, anything else a space.
_LETTERS = re.compile(r"[a-zA-Z]+")
_BANG = re.compile(r"!+(?=[a-z])")  # "sh!t"; "shit!" keeps its "!" (the letter before: `_bang`)
_ONLY_LETTERS = str.maketrans({c: " " for c in map(chr, range(128)) if not c.isalpha()})
_ELONGATED = re.compile(r"([a-z])\1\1")
# At least three letters one at a time with the same separator, the last piece maybe a whole word
# ("f.u.c.k", "s h i t", "f.u.c.king").
_CHAIN = r"[a-z](?P<sep>[ \t.\-_*~+|/\\]{1,3})[a-z](?P=sep)"
_SPELLED = re.compile(rf"(?<![\w'’]){_CHAIN}(?:[a-z](?P=sep))*[a-z]+", re.ASCII)
_SPELLED_QUICK = re.compile(rf"\b{_CHAIN}[a-z]", re.ASCII)


def _shape(word: str) -> tuple[str, tuple[int, ...]]:
    """A word's letters with each run collapsed, and the runs' lengths: "ass" -> ("as", (1, 2))."""
    runs = [(char, len(list(group))) for char, group in itertools.groupby(word)]
    return "".join(char for char, _ in runs), tuple(length for _, length in runs)


# Listed words by their collapsed letters, so that "fuuuck" or "shiiit" find theirs: a word matches
# when each run is as long as the listed word's, or longer and at least three ("assess" is not
# "asses", nor "as" "ass").
_BY_SHAPE: dict[str, list[tuple[int, ...]]] = {}
for _word in sorted(PROFANITIES):
    _letters, _lengths = _shape(_word)
    _BY_SHAPE.setdefault(_letters, []).append(_lengths)
del _word, _letters, _lengths


def profanity(text: str) -> list[Finding]:
    """Profane words and slurs in `text`, with spans in `text` (score 1.0 as written, 0.8 disguised).

    The text is folded first: zero-width characters dropped and look-alike letters made Latin
    (`normalize`), lower case, leetspeak undone ("@" "4" -> a, "0" -> o, "1" "!" -> i, "3" -> e, "$"
    "5" -> s, "7" -> t). A word matches when it is a listed word (letters may be drawn out: "fuuuck")
    or contains a stem no innocent word contains ("fuck"); letters spelled out one by one ("f.u.c.k",
    "s h i t") are joined first. Only whole words match: "Scunthorpe", "assessment", "cockpit" and
    "mp_ass_subscript" are clean. A word mostly made of digits ("A55", "455") is not leetspeak."""
    normalized, origin = _normalized(text)
    lowered = normalized.lower()
    if len(lowered) != len(normalized):  # keep one character for one, so spans map back
        lowered = "".join(c.lower() if len(c.lower()) == 1 else c for c in normalized)
    folded = _NON_ASCII.sub(_stand_in, lowered).translate(_LEET)
    if "!" in folded:
        folded = _BANG.sub(_bang, folded)
    if not _may_be_profane(folded):
        return []
    candidates = [(m.start(), m.end(), m.group()) for m in _LETTERS.finditer(folded)]
    candidates = [c for c in candidates if _is_profane(c[2]) and not _in_identifier(folded, c[0], c[1])]
    candidates += _spelled_out(folded)
    findings: list[Finding] = []
    for start, end, word in candidates:
        if _mostly_digits(lowered[start:end], len(word)):
            continue
        first, stop = (origin[start], origin[end - 1] + 1) if origin is not None else (start, end)
        original = text[first:stop]
        if word in NAMES and original.istitle():
            continue
        score = 1.0 if original.lower() == word else 0.8
        findings.append(Finding("PROFANITY", first, stop, score, original))
    return without_overlaps(findings, lambda f: (f.start, -f.end))


def _normalized(text: str) -> tuple[str, list[int] | None]:
    """`normalize`, run only on the words with a non-ASCII character other than Han, kana or Hangul:
    it goes character by character in Python, and most answers are mostly ASCII. Its folds work
    within a word, so the text is the same (but for a word glued to Han, folded on its own). Returns
    the text and, unless it is unchanged (ASCII), the index in `text` of each of its characters."""
    if text.isascii():  # nothing to undo
        return text, None
    pieces: list[str] = []
    origin: list[int] = []
    done = 0
    for match in _FOLDABLE.finditer(text):
        start, end = match.start(), match.end()
        if start < done:
            continue  # in the word just normalised
        while start > done and not _WORD_EDGE.match(text, start - 1):
            start -= 1
        while end < len(text) and not _WORD_EDGE.match(text, end):
            end += 1
        norm = normalize(text[start:end])
        pieces += [text[done:start], norm.text]
        origin.extend(range(done, start))
        origin.extend([start + i for i in norm.origin])
        done = end
    pieces.append(text[done:])
    origin.extend(range(done, len(text)))
    return "".join(pieces), origin


def _stand_in(match: re.Match[str]) -> str:
    return "".join("Q" if char.isalpha() else " " for char in match.group())


def _bang(match: re.Match[str]) -> str:
    after_letter = match.start() > 0 and "a" <= match.string[match.start() - 1] <= "z"
    return "i" * len(match.group()) if after_letter else match.group()


def _may_be_profane(folded: str) -> bool:
    """The quick test that clean text (nearly all of it) passes: set operations and C searches."""
    return (
        not PROFANITIES.isdisjoint(folded.translate(_ONLY_LETTERS).split())
        or any(stem in folded for stem in PROFANE_STEMS)
        or _ELONGATED.search(folded) is not None
        or _SPELLED_QUICK.search(folded) is not None
    )


def _in_identifier(folded: str, start: int, end: int) -> bool:
    """A part of a snake_case name ("mp_ass_subscript"), unlike "_shit_" (Markdown emphasis)."""
    before = start >= 2 and folded[start - 1] == "_" and folded[start - 2].isalnum()
    after = end + 1 < len(folded) and folded[end] == "_" and folded[end + 1].isalnum()
    return before or after


def _spelled_out(folded: str) -> Iterator[tuple[int, int, str]]:
    """Letters written one at a time, joined: (start, end, word) when the word is profane. The last
    piece may be a suffix ("f.u.c.king") or the next word ("f u c k me"): without it is tried first.
    A leading "a" or "i" may be the English word before the letters ("a s h i t")."""
    for match in _SPELLED.finditer(folded):
        at = match.start()
        pieces = [(at + m.start(), at + m.end()) for m in _LETTERS.finditer(match[0])]
        singles = pieces if pieces[-1][1] - pieces[-1][0] == 1 else pieces[:-1]
        tries = [singles, pieces]
        if folded[at] in "ai":
            tries += [singles[1:], pieces[1:]]
        for letters in tries:
            word = "".join(folded[start:end] for start, end in letters)
            if len(letters) > 2 and _is_profane(word):
                yield letters[0][0], letters[-1][1], word
                break


def _is_profane(word: str) -> bool:
    if word in PROFANITIES or any(stem in word for stem in PROFANE_STEMS):
        return True
    if _ELONGATED.search(word) is None:
        return False
    letters, lengths = _shape(word)
    if any(stem in letters for stem in PROFANE_STEMS):
        return True
    return any(
        all(have == need or have >= max(need, 3) for have, need in zip(lengths, wanted, strict=True))
        for wanted in _BY_SHAPE.get(letters, ())
    )


def _mostly_digits(original: str, letters: int) -> bool:
    """Digits standing in for most letters are a number or a product name ("A55"), not leetspeak."""
    return 2 * sum(char.isdigit() for char in original) > letters
