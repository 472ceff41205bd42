"""State that survives restarts and power cuts: sqlite in WAL mode in the state directory.

Holds the tracker's snapshot (current bout, today's totals, pause and snooze), the calibration,
finished days and an event log. Writes are batched to one transaction per checkpoint (SD cards
dislike small writes). A database that cannot be opened or fails its integrity check is moved
aside with a warning and a fresh one is started: the service never refuses to start because of
its own state. Nor because of its disk: when the state folder is full or read-only the service's
database lives in memory (``in_memory``), holding what could be read of the file (the checkpoint
and the history), until ``save_to_disk()`` finds the folder taking writes again.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable

from .errors import ConfigError, StoreError
from .storage import READ_ONLY, classify, is_storage_error
from .events import DaySummary, Event

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS days (day TEXT PRIMARY KEY, summary TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY AUTOINCREMENT, wall TEXT NOT NULL,
                                   type TEXT NOT NULL, payload TEXT NOT NULL);
"""
MAX_EVENTS = 200_000  # the event log is trimmed to this many rows at checkpoints


class Store:
    """The state database; ``open()`` does the I/O, the constructor none."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.conn: sqlite3.Connection | None = None
        self.warnings: list[str] = []
        self.in_memory = False  # the disk refused the database: it lives in memory (see module docstring)
        self.memory_reason: BaseException | None = None

    def open(self, read_only: bool = False) -> "Store":
        """Open (the service: creating it, and moving a corrupt file aside) or, for the query
        commands, open ``read_only``: nothing is created, renamed or written."""
        if self.path.is_dir():
            raise ConfigError(f"state database {self.path} is a directory; set store.path to a file")
        if read_only:
            return self._open_read_only()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            if not is_storage_error(exc):
                raise StoreError(f"cannot create the state directory {self.path.parent}: {exc.strerror}") from None
            return self._open_in_memory(exc)
        if self.path.exists() and not os.access(self.path, os.R_OK | os.W_OK):
            if os.access(self.path, os.R_OK) and classify(self.path.parent) == READ_ONLY:
                return self._open_in_memory(OSError(30, "Read-only file system"))
            raise StoreError(f"state database {self.path} is not readable and writable by this user; "
                             "fix its owner or mode (the service's StateDirectory= does this)")
        try:
            self.conn = self._connect()
        except sqlite3.OperationalError as exc:  # cannot open at all: not a corrupt file
            if is_storage_error(exc):
                return self._open_in_memory(exc)
            raise StoreError(f"cannot open the state database {self.path}: {exc}") from None
        except sqlite3.DatabaseError as exc:
            try:
                self._move_aside(str(exc))
            except OSError as move_exc:
                if is_storage_error(move_exc):  # corrupt, and the disk takes no rename: start fresh in memory
                    return self._open_in_memory(move_exc, read_file=False)
                raise StoreError(f"state database {self.path} is corrupt ({exc}) and could not be moved "
                                 f"aside: {move_exc.strerror}") from None
            self.conn = self._connect()
        return self

    def _open_in_memory(self, why: BaseException, *, read_file: bool = True) -> "Store":
        """The database in memory, with the file's checkpoint and history if they can be read."""
        conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        conn.executescript(SCHEMA)
        if read_file and self.path.exists():
            for uri in (f"file:{self.path}?mode=ro", f"file:{self.path}?immutable=1"):  # immutable: no -shm needed
                try:
                    src = sqlite3.connect(uri, uri=True, timeout=5)
                    try:
                        with conn:
                            conn.execute("BEGIN")
                            conn.executemany("INSERT OR REPLACE INTO kv VALUES (?, ?, ?)",
                                             src.execute("SELECT key, value, updated FROM kv"))
                            conn.executemany("INSERT OR REPLACE INTO days VALUES (?, ?)",
                                             src.execute("SELECT day, summary FROM days"))
                    finally:
                        src.close()
                    break
                except sqlite3.Error:
                    continue
        self.conn = conn
        self.in_memory = True
        self.memory_reason = why
        return self

    def save_to_disk(self) -> bool:
        """Back from memory to the file when the folder takes writes again: the checkpoint and the days
        replace the file's, the events logged meanwhile are added. True when the store is on disk."""
        if not self.in_memory:
            return True
        assert self.conn is not None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                disk = self._connect()
            except sqlite3.OperationalError:
                raise
            except sqlite3.DatabaseError as exc:  # corrupt (it could not be read at start either): kept aside
                self._move_aside(str(exc))
                disk = self._connect()
            try:
                with disk:
                    disk.execute("BEGIN IMMEDIATE")
                    disk.executemany("INSERT OR REPLACE INTO kv VALUES (?, ?, ?)",
                                     self.conn.execute("SELECT key, value, updated FROM kv"))
                    disk.executemany("INSERT OR REPLACE INTO days VALUES (?, ?)",
                                     self.conn.execute("SELECT day, summary FROM days"))
                    disk.executemany("INSERT INTO events (wall, type, payload) VALUES (?, ?, ?)",
                                     self.conn.execute("SELECT wall, type, payload FROM events ORDER BY id"))
            except sqlite3.Error:
                disk.close()
                raise
        except (sqlite3.Error, OSError) as exc:
            if not is_storage_error(exc):
                raise
            return False
        self.conn.close()
        self.conn = disk
        self.in_memory = False
        self.memory_reason = None
        return True

    def _open_read_only(self) -> "Store":
        """A connection that can only read; an empty in-memory schema when there is no file yet."""
        if not self.path.exists():
            self.conn = sqlite3.connect(":memory:", isolation_level=None)
            self.conn.executescript(SCHEMA)
            return self
        if not os.access(self.path, os.R_OK):
            raise StoreError(f"state database {self.path} is not readable by this user "
                             "(try sudo, or run as the service's user)")
        try:
            conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5, isolation_level=None)
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot read the state database {self.path}: {exc}") from None
        if not {"kv", "days", "events"} <= tables:
            conn.close()
            raise StoreError(f"{self.path} is not a sitsense state database (see store.path)")
        self.conn = conn
        return self

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=5, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            # WAL + FULL: each commit is on the card before it returns. With NORMAL a power cut (not
            # a crash) may roll back every commit since the last WAL sync, far more than checkpoint_s.
            # Commits are rare (one per checkpoint_s, and alerts), so the fsync costs little.
            conn.execute("PRAGMA synchronous=FULL")
            ok = conn.execute("PRAGMA quick_check").fetchone()[0]
            if ok != "ok":
                raise sqlite3.DatabaseError(f"integrity check failed: {ok}")
            conn.executescript(SCHEMA)
        except sqlite3.DatabaseError:
            conn.close()
            raise
        return conn

    def _move_aside(self, why: str) -> None:
        stamp = time.strftime("%Y%m%dT%H%M%S")
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            p = Path(str(self.path) + suffix)
            if p.exists():
                p.replace(Path(str(aside) + suffix))
        msg = f"state database {self.path} was unreadable ({why}); moved it to {aside} and started fresh"
        log.warning(msg)
        self.warnings.append(msg)

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                pass
            self.conn.close()
            self.conn = None

    # ------------------------------------------------------------------ key/value

    def get(self, key: str) -> Any:
        assert self.conn is not None
        row = self.conn.execute("SELECT value FROM kv WHERE key=?", (key,)).fetchone()
        if row is None:
            return None
        try:
            return json.loads(row[0])
        except ValueError:
            log.warning("state key %s is unreadable; ignoring it", key)
            return None

    def get_text(self, key: str) -> str | None:
        """The stored text of ``key`` as it is (bytes that are not UTF-8 replaced), or None."""
        assert self.conn is not None
        row = self.conn.execute("SELECT CAST(value AS BLOB) FROM kv WHERE key=?", (key,)).fetchone()
        return None if row is None else bytes(row[0]).decode("utf-8", errors="replace")

    def delete(self, key: str) -> None:
        assert self.conn is not None
        with self.conn:
            self.conn.execute("DELETE FROM kv WHERE key=?", (key,))

    def put(self, key: str, value: Any) -> None:
        assert self.conn is not None
        with self.conn:
            self._put(key, value)

    def _put(self, key: str, value: Any) -> None:
        assert self.conn is not None
        self.conn.execute("INSERT OR REPLACE INTO kv (key, value, updated) VALUES (?, ?, ?)",
                          (key, json.dumps(value), datetime.now().astimezone().isoformat()))

    # ------------------------------------------------------------------ checkpoints

    def checkpoint(self, state: dict[str, Any], events: Iterable[tuple[str, Event]] = ()) -> None:
        """Write the tracker state and the buffered events in one transaction."""
        assert self.conn is not None
        with self.conn:
            self.conn.execute("BEGIN")
            self._put("tracker", state)
            rows = [(wall, ev.type, json.dumps(ev.to_dict())) for wall, ev in events]
            if rows:
                self.conn.executemany("INSERT INTO events (wall, type, payload) VALUES (?, ?, ?)", rows)
                self.conn.execute("DELETE FROM events WHERE id <= (SELECT MAX(id) FROM events) - ?", (MAX_EVENTS,))

    def save_day(self, summary: DaySummary) -> None:
        assert self.conn is not None
        with self.conn:
            self.conn.execute("INSERT OR REPLACE INTO days (day, summary) VALUES (?, ?)",
                              (summary.date, json.dumps(summary.to_dict())))

    def days(self, n: int | None = None) -> list[dict[str, Any]]:
        """Finished days, oldest first (the last ``n`` if given)."""
        assert self.conn is not None
        q = "SELECT summary FROM days ORDER BY day DESC" + (f" LIMIT {int(n)}" if n else "")
        return [json.loads(r[0]) for r in self.conn.execute(q).fetchall()][::-1]

    def last_event_before(self, type_: str, wall: str) -> dict[str, Any] | None:
        """The newest logged event of ``type_`` stamped before ``wall`` (ISO text), or None."""
        assert self.conn is not None
        row = self.conn.execute("SELECT wall, payload FROM events WHERE type = ? AND wall < ? ORDER BY id DESC LIMIT 1",
                                (type_, wall)).fetchone()
        if row is None:
            return None
        d = json.loads(row[1])
        d["wall"] = row[0]
        return d

    def events(self, types: Iterable[str] | None = None, since_wall: str | None = None) -> list[dict[str, Any]]:
        """Logged events in order, optionally only of ``types`` and stamped at or after ``since_wall``."""
        assert self.conn is not None
        q = "SELECT wall, payload FROM events"
        args: list[Any] = []
        where = []
        if types:
            types = list(types)
            where.append(f"type IN ({','.join('?' * len(types))})")
            args += types
        if since_wall:
            where.append("wall >= ?")
            args.append(since_wall)
        if where:
            q += " WHERE " + " AND ".join(where)
        out = []
        for wall, payload in self.conn.execute(q + " ORDER BY id", args):
            d = json.loads(payload)
            d["wall"] = wall
            out.append(d)
        return out
