"""Text every database accepts: what a client sent is stored even when it is not valid Unicode.

Two kinds of character reach the store from requests and are refused there:
- lone UTF-16 surrogates (`"\\ud800"` in a JSON body decodes to one): neither SQLite's nor
  PostgreSQL's driver can encode them as UTF-8, and the whole batch of rows fails with them;
- NUL (`"\\u0000"`): PostgreSQL's text type cannot hold it.

Both are written as the six characters of their JSON escape (`\\ud800`, `\\u0000`), which is what the
client typed, so a stored trace still shows it. Valid text is returned unchanged, and the check is
one regular-expression search per value.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from strato.jsontext import refused

UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
SURROGATE = re.compile("[\ud800-\udfff]")


def _escape(found: re.Match[str]) -> str:
    return f"\\u{ord(found.group()):04x}"


def storable(text: str | None) -> str | None:
    """`text` with lone surrogates and NUL written as their escapes; None stays None."""
    if text is None or UNSTORABLE.search(text) is None:
        return text
    return UNSTORABLE.sub(_escape, text)


def storable_json(value: Any) -> str:
    """`value` as JSON text (non-ASCII kept as is, `strato.jsontext`) that every database accepts.
    NUL is written escaped; a lone surrogate inside a string becomes the escaped six characters, so
    it reads back as that text rather than as a character no encoder takes."""
    try:
        # JSON escapes NUL like every control character, and orjson refuses lone surrogates: its
        # text never needs the search below (a trace's spans are kilobytes, written for every request).
        return orjson.dumps(value).decode()
    except TypeError:
        encoded = refused(value)
    if UNSTORABLE.search(encoded) is None:
        return encoded
    return UNSTORABLE.sub(lambda found: "\\" + _escape(found), encoded)


def has_unencodable(text: str) -> bool:
    """Whether `text` holds a lone surrogate, which cannot be encoded as UTF-8."""
    return SURROGATE.search(text) is not None
