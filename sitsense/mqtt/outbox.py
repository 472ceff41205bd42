"""A bounded on-disk queue (sqlite) of MQTT messages that must not be lost while the broker is away.

Rows are deleted only after the broker acknowledged them (PUBACK), so a crash or a restart at any
moment loses nothing; the price is a possible duplicate, which receivers drop by the message's id.
When full, the oldest rows are dropped and counted (``dropped``), so a week offline cannot fill
the SD card.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import StoreError

log = logging.getLogger(__name__)

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

    def __init__(self, path: str | os.PathLike, *, max_messages: int = 10000):
        if max_messages < 1:
            raise ValueError("max_messages must be at least 1")
        self.path = str(path)
        self.max_messages = max_messages
        self._lock = threading.Lock()
        self._closed = False
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            if self.path != ":memory:":
                self._db.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL: a commit costs no fsync; a power cut may lose the last few rows, a
            # process crash loses none.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"{self.path}: cannot open the MQTT outbox: {exc}; check that the state "
                             "folder exists and is writable (or set store.path)") from None
        n = len(self)
        if n:
            log.info("MQTT outbox %s holds %d message(s) from an earlier run", self.path, n)

    def add(self, topic: str, payload: bytes, qos: int = 1) -> int:
        """Store one message; returns its sequence number. Drops (and counts) the oldest when full."""
        with self._lock:
            self._check_open()
            cur = self._db.execute("INSERT INTO outbox (topic, payload, qos, created) VALUES (?, ?, ?, ?)",
                                   (topic, payload, qos, time.time()))
            assert cur.lastrowid is not None
            seq = cur.lastrowid
            count = self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
            excess = count - self.max_messages
            if excess > 0:
                self._db.execute("DELETE FROM outbox WHERE seq IN "
                                 "(SELECT seq FROM outbox ORDER BY seq LIMIT ?)", (excess,))
                self._db.execute("INSERT INTO meta (key, value) VALUES ('dropped', ?) ON CONFLICT(key) "
                                 "DO UPDATE SET value = value + excluded.value", (excess,))
                log.warning("MQTT outbox full (%d messages): dropped the %d oldest", self.max_messages, excess)
            return seq

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
        with self._lock:
            if self._closed:
                return
            self._db.executemany("DELETE FROM outbox WHERE seq = ?", [(s,) for s in seqs])

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
