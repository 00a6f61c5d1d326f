"""The secrets guard: API keys, tokens, private keys and passwords in a prompt or an answer.

Each kind of secret is a typed pattern: a vendor's key format (its prefix and length), a JWT whose
header decodes to JSON with an "alg", a PEM private key block, a password or key assigned a value
with enough entropy (`password = "…"`, `api_key: …`), credentials in a URL. Only the secret part is
a finding, so a redacted `password=<SECRET_ASSIGNMENT_1>` still reads as what it was. Look-alikes
(UUIDs, git SHAs, `sk-learn`, "password reset", `token: str`) pass.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from strato.config import GuardsSettings
from strato.guards.normalize import normalize
from strato.guards.verdict import (
    REWRITING,
    Direction,
    Finding,
    ScanContext,
    Verdict,
    by_score,
    strictest,
    without_overlaps,
)

if TYPE_CHECKING:
    from strato.providers.registry import ModelTable

# A check receives the match and returns a score multiplier (0..1], or None: not a secret.
Check = Callable[[re.Match[str]], float | None]

STRATO_KEY_PREFIX = "sk-strato-"  # strato's own keys (strato.auth.keys), never sent on to a model


@dataclass(frozen=True)
class SecretPattern:
    """One kind of secret. The finding is the `secret` group when the pattern has one (the value of
    an assignment), else the whole match."""

    type: str
    pattern: re.Pattern[str]
    score: float
    check: Check
    # Lower-case strings of which a text must hold one for the pattern to be tried at all: a
    # substring test costs next to nothing, a regular expression over a page does not.
    hints: tuple[str, ...] = ()


def shannon_entropy(text: str) -> float:
    """Bits per character of `text`'s own character distribution."""
    if not text:
        return 0.0
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def _always(_: re.Match[str]) -> float | None:
    return 1.0


def _mixed(value: str) -> bool:
    """Random keys mix upper case, lower case and digits; words and hex digests do not."""
    return any(map(str.isupper, value)) and any(map(str.islower, value)) and any(map(str.isdigit, value))


def _random_key(match: re.Match[str]) -> float | None:
    """A prefixed key whose body looks random (`sk-learn-contrib-…` does not)."""
    body = match.group("body")
    return 1.0 if _mixed(body) and shannon_entropy(body) >= 3.5 else None


_AWS_NEAR = re.compile(r"(?i)aws|amazon|secret[_ ]?access")


def _aws_secret(match: re.Match[str]) -> float | None:
    """Forty base64 characters are an AWS secret key only with "aws" near them."""
    value = match.group(0)
    before = match.string[max(0, match.start() - 100) : match.start()]
    if not _AWS_NEAR.search(before) or not _mixed(value) or shannon_entropy(value) < 4.0:
        return None
    return 1.0


def _jwt(match: re.Match[str]) -> float | None:
    header = match.group("header")
    try:
        decoded = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    except (binascii.Error, ValueError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return None
    return 1.0 if isinstance(decoded, dict) and "alg" in decoded else None


# Values that stand for a secret in documentation, templates and code rather than being one.
_PLACEHOLDER = re.compile(
    r"(?i)^(?:\$|%|\{\{|<|\[|\*|x{3,}|\.{3})|(?:your|example|sample|placeholder|changeme|dummy|redacted"
    r"|insert|replace|here|xxxx|\*\*\*|\.\.\.|\}\}?$|>$)"
)
_NOT_VALUES = frozenset(
    (
        "string", "str", "bytes", "int", "none", "null", "nil", "true", "false", "undefined", "required",
        "optional", "secret", "password", "token", "hidden", "masked", "env", "getenv", "environ",
    )
)  # fmt: skip
_REFERENCE = re.compile(r"^[A-Za-z_][\w]*(?:(?:\.|::|->)[A-Za-z_]\w*)*(?:[(\[].*)?$")  # settings.api_key


def _assigned_value(match: re.Match[str]) -> float | None:
    """A password, token or key assigned a value: a literal with enough entropy, not a placeholder
    (`"<your key>"`, `${TOKEN}`), a type (`token: str`) or another variable (`password=config.pw`)."""
    value = match.group("secret")
    quoted = bool(match.group("quote"))
    if value.lower() in _NOT_VALUES or _PLACEHOLDER.search(value):
        return None
    entropy = shannon_entropy(value)
    if quoted:
        return 1.0 if len(value) >= 6 and entropy >= 2.5 else None
    if _REFERENCE.match(value) and not any(c.isdigit() for c in value):
        return None  # a name in code, or a word in prose ("Password: must be long")
    if len(value) < 8 or entropy < 2.5 or not any(c.isdigit() for c in value):
        return None
    return 1.0


def _url_password(match: re.Match[str]) -> float | None:
    password = match.group("secret")
    if password.lower() in _NOT_VALUES | {"pass", "pwd", "passwd"} or _PLACEHOLDER.search(password):
        return None
    return 1.0


_KEY_BODY = r"(?P<body>[A-Za-z0-9_-]{20,})(?![A-Za-z0-9_-])"
_SECRET_NAMES = (
    r"[A-Za-z0-9_.-]*(?:password|passwd|pwd|passphrase|secret|token|api[_-]?key|apikey|access[_-]?key"
    r"|auth[_-]?key|credentials?|private[_-]?key|client[_-]?secret|signing[_-]?key)[A-Za-z0-9_.-]*"
)

PATTERNS: tuple[SecretPattern, ...] = (
    SecretPattern(
        "PRIVATE_KEY",
        re.compile(
            r"-----BEGIN (?P<kind>[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?)-----"
            # to its END line; cut short, to the end of its header and base64 lines
            r"(?:[\s\S]*?-----END (?P=kind)-----|(?:\s*(?:[A-Za-z0-9+/=]{16,}"
            r"|[A-Za-z0-9+/=]+(?=[ \t]*(?:\n|\Z))|(?:Proc-Type|DEK-Info|Comment):[^\n]*))*)"
        ),
        1.0,
        _always,
        ("private key",),
    ),
    SecretPattern(
        "JWT",
        re.compile(r"(?<![\w-])(?P<header>eyJ[A-Za-z0-9_-]{8,})\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*(?![\w-])"),
        0.95,
        _jwt,
        ("eyj",),
    ),
    SecretPattern(
        "SECRET_AWS_KEY",
        re.compile(r"(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}(?![A-Za-z0-9])"),
        0.95,
        _always,
        ("akia", "asia", "abia", "acca", "a3t"),
    ),
    SecretPattern(
        "SECRET_AWS_SECRET_KEY",
        re.compile(r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])"),
        0.85,
        _aws_secret,
        ("aws", "amazon", "secret_access", "secret access", "secretaccess"),
    ),
    SecretPattern(
        "SECRET_GITHUB_TOKEN",
        re.compile(r"(?<![\w-])(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})(?![\w-])"),
        1.0,
        _always,
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
    ),
    SecretPattern(
        "SECRET_STRATO_KEY",
        re.compile(rf"(?<![\w-]){re.escape(STRATO_KEY_PREFIX)}[A-Za-z0-9_-]{{20,}}(?![\w-])"),
        1.0,
        _always,
        (STRATO_KEY_PREFIX,),
    ),
    SecretPattern(
        "SECRET_ANTHROPIC_KEY",
        re.compile(r"(?<![\w-])sk-ant-(?:[a-z]+\d*-)?" + _KEY_BODY),
        1.0,
        _random_key,
        ("sk-ant-",),
    ),
    SecretPattern(
        "SECRET_OPENAI_KEY",
        re.compile(r"(?<![\w-])sk-(?!ant-|strato-)(?:(?:proj|svcacct|admin|None)-)?" + _KEY_BODY),
        0.95,
        _random_key,
        ("sk-",),
    ),
    SecretPattern(
        "SECRET_STRIPE_KEY",
        re.compile(r"(?<![\w-])(?:(?:sk|rk)_(?:live|test)|pk_live)_(?P<body>[A-Za-z0-9]{16,247})(?![\w-])"),
        1.0,
        _always,
        ("_live_", "_test_"),
    ),
    SecretPattern(
        "SECRET_SLACK_WEBHOOK",
        re.compile(r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/-]{20,}"),
        1.0,
        _always,
        ("hooks.slack.com",),
    ),
    SecretPattern(
        "SECRET_SLACK_TOKEN",
        re.compile(
            r"(?<![\w-])xox[abposr]-(?:\d+-)+[A-Za-z0-9-]{8,}(?![\w-])|xapp-\d-[A-Z0-9]+-\d+-[a-f0-9]+"
        ),
        1.0,
        _always,
        ("xox", "xapp-"),
    ),
    SecretPattern(
        "SECRET_GOOGLE_API_KEY",
        re.compile(r"(?<![\w-])AIza[0-9A-Za-z_-]{35}(?![\w-])"),
        0.95,
        _always,
        ("aiza",),
    ),
    SecretPattern(
        "SECRET_URL_CREDENTIALS",
        re.compile(
            r"(?<![\w+.-])[A-Za-z][A-Za-z0-9+.-]{1,20}://[^\s:/@'\"<>]{0,128}:(?P<secret>[^\s/@'\"<>]{1,256})"
            r"@[A-Za-z0-9.\[\]-]+"
        ),
        0.9,
        _url_password,
        ("://",),
    ),
    SecretPattern(
        "SECRET_ASSIGNMENT",
        re.compile(
            # the name is read once, and only where a ":" or "=" follows it, before its words are sought
            rf"(?i)(?<![A-Za-z0-9])(?=[A-Za-z0-9_.-]++[\"']?[ \t]*[:=])"
            rf"(?P<name>{_SECRET_NAMES})[\"']?[ \t]*(?::=|=>|=|:)[ \t]*"
            r"(?P<quote>[\"'`]?)(?P<secret>[^\s\"'`,;]{1,256})(?P=quote)"
        ),
        0.8,
        _assigned_value,
    ),
    SecretPattern(
        "SECRET_BEARER_TOKEN",
        re.compile(r"(?i)\bbearer[ \t]+(?P<secret>[A-Za-z0-9._~+/-]{20,}=*)(?![\w.~+/-])"),
        0.85,
        lambda m: 1.0 if shannon_entropy(m.group("secret")) >= 3.5 else None,
        ("bearer",),
    ),
)


class SecretsScanner:
    """Finds secrets; knows nothing about policy. Spans refer to the text it was given."""

    def __init__(self, patterns: Iterable[SecretPattern] = PATTERNS) -> None:
        self.patterns = tuple(patterns)

    def detect(self, text: str) -> list[Finding]:
        norm = normalize(text)
        lowered = norm.text.lower()
        candidates: list[Finding] = []
        for secret in self.patterns:
            if secret.hints and not any(hint in lowered for hint in secret.hints):
                continue
            for match in secret.pattern.finditer(norm.text):
                factor = secret.check(match)
                if factor is None:
                    continue
                group = "secret" if "secret" in secret.pattern.groupindex else 0
                start, end = norm.span(match.start(group), match.end(group))
                candidates.append(Finding(secret.type, start, end, secret.score * factor, text[start:end]))
        # A JWT assigned to `token=` is a JWT: the higher score wins.
        return without_overlaps(candidates, by_score)


class SecretsGuard:
    """The `Guard` for secrets: `secrets.action` on input, `secrets.output_action` on output."""

    name = "secrets"
    directions: tuple[Direction, ...] = ("input", "output")
    order = 10  # first: a secret is redacted before any other guard (or the model) reads it

    @classmethod
    def build(cls, settings: GuardsSettings, models: ModelTable | None) -> SecretsGuard:
        return cls(settings)

    def rewrites(self, settings: GuardsSettings) -> bool:
        return settings.secrets.enabled and settings.secrets.output_action in REWRITING

    def runs(self, settings: GuardsSettings, direction: Direction) -> bool:
        policy = settings.secrets
        return policy.enabled and (policy.action if direction == "input" else policy.output_action) != "allow"

    def __init__(self, settings: GuardsSettings | None = None, scanner: SecretsScanner | None = None) -> None:
        self.settings = settings or GuardsSettings()
        self.scanner = scanner or SecretsScanner()

    async def scan(self, text: str, context: ScanContext) -> Verdict:
        return self.scan_now(text, context)

    def scan_now(self, text: str, context: ScanContext) -> Verdict:
        """`scan` without the coroutine: pattern matching only, about a millisecond a page."""
        settings = context.settings or self.settings
        if not self.runs(settings, context.direction):
            return Verdict("allow", text, [], self.name)
        action = settings.secrets.action if context.direction == "input" else settings.secrets.output_action
        findings = [
            Finding(f.type, f.start, f.end, f.score, f.text, action) for f in self.scanner.detect(text)
        ]
        verdict_action = strictest([f.action for f in findings])
        if verdict_action == "redact":
            text = context.placeholders.redact(text, findings)
        return Verdict(verdict_action, text, findings, self.name)
