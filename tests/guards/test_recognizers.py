"""Each PII recogniser finds real identifiers and lets look-alikes through."""

from __future__ import annotations

import pytest

from strato.guards.pii import PIIScanner
from strato.guards.recognizers import iban_valid, luhn_valid

SCANNER = PIIScanner()
THRESHOLD = 0.4  # the configured default


def found(text: str) -> list[tuple[str, str]]:
    return [(f.type, f.text) for f in SCANNER.detect(text, THRESHOLD)]


@pytest.mark.parametrize(
    ("text", "entity", "value"),
    [
        ("write to jo.doe+news@example.co.uk today", "EMAIL_ADDRESS", "jo.doe+news@example.co.uk"),
        ("pay with 4111 1111 1111 1111 please", "CREDIT_CARD", "4111 1111 1111 1111"),
        ("card 4454794511390933 on file", "CREDIT_CARD", "4454794511390933"),
        ("amex 3782-822463-10005", "CREDIT_CARD", "3782-822463-10005"),
        ("IBAN GB82 WEST 1234 5698 7654 32 for the transfer", "IBAN_CODE", "GB82 WEST 1234 5698 7654 32"),
        ("to DE89370400440532013000", "IBAN_CODE", "DE89370400440532013000"),
        ("lower case gb82west12345698765432 works", "IBAN_CODE", "gb82west12345698765432"),
        ("my ssn is 460-89-9847", "US_SSN", "460-89-9847"),
        ("social security number 460899847", "US_SSN", "460899847"),
        ("connect from 192.168.10.1 now", "IP_ADDRESS", "192.168.10.1"),
        ("host 2001:db8::8a2e:370:7334 is up", "IP_ADDRESS", "2001:db8::8a2e:370:7334"),
        (
            "ipv6 6e40:4041:c617:e898:c11:40d2:c669:2eb4",
            "IP_ADDRESS",
            "6e40:4041:c617:e898:c11:40d2:c669:2eb4",
        ),
        ("call +1-984-182-0190 after six", "PHONE_NUMBER", "+1-984-182-0190"),
        ("phone (541) 714-1388", "PHONE_NUMBER", "(541) 714-1388"),
        ("tel +46 (0)8 928 571 38", "PHONE_NUMBER", "+46 (0)8 928 571 38"),
        ("mobile 07700 063 966", "PHONE_NUMBER", "07700 063 966"),
        ("office 345-899-3560x4587", "PHONE_NUMBER", "345-899-3560x4587"),
        ("Phone: 370 3911", "PHONE_NUMBER", "370 3911"),  # two groups count with a context word
        ("(37) 788-063-Office", "PHONE_NUMBER", "(37) 788-063"),
        ("Phone:\n60-56-85-91", "PHONE_NUMBER", "60-56-85-91"),
    ],
)
def test_finds_real_identifiers(text: str, entity: str, value: str) -> None:
    assert (entity, value) in found(text)


@pytest.mark.parametrize(
    "text",
    [
        "card 4111 1111 1111 1112",  # fails the Luhn check
        "order 1234567812345678",  # fails the Luhn check
        "IBAN GB82 WEST 1234 5698 7654 33",  # wrong mod-97 checksum
        "IBAN DE89370400440532013001",  # wrong mod-97 checksum
        "IBAN GB82WEST123456987654",  # wrong length for GB
        "ssn 000-12-3456",  # area 000 is never issued
        "ssn 666-12-3456",  # nor 666
        "ssn 123-00-4567",  # nor group 00
        "upgrade to version 1.2.3.4 tonight",  # a version string, not an address
        "release v10.0.0.1 is out",
        "value 256.1.1.1 is out of range",  # not a valid IPv4 address
        "it was 12:30:45 when we left",  # a time, not IPv6
        "the build 1.2.3.4.5 passed",
        "mail at example dot com",
        "meet on 2023-01-15",  # a date, not a phone number
        "reference 12345",  # too short for anything
        "logged at 2000-04-16 11:30:00",  # a timestamp
        "Main St 370 3911 Springfield",  # two bare digit groups: a house number and a postcode?
    ],
)
def test_lets_look_alikes_through(text: str) -> None:
    assert found(text) == []


def test_context_words_move_the_score() -> None:
    bare = SCANNER.detect("460899847", 0.0)
    supported = SCANNER.detect("ssn: 460899847", 0.0)
    assert bare and supported and supported[0].score > bare[0].score
    assert bare[0].score < THRESHOLD <= supported[0].score


def test_checksums() -> None:
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert iban_valid("GB82 WEST 1234 5698 7654 32") and not iban_valid("GB82 WEST 1234 5698 7654 23")


def test_overlapping_candidates_keep_the_best() -> None:
    """A card number also looks like a phone number; the checksum-validated card wins."""
    assert found("number 4111111111111111") == [("CREDIT_CARD", "4111111111111111")]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("I live at 123 Main Street, Springfield.", "123 Main Street"),
        ("Send it to 42 Baker St, Apt 5 please", "42 Baker St, Apt 5"),
        (
            "Ship to 1600 Pennsylvania Avenue NW, Washington, DC 20500 today",
            "1600 Pennsylvania Avenue NW, Washington, DC 20500",
        ),
        ("address: 221B Baker Street, London NW1 6XE", "221B Baker Street, London NW1 6XE"),
        (
            "Our office: 500 W 5th Ave, Suite 200\nAnchorage, AK 99501",
            "500 W 5th Ave, Suite 200\nAnchorage, AK 99501",
        ),
        ("mail it to P.O. Box 287 instead", "P.O. Box 287"),
        ("PSC 3294, Box 9168\nAPO AA 61487", "PSC 3294, Box 9168\nAPO AA 61487"),
        ("his address: 6138 Via Roma 131", "6138 Via Roma 131"),
        ("Wir wohnen in der Friedhofstrasse 33.", "Friedhofstrasse 33."),
        ("The bus station is on Passauer Strasse 89", "Passauer Strasse 89"),
        ("Tilly lives at 10252 Μεγάλη Άμμος 184, ΠΑΦΟΣ", "10252 Μεγάλη Άμμος 184"),
        ("meet at the corner of 5th Avenue and Main St.", "corner of 5th Avenue and Main St."),
        ("Jane Doe\n77 Elm Road\nApt. 4\n", "77 Elm Road\nApt. 4"),
    ],
)
def test_finds_street_addresses(text: str, value: str) -> None:
    assert ("STREET_ADDRESS", value) in found(text)


@pytest.mark.parametrize(
    "text",
    [
        "In 2019 Google Drive added shared folders.",  # a year, not a house number
        "Python 3 is faster than Python 2 in many ways.",
        "Windows 10 and macOS 14 both support it.",
        "Read chapter 12 Main Street by Sinclair Lewis.",
        "There are 5 Great Lakes.",
        "Step 3: Place the 2 eggs in the bowl.",
        "The test suite 5 failed; rerun unit 3 tests.",
        "Unit 5 covers fractions.\nUnit 6\nDecimals",  # a syllabus, not an address block
        "Apollo 11 landed in 1969.",
        "World War 2 ended in 1945.",
        "He bought 2 Tesla Model 3 cars.",
        "Go to the corner of the settings page and click enable.",
        "The Rue de Rivoli is long.",  # a street without a number is a place, not an address
        "We saw Avenue Q 3 times and stayed at the Plaza Hotel 5 nights.",
        "Windows 10, Floor 3",
        "Python 3 #1 language",
        "sent via Fedex 2 days ago",
    ],
)
def test_lets_address_look_alikes_through(text: str) -> None:
    assert [v for e, v in found(text) if e == "STREET_ADDRESS"] == []


@pytest.mark.parametrize(
    "text",
    [
        "The total is 23786 - 17509 = <<23786-17509=6277>>6277",
        "So it took him 180-85-36=<<180-85-36=59>>59 minutes",
        "He paid $400 000 x 3/100 = $12 000 in fees",
        "$409 500 - $400 000 = $<<409500-400000=9500>>9500 more",
        "The climb is 6,000 - 3,000 = 3,000 feet",
    ],
)
def test_numbers_in_a_calculation_are_not_phones_or_cards(text: str) -> None:
    assert [f.type for f in PIIScanner().detect(text, 0.4)] == []


def test_phones_and_cards_next_to_words_are_still_found() -> None:
    text = "Call +1-984-182-0190 or pay with 4111 1111 1111 1111 (total: $20)."
    assert [f.type for f in PIIScanner().detect(text, 0.4)] == ["PHONE_NUMBER", "CREDIT_CARD"]
