"""Encryption at rest (issue 17 item 3): the database key and field-level encryption.

Every column in :data:`bot.store.PERSON_TEXT` is stored as AES-256-GCM ciphertext (a BLOB)
written and read by the store only. Each value carries a prefix: ``RBE`` + format version
(1 byte) + key id (4 bytes, from a hash of the key, never the key) + a 12-byte nonce, then the
ciphertext and its tag. The key id lets ``rotate-key`` tell old values from new ones.

The key is held outside the database, first found of:
1. ``RESTORATIVE_DB_KEY``: the key itself (urlsafe base64 of 32 random bytes);
2. ``RESTORATIVE_DB_KEY_FILE``: a file holding it;
3. the key file the configuration names (``data_protection: key_file:``), created with mode
   0600 when a new database is made;
4. ``$XDG_CONFIG_HOME/restorative-bot/db.key`` (``~/.config/...``), created with mode 0600
   on the first run, which says where on stderr (never the key).
While a rotation is under way, ``<key file>.new`` (or ``RESTORATIVE_DB_NEW_KEY``) holds the
new key; both decrypt until the rotation ends and the new key replaces the old.
"""

from __future__ import annotations

import base64
import hashlib
import os
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"RBE\x01"
_HEAD = len(MAGIC) + 4 + 12


class KeyError_(Exception):
    """A key problem, worded for a person (the CLI prints it, no traceback)."""


def new_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def encode_key(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).decode()


def decode_key(text: str, where: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text.strip().encode())
    except (ValueError, TypeError):
        key = b""
    if len(key) != 32:
        raise KeyError_(f"{where}: not a restorative-bot database key (expected 32 bytes in urlsafe base64,"
                        " as the first run writes; make one with `python -c \"import os,base64;"
                        "print(base64.urlsafe_b64encode(os.urandom(32)).decode())\"`)")
    return key


# Nonces: 12 random bytes each, drawn from os.urandom 256 at a time (one system call, which
# releases the interpreter lock, per 256 values written instead of one per value). Nonces are
# public: only their uniqueness matters, and drawn this way they are as unique as one by one.
# They are handed out by a list iterator, whose next() gives each value once whatever the
# threads (it runs in C, under the interpreter lock), so taking one needs no lock; the lock
# is only for drawing the next 256. A forked child starts afresh, so it never reuses a nonce
# its parent still holds.
_NONCES_PER_DRAW = 256
_nonces = [iter(()), threading.Lock()]  # the values not yet handed out, the lock drawing more


def _nonce() -> bytes:
    state = _nonces
    nonce = next(state[0], None)
    if nonce is None:
        with state[1]:
            nonce = next(state[0], None)  # another thread may have drawn meanwhile
            if nonce is None:
                buf = os.urandom(12 * _NONCES_PER_DRAW)
                fresh = iter([buf[at:at + 12] for at in range(0, len(buf), 12)])
                nonce = next(fresh)
                state[0] = fresh
    return nonce


def _new_nonces_in_child() -> None:
    global _nonces
    _nonces = [iter(()), threading.Lock()]


os.register_at_fork(after_in_child=_new_nonces_in_child)


def key_id(key: bytes) -> bytes:
    return hashlib.sha256(b"restorative-bot key id\0" + key).digest()[:4]


def write_key_file(path: Path, key: bytes) -> None:
    """Write ``key`` to ``path`` with mode 0600 (atomically: a crash leaves the old file or the new)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, (encode_key(key) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def default_key_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "restorative-bot" / "db.key"


@dataclass
class Keyring:
    """The current key (encrypts) and any others that still decrypt (during a rotation)."""
    current: bytes
    source: str  # where the key came from, for messages (a name, never the key)
    key_file: Path | None = None  # the file the current key lives in, if any
    others: list[bytes] = field(default_factory=list)
    _ciphers: dict[bytes, AESGCM] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.kid = key_id(self.current)
        for k in [self.current, *self.others]:
            self._ciphers.setdefault(key_id(k), AESGCM(k))
        self._aead = self._ciphers[self.kid]
        self._prefix = MAGIC + self.kid

    def encrypt(self, text: str | None) -> bytes | None:
        if text is None:
            return None
        nonce = _nonce()
        return self._prefix + nonce + self._aead.encrypt(nonce, text.encode(), MAGIC)

    def decrypt(self, blob: bytes) -> str:
        aead = self._ciphers.get(blob[4:8])
        if aead is None:
            raise WrongKey(self.source)
        try:
            return aead.decrypt(blob[8:_HEAD], blob[_HEAD:], MAGIC).decode()
        except InvalidTag:
            raise WrongKey(self.source) from None

    def with_new(self, new: bytes) -> "Keyring":
        """A keyring that encrypts with ``new`` and still decrypts with every key of this one."""
        return Keyring(new, self.source, self.key_file, [self.current, *self.others])


class WrongKey(KeyError_):
    def __init__(self, source: str):
        super().__init__(f"the database key from {source} does not open this database's text (it was encrypted"
                         " with another key); use the key the database was made with (RESTORATIVE_DB_KEY or"
                         " RESTORATIVE_DB_KEY_FILE), or restore the key file from your backup")


def is_ciphertext(value: object) -> bool:
    return type(value) is bytes and value[:4] == MAGIC


def load_keyring(*, create: bool = True, key_file: Path | None = None) -> Keyring:
    """The keyring from the environment, else ``key_file`` (the one the configuration names),
    else the default key file; a missing key file is created when ``create`` (a new database)."""
    new_env = os.environ.get("RESTORATIVE_DB_NEW_KEY")
    env = os.environ.get("RESTORATIVE_DB_KEY")
    if env:
        others = [decode_key(new_env, "RESTORATIVE_DB_NEW_KEY")] if new_env else []
        return Keyring(decode_key(env, "RESTORATIVE_DB_KEY"), "RESTORATIVE_DB_KEY", None, others)
    named = os.environ.get("RESTORATIVE_DB_KEY_FILE")
    path = Path(named) if named else (Path(key_file) if key_file is not None else default_key_path())
    if not path.exists():
        if named or not create:
            where = "RESTORATIVE_DB_KEY_FILE" if named else ("data_protection: key_file: in the configuration"
                                                             if key_file is not None else "RESTORATIVE_DB_KEY_FILE")
            if create:  # a new database, but the key file named for it is not there
                raise KeyError_(f"{path}: no database key file; set {where} to the key file"
                                " the database was made with")
            raise KeyError_(f"no database key file at {path}, and a new key would not open the text already"
                            " stored. Put back the key file the database was made with (from the copy you kept;"
                            f" readable by you only: chmod 600 {path}), or set {where} to where it is, or give"
                            " the key itself in RESTORATIVE_DB_KEY")
        write_key_file(path, new_key())
        print(f"restorative-bot: created a new database key in {path} (mode 0600); keep a copy of it"
              " somewhere safe: without it the stored answers cannot be read", file=sys.stderr)
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)
    key = decode_key(path.read_text(), str(path))
    others = []
    pending = pending_path(path)
    if pending.exists():
        others.append(decode_key(pending.read_text(), str(pending)))
    return Keyring(key, str(path), path, others)


def pending_path(path: Path) -> Path:
    return path.with_name(path.name + ".new")


def decrypting(conn, keys: Keyring | None = None):
    """Give a plain sqlite3 connection (a checker's or a benchmark's read-only view) rows with
    the encrypted text decrypted, as the store reads them. Returns the connection."""
    keys = keys or load_keyring(create=False)

    def row(cursor, values: tuple) -> tuple:
        return tuple(keys.decrypt(v) if type(v) is bytes and v[:4] == MAGIC else v for v in values)

    conn.row_factory = row
    return conn
