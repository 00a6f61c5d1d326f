"""Zero-width characters and look-alike digits do not hide PII, and spans point into the sent text."""

from __future__ import annotations

from strato.guards.normalize import normalize
from strato.guards.pii import PIIScanner

SCANNER = PIIScanner()


def test_zero_width_characters_inside_an_email() -> None:
    text = "mail jo\u200b.doe@exa\u200dmple.com now"
    [finding] = SCANNER.detect(text, 0.4)
    assert finding.type == "EMAIL_ADDRESS"
    assert text[finding.start : finding.end] == "jo\u200b.doe@exa\u200dmple.com"


def test_full_width_digits_in_a_card_number() -> None:
    text = "card ４１１１ １１１１ １１１１ １１１１ ok"
    [finding] = SCANNER.detect(text, 0.4)
    assert finding.type == "CREDIT_CARD"
    assert (finding.start, finding.end) == (5, 24)
    assert finding.text == text[5:24]


def test_other_scripts_digits_and_soft_hyphens_in_an_ssn() -> None:
    text = "ssn \u0664\u0666\u0660-89-98\u00ad47"  # Arabic-Indic 460, a soft hyphen inside
    [finding] = SCANNER.detect(text, 0.4)
    assert finding.type == "US_SSN"
    assert finding.text == text[4:]


def test_mathematical_digits_in_an_ip_address() -> None:
    text = "from 𝟏𝟗𝟐.168.0.1"
    [finding] = SCANNER.detect(text, 0.4)
    assert finding.type == "IP_ADDRESS" and finding.text == "𝟏𝟗𝟐.168.0.1"


def test_map_back_to_the_original() -> None:
    norm = normalize("a\u200bb１c")
    assert norm.text == "ab1c"
    assert norm.span(1, 3) == (2, 4)
