"""PII written to slip past a pattern (spelled out, spaced out, oddly separated) is still found, the
finding covers exactly what the sender wrote, and ordinary text that looks a little like it is not."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import openai
import pytest

from strato.config import GuardsSettings
from strato.guards.normalize import closed_up
from strato.guards.pii import PIIGuard, PIIScanner
from strato.guards.verdict import ScanContext
from tests.support.inprocess import InProcess, in_process
from tests.support.upstream import Upstream

SCANNER = PIIScanner()
THRESHOLD = 0.4  # the configured default

# The three strings of the issue: each reached the model with `pii.enforce` on.
ISSUE = [
    ("j o h n @ e x a m p l e . c o m", "EMAIL_ADDRESS"),
    ("john [at] example [dot] com", "EMAIL_ADDRESS"),
    ("4111.1111.1111.1111", "CREDIT_CARD"),
]


def found(text: str) -> list[tuple[str, str]]:
    return [(f.type, f.text) for f in SCANNER.detect(text, THRESHOLD)]


@pytest.fixture
async def enforcing(tmp_path: Path, upstream: Upstream) -> AsyncIterator[InProcess]:
    guards = {"pii": {"enforce": True, "input": {"action": "redact"}}}
    async with in_process(tmp_path, [upstream.model("echo")], guards=guards) as served:
        yield served


@pytest.mark.parametrize(("value", "entity"), ISSUE)
async def test_the_issues_evasions_never_reach_the_model(
    enforcing: InProcess, upstream: Upstream, value: str, entity: str
) -> None:
    message = f"Please use {value} for the booking."
    answer = await enforcing.sdk().chat.completions.create(
        model="echo", messages=[{"role": "user", "content": message}]
    )
    seen = upstream.requests[-1]["messages"][-1]["content"]
    assert seen == f"Please use <{entity}_1> for the booking."  # the model saw a placeholder
    assert answer.choices[0].message.content == f"echo: {message}"  # the caller gets the value back


async def test_a_dotted_card_is_blocked_when_cards_are(tmp_path: Path, upstream: Upstream) -> None:
    guards = {"pii": {"enforce": True, "input": {"entities": {"CREDIT_CARD": "block"}}}}
    async with in_process(tmp_path, [upstream.model("echo")], guards=guards) as served:
        before = upstream.calls
        with pytest.raises(openai.BadRequestError) as caught:
            await served.sdk().chat.completions.create(
                model="echo", messages=[{"role": "user", "content": "card 4111.1111.1111.1111"}]
            )
    assert caught.value.code == "guard_blocked:pii"
    assert upstream.calls == before


@pytest.mark.parametrize(
    ("text", "entity", "value"),
    [
        ("mail j o h n @ e x a m p l e . c o m now", "EMAIL_ADDRESS", "j o h n @ e x a m p l e . c o m"),
        ("j o h n [at] e x a m p l e [dot] c o m", "EMAIL_ADDRESS", "j o h n [at] e x a m p l e [dot] c o m"),
        ("write to john [at] example [dot] com.", "EMAIL_ADDRESS", "john [at] example [dot] com"),
        ("john(at)example(dot)co(dot)uk", "EMAIL_ADDRESS", "john(at)example(dot)co(dot)uk"),
        ("ann {at} mail {dot} example {dot} org", "EMAIL_ADDRESS", "ann {at} mail {dot} example {dot} org"),
        ("jo.doe<at>example<dot>de", "EMAIL_ADDRESS", "jo.doe<at>example<dot>de"),
        ("JOHN [AT] EXAMPLE [DOT] COM", "EMAIL_ADDRESS", "JOHN [AT] EXAMPLE [DOT] COM"),
        ("reach john AT example DOT com", "EMAIL_ADDRESS", "john AT example DOT com"),
        ("it is john @ example . com", "EMAIL_ADDRESS", "john @ example . com"),
        ("it is john@example dot com", "EMAIL_ADDRESS", "john@example dot com"),
        ("email: jo dot li at example dot com", "EMAIL_ADDRESS", "jo dot li at example dot com"),
        ("email me at mail at example dot com", "EMAIL_ADDRESS", "mail at example dot com"),
        ("card 4111.1111.1111.1111 ok", "CREDIT_CARD", "4111.1111.1111.1111"),
        ("card 4111/1111/1111/1111", "CREDIT_CARD", "4111/1111/1111/1111"),
        ("card 4111 / 1111 / 1111 / 1111", "CREDIT_CARD", "4111 / 1111 / 1111 / 1111"),
        ("card 5555-5555 5555.4444", "CREDIT_CARD", "5555-5555 5555.4444"),  # mixed
        ("card 4111_1111_1111_1111", "CREDIT_CARD", "4111_1111_1111_1111"),
        ("amex 3782.822463.10005", "CREDIT_CARD", "3782.822463.10005"),
        ("card 2223.0031.2200.3222", "CREDIT_CARD", "2223.0031.2200.3222"),  # Mastercard 2-series
        ("pay 4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1", "CREDIT_CARD", "4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1"),
        ("call 5 5 5 - 1 2 3 - 4 5 6 7 tonight", "PHONE_NUMBER", "5 5 5 - 1 2 3 - 4 5 6 7"),
        ("phone + 4 4 7 7 0 0 9 0 0 1 2 3", "PHONE_NUMBER", "+ 4 4 7 7 0 0 9 0 0 1 2 3"),
        ("my ssn is 4 6 0 - 8 9 - 9 8 4 7", "US_SSN", "4 6 0 - 8 9 - 9 8 4 7"),
    ],
)  # fmt: skip
def test_finds_obfuscated_identifiers_with_the_senders_span(text: str, entity: str, value: str) -> None:
    assert (entity, value) in found(text)


def test_a_spaced_out_iban_is_checked_as_a_written_one() -> None:
    spaced = " ".join("DE89370400440532013000")
    assert found(f"iban {spaced}") == [("IBAN_CODE", spaced)]
    assert found(f"iban {' '.join('DE89370400440532013001')}") == []  # wrong mod-97 checksum


def test_full_width_letters_spaced_out_map_back_to_what_was_sent() -> None:
    text = "to ｊ ｏ ｈ ｎ ＠ ｅ ｘ ａ ｍ ｐ ｌ ｅ . ｃ ｏ ｍ now"
    [finding] = SCANNER.detect(text, THRESHOLD)
    assert finding.type == "EMAIL_ADDRESS" and finding.text == text[3:-4]


def test_redaction_replaces_exactly_the_obfuscated_span_and_restores_it() -> None:
    guard = PIIGuard(GuardsSettings())
    context = ScanContext()
    text = "Mail j o h n @ e x a m p l e . c o m or ann [at] example [dot] org, card 4111.1111.1111.1111."
    verdict = guard.scan_now(text, context)
    assert verdict.text == "Mail <EMAIL_ADDRESS_1> or <EMAIL_ADDRESS_2>, card <CREDIT_CARD_1>."
    assert context.placeholders.restore(verdict.text) == text


@pytest.mark.parametrize(
    "text",
    [
        "meet me at home dot",
        "john at example dot com",  # bare words and no e-mail word near: could be anything
        "mail at example dot com",  # the match's own word "mail" is no context for it
        "find us at strato dot io, or email us",  # a web address said aloud
        "we invested at the dot com peak; email me later",
        "they stayed at home dot dot dot, email me",  # no such top-level domain
        "the trial was registered at Clinicaltrials.gov (email the authors)",
        "the book is available at amazon.com, email us for a discount",
        "I'll be there @ noon. See you, email me",  # a sentence's dot is no address dot
        "thanks @ john.smith for the e-mail",
        "upgrade to version 4.1.1.1 tonight",
        "release 2024.01.01 and 2023.12.31 shipped",
        "between 1998.2008.2016.2020 the card scheme changed",  # passes Luhn, but no card starts 1
        "card 4111.1111.1111.1112",  # fails the Luhn check
        "card 1234.5678.9012.3456",
        "the j o b was done",
        "the U S A and the U K",
        "So 3 * 4 = 12 and 1 2 3 4 5 * 6 = 7 4 0 7 0",  # arithmetic spaced out
        "coordinates 4111.1111 and 1111.1111",
        "write to me @ home . Then we talk",  # a sentence's full stop, spaced
        'Return the largest of the space-separated numbers "3 9 5 2 11 1".',
        "Sort the number sequence 4 8 1 5 9 2 6 3 in place.",  # "number" is no phone for a list
    ],
)
def test_lets_benign_look_alikes_through(text: str) -> None:
    assert found(text) == []


def test_a_full_stop_after_a_plain_address_stays_out_of_it() -> None:
    assert found("Ihr E-Mail ist jo@example.com . Ihre Nummer") == [("EMAIL_ADDRESS", "jo@example.com")]


@pytest.mark.parametrize("text", ["ping 192.168.1.1 now", "from 10.0.0.1 to 10.0.0.2"])
def test_ip_addresses_stay_ip_addresses(text: str) -> None:
    assert {entity for entity, _ in found(text)} == {"IP_ADDRESS"}


def test_closed_up_keeps_a_map_to_the_text() -> None:
    view = closed_up("mail j o h n now")
    assert view is not None and view.text == "mail john now"
    assert view.span(5, 9) == (5, 12)  # "john" is "j o h n"


@pytest.mark.parametrize("text", ["plain prose with a word or two", "x = 3 * 4 = 12", "a b", "U S"])
def test_closed_up_leaves_prose_and_sums_alone(text: str) -> None:
    assert closed_up(text) is None
