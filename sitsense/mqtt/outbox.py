"""A bounded on-disk queue (sqlite) of MQTT messages that must not be lost while the broker is away.

Rows are deleted only after the broker acknowledged them (PUBACK), so a crash or a restart at any
moment loses nothing; the price is a possible duplicate, which receivers drop by the message's id.
When full, the oldest rows are dropped and counted (``dropped``), so a week offline cannot fill
the SD card.

The outbox is for broker outages, never a gate: when the disk refuses a write (full, read-only)
the rows move to an in-memory copy and the sender goes on publishing from there; every
``RETRY_DISK_S`` the disk is tried again and, once it takes writes, the rows go back to it.
Problems are reported to a :class:`~sitsense.storage.StorageHealth` (part ``outbox``).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TypeVar

from ..errors import StoreError
from ..storage import StorageHealth, is_storage_error

log = logging.getLogger(__name__)
RETRY_DISK_S = 60.0  # while in memory, how often a write tries the disk again
T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    qos INTEGER NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


@dataclass(frozen=True)
class Pending:
    """One stored message waiting for its PUBACK."""

    seq: int
    topic: str
    payload: bytes
    qos: int


class Outbox:
    """Thread-safe sqlite queue; ``add`` from the service loop, ``take``/``remove`` from the sender."""

    def __init__(self, path: str | os.PathLike, *, max_messages: int = 10000, storage: StorageHealth | None = None):
        if max_messages < 1:
            raise ValueError("max_messages must be at least 1")
        self.path = str(path)
        self.max_messages = max_messages
        self.storage = storage
        self._lock = threading.Lock()
        self._closed = False
        self.in_memory = self.path == ":memory:"  # a replay's, or the disk refused writes
        self._retry_at = 0.0
        if storage is not None:
            storage.notes["outbox"] = lambda: f"{len(self)} message(s) wait in it"
        try:
            self._db = self._open_file() if not self.in_memory else self._open_memory()
        except (sqlite3.Error, OSError) as exc:
            if not is_storage_error(exc):
                raise StoreError(f"{self.path}: cannot open the MQTT outbox: {exc}; check that the state "
                                 "folder exists and is writable (or set store.path)") from None
            self._db = self._open_memory()
            self._fell_back(exc)
        n = len(self)
        if n:
            log.info("MQTT outbox %s holds %d message(s) from an earlier run", self.path, n)

    def _open_file(self) -> sqlite3.Connection:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL: a commit costs no fsync; a power cut may lose the last few rows, a
            # process crash loses none.
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
        except sqlite3.Error:
            db.close()
            raise
        return db

    @staticmethod
    def _open_memory() -> sqlite3.Connection:
        db = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        db.executescript(_SCHEMA)
        return db

    def _fell_back(self, exc: BaseException) -> None:
        self.in_memory = True
        self._retry_at = time.monotonic() + RETRY_DISK_S
        if self.storage is not None:
            self.storage.failed("outbox", exc)
        else:
            log.warning("MQTT outbox %s: the disk refused a write (%s); keeping it in memory", self.path, exc)

    def _write(self, do: Callable[[sqlite3.Connection], T]) -> T:
        """Run a write on the current database; if the disk refuses it, move the rows to memory and
        run it there. Every RETRY_DISK_S in memory, try to move them back first. Caller holds the lock."""
        if self.in_memory and self.path != ":memory:" and time.monotonic() >= self._retry_at:
            self._back_to_disk()
        try:
            return do(self._db)
        except sqlite3.Error as exc:
            if self.in_memory or not is_storage_error(exc):
                raise
            memory = self._open_memory()
            _copy_rows(self._db, memory)
            self._db.close()
            self._db = memory
            self._fell_back(exc)
            return do(self._db)

    def _back_to_disk(self) -> None:
        self._retry_at = time.monotonic() + RETRY_DISK_S
        try:
            disk = self._open_file()
            try:
                disk.execute("BEGIN IMMEDIATE")
                disk.execute("DELETE FROM outbox")
                _copy_rows(self._db, disk, begin=False)
                disk.execute("COMMIT")
            except sqlite3.Error:
                disk.close()
                raise
        except (sqlite3.Error, OSError) as exc:
            log.debug("MQTT outbox %s: the disk still refuses writes: %s", self.path, exc)
            return
        self._db.close()
        self._db = disk
        self.in_memory = False
        if self.storage is not None:
            self.storage.succeeded("outbox")

    def add(self, topic: str, payload: bytes, qos: int = 1) -> int:
        """Store one message; returns its sequence number. Drops (and counts) the oldest when full."""
        def insert(db: sqlite3.Connection) -> int:
            with db:
                db.execute("BEGIN")
                cur = db.execute("INSERT INTO outbox (topic, payload, qos, created) VALUES (?, ?, ?, ?)",
                                 (topic, payload, qos, time.time()))
                seq = int(cur.lastrowid or 0)
                count = db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
                excess = count - self.max_messages
                if excess > 0:
                    db.execute("DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox ORDER BY seq LIMIT ?)",
                               (excess,))
                    db.execute("INSERT INTO meta (key, value) VALUES ('dropped', ?) ON CONFLICT(key) "
                               "DO UPDATE SET value = value + excluded.value", (excess,))
            if excess > 0:
                log.warning("MQTT outbox full (%d messages): dropped the %d oldest", self.max_messages, excess)
            return seq

        with self._lock:
            self._check_open()
            return self._write(insert)

    def take(self, after_seq: int, limit: int) -> list[Pending]:
        """Up to ``limit`` messages with a sequence number above ``after_seq``, oldest first."""
        with self._lock:
            self._check_open()
            rows = self._db.execute("SELECT seq, topic, payload, qos FROM outbox WHERE seq > ? "
                                    "ORDER BY seq LIMIT ?", (after_seq, limit)).fetchall()
        return [Pending(int(s), t, bytes(p), int(q)) for s, t, p, q in rows]

    def remove(self, seqs: list[int]) -> None:
        """Forget messages the broker acknowledged."""
        if not seqs:
            return
        def delete(db: sqlite3.Connection) -> None:
            db.executemany("DELETE FROM outbox WHERE seq = ?", [(s,) for s in seqs])

        with self._lock:
            if self._closed:
                return
            self._write(delete)

    @property
    def dropped(self) -> int:
        """Messages dropped because the outbox was full, over the life of this file."""
        with self._lock:
            self._check_open()
            row = self._db.execute("SELECT value FROM meta WHERE key = 'dropped'").fetchone()
        return int(row[0]) if row else 0

    def __len__(self) -> int:
        with self._lock:
            self._check_open()
            return int(self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    def close(self) -> None:
        """Close the database; idempotent."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._db.close()

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"{self.path}: the MQTT outbox is closed")


def _copy_rows(src: sqlite3.Connection, dst: sqlite3.Connection, *, begin: bool = True) -> None:
    """Every row, the dropped count and the sequence counter from ``src`` into ``dst`` (its own
    transaction unless ``begin`` is False): the sender's cursor stays valid across the move."""
    rows = src.execute("SELECT seq, topic, payload, qos, created FROM outbox ORDER BY seq").fetchall()
    meta = src.execute("SELECT key, value FROM meta").fetchall()
    counter = src.execute("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").fetchone()
    if begin:
        dst.execute("BEGIN")
    dst.executemany("INSERT OR REPLACE INTO outbox (seq, topic, payload, qos, created) VALUES (?, ?, ?, ?, ?)", rows)
    dst.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", meta)
    if counter is not None:
        dst.execute("DELETE FROM sqlite_sequence WHERE name = 'outbox'")
        dst.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('outbox', ?)", (counter[0],))
    if begin:
        dst.execute("COMMIT")
