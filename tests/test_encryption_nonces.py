"""Nonces of the encryption at rest (bot/dbkey.py): drawn from os.urandom many at a time, they
must still never repeat, across threads, and a forked child must not reuse its parent's."""

from __future__ import annotations

import os
import threading

from bot import dbkey

_NONCE = slice(len(dbkey.MAGIC) + 4, len(dbkey.MAGIC) + 4 + 12)


def test_nonces_never_repeat_across_draws_and_threads():
    keys = dbkey.Keyring(dbkey.new_key(), "test")
    per_thread = 3 * dbkey._NONCES_PER_DRAW + 7  # several draws each
    found: list[list[bytes]] = [[] for _ in range(4)]

    def write(n: int) -> None:
        found[n] = [keys.encrypt("same words")[_NONCE] for _ in range(per_thread)]

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    nonces = [x for f in found for x in f]
    assert len(nonces) == 4 * per_thread and len(set(nonces)) == len(nonces)
    assert all(len(x) == 12 for x in nonces)
    assert keys.decrypt(keys.encrypt("same words")) == "same words"


def test_a_forked_child_does_not_reuse_its_parents_nonces():
    keys = dbkey.Keyring(dbkey.new_key(), "test")
    keys.encrypt("draw")  # the parent now holds nonces it has not used
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: the nonces it would use next
        try:
            os.close(r)
            os.write(w, b"".join(keys.encrypt("child")[_NONCE] for _ in range(8)))
        finally:
            os._exit(0)
    os.close(w)
    child = b""
    while len(child) < 96:
        chunk = os.read(r, 96)
        if not chunk:
            break
        child += chunk
    os.close(r)
    os.waitpid(pid, 0)
    parent = [keys.encrypt("parent")[_NONCE] for _ in range(8)]
    assert len(child) == 96
    assert not {child[i:i + 12] for i in range(0, 96, 12)} & set(parent)
