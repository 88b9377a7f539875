"""Key rotation, backup and restore (issue 17 items 3 and 4). The CLI's `rotate-key`,
`backup` and `restore` call these; the SQL is in bot/store.py, the keys in bot/dbkey.py.

Rotation: the new key is written first (``<key file>.new``, mode 0600; or given in
``RESTORATIVE_DB_NEW_KEY``), then every PERSON_TEXT value is re-encrypted with it in bounded
batches, each its own transaction. Until the end both keys decrypt, so a crash at any point
loses nothing, and running the command again resumes (values already under the new key are
skipped). Only when no value is left under the old key does the new key file replace the old.
Restore re-applies every approved erasure (see :func:`restore`).
Both need the database to themselves (``Store.exclusive``): they refuse while the bot, the web
site or another command has it open, since a running bot would go on writing with the old key."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

from bot import dbkey
from bot.store import PERSON_TEXT, Store, StoreError


@dataclass
class Rotation:
    changed: int
    key_file: str | None  # where the new key now is (None: it was given in the environment)


def rotate_key(store: Store, *, batch: int = 500, progress: Callable[[int], None] | None = None) -> Rotation:
    store.exclusive("run rotate-key")
    keys = store.keys
    if keys.key_file is not None:
        pending = dbkey.pending_path(keys.key_file)
        if not pending.exists():
            dbkey.write_key_file(pending, dbkey.new_key())
        new = dbkey.decode_key(pending.read_text(), str(pending))
    else:
        text = os.environ.get("RESTORATIVE_DB_NEW_KEY")
        if not text:
            raise StoreError("the key comes from RESTORATIVE_DB_KEY: put the new key in RESTORATIVE_DB_NEW_KEY"
                             " (32 random bytes, urlsafe base64) and run rotate-key again")
        new = dbkey.decode_key(text, "RESTORATIVE_DB_NEW_KEY")
    if new == keys.current:
        raise StoreError("the new key is the same as the current one")
    store.keys = keys.with_new(new)
    changed = 0
    for table, column in PERSON_TEXT:
        after: int | None = 0
        while after is not None:
            after, n = store.reencrypt_batch(table, column, after, batch)
            changed += n
            if progress:
                progress(n)
    left = {kid: n for kid, n in store.key_ids().items() if kid != store.keys.kid.hex()}
    if left:  # a writer with the old key ran meanwhile: keep both keys, ask for another run
        raise StoreError(f"{sum(left.values())} values are still under another key (was the bot running?);"
                         " stop it and run rotate-key again")
    store.audit("cli", "rotate-key", store.keys.kid.hex(), f"{changed} values re-encrypted")
    if keys.key_file is not None:
        os.replace(dbkey.pending_path(keys.key_file), keys.key_file)
        return Rotation(changed, str(keys.key_file))
    return Rotation(changed, None)


def backup(store: Store, dest: str, *, force: bool = False) -> None:
    if os.path.exists(dest) and not force:
        raise StoreError(f"{dest}: already exists; choose another name or add --force")
    store.backup_to(dest)
    store.audit("cli", "backup", None, None)


def restore(store: Store, source: str) -> list[tuple[int, dict[str, int]]]:
    """Replace the database with a backup; every erasure approved in the database it replaces
    is done again in the restored one (a backup made before it still holds the person's words),
    and the erasure requests and their audit lines are kept. Returns (request id, values erased
    again) for each approved request, for the command to say so."""
    problems = store.check_backup(source)  # a bad file is named first, whoever has the database
    if problems:
        raise StoreError("; ".join(problems))
    store.exclusive("run restore")
    reapplied = store.restore_from(source)
    store.audit("cli", "restore", None, f"{len(reapplied)} erasure(s) re-applied" if reapplied else None)
    store.wipe_free_space()
    return reapplied
