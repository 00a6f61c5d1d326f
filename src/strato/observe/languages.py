"""Whether an answer is in another language than the question it answers (LANGUAGE_SWITCH).

The last user message (or the prompt) and the answer are each identified with py3langid, on the
start (300 characters) of their prose: code blocks, inline code, URLs, e-mail addresses and tags
are left out. It is a switch when both have 40 letters or more of prose, both are identified with
a probability of 0.9 or more, the two languages differ and are not close kin that identification
confuses (Danish/Norwegian, Spanish/Catalan/Galician, Serbian/Croatian/Bosnian, Malay/Indonesian,
Czech/Slovak), and neither the system prompt nor the last user message names a language or asks
for a translation ("translate", "in French", "auf Deutsch", ...).

py3langid takes about a microsecond per byte, so the common case is decided without it: when the
function words of both texts say they are in the same one of seven European languages, there is
no switch.
"""

from __future__ import annotations

import collections
import functools
import logging
import re
import string
import threading
from typing import Any

log = logging.getLogger(__name__)


MIN_LETTERS = 40  # of prose, in both the question and the answer
MIN_PROBABILITY = 0.9
SAMPLE = 300  # characters of prose identified (the start of each text): py3langid takes ~1 µs a byte
# Languages langid tells apart badly, and that a reader would not call a switch.
KIN = {
    "nb": "no",
    "nn": "no",
    "da": "no",
    "gl": "es",
    "ca": "es",
    "bs": "hr",
    "sr": "hr",
    "ms": "id",
    "sk": "cs",
}
_WORD = re.compile(r"\w+")
_NOT_LETTERS = str.maketrans("", "", string.whitespace + string.punctuation + string.digits)
_CODE = re.compile(r"```.*?(?:```|\Z)|`[^`\n]*`|https?://\S+|\S+@\S+|<[^>\n]{1,200}>", re.DOTALL)
_LANGUAGE_NAMES = re.compile(
    r"\b(?:translat\w*|traduc\w*|tradu\w*|übersetz\w*|english|french|german|spanish|italian|portuguese|"
    r"dutch|russian|chinese|mandarin|cantonese|japanese|korean|arabic|hindi|turkish|polish|swedish|"
    r"norwegian|danish|finnish|greek|hebrew|czech|slovak|hungarian|romanian|ukrainian|vietnamese|thai|"
    r"indonesian|malay|persian|farsi|urdu|bengali|swahili|latin|catalan|tagalog|filipino|croatian|"
    r"serbian|bulgarian|estonian|latvian|lithuanian|slovenian|icelandic|irish|welsh|basque|galician|"
    r"anglais|français|francais|allemand|espagnol|italien|portugais|chinois|japonais|russe|"
    r"englisch|französisch|deutsch|spanisch|italienisch|chinesisch|japanisch|russisch|"
    r"inglés|ingles|francés|frances|alemán|aleman|español|castellano|italiano|portugués|chino|japonés)\b"
    r"|中文|英文|英语|英語|日本語|日语|한국어|영어|русск|английск|немецк|французск",
)
# Words frequent in one of these languages and rare in the others: a text full of one set and
# nearly free of the others is in that language, and two such texts in the same one need no model.
FUNCTION_WORDS = {
    "en": "the and is are of to that it for with you this be not have what how which can does if your we "
    "from by would there about when why than into has should they",
    "fr": "les et est des une du qui pour dans pas vous je ce sur avec sont au aux",
    "de": "der die das und ist nicht ein eine ich zu mit sie den von auf für sich wie auch dem",
    "es": "el los las pero más muy también hay esta este sus porque puede tiene cuando fue",
    "it": "di che è per non sono della gli nel questo anche più alla delle",
    "pt": "os não uma com é dos em são pelo pela isso você ele ela",
    "nl": "het een van dat niet op zijn voor met wat ook",
}
_LANGUAGE_OF = {word: language for language, words in FUNCTION_WORDS.items() for word in words.split()}


class LanguageCheck:
    """Whether an answer switched language. py3langid's model takes a second or so to load: it is
    loaded on a thread of its own when first needed (once per process), and until it is ready the
    check is skipped rather than holding up a response."""

    def __init__(self) -> None:
        self._loading = threading.Event()
        self._ready = threading.Event()
        self._identifier: Any = None

    def load(self, timeout: float | None = None) -> bool:
        """Start loading the model (if not yet started) and wait up to `timeout` for it."""
        if not self._loading.is_set():
            self._loading.set()
            threading.Thread(target=self._load, name="strato langid", daemon=True).start()
        return self._ready.wait(timeout)

    def _load(self) -> None:
        try:
            self._identifier = _identifier()
        except Exception:
            log.exception("could not load py3langid's model: answers are not checked for a language switch")
            return
        self._ready.set()

    def identify(self, text: str) -> tuple[str, float] | None:
        """(language, probability) of a text's prose, or None when it has too little or the model
        is not loaded yet."""
        sample = prose(text)
        return self._classify(sample) if _letters(sample) >= MIN_LETTERS else None

    def _classify(self, sample: str) -> tuple[str, float] | None:
        if not self.load(0):
            return None
        language, probability = self._identifier.classify(sample)
        return KIN.get(language, language), float(probability)

    def switch(self, request: dict[str, Any], answer: str) -> str | None:
        """What switched ("asked in de, answered in en"), or None."""
        question = last_user_text(request)
        if question is None:
            return None
        asked_sample, answer_sample = prose(question), prose(answer)
        if _letters(asked_sample) < MIN_LETTERS or _letters(answer_sample) < MIN_LETTERS:
            return None
        asked_guess, answer_guess = likely_language(asked_sample), likely_language(answer_sample)
        if asked_guess is not None and asked_guess == answer_guess:
            return None  # the common case, decided without the model
        # One side told by its function words: the model on the other first, which often agrees.
        first, other = (answer_sample, asked_sample) if asked_guess else (asked_sample, answer_sample)
        told = self._classify(first)
        if told is None or told[1] < MIN_PROBABILITY or told[0] == (asked_guess or answer_guess):
            return None
        second = self._classify(other)
        if second is None or second[1] < MIN_PROBABILITY or second[0] == told[0]:
            return None
        asked, answered = (second, told) if asked_guess else (told, second)
        if _names_a_language(request):
            return None  # "translate ...", "answer in French": a switch was asked for
        return f"asked in {asked[0]} (p={asked[1]:.2f}), answered in {answered[0]} (p={answered[1]:.2f})"


@functools.cache
def _identifier() -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier  # type: ignore[import-untyped]

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def likely_language(text: str) -> str | None:
    """The language of `text` by its function words, when they leave no doubt (at least 2 of one
    language's and 4 times as many as of any other), else None."""
    counts = collections.Counter(_LANGUAGE_OF.get(word) for word in _WORD.findall(text.lower()))
    counts.pop(None, None)
    ranked = counts.most_common(2)
    if not ranked:
        return None
    best, count = ranked[0]
    second = ranked[1][1] if len(ranked) > 1 else 0
    return best if count >= 2 and count >= 4 * second else None


def _letters(text: str) -> int:
    """Letters, nearly: characters other than ASCII spaces, digits and punctuation (fast)."""
    return len(text.translate(_NOT_LETTERS))


def prose(text: str) -> str:
    """The start of a text without its code, URLs, addresses and tags."""
    cut = text[: 4 * SAMPLE]
    if "`" in cut or "://" in cut or "@" in cut or "<" in cut:
        cut = _CODE.sub(" ", cut)
    return cut[:SAMPLE]


def last_user_text(request: dict[str, Any]) -> str | None:
    messages = request.get("messages")
    if isinstance(messages, list):
        for message in reversed(messages):
            if isinstance(message, dict) and message.get("role") == "user":
                content = message.get("content")
                return content if isinstance(content, str) else None
        return None
    prompt = request.get("prompt")
    return prompt if isinstance(prompt, str) else None


def _names_a_language(request: dict[str, Any]) -> bool:
    """Whether the system prompt or the last user message names a language or asks to translate."""
    texts: list[str] = []
    messages = request.get("messages")
    if isinstance(messages, list):
        texts += [
            str(m.get("content", "")) for m in messages if isinstance(m, dict) and m.get("role") == "system"
        ]
    texts.append(last_user_text(request) or "")
    return any(_LANGUAGE_NAMES.search(text[:20_000].lower()) for text in texts)
