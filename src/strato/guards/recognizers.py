"""Pattern recognisers for PII, each a regular expression plus a check that the match is real.

Scores follow Presidio's scale (0..1): a checksum-validated match scores high, a bare pattern lower,
and context words near the match ("phone", "ssn", "iban", ...) raise it. Words that say a number is
something else ("version", "order") lower it.
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

RECOGNIZERS: tuple[Recognizer, ...] = (
    Recognizer("EMAIL_ADDRESS", _EMAIL, 1.0, lambda _: 1.0, ("email", "e-mail", "mail", "contact")),
    Recognizer(
        "CREDIT_CARD",
        _CREDIT_CARD,
        1.0,
        _credit_card,
        ("card", "credit", "visa", "mastercard", "amex", "debit", "cc", "payment"),
        ("order", "tracking", "invoice", "account no"),
    ),
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
)
