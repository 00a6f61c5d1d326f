"""What a request's headers let the answer cache do (the gateway only sees the resulting policy).

- `Cache-Control: no-cache`: do not answer from the cache; the fresh answer is still stored.
- `Cache-Control: no-store`: do not store the answer; a stored one may still be served.
  (Both as HTTP defines them for requests, RFC 9111 5.2.1.)
- `x-strato-cache: off`: neither; the request goes around the cache.
"""

from __future__ import annotations

from collections.abc import Iterable

from strato.cache import CachePolicy

OPT_OUT_HEADER = b"x-strato-cache"


def cache_policy(headers: Iterable[tuple[bytes, bytes]]) -> CachePolicy:
    read = write = True
    for name, value in headers:
        if name == b"cache-control":
            directives = {part.strip().split(b"=")[0].lower() for part in value.split(b",")}
            read = read and b"no-cache" not in directives
            write = write and b"no-store" not in directives
        elif name == OPT_OUT_HEADER and value.strip().lower() == b"off":
            read = write = False
    return CachePolicy(read=read, write=write)
