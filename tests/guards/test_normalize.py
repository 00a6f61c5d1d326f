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


def test_look_alike_letters_fold_to_latin_in_a_disguised_word() -> None:
    text = "my pаsswоrd and ѕесrеt"  # Cyrillic а о in a Latin word; a word of Cyrillic look-alikes only
    norm = normalize(text)
    assert norm.text == "my password and secret"
    assert len(norm.text) == len(text) and norm.span(3, 11) == (3, 11)


def test_greek_look_alikes_fold_too() -> None:
    assert normalize("αdmin Ρуthοn").text == "admin Python"


def test_russian_and_greek_words_keep_their_letters() -> None:
    text = "Привет, меня зовут Иван. Καλημέρα κόσμε"
    assert normalize(text).text == text


def test_pii_in_russian_and_greek_text_is_still_found() -> None:
    text = "Мой телефон +7 916 123-45-67, почта ivan.petrov@mail.ru. Τηλέφωνο +30 21 0123 4567"
    found = [(f.type, f.text) for f in SCANNER.detect(text, 0.4)]
    assert ("EMAIL_ADDRESS", "ivan.petrov@mail.ru") in found
    assert ("PHONE_NUMBER", "+7 916 123-45-67") in found
    assert ("PHONE_NUMBER", "+30 21 0123 4567") in found


def test_a_disguised_email_is_found_with_the_senders_span() -> None:
    text = "write to jоhn.dое@exаmple.com"  # Cyrillic о, е, а
    [finding] = SCANNER.detect(text, 0.4)
    assert finding.type == "EMAIL_ADDRESS" and finding.text == "jоhn.dое@exаmple.com"


def test_look_alikes_across_a_zero_width_character() -> None:
    norm = normalize("р\u200bаypal")  # Cyrillic р, a zero-width space, Cyrillic а
    assert norm.text == "paypal"
    assert norm.span(0, 6) == (0, 7)
