"""Random ids for traces and spans, as OpenTelemetry's SDK makes them: from Python's own generator.

No system call: `os.urandom` (what `uuid.uuid4` uses) gives the GIL away for its `getrandom`
call, and a writer thread that takes it then may keep it for a whole switch interval (5 ms) while
the request waits. A request needs a trace id and about 15 span ids. The ids are not secrets:
access to a trace is checked against the caller's key, never granted by knowing its id. A forked
child reseeds the generator (Python does), so it does not repeat its parent's ids.
"""

from __future__ import annotations

import random


def random_hex(nbytes: int) -> str:
    """`nbytes` random bytes as lower-case hex (a trace id: 16, a span id: 8)."""
    return f"{random.getrandbits(8 * nbytes):0{2 * nbytes}x}"
