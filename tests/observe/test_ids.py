"""Trace and span ids."""

from __future__ import annotations

import os
import re

from strato.observe.ids import random_hex


def test_ids_are_hex_of_the_asked_length_and_do_not_repeat() -> None:
    ids = [random_hex(16) for _ in range(10_000)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert len(set(ids)) == len(ids)
    assert re.fullmatch(r"[0-9a-f]{16}", random_hex(8))


def test_a_forked_child_does_not_hand_out_its_parents_ids() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report the next ids it would give
        os.write(write, "".join(random_hex(8) for _ in range(4)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 1024).decode()
    os.close(read)
    parent = "".join(random_hex(8) for _ in range(4))
    assert len(child) == 64 and child != parent
