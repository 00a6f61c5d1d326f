"""The secrets guard finds keys, tokens and passwords, lets look-alikes through, and redacts only the
secret itself."""

from __future__ import annotations

import base64
import json
import time

import pytest

from strato.config import GuardsSettings
from strato.guards.redact import Placeholders
from strato.guards.secrets import SecretsGuard, SecretsScanner, shannon_entropy
from strato.guards.verdict import ScanContext

SCANNER = SecretsScanner()


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


SIGNATURE = "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
JWT = f"{_b64({'alg': 'HS256', 'typ': 'JWT'})}.{_b64({'sub': '1234567890'})}.{SIGNATURE}"
PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEpAIBAAKCAQEA1c7+9z5Pad7OejecsQ0bu3aumeNFcLnXyb2ZpN1zBq0A7nFz\n"
    "x9kQ3vW8tM2rYpL6sJ4hG0fD5cB1nA7mK8jH9gF3dS2aZ4xC6vB8nM0qW3eR5tY7\n"
    "-----END RSA PRIVATE KEY-----"
)


def found(text: str) -> list[tuple[str, str]]:
    return [(f.type, f.text) for f in SCANNER.detect(text)]


@pytest.mark.parametrize(
    ("text", "kind", "secret"),
    [
        ("key id AKIAIOSFODNN7EXAMPLE in the log", "SECRET_AWS_KEY", "AKIAIOSFODNN7EXAMPLE"),
        ("temporary ASIAY34FZKBOKMUTVV7A", "SECRET_AWS_KEY", "ASIAY34FZKBOKMUTVV7A"),
        (
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "SECRET_AWS_SECRET_KEY",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        ),
        (
            "push with 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 please",
            "SECRET_GITHUB_TOKEN",
            "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",
        ),
        (
            "gho_16C7e42F292c6912E7710c838347Ae178B4a",
            "SECRET_GITHUB_TOKEN",
            "gho_16C7e42F292c6912E7710c838347Ae178B4a",
        ),
        (
            "token github_pat_11ABCDEFG0123456789_abcdefghijKLMNOPQRSTuvwxyz0123456789ABCDEFGHIJ ok",
            "SECRET_GITHUB_TOKEN",
            "github_pat_11ABCDEFG0123456789_abcdefghijKLMNOPQRSTuvwxyz0123456789ABCDEFGHIJ",
        ),
        (
            "client = OpenAI(api_key='sk-proj-Ab3dEf9hIjKlMnOpQrStUvWxYz0123456789AbCdEfGh')",
            "SECRET_OPENAI_KEY",
            "sk-proj-Ab3dEf9hIjKlMnOpQrStUvWxYz0123456789AbCdEfGh",
        ),
        (
            "legacy sk-4fRt8YuIo0pLkJhGfDsAzXcVbNm1234567890qWeRtYuIoP",
            "SECRET_OPENAI_KEY",
            "sk-4fRt8YuIo0pLkJhGfDsAzXcVbNm1234567890qWeRtYuIoP",
        ),
        (
            "x-api-key: sk-ant-api03-Zx8Yw7Vu6Ts5Rq4Po3Nm2Lk1Jh0GfEdCbA-aBcDeFgHiJkLmNoPq_0123",
            "SECRET_ANTHROPIC_KEY",
            "sk-ant-api03-Zx8Yw7Vu6Ts5Rq4Po3Nm2Lk1Jh0GfEdCbA-aBcDeFgHiJkLmNoPq_0123",
        ),
        (
            "my strato key sk-strato-Hx7Kp0Lm2Nq4Rs6Tu8Vw0Xy2Za4Bc6De8Fg0Hi2Jk4",
            "SECRET_STRATO_KEY",
            "sk-strato-Hx7Kp0Lm2Nq4Rs6Tu8Vw0Xy2Za4Bc6De8Fg0Hi2Jk4",
        ),
        ("stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc", "SECRET_STRIPE_KEY", "sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
        ("restricted rk_live_51H8abcdEFGHijklMNOP", "SECRET_STRIPE_KEY", "rk_live_51H8abcdEFGHijklMNOP"),
        ("publishable pk_live_51H8abcdEFGHijklMNOP", "SECRET_STRIPE_KEY", "pk_live_51H8abcdEFGHijklMNOP"),
        (
            "SLACK_BOT_TOKEN xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
            "SECRET_SLACK_TOKEN",
            "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
        ),
        (
            "post to https://hooks.slack.com/services/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 now",
            "SECRET_SLACK_WEBHOOK",
            "https://hooks.slack.com/services/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",
        ),
        (
            "maps key AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe",
            "SECRET_GOOGLE_API_KEY",
            "AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe",
        ),
        (f"session {JWT} expired", "JWT", JWT),
        (f"here is my key:\n{PEM}\nthanks", "PRIVATE_KEY", PEM),
        ('password = "Tr0ub4dor&3"', "SECRET_ASSIGNMENT", "Tr0ub4dor&3"),
        ("DB_PASSWORD=s3cr3tP4ss", "SECRET_ASSIGNMENT", "s3cr3tP4ss"),
        (
            '{"api_key": "9f8e7d6c5b4a39281706f5e4d3c2b1a0"}',
            "SECRET_ASSIGNMENT",
            "9f8e7d6c5b4a39281706f5e4d3c2b1a0",
        ),
        ("token: q8Zr2LmX0vT5", "SECRET_ASSIGNMENT", "q8Zr2LmX0vT5"),
        ("postgres://admin:Xk9#mQ2z@db.example.com:5432/app", "SECRET_URL_CREDENTIALS", "Xk9#mQ2z"),
        ("redis://:hP3kL9xQ@cache:6379", "SECRET_URL_CREDENTIALS", "hP3kL9xQ"),
    ],
)
def test_finds_secrets(text: str, kind: str, secret: str) -> None:
    assert found(text) == [(kind, secret)]


def test_a_private_key_cut_short_is_still_found() -> None:
    text = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\nAAAAAAAB"
    [(kind, secret)] = found(text + "\n\nCan you fix my ssh config?")
    assert kind == "PRIVATE_KEY" and secret == text


@pytest.mark.parametrize(
    "text",
    [
        "request id 123e4567-e89b-12d3-a456-426614174000",
        "fixed in 9fceb02d0ae598e95dc970b74767f19372d61af8 (9fceb02)",
        "sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "<img src='data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
        "YPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=='>",
        "Click password reset to choose a new password.",
        "Password: must be at least 8 characters long.",
        "pip install scikit-learn (sk-learn), sk-learn-contrib-imbalanced-learn too",
        "def login(password: str, token: Optional[str] = None) -> Session: ...",
        "secret_key: str = Field(description='the signing key')",
        "password=password",
        "api_key = os.environ['OPENAI_API_KEY']",
        "client = Client(api_key=settings.api_key, token=auth_token)",
        'password: "${DB_PASSWORD}"',
        'api_key: "<your-api-key>"',
        "export OPENAI_API_KEY=sk-...",
        "connect to https://user:password@example.com for the demo",
        "max_tokens: 1024, token_count: 512",
        "an AWS access key id looks like AKIA followed by 16 capitals",
        "the header eyJhbGciOi starts every JWT",
        "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n-----END PUBLIC KEY-----",
        "eyJub3QiOiAiYW4gYWxnIn0.eyJzdWIiOiAiMSJ9.c2lnbmF0dXJl",  # JSON header without "alg"
    ],
)
def test_lets_look_alikes_through(text: str) -> None:
    assert found(text) == []


def test_hidden_characters_do_not_hide_a_key_and_the_span_is_the_senders() -> None:
    text = "use ghp_wWPw5k4a\u200bXcaT4fNP0UcnZwJUVFk6LO0pINUx, and АKIAIOSFODNN7EXAMPLE"  # Cyrillic А
    findings = SCANNER.detect(text)
    assert [f.type for f in findings] == ["SECRET_GITHUB_TOKEN", "SECRET_AWS_KEY"]
    assert findings[0].text == "ghp_wWPw5k4a\u200bXcaT4fNP0UcnZwJUVFk6LO0pINUx"
    assert findings[1].text == "АKIAIOSFODNN7EXAMPLE"


def test_a_jwt_assigned_to_a_token_is_one_jwt() -> None:
    assert found(f"token={JWT}") == [("JWT", JWT)]


def test_entropy() -> None:
    assert shannon_entropy("") == 0.0
    assert shannon_entropy("aaaa") == 0.0
    assert shannon_entropy("abcd") == pytest.approx(2.0)


async def test_redacts_the_secret_and_keeps_the_rest() -> None:
    guard = SecretsGuard()
    text = 'config: password = "Tr0ub4dor&3" and key AKIAIOSFODNN7EXAMPLE'
    verdict = await guard.scan(text, ScanContext("input"))
    assert verdict.action == "redact"
    assert verdict.text == 'config: password = "<SECRET_ASSIGNMENT_1>" and key <SECRET_AWS_KEY_1>'
    assert [f.action for f in verdict.findings] == ["redact", "redact"]


async def test_the_same_secret_gets_the_same_placeholder() -> None:
    placeholders = Placeholders()
    context = ScanContext("input", placeholders=placeholders)
    first = await SecretsGuard().scan("a AKIAIOSFODNN7EXAMPLE", context)
    second = await SecretsGuard().scan("b AKIAIOSFODNN7EXAMPLE", context)
    assert first.text == "a <SECRET_AWS_KEY_1>" and second.text == "b <SECRET_AWS_KEY_1>"


def test_settings_choose_the_action_per_direction() -> None:
    settings = GuardsSettings.model_validate({"secrets": {"action": "block", "output_action": "flag"}})
    guard = SecretsGuard(settings)
    text = "key AKIAIOSFODNN7EXAMPLE"
    blocked = guard.scan_now(text, ScanContext("input"))
    flagged = guard.scan_now(text, ScanContext("output"))
    assert blocked.action == "block" and blocked.text == text
    assert flagged.action == "flag" and flagged.text == text
    # The request's own settings win over the guard's.
    request = GuardsSettings.model_validate({"secrets": {"output_action": "redact"}})
    assert guard.scan_now(text, ScanContext("output", settings=request)).text == "key <SECRET_AWS_KEY_1>"


def test_disabled_or_allowed_scans_nothing() -> None:
    text = "key AKIAIOSFODNN7EXAMPLE"
    off = GuardsSettings.model_validate({"secrets": {"enabled": False}})
    allowed = GuardsSettings.model_validate({"secrets": {"action": "allow"}})
    for settings in (off, allowed):
        verdict = SecretsGuard().scan_now(text, ScanContext("input", settings=settings))
        assert (verdict.action, verdict.text, verdict.findings) == ("allow", text, [])


def test_plain_text_is_allowed() -> None:
    verdict = SecretsGuard().scan_now("How do I rotate my AWS keys safely?", ScanContext("input"))
    assert verdict.action == "allow" and verdict.findings == []


def test_a_page_scans_in_a_few_milliseconds() -> None:
    words = ["the", "quick", "fox", "jumps", "over", "a", "password", "reset", "and", "token", "count"]
    page = " ".join(words[i % len(words)] for i in range(1000)) + " AKIAIOSFODNN7EXAMPLE"
    SCANNER.detect(page)
    start = time.perf_counter()
    findings = SCANNER.detect(page)
    assert time.perf_counter() - start < 0.05  # well above the ~1 ms it takes; not a benchmark
    assert [f.type for f in findings] == ["SECRET_AWS_KEY"]
