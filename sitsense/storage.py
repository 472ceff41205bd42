"""Is the state folder taking writes? One status for the log, the Home Assistant tile and doctor.

A full SD card, a file system remounted read-only after an error, or a folder the service may
not write never stop the counting or the alerts: the database and the MQTT outbox carry on in
memory (see ``store`` and ``mqtt.outbox``) and report here. :class:`StorageHealth` turns those
reports into a status (``ok``, ``full``, ``read-only`` or ``failing``), a WARNING when it starts,
a reminder every ``remind_every_s`` while it lasts (with what is not being saved), and a WARNING
when writes work again. :func:`probe` checks a folder without waiting for a failure (doctor).
"""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)

OK, FULL, READ_ONLY, FAILING = "ok", "full", "read-only", "failing"
REMIND_EVERY_S = 600.0
_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
_READ_ONLY_ERRNOS = {errno.EROFS, errno.EACCES, errno.EPERM}
_SQLITE_FULL, _SQLITE_READONLY, _SQLITE_CANTOPEN, _SQLITE_IOERR = 13, 8, 14, 10


def is_storage_error(exc: BaseException) -> bool:
    """Whether ``exc`` says the disk refused a write (full, read-only, I/O), rather than a bug or bad data."""
    if isinstance(exc, OSError):
        return exc.errno in _FULL_ERRNOS | _READ_ONLY_ERRNOS | {errno.EIO}
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        if code is not None:
            return code & 0xFF in (_SQLITE_FULL, _SQLITE_READONLY, _SQLITE_CANTOPEN, _SQLITE_IOERR)
        text = str(exc).lower()
        return any(w in text for w in ("disk is full", "readonly", "read-only", "unable to open", "disk i/o"))
    return False


def classify(folder: str | os.PathLike[str], exc: BaseException | None = None) -> str:
    """The status a failure in ``folder`` means: what the folder's file system says first, then ``exc``."""
    try:
        st = os.statvfs(folder)
        if st.f_flag & os.ST_RDONLY:
            return READ_ONLY
        if st.f_bavail == 0 or (st.f_favail == 0 and st.f_files > 0):
            return FULL
    except OSError:
        pass
    if isinstance(exc, OSError):
        if exc.errno in _FULL_ERRNOS:
            return FULL
        if exc.errno in _READ_ONLY_ERRNOS:
            return READ_ONLY
    if isinstance(exc, sqlite3.Error):
        code = (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF
        if code == _SQLITE_FULL or "full" in str(exc).lower():
            return FULL
        if code == _SQLITE_READONLY:
            return READ_ONLY
    if not os.access(folder, os.W_OK):
        return READ_ONLY
    return FAILING


def probe(folder: str | os.PathLike[str]) -> tuple[str, str]:
    """Try a small write in ``folder`` now: (status, one line for doctor with the free space)."""
    path = Path(folder)
    if not path.exists():
        parent = next((p for p in path.parents if p.exists()), Path("/"))
        if os.access(parent, os.W_OK):
            return OK, f"{path} does not exist yet; the service creates it"
        return classify(parent), f"{path} does not exist and {parent} is not writable"
    try:
        fd, name = tempfile.mkstemp(prefix=".sitsense-probe-", dir=path)
        try:
            os.write(fd, b"x" * 4096)
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(name)
    except OSError as exc:
        status = classify(path, exc)
        return status, f"{path} is {status}: {exc.strerror or exc}"
    st = os.statvfs(path)
    free_mb = st.f_bavail * st.f_frsize / 1e6
    return OK, f"{path} is writable, {free_mb:.0f} MB free"


@dataclass
class _Part:
    status: str
    since_wall: str
    since_s: float
    failures: int = 1
    why: str = ""


class StorageHealth:
    """The state folder's health as reported by its writers (``database``, ``outbox``); thread-safe.

    ``failed(part, exc)`` on a write the disk refused, ``succeeded(part)`` on one it took,
    ``remind()`` often (it logs at most every ``remind_every_s``). ``status`` is ``ok`` or the
    worst current problem. ``notes`` are extra words for the reminder (e.g. what waits in memory).
    """

    def __init__(self, folder: str | os.PathLike[str], *, remind_every_s: float = REMIND_EVERY_S,
                 monotonic: Callable[[], float] = time.monotonic):
        self.folder = Path(folder)
        self.remind_every_s = remind_every_s
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._parts: dict[str, _Part] = {}
        self._last_reminder_s: float | None = None
        self.notes: dict[str, Callable[[], str]] = {}

    @property
    def status(self) -> str:
        with self._lock:
            statuses = {p.status for p in self._parts.values()}
        for s in (READ_ONLY, FULL, FAILING):
            if s in statuses:
                return s
        return OK

    def failed(self, part: str, exc: BaseException) -> None:
        status = classify(self.folder, exc)
        why = getattr(exc, "strerror", None) or str(exc)
        with self._lock:
            known = self._parts.get(part)
            if known is not None:
                known.failures += 1
                known.status, known.why = status, why
                return
            self._parts[part] = _Part(status, time.strftime("%H:%M"), self._monotonic(), why=why)
            if self._last_reminder_s is None:
                self._last_reminder_s = self._monotonic()
        log.warning("state: %s is %s (%s): the %s is kept in memory and counting goes on; it is lost if "
                    "sitsense restarts before the folder takes writes again", self.folder, status, why,
                    _WHAT.get(part, part))

    def succeeded(self, part: str) -> None:
        with self._lock:
            known = self._parts.pop(part, None)
            if not self._parts:
                self._last_reminder_s = None
        if known is not None:
            log.warning("state: %s takes writes again: the %s is saved (it was %s since %s)", self.folder,
                        _WHAT.get(part, part), known.status, known.since_wall)

    def remind(self) -> None:
        """While something is not being saved, a WARNING every ``remind_every_s`` (never more often)."""
        now = self._monotonic()
        with self._lock:
            if not self._parts or self._last_reminder_s is None or now - self._last_reminder_s < self.remind_every_s:
                return
            self._last_reminder_s = now
            parts = dict(self._parts)
        for name, p in parts.items():
            extra = self.notes.get(name)
            note = f"; {extra()}" if extra is not None else ""
            log.warning("state: %s is still %s since %s (%d failed write(s)): the %s is only in memory%s",
                        self.folder, p.status, p.since_wall, p.failures, _WHAT.get(name, name), note)


_WHAT = {"database": "day's state (checkpoints, event log)", "outbox": "MQTT outbox (alerts waiting for the broker)",
         "lock": "state lock"}
