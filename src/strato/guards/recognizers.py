"""Pattern recognisers for PII, each a regular expression plus a check that the match is real.

Scores follow Presidio's scale (0..1): a checksum-validated match scores high, a bare pattern lower,
and context words near the match ("phone", "ssn", "iban", ...) raise it. Words that say a number is
something else ("version", "order") lower it. Identifiers written to slip past a pattern have
recognisers of their own: an e-mail address spelled out ("john [at] example [dot] com") and a card
number grouped with dots, slashes or several separators ("4111.1111.1111.1111").
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass

CONTEXT_WINDOW = 40  # characters either side of a match searched for context words
CONTEXT_BOOST = 0.35
CONTEXT_PENALTY = 0.4


@dataclass(frozen=True)
class Recognizer:
    entity: str
    pattern: re.Pattern[str]
    score: float  # score of a match that passes `check`
    check: Callable[[str], float | None]  # None: not this entity; else a score multiplier (0..1]
    context: tuple[str, ...] = ()
    against: tuple[str, ...] = ()  # words that make a match less likely to be this entity
    # Whether a context word inside the match counts ("Main Street" supports an address); not for a
    # spelled-out address, whose own words ("mail at example dot com") say nothing about it.
    context_inside: bool = True


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


def luhn_valid(number: str) -> bool:
    digits = [int(c) for c in _digits(number)]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _credit_card(match: str) -> float | None:
    digits = _digits(match)
    if not 12 <= len(digits) <= 19 or len(set(digits)) < 2 or not luhn_valid(digits):
        return None
    return 1.0


def iban_valid(value: str) -> bool:
    iban = re.sub(r"[\s-]", "", value).upper()
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}", iban):
        return False
    if IBAN_LENGTHS.get(iban[:2], len(iban)) != len(iban):
        return False
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


# ISO 13616 lengths of the commonest countries; others are checked by mod-97 only.
IBAN_LENGTHS = {
    "AT": 20, "BE": 16, "CH": 21, "CZ": 24, "DE": 22, "DK": 18, "ES": 24, "FI": 18, "FR": 27,
    "GB": 22, "GR": 27, "HU": 28, "IE": 22, "IT": 27, "LU": 20, "NL": 18, "NO": 15, "PL": 28,
    "PT": 25, "SE": 24, "SK": 24,
}  # fmt: skip


def _iban(match: str) -> float | None:
    return 1.0 if iban_valid(match) else None


def _ssn(match: str) -> float | None:
    digits = _digits(match)
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    if area in {"000", "666"} or area[0] == "9" or group == "00" or serial == "0000":
        return None
    if len(set(digits)) == 1 or digits in {"123456789", "078051120"}:
        return None
    separators = set(re.sub(r"\d", "", match))
    if len(separators) > 1:
        return None
    return 1.0 if separators else 0.6  # nine bare digits are often something else


def _ipv4(match: str) -> float | None:
    try:
        address = ipaddress.IPv4Address(match)
    except ValueError:
        return None
    return 0.5 if address.is_unspecified else 1.0


def _ipv6(match: str) -> float | None:
    if match.count(":") < 2 or not re.search(r"[0-9A-Fa-f]", match):
        return None
    try:
        ipaddress.IPv6Address(match)
    except ValueError:
        return None
    return 1.0


_DATE = re.compile(r"\d{1,2}[-/.]\d{1,2}[-/.](?:19|20)?\d{2}")
_ISO_DATE = re.compile(r"(?:19|20)\d{2}[-/.](?:0?[1-9]|1[0-2])[-/.](?:0?[1-9]|[12]\d|3[01])(?!\d)")


def _phone(match: str) -> float | None:
    digits = _digits(match)
    if not 7 <= len(digits) <= 15 or len(set(digits)) < 3 or _DATE.fullmatch(match.strip()):
        return None
    stripped = match.strip()
    if _ISO_DATE.match(stripped):
        return None
    if stripped.startswith("+") or "(" in stripped:
        return 1.0
    if len(re.findall(r"\d+", stripped)) >= 3:
        return 1.0
    return 0.6  # a bare run of digits, or two groups (often a house number and a postcode)


_EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9](?:[A-Za-z0-9._%+-]{0,63})@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
    r"[A-Za-z]{2,24}(?![\w-])"
)
_CREDIT_CARD = re.compile(r"(?<![\w-])(?:\d[ -]?){11,18}\d(?![\w-])")
_IBAN = re.compile(
    r"(?<![\w])[A-Za-z]{2}\d{2}(?:[A-Za-z0-9]{11,30}|(?:[ -][A-Za-z0-9]{4}){2,7}(?:[ -][A-Za-z0-9]{1,3})?)"
    r"(?![\w])"
)
_SSN = re.compile(r"(?<![\w.-])\d{3}([- .]?)\d{2}\1\d{4}(?![\w-]|\.\d)")
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)")
_IPV6 = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{1,4}:|:){1,7}(?::|[0-9A-Fa-f]{1,4}|(?:\d{1,3}\.){3}\d{1,3})(?![\w:.])"
)
_PHONE = re.compile(
    r"(?<![\w+.-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{1,5}(?:[ .-]?\(?\d{1,4}\)?){1,4}"
    r"(?:\s?(?:x|ext\.?)\s?\d{1,5})?(?!\w|-\d|[.:]\d)"
)


# Card numbers grouped with other separators, or several: "4111.1111.1111.1111", "4111 / 1111 /
# 1111 / 1111", "3782_822463_10005". A real card's groups (4-4-4-4, 4-6-5, 4-6-4) are required:
# dotted figures, dates and versions are common, and one in ten passes the Luhn check.
_GROUP_SEPARATOR = r"(?:[ \t]{0,2}[./\\_-][ \t]{0,2}|[ \t]{1,3})"
_CARD_GROUPED = re.compile(
    rf"(?=\d{{4}})(?<![\w./\\-])\d{{4}}(?:(?:{_GROUP_SEPARATOR}\d{{4}}){{2,3}}(?:{_GROUP_SEPARATOR}\d{{1,4}})?|"
    rf"{_GROUP_SEPARATOR}\d{{6}}{_GROUP_SEPARATOR}\d{{4,5}})(?![\w/\\-]|[.,]\d)"
)


def _grouped_card(match: str) -> float | None:
    """As `_credit_card`, and the number must start as an issued card does (Visa 4, Mastercard 51-55
    and 2221-2720, Amex/Diners/JCB 3, Discover/UnionPay 6): a list of years ("1998.2004.2011.2019")
    can pass the Luhn check, but no card starts with 1 or 20."""
    digits = _digits(match)
    if digits[0] not in "3456" and not 222100 <= int(digits[:6]) <= 272099:
        return None
    return _credit_card(match)


# E-mail addresses spelled out: "john [at] example [dot] com", "john(at)example(dot)com", "john AT
# example DOT com", "john @ example . com", and the bare words "john at example dot com".
_OPEN, _CLOSE = r"[\[({<]", r"[\])}>]"
# One alternation after the spaces, not one per spelling: this runs at every word of the text.
_AT = rf"[ \t]*+(?:{_OPEN}[ \t]*(?i:at|@)[ \t]*{_CLOSE}|(?<=[ \t])(?i:at)(?=[ \t])|@)[ \t]*+"
_DOT = (
    rf"[ \t]*+(?:{_OPEN}[ \t]*(?i:dot|\.)[ \t]*{_CLOSE}|(?<=[ \t])(?i:dot|\.)(?=[ \t])|(?<![ \t])\.(?![ \t]))"
    r"[ \t]*+"
)  # a dot with a space on one side only ends a sentence ("noon. See")
_LABEL = r"(?>[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)"
# After the first word, a look ahead for any separator at all: most words fail it at once.
_SPELLED_EMAIL = re.compile(
    rf"\b(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9_%+-]{{0,63}}+(?=[ \t]*+[\[({{<@.]|[ \t]++(?i:at|dot)[ \t])"
    rf"(?:{_DOT}[A-Za-z0-9_%+-]{{1,63}}+)*+{_AT}(?:{_LABEL}{_DOT})+[A-Za-z]{{2,24}}(?![\w-])"
)
_AT_TOKEN, _DOT_TOKEN = re.compile(_AT), re.compile(_DOT)
_BRACKETED = re.compile(_OPEN)
_CAPITALS = re.compile(r"[ \t](?:AT|DOT)[ \t]")  # "john AT example DOT com", not a shouted sentence
_SPACED_AT = re.compile(r"[ \t]@|@[ \t]")
_SPACED_DOT = re.compile(r"[ \t]\.|\.[ \t]")
_SPOKEN_DOT = re.compile(r"[ \t](?i:dot)[ \t]")
# Words on either side of "at" in English that no address is made of.
_NOT_ADDRESS_WORDS = frozenset((
    "a", "an", "the", "this", "that", "these", "those", "my", "our", "your", "his", "her", "its",
    "their", "me", "us", "you", "him", "them", "it", "we", "they", "i", "he", "she", "one", "here",
    "there", "out", "online", "available",
))  # fmt: skip
# The top-level domains an address spelled out without brackets may end in, besides any two letters.
_COMMON_TLDS = frozenset((
    "com", "net", "org", "edu", "gov", "mil", "int", "info", "biz", "name", "pro", "mobi", "app",
    "dev", "tech", "online", "site", "store", "shop", "blog", "cloud", "email", "mail", "live", "news",
    "xyz", "club", "web", "page", "digital", "media", "agency", "company", "solutions", "services",
))  # fmt: skip


def _spelled_email(match: str) -> float | None:
    """An address hidden on purpose is as sure as a plain one. The bare words ("john at example dot
    com") are also how English says where someone was or a web address, so they score too low to
    count without an e-mail word near."""
    canonical = _DOT_TOKEN.sub(".", _AT_TOKEN.sub("@", match))
    if canonical == match or not _EMAIL.fullmatch(canonical):
        return None  # a plain address: `_EMAIL` finds it
    if _BRACKETED.search(match):  # "[at]", "(dot)": nobody writes that by accident
        return 1.0
    local, domain = canonical.split("@")
    if not _top_level_domain(domain.rsplit(".", 1)[1]):
        return None
    spaced_at, spoken_dot = _SPACED_AT.search(match), _SPOKEN_DOT.search(match)
    dot_hidden = spoken_dot or _SPACED_DOT.search(match)
    if _CAPITALS.search(match) and not local.isupper():
        return 1.0
    if (spaced_at and dot_hidden) or ("@" in match and spoken_dot):  # "john @ example . com"
        return 1.0
    if "@" in match and not spaced_at:
        return None  # "jo@example.com . Ihre": an address, then a full stop; `_EMAIL` has it
    if not spaced_at and not dot_hidden:
        return None  # "registered at clinicaltrials.gov": a web address, said as English says it
    words = {local.rsplit(".", 1)[-1].lower(), domain.split(".", 1)[0].lower()}
    return 0.3 if words.isdisjoint(_NOT_ADDRESS_WORDS) else None


def _top_level_domain(tld: str) -> bool:
    """Two letters (a country's) or a common generic one, in one case: "stayed at home dot dot dot"
    and "me @ home . Then" are sentences."""
    return (tld.islower() or tld.isupper()) and (len(tld) == 2 or tld.lower() in _COMMON_TLDS)


# Street addresses. The parts are built up here so each rule reads as the address it describes;
# matching is on normalised text, so the letters of a word may be any script's.
_UPPER = "A-ZÀ-ÖØ-ÞĀ-ŽΆ-ΏΑ-ΫЀ-Я"  # capitals of Latin, Greek and Cyrillic (Latin Extended-A mixed)
_WORD = rf"(?>[{_UPPER}][^\W\d_]*+(?:['’.-][^\W\d_]++)*+\.?)"  # capitalised: O'Connell, Saint-Jean
_ORDINAL = r"\d{1,3}(?:st|nd|rd|th)"
_LINKS = r"(?:de|la|le|du|des|del|della|dei|di|da|do|dos|das|van|von|der|den|of|the|y|z|al|el)"
_NAME = rf"(?:{_LINKS}[ ])*(?:{_WORD}|{_ORDINAL})(?:[ ](?:{_LINKS}[ ])*(?:{_WORD}|{_ORDINAL})){{0,3}}"
_HOUSE = r"\d{1,6}[A-Za-z]?(?:-\d{1,4})?(?:[ ]\d{1,5}[A-Za-z]?)?"  # "221B", "10-12", "363 52"
_STREET_TYPES = (
    "Street|St|Avenue|Ave|Av|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Place|Pl|Square|Sq|"
    "Terrace|Ter|Way|Parkway|Pkwy|Highway|Hwy|Circle|Cir|Close|Crescent|Cres|Gardens|Gdns|Grove|Row|"
    "Mews|Walk|Trail|Trl|Alley|Plaza|Loop|Pike|Expressway|Expy|Freeway|Fwy|Turnpike|Causeway|"
    "Esplanade|Parade|Quay|Wharf|Str"
)
# Street types that are also ordinary nouns after a number ("3 Blue Lakes"): scored lower.
_WEAK_TYPES = (
    "Points?|Ridges?|Hills?|Heights|View|Park|Greens?|Rise|Vale|Coves?|Creek|Bend|Glen|Harbou?r|"
    "Meadows?|Landing|Junction|Estates?|Cent(?:er|re)|Hollow|Islands?|Lakes?|Manor|Mills?|Orchard|"
    "Pass|Springs?|Station|Summit|Valley|Villas?|Vista|Cliffs?|Fords?|Forest|Shores?|Falls|Fields?|"
    "Knolls?|Ports?|Ranch|Rapids|Unions?|Ways|Crossing|Trace|Track|Oval|Canyon|Camp|Bypass|Isle|"
    "Mall|Gateway|Courts|Streets|Roads|Drives|Squares"
)
_UNIT = (
    r"(?i:apt\.?|apartment|suite|ste\.?|unit|flat|floor|fl\.?|room|rm\.?|bldg\.?|building|#)"
    r"[ ]?#?[A-Za-z]?\d{1,5}[A-Za-z]?"
)
_QUOTE = r"(?:>[ \t]*)*"  # an address in a quoted e-mail reply
_UNITS = rf"(?:[ \t]*,?[ \t]*(?:\n[ \t]*{_QUOTE})?{_UNIT}){{0,2}}"
_POSTCODE = r"\d{5}(?:-\d{4})?|[A-Z]{1,2}\d[A-Z\d]?[ ]?\d[A-Z]{2}|[A-Z]\d[A-Z][ ]?\d[A-Z]\d"  # US, UK, CA
_BREAK = rf"[ \t]*[,\n][ \t]*(?:[,\n][ \t]*){{0,2}}{_QUOTE}"  # ", " or a new line (or both)
_TOWN = rf"{_WORD}(?:[ ]{_WORD}){{0,2}}"
# ", Springfield, IL 62704", "\nLondon SW1A 1AA", "\n Riisa\n Estonia 62488": towns, then a postcode.
_TAIL = rf"(?:(?:{_BREAK}{_TOWN}){{1,3}}(?:{_BREAK}[A-Z]{{2,3}})?(?:{_BREAK}|[ \t]+)(?:{_POSTCODE})(?!\w))?"
_END = r"(?![\w-])"
_START = r"(?<![\w.,-])"
# A word followed by a number within the next few words: cheap to check, and most text fails it,
# which spares the rules below their costly alternatives at almost every word.
_NUMBER_AHEAD = r"(?=(?:[^\W\d][\w'’.-]*+[ ]){0,3}+\d)"

# 123 Main Street, Apt 5, Springfield, IL 62704 / 42 Baker St / 1600 Pennsylvania Avenue NW
_ADDRESS = re.compile(
    rf"{_START}{_HOUSE}[ ]{_NAME}[ ](?i:{_STREET_TYPES}|{_WEAK_TYPES})\.?"
    rf"(?:[ ](?:N|S|E|W|NE|NW|SE|SW))?{_END}{_UNITS}{_TAIL}"
)
# Via Roma 131, 29 Rue de Tanger, ul. Słowicza 10, Avenida Paulista 1578, C/ Mayor 5
_PREFIXED = re.compile(
    rf"{_START}(?:{_HOUSE}[ ])?(?:Via|Viale|Vicolo|Piazza|Piazzale|Corso|Largo|Strada|Rue|Avenue|"
    rf"Boulevard|Chemin|Impasse|Allée|Quai|Rua|Rúa|Avenida|Avda\.|Av\.|Travessa|Praça|Calle|C/|Carrer|"
    rf"Paseo|Plaza|Camino|Ronda|Ulica|ul\.|al\.|Aleja|Bulevardul|Str\.|Odos|rue)[ ]{_NAME}"
    rf"(?:[ ]\d{{1,5}}[A-Za-z]?\.?)?{_END}{_UNITS}{_TAIL}"
)
# Friedhofstrasse 33, gesterbyntie 68, Passauer Strasse 33, Trenerys gate 232, Rákóczi út 66.
_COMPOUND_TYPES = (
    "strasse", "straße", "str.", "weg", "gasse", "platz", "allee", "damm", "ufer", "laan", "straat",
    "gracht", "plein", "kade", "steeg", "vej", "gade", "gatan", "vägen", "gränd", "veien", "vegen",
    "vegur", "gata", "tie", "katu", "kuja", "polku", "utca", "braut", "stræde", "stræti", "straeti",
    "vænget", "stien", "bakken", "vangen", "torv", "hove",
)  # fmt: skip
# A word that ends in one of them, tested after the word is read (not at each of its letters).
_ENDS_IN_TYPE = "(?i:" + "|".join(f"(?<={re.escape(t)})" for t in _COMPOUND_TYPES) + ")"
_SEPARATE_TYPES = (
    "út|útja|tér|utca|u\\.|gate|gata|vei|veien|vej|gade|Strasse|Straße|Weg|Gasse|Platz|Allee|laan|"
    "straat|tie|katu|str\\.|Str\\."
)
_COMPOUND = re.compile(
    rf"{_START}{_NUMBER_AHEAD}(?:{_HOUSE}[ ])?(?:{_WORD}[ ]){{0,2}}(?:[^\W\d_]++\.?{_ENDS_IN_TYPE}|"
    rf"{_WORD}[ ](?:[^\W\d_]++[ ])?(?:{_SEPARATE_TYPES}))[ ]\d{{1,5}}[A-Za-z]?\.?{_END}{_UNITS}{_TAIL}"
)
# 20789 Allika 46, Apt 5 / 450 Præstevænget 15: a name between numbers, or before a unit or a town
_NUMBERED = re.compile(
    rf"{_START}(?:{_HOUSE}[ ])?{_WORD}(?:[ ]{_WORD}){{0,2}}[ ]\d{{1,5}}[A-Za-z]?\.?"
    rf"(?:[ ](?i:st|street)\.?)?{_END}{_UNITS}{_TAIL}"
)
# P.O. Box 287, PO Box 12, Postbox 53; US military mail: PSC 3294, Box 9168 APO AA 61487
_PO_BOX = re.compile(
    r"(?<![\w.])(?i:p\.?[ ]?o\.?[ ]?box|post[ ]?office[ ]?box|postbox|(?:psc|unit|cmr)[ ]\d{3,5},?[ ]box)"
    r"[ ]#?\d{1,6}(?:\s+(?i:apo|fpo|dpo)[ ](?i:aa|ae|ap)[ ]\d{5})?(?!\w)"
)
_SHIP_MAIL = re.compile(
    r"(?<![\w.])(?i:usns|usnv|uss|uscgc)[ ](?:[^\W\d_]+[ ]?){1,3}\s*(?i:fpo[ ]a[aep])[ ]\d{5}(?!\w)"
)
# "the corner of 5th Avenue and Main St."
_SIDE = rf"[\d{_UPPER}][^\W_]*\.?(?:[ ](?!and\b)[^\W_]+\.?){{0,4}}"  # "5th Avenue", "Main St."
_CORNER = re.compile(rf"[Cc]orner[ ]of[ ]{_SIDE}[ ]and[ ]{_SIDE}(?=[ ]*(?:[,.;:!?)\n]|$))")
# "Apt. 5" on a line of its own: a line of an address block (not "Unit 5", a syllabus heading).
_UNIT_LINE = re.compile(
    r"(?:(?<=\n)|(?<=\n )|(?<=\n>)|(?<=\n> )|(?<=\n  )|\A)(?i:apt\.?|apartment|suite|ste\.?)"
    r"[ ]?#?\d{1,5}[A-Za-z]?(?=[ \t]*(?:\n|\Z))"
)
_YEAR = re.compile(r"(?:1[5-9]|20)\d\d")
_POSTCODE_END = r"\d{5}(?:-\d{4})?$|\d[A-Z]{2}$|[A-Z]\d$"
_FULL = re.compile(rf"{_UNIT}|{_POSTCODE_END}")  # a unit or a postcode: the rest of an address
_FULL_STRICT = re.compile(rf"(?i:apt\.?|apartment|suite|ste\.?)[ ]?#?[A-Za-z]?\d|{_POSTCODE_END}")
_ENGLISH_PREFIXES = ("Avenue", "Boulevard", "Plaza")  # "Avenue Q 3 times", "Plaza Hotel 5 stars"
_NOT_STREETS = ("brigade", "renegade", "cutie", "sweetie", "necktie", "bowtie", "untie")


def _street_address(match: str) -> float | None:
    """A number and a street name with its type: weaker when the number looks like a year ("in 2019
    Google Drive") or the type is also a plain noun, stronger with a unit or a postcode."""
    first, rest = match.split(" ", 1)
    if _FULL.search(rest):
        return 1.0
    factor = 0.5 if _YEAR.fullmatch(first) else 1.0
    street_type = re.search(r"([^\W\d_]+)\.?(?:[ ](?:N|S|E|W|NE|NW|SE|SW))?$", match)
    if street_type and re.fullmatch(_WEAK_TYPES, street_type.group(1).title()):
        factor *= 0.6
    return factor


def _foreign_street(match: str) -> float | None:
    """Continental streets need a number somewhere to be an address and not a place's name; one
    that starts with a word English uses too ("Avenue Q 3 times") needs an address word near."""
    if not re.search(r"\d", match) or any(word in match.lower() for word in _NOT_STREETS):
        return None
    if match.startswith(_ENGLISH_PREFIXES) and not _FULL.search(match):
        return 0.6
    return 1.0


def _numbered_name(match: str) -> float | None:
    """A capitalised name and a number ("Windows 10") is an address only with more: a unit, a town
    and postcode, a street type, or a house number before it (then only with an address word near)."""
    number = re.search(r"[^\W\d_][ ]\d", match)
    rest = match[number.end() :] if number else ""
    # Not "Floor 3" or "#1" here: "Windows 10, Floor 3" and "Python 3 #1" are not addresses.
    if _FULL_STRICT.search(rest) or re.search(r"(?i:st|street)\.?$", rest):
        return 1.0
    if re.match(r"\d", match) and not _YEAR.match(match):
        return 0.5
    return None


# A place word near a match supports it. Words of an address itself ("street", "suite") support
# only the rules that match no such word, or that score high already when they include one.
PLACE_CONTEXT = (
    "address", "lives at", "live at", "living at", "lives on", "located at", "deliver", "delivery",
    "ship to", "shipping", "mailing", "billing", "postal", "residence", "reside", "moved to",
    "drops you off", "stop at",
)  # fmt: skip
ADDRESS_CONTEXT = (*PLACE_CONTEXT, "apt", "apartment", "suite")
STREET_CONTEXT = (*ADDRESS_CONTEXT, "street")
SPELLED_EMAIL_CONTEXT = ("email", "e-mail", "mail", "contact", "write to", "reach me", "reach us", "address")
CARD_CONTEXT = ("card", "credit", "visa", "mastercard", "amex", "debit", "cc", "payment")
CARD_AGAINST = ("order", "tracking", "invoice", "account no")
ADDRESS_AGAINST = ("version", "chapter", "page", "figure", "step", "section", "table", "verse", "season")


RECOGNIZERS: tuple[Recognizer, ...] = (
    Recognizer("EMAIL_ADDRESS", _EMAIL, 1.0, lambda _: 1.0, ("email", "e-mail", "mail", "contact")),
    Recognizer(
        "EMAIL_ADDRESS", _SPELLED_EMAIL, 1.0, _spelled_email, SPELLED_EMAIL_CONTEXT, context_inside=False
    ),
    Recognizer("CREDIT_CARD", _CREDIT_CARD, 1.0, _credit_card, CARD_CONTEXT, CARD_AGAINST),
    Recognizer("CREDIT_CARD", _CARD_GROUPED, 1.0, _grouped_card, CARD_CONTEXT, CARD_AGAINST),
    Recognizer("IBAN_CODE", _IBAN, 1.0, _iban, ("iban", "bank", "account", "transfer")),
    Recognizer(
        "US_SSN",
        _SSN,
        0.5,
        _ssn,
        ("ssn", "social security", "social", "security number", "ss#", "taxpayer"),
        ("phone", "order", "zip", "tracking"),
    ),
    Recognizer(
        "IP_ADDRESS",
        _IPV4,
        0.6,
        _ipv4,
        ("ip", "address", "host", "server", "client", "connect", "ping", "from"),
        ("version", "release", "v", "build", "firmware", "oid", "snmp"),
    ),
    Recognizer("IP_ADDRESS", _IPV6, 0.8, _ipv6, ("ip", "ipv6", "address", "host", "server")),
    Recognizer(
        "PHONE_NUMBER",
        _PHONE,
        0.45,
        _phone,
        ("phone", "call", "tel", "telephone", "mobile", "cell", "fax", "contact", "reach", "number", "dial"),
        ("order", "invoice", "isbn", "version", "id", "date", "zip", "iban", "account", "card", "ssn"),
    ),
    Recognizer("STREET_ADDRESS", _ADDRESS, 0.6, _street_address, ADDRESS_CONTEXT, ADDRESS_AGAINST),
    Recognizer("STREET_ADDRESS", _PREFIXED, 0.5, _foreign_street, STREET_CONTEXT, ADDRESS_AGAINST),
    Recognizer("STREET_ADDRESS", _COMPOUND, 0.5, _foreign_street, STREET_CONTEXT, ADDRESS_AGAINST),
    Recognizer("STREET_ADDRESS", _NUMBERED, 0.6, _numbered_name, STREET_CONTEXT, ADDRESS_AGAINST),
    Recognizer("STREET_ADDRESS", _PO_BOX, 0.7, lambda _: 1.0, ADDRESS_CONTEXT),
    Recognizer("STREET_ADDRESS", _SHIP_MAIL, 0.7, lambda _: 1.0, ADDRESS_CONTEXT),
    Recognizer("STREET_ADDRESS", _CORNER, 0.5, lambda _: 1.0, ADDRESS_CONTEXT),
    Recognizer("STREET_ADDRESS", _UNIT_LINE, 0.4, lambda _: 1.0, (), ADDRESS_AGAINST),
)
