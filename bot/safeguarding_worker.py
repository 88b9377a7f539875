"""Safeguarding detection in a worker process, on the machine's other core (issue 18).

The detector (bot/safeguarding/) is pure Python: about 150 µs of CPU per text, all of it
holding the interpreter lock that the store thread needs too. Run in a process of its own it
costs the serving process only the hand-over: the frontend's
:meth:`bot.conversation.ConversationService.prescreen` sends the words there as the input
is handed to the store thread, and ``handle`` takes the result when it gets to the input
(usually long since back).

What the detector returns does not change: the worker builds the same detector from the
same files (the parent checks, by a digest of the safeguarding code and lexicon files, that
they are the ones it loaded) and calls ``detect`` exactly as the service does. Nothing is ever
left unchecked and no answer waits for ever: whenever the worker has no result to give (it is
starting, it died, mid-batch or not, it did not answer within :attr:`DetectorWorker.timeout`,
it has too much waiting, or the words are too long to send), the caller is told so at once
and the service detects in its own process instead, as it did before. A worker that dies or
stops answering is replaced, no more than once every :attr:`DetectorWorker.restart_after`
seconds.

The pipes between the two are private to them (never a file, never a log line); the worker
prints nothing of what it is given. Protocol: length-prefixed pickles; first the recipe
(``(module, function, args)``, building the detector), answered ``("ready",)`` or
``("failed", reason)``; then batches of ``(id, text, context)`` requests, each request
answered ``(id, True, concerns)`` or ``(id, False, None)`` as soon as it is done.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import importlib
import logging
import os
import pickle
import struct
import subprocess
import sys
import threading
import time
from importlib import resources
from pathlib import Path
from typing import Any

_log = logging.getLogger("bot.safeguarding_worker")
_HEAD = struct.Struct(">I")
_SECRETS = ("TELEGRAM_BOT_TOKEN", "TELEGRAM_WEBHOOK_SECRET", "RESTORATIVE_DB_KEY", "RESTORATIVE_DB_NEW_KEY",
            "RESTORATIVE_DB_KEY_FILE")


class WorkerUnavailable(Exception):
    """The worker had no result to give: detect in process instead."""


# --- the recipe: how the worker builds the very detector the parent has ----------------

def _detector_files(paths) -> list[Path]:
    """Every file the packaged detector is built from (its code, lexicon and model), and the
    deployment's own lexicon files."""
    package = Path(str(resources.files("bot")))
    files = sorted((package / "safeguarding").glob("*.py")) + sorted(package.glob("safeguarding*.yaml")) \
        + sorted(package.glob("safeguarding*.json"))
    return files + [Path(p) for p in paths]


def _digest(files: list[Path]) -> str:
    h = hashlib.sha256()
    for f in files:
        h.update(str(f).encode("utf-8", "surrogateescape") + b"\0")
        h.update(f.read_bytes())
        h.update(b"\0")
    return h.hexdigest()


def lexicon_recipe(paths=()) -> tuple[str, str, tuple]:
    """The recipe for ``SafeguardingConfig.load(*paths)`` (what ``serve`` runs), pinned to the
    files as they are now: a worker finding them changed refuses to start (and the service
    detects in process), so it can never detect with other rules than the parent's."""
    paths = tuple(str(p) for p in paths)
    return (__name__, "load_lexicon", (paths, _digest(_detector_files(paths))))


def load_lexicon(paths: tuple, digest: str):
    """(In the worker.) ``SafeguardingConfig.load(*paths)``, if the files are still those
    the recipe was made from."""
    if _digest(_detector_files(paths)) != digest:
        raise RuntimeError("the safeguarding code or lexicon files changed since the bot started")
    from bot.safeguarding import SafeguardingConfig

    return SafeguardingConfig.load(*paths)


def build(recipe: tuple[str, str, tuple]):
    module, name, args = recipe
    return getattr(importlib.import_module(module), name)(*args)


def detect_with(detector, text: str, context: dict | None) -> list:
    """``detect`` called exactly as the service calls it (bot/conversation.py ``_detector``)."""
    return detector.detect(text) if context is None else detector.detect(text, context)


# --- framing ---------------------------------------------------------------------------

def _frame(obj: Any) -> bytes:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEAD.pack(len(data)) + data


class _Reader:
    """Frames from a file descriptor (blocking reads; EOF raises EOFError)."""

    def __init__(self, fd: int):
        self.fd = fd
        self.buf = bytearray()

    def frames(self) -> list:
        """At least one frame: all those complete after one read."""
        while True:
            out, buf, at = [], self.buf, 0
            while len(buf) - at >= 4:
                (n,) = _HEAD.unpack_from(buf, at)
                if len(buf) - at - 4 < n:
                    break
                out.append(pickle.loads(bytes(buf[at + 4:at + 4 + n])))
                at += 4 + n
            del buf[:at]
            if out:
                return out
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                raise EOFError
            buf += chunk


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


# --- the worker process ------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    """``python -m bot.safeguarding_worker IN_FD OUT_FD``: serve detection requests until the
    parent closes the pipe. A parent gone (killed: its end of the pipe closed) ends the worker
    quietly: its stderr is the parent's log, where a traceback would read as the bot's error."""
    try:
        return _serve(argv)
    except (BrokenPipeError, ConnectionResetError):
        return 0


def _serve(argv: list[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    rfd, wfd = int(argv[0]), int(argv[1])
    parent = os.getppid()

    def orphaned() -> None:  # the parent killed (its pipe then closes too, unless this one is stuck)
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=orphaned, daemon=True).start()
    reader = _Reader(rfd)
    try:
        (recipe,) = reader.frames()[:1]
        detector = build(recipe)
    except EOFError:
        return 0
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which detects in process
        _write_all(wfd, _frame(("failed", f"{type(exc).__name__}: {exc}")))
        return 1
    _write_all(wfd, _frame(("ready",)))
    while True:
        try:
            requests = reader.frames()
        except EOFError:
            return 0
        for rid, text, context in (r for batch in requests for r in batch):
            try:
                reply = (rid, True, detect_with(detector, text, context))
            except Exception:  # noqa: BLE001 - (detect never raises) the parent detects this one itself
                reply = (rid, False, None)
            _write_all(wfd, _frame(reply))  # each at once: the store thread may be waiting for it


# --- the parent's side -----------------------------------------------------------------------

class DetectorWorker:
    """A detector in a worker process, for :meth:`ConversationService.prescreen`.

    :meth:`submit` never blocks and never raises: it returns a future for the concerns the
    worker finds, or None when the worker cannot take the words now (the caller then detects
    in process). :meth:`result` waits for a future at most :attr:`timeout` seconds and
    raises :class:`WorkerUnavailable` when there is no result (the worker died, failed, or is
    too slow: then it is also replaced)."""

    timeout = 2.0  # seconds a caller waits for a result before detecting in process
    restart_after = 5.0  # seconds between starts of a worker (after one died or failed)
    max_waiting = 256  # requests sent and not answered, at most (more: detected in process)
    max_bytes = 32 * 1024  # bytes sent and not answered, at most: a pipe holds 64 KiB, so a
    # write never blocks the caller (the event loop), even with the worker stuck

    def __init__(self, recipe: tuple[str, str, tuple], *, python: str | None = None, start: bool = True):
        self.recipe = recipe
        self.python = python or sys.executable
        self._lock = threading.Lock()
        self._ids = 0
        self._pending: dict[int, tuple[concurrent.futures.Future, int]] = {}
        self._bytes = 0
        self._outbox: list[tuple] = []  # requests not yet written
        self._flushing = None  # the loop at the end of whose turn a write of the outbox is due
        self._wlock = threading.Lock()  # one write to the worker at a time
        self._wfd: int | None = None  # set while a worker is ready
        self._proc: subprocess.Popen | None = None
        self._ready = threading.Event()
        self._tried = threading.Event()  # set once a first start has succeeded or failed
        self._wake = threading.Event()
        self._closed = False
        self.starts = 0  # workers started (for tests)
        self.writes = 0  # batches of words written to a worker (for tests)
        self.failure: str | None = None  # why the last worker did not start, if it did not
        self._thread = threading.Thread(target=self._run, name="safeguarding-worker", daemon=True)
        if start:
            self._thread.start()

    # -- callers ------------------------------------------------------------------
    def wait_ready(self, timeout: float) -> bool:
        """Whether a worker is ready (waiting up to ``timeout`` seconds for one to start)."""
        return self._ready.wait(timeout)

    def wait_tried(self, timeout: float) -> bool:
        """Wait until a first worker has started or failed to (``failure`` then says why)."""
        return self._tried.wait(timeout)

    def submit(self, text: str, context: dict | None) -> concurrent.futures.Future | None:
        """Send ``text`` to be checked. Called on an event loop, the first words sent in a turn
        of the loop are written at once and the rest of that turn's go together, in one write,
        when it ends (a write releases the interpreter lock, and getting it back from the busy
        store thread can take a while); otherwise at once."""
        size = 4 * len(text) + 64  # at least its pickled size (UTF-8 takes at most 4 bytes a character)
        with self._lock:
            if self._wfd is None or len(self._pending) >= self.max_waiting or self._bytes + size > self.max_bytes:
                return None
            future: concurrent.futures.Future = concurrent.futures.Future()
            self._ids += 1
            rid = self._ids
            self._pending[rid] = (future, size)
            self._bytes += size
            self._outbox.append((rid, text, context))
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
            if loop is not None and self._flushing is loop:
                return future  # goes with the write already due in this turn of the loop
            later = loop is not None and self._flushing is None
            if later:
                self._flushing = loop
        if later:
            # The first words of a turn go at once, so the worker is checking them while the
            # loop runs the rest of its turn (the store thread, which waits for them, starts as
            # soon as the turn ends); the rest of the turn's words follow in one write at its end.
            self._flush(keep_turn=True)
            loop.call_soon(self._flush)
        else:  # no loop here, or another one's write is due: write now (all that waits)
            self._flush()
        return future

    def _flush(self, keep_turn: bool = False) -> None:
        """Write the words waiting to be sent, as one frame (``keep_turn``: the write at the
        end of this turn of the loop is still due)."""
        with self._lock:
            batch, self._outbox = self._outbox, []
            if not keep_turn:
                self._flushing = None
            wfd = self._wfd
        if not batch:
            return
        try:
            if wfd is None:
                raise OSError("no worker")
            with self._wlock:
                _write_all(wfd, _frame(batch))
                self.writes += 1
        except OSError:  # the worker is gone (its reader fails the rest): these are failed here
            for rid, _, _ in batch:
                with self._lock:
                    entry = self._pending.pop(rid, None)
                    if entry is not None:
                        self._bytes -= entry[1]
                if entry is not None:
                    entry[0].set_exception(WorkerUnavailable("the worker stopped"))

    def result(self, future: concurrent.futures.Future, timeout: float | None = None) -> list:
        """The concerns the worker found, or :class:`WorkerUnavailable`."""
        try:
            return future.result(self.timeout if timeout is None else timeout)
        except concurrent.futures.TimeoutError:
            self._replace("a result took longer than the timeout")
            raise WorkerUnavailable("timeout") from None
        except WorkerUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - whatever it was, there is no result
            raise WorkerUnavailable(str(exc)) from None

    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None and self._ready.is_set() else None

    def close(self) -> None:
        self._closed = True
        self._replace("closed")
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(10)

    # -- the worker's life (on its own thread) -------------------------------------------
    def _replace(self, why: str) -> None:
        """Stop the worker (its reader then fails everything pending; a new one follows)."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            if not self._closed:
                _log.warning("safeguarding worker replaced", extra={"reason": why})
            try:
                proc.kill()
            except OSError:
                pass

    def _run(self) -> None:
        while not self._closed:
            started = time.monotonic()
            try:
                self._serve_one()
            except Exception:  # noqa: BLE001 - never let the thread die: detect in process meanwhile
                _log.exception("safeguarding worker failed")
            if self._closed:
                break
            self._wake.wait(max(0.0, self.restart_after - (time.monotonic() - started)))

    def _serve_one(self) -> None:
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        # nothing secret goes to a process that only reads words: no bot token, webhook secret or database key
        env = {k: v for k, v in os.environ.items() if k not in _SECRETS}
        root = str(Path(__file__).resolve().parents[1])
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        try:
            proc = subprocess.Popen(
                [self.python, "-m", "bot.safeguarding_worker", str(to_child_r), str(from_child_w)],
                pass_fds=(to_child_r, from_child_w), stdin=subprocess.DEVNULL, env=env, close_fds=True)
        finally:
            os.close(to_child_r)
            os.close(from_child_w)
        self._proc = proc
        self.starts += 1
        reader = _Reader(from_child_r)
        try:
            _write_all(to_child_w, _frame(self.recipe))
            first = reader.frames()
            if not first or first[0] != ("ready",):
                self.failure = first[0][1] if first and first[0][0] == "failed" else "no answer"
                _log.warning("safeguarding worker did not start: detecting in process", extra={"error": self.failure})
                return
            self.failure = None
            rest = first[1:]
            with self._lock:
                self._wfd = to_child_w
            self._ready.set()
            self._tried.set()
            _log.info("safeguarding worker ready", extra={"pid": proc.pid})
            if self._closed:
                return
            while True:
                for rid, ok, found in rest:
                    with self._lock:
                        entry = self._pending.pop(rid, None)
                        if entry is not None:
                            self._bytes -= entry[1]
                    if entry is None:
                        continue
                    if ok:
                        entry[0].set_result(found)
                    else:
                        entry[0].set_exception(WorkerUnavailable("the worker could not check these words"))
                rest = reader.frames()
        except (EOFError, OSError):
            if not self._ready.is_set() and self.failure is None:
                self.failure = "the worker stopped before it was ready"
        finally:
            self._tried.set()
            self._ready.clear()
            with self._lock:
                self._wfd = None
                pending, self._pending, self._bytes, self._outbox = self._pending, {}, 0, []
            for future, _ in pending.values():
                future.set_exception(WorkerUnavailable("the worker stopped"))
            for fd in (to_child_w, from_child_r):
                try:
                    os.close(fd)
                except OSError:
                    pass
            try:
                proc.kill()
            except OSError:
                pass
            proc.wait()


if __name__ == "__main__":
    sys.exit(main())
