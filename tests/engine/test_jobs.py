"""The engine's bookkeeping: stop strings held back across tokens, and the fair wait queue."""

from __future__ import annotations

import pytest

from strato.engine.jobs import FairQueue, Job, StopScanner
from strato.types import SamplingParams


@pytest.mark.parametrize(
    ("pieces", "stops", "expected", "hit"),
    [
        (["Hello", " wor", "ld"], (), "Hello world", False),
        (["Hello", " wor", "ld"], ("wor",), "Hello ", True),
        (["ab", "c", "STO", "P", "x"], ("STOP",), "abc", True),
        (["ab", "ST", "OX"], ("STOP",), "abSTOX", False),  # a partial match is released when it breaks
        (["a\n", "\nb"], ("\n\n", "zz"), "a", True),
    ],
)
def test_stop_scanner(pieces: list[str], stops: tuple[str, ...], expected: str, hit: bool) -> None:
    scanner = StopScanner(stops)
    out, found = "", False
    for piece in pieces:
        text, found = scanner.feed(piece)
        out += text
        if found:
            break
    if not found:
        out += scanner.flush()
    assert (out, found) == (expected, hit)


def job(user: str, n: int) -> Job:
    return Job(
        prompt=[n], params=SamplingParams(), max_tokens=1, adapter=None, user=user, emit=lambda _: None
    )


def test_fair_queue_takes_turns_between_users() -> None:
    queue = FairQueue()
    jobs = [job("busy", i) for i in range(4)] + [job("quiet", 10), job("other", 20)]
    for j in jobs:
        queue.push(j)
    order = []
    while (j := queue.pop()) is not None:
        order.append((j.user, j.prompt[0]))
    # The caller with four queued requests does not hold the others back.
    assert order == [("busy", 0), ("quiet", 10), ("other", 20), ("busy", 1), ("busy", 2), ("busy", 3)]


def test_fair_queue_remove() -> None:
    queue = FairQueue()
    a, b = job("u", 1), job("u", 2)
    queue.push(a)
    queue.push(b)
    assert queue.remove(a) and not queue.remove(a)
    assert len(queue) == 1 and queue.pop() is b and queue.pop() is None
