"""Keeps the tracker's state in the store: resume after a restart, checkpoint every ``checkpoint_s``.

After a crash or power cut the service resumes the current bout and today's totals from the last
checkpoint, so at most ``checkpoint_s`` of counting is lost. The time the service was down is
not counted as any posture. A long outage (longer than ``RESUME_BOUT_MAX_GAP_S``) closes the
bout that was running, since nobody knows what the wearer did meanwhile.

The classifier's automatic upright reference (taken from the still seconds after clipping on)
is part of the checkpoint: a service restarted mid-bout would otherwise take the sitting
posture it wakes up in as upright and count the rest of the day wrongly. It is restored only
when the same day resumes; a new day starts with a fresh calibration.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from .checkpoint import VERSION, Checked, check
from .errors import StoreError
from .storage import StorageHealth, is_storage_error
from .events import Acknowledged, Alert, Calibrated, DaySummary, Event, HoldCue, RunSummary
from .outputs.base import StateSnapshot
from .paths import beside
from .posture import PostureClassifier
from .posture.base import LearnsWearer
from .store import Store
from .tracker import DayStats, Tracker, settle_pending

log = logging.getLogger(__name__)

RESUME_BOUT_MAX_GAP_S = 300.0
DISK_RETRY_S = 60.0  # a database kept in memory tries the disk again this often
MAX_PENDING_EVENTS = 20_000  # events kept for the log while the disk refuses writes (a few days' worth)
NOT_LOGGED = (HoldCue,)  # buzzer cues are transient; everything else goes to the log (reports need postures)
WRITTEN_AT_ONCE = (Alert, Calibrated, Acknowledged)  # rare, and they matter: not left to the next checkpoint


class StateKeeper:
    """An output that logs events to the store and checkpoints the tracker."""

    def __init__(self, store: Store, tracker: Tracker, *, checkpoint_s: float = 60.0,
                 classifier: PostureClassifier | None = None, storage: StorageHealth | None = None):
        self.store = store
        self.tracker = tracker
        self.classifier = classifier
        self.storage = storage
        self._calibration: dict[str, Any] | None = None
        self.checkpoint_s = checkpoint_s
        self._pending: list[tuple[str, Event]] = []
        self.dropped_events = 0  # logged events lost because the disk refused writes for too long
        self._last_checkpoint_t: float | None = None
        self._last_wall: datetime | None = None
        self._early: list[Event] = []  # events before the first state (no wall time yet)
        self._last_t: float | None = None
        self._disk_retry_at = time.monotonic() + DISK_RETRY_S
        if storage is not None:
            storage.notes["database"] = self._waiting
            if store.in_memory:
                storage.failed("database", store.memory_reason or OSError("the state folder takes no writes"))

    # ------------------------------------------------------------------ resume

    def resume(self, now_t: float, now_wall: datetime) -> str:
        """Restore the tracker from the last checkpoint; returns what was done, for the log.

        A damaged checkpoint never stops the service: what can be read is kept (see
        ``sitsense.checkpoint``), the stored text is moved aside to ``<db>.damaged-<time>.json``
        and one WARNING names what was wrong.
        """
        checked = self._read_checkpoint()
        if checked is None:
            return "no saved state: starting fresh"
        if checked.state is None:
            return "saved state unreadable: starting fresh"
        saved = checked.state
        snap = saved["snapshot"]
        day = snap["today"]["day"]
        saved_t = saved["t"] if checked.resumable else 0.0
        today = now_wall.date().isoformat()
        if day and day < today:
            stats = DayStats.from_dict(snap["today"])
            open_bout = saved_t - snap["bout_start_t"] if snap["bout_start_t"] is not None else 0.0
            if checked.resumable:
                # prompts still waiting when it stopped: their day is over, so settle them now (a break
                # in progress counts as heeded) and log them on that day
                outcomes = settle_pending(snap, saved_t)
                stats.heeded += sum(1 for o in outcomes if o.heeded)
                self._pending += [(saved["wall"], o) for o in outcomes]
            self.store.save_day(stats.summary(saved_t, open_bout_s=open_bout))
            return f"saved day {day} is over: stored it in the history"
        if day > today:
            return f"saved day {day} is in the future (clock not set yet?): starting fresh"
        if not checked.resumable:
            self.tracker.restore(snap)  # the day's totals, and a fresh bout
            self._restore_calibration(saved.get("calibration"))
            self._restore_wearer(saved.get("wearer"))
            return f"kept today's totals from a damaged checkpoint (today {day})"
        gap_s = (now_wall - datetime.fromisoformat(saved["wall"])).total_seconds()
        if gap_s < 0:
            gap_s = 0.0  # the clock went back (no RTC): assume a quick restart
        shift = now_t - gap_s - saved_t
        self.tracker.restore(snap, shift_t=shift)
        self.tracker.skip_to(now_t)  # the time it was down is no posture
        self._restore_calibration(saved.get("calibration"))
        self._restore_wearer(saved.get("wearer"))
        if gap_s > RESUME_BOUT_MAX_GAP_S and self.tracker.bout_start_t is not None:
            self.tracker.close_bout(saved_t + shift)
        return f"resumed from a checkpoint {gap_s:.0f} s old (today {day})"

    def _read_checkpoint(self) -> Checked | None:
        """The stored checkpoint, migrated and checked; a damaged one is moved aside (one WARNING)."""
        text = self.store.get_text("tracker")
        if text is None:
            return None
        try:
            checked = check(json.loads(text))
        except ValueError as exc:  # not JSON (a flipped bit in a bracket or a quote)
            msg = getattr(exc, "msg", str(exc))
            pos = getattr(exc, "pos", None)
            checked = Checked(None, [f"checkpoint: not JSON ({msg}{f' at character {pos}' if pos is not None else ''})"])
        except RecursionError:
            checked = Checked(None, ["checkpoint: nested too deeply to be one"])
        if checked.problems:
            self._set_aside(text, checked)
        elif checked.migrated_from is not None:
            log.info("state: migrated the checkpoint from version %d to %d", checked.migrated_from, VERSION)
        return checked

    def _set_aside(self, text: str, checked: Checked) -> None:
        """Keep the damaged checkpoint's text beside the database and say what was wrong, once."""
        shown = "; ".join(checked.problems[:4])
        if len(checked.problems) > 4:
            shown += f"; and {len(checked.problems) - 4} more"
        if checked.state is None:
            kept = "nothing in it could be used: the day starts afresh"
        elif not checked.resumable:
            kept = "kept its day's totals; the sitting bout starts afresh"
        else:
            kept = "kept the rest"
        aside = Path(f"{self.store.path}.damaged-{time.strftime('%Y%m%dT%H%M%S')}.json")
        try:
            aside.write_text(text, encoding="utf-8", errors="replace")
            self.store.delete("tracker")
            where = f"moved it to {aside}"
        except Exception as exc:  # a full or read-only disk: the warning is all there is
            where = f"could not move it aside ({getattr(exc, 'strerror', None) or exc})"
        log.warning("state: the checkpoint in %s is damaged (%s); %s; %s", self.store.path, shown, kept, where)

    @property
    def calibration(self) -> dict[str, Any] | None:
        """The day's upright reference as checkpointed (restored on resume, or taken since), or None."""
        return self._calibration

    def _restore_calibration(self, saved: Any) -> None:
        try:
            upright = [float(x) for x in saved["upright_g"]]
        except (TypeError, KeyError, ValueError):
            return
        if len(upright) != 3 or not any(upright):
            return
        self._calibration = saved
        if self.classifier is not None:
            import numpy as np

            self.classifier.set_reference(np.asarray(upright, dtype=float))
            self.classifier.pop_events()  # restoring the day's reference is no new calibration to announce
            log.info("using the upright reference of the resumed day (%s)", saved.get("source", "?"))

    def _restore_wearer(self, saved: Any) -> None:
        """The wearer's own sitting and standing learned earlier today (see posture/wearer.py)."""
        if saved is not None and isinstance(self.classifier, LearnsWearer):
            self.classifier.restore_wearer(saved)

    # ------------------------------------------------------------------ output protocol

    def handle(self, event: Event) -> None:
        if isinstance(event, Calibrated):
            self._calibration = {"source": event.source, "upright_g": [float(x) for x in event.upright_g]}
        if self._last_wall is None:  # logged with the first state's wall time (e.g. a notice of the first step)
            self._early.append(event)
            return
        if isinstance(event, DaySummary) and not isinstance(event, RunSummary):
            self.store.save_day(event)
        if not isinstance(event, NOT_LOGGED):
            self._pending.append((self._last_wall.isoformat(), event))
            if isinstance(event, WRITTEN_AT_ONCE):
                self.checkpoint()

    def update_state(self, state: StateSnapshot) -> None:
        self._last_wall = state.wall
        self._last_t = state.t
        early, self._early = self._early, []
        for event in early:
            self.handle(event)
        # the first state of a run is written at once: a resumed run that dies before its first
        # interval is over must not lose the seconds it counted since the restart
        if self._last_checkpoint_t is None or state.t - self._last_checkpoint_t >= self.checkpoint_s:
            self.checkpoint()

    def wants_fresh_state(self, t: float) -> bool:
        """A checkpoint is due at sensor time ``t``: the service then decides the postures it batches."""
        return self._last_checkpoint_t is not None and t - self._last_checkpoint_t >= self.checkpoint_s

    def checkpoint(self) -> None:
        if self._last_t is None or self._last_wall is None:
            return
        state: dict[str, Any] = {"version": VERSION, "snapshot": self.tracker.snapshot(),
                                 "wall": self._last_wall.isoformat(), "t": self._last_t}
        if self._calibration is not None:
            state["calibration"] = self._calibration
        if isinstance(self.classifier, LearnsWearer):
            state["wearer"] = self.classifier.wearer_state()
        try:
            if self.store.in_memory and time.monotonic() >= self._disk_retry_at:
                self._disk_retry_at = time.monotonic() + DISK_RETRY_S
                self.store.save_to_disk()
            self.store.checkpoint(state, self._pending)
            self._pending = []
            if self.storage is not None and not self.store.in_memory:
                self.storage.succeeded("database")
        except Exception as exc:  # a full or failing SD card must not stop the counting
            if self.storage is not None and is_storage_error(exc):
                self.storage.failed("database", exc)  # loud once, then reminders (see sitsense.storage)
            else:
                log.warning("checkpoint failed (will retry): %s", exc)
            if len(self._pending) > MAX_PENDING_EVENTS:  # the disk has refused writes for days
                drop = len(self._pending) - MAX_PENDING_EVENTS
                self._pending = self._pending[drop:]
                self.dropped_events += drop
        self._last_checkpoint_t = self._last_t

    def _waiting(self) -> str:
        """What the state folder's reminders say is not saved."""
        if self.store.in_memory:
            return "checkpoints and events go to memory"
        lost = f" ({self.dropped_events} older ones dropped)" if self.dropped_events else ""
        return f"{len(self._pending)} event(s) wait to be written{lost}"

    def close(self) -> None:
        self.checkpoint()


class StateInUse(StoreError):
    """Another sitsense service holds the state database's lock."""

    exit_code = 75  # EX_TEMPFAIL: not 78, so systemd's Restart= tries again later


class StateLock:
    """An exclusive, non-blocking lock on ``<db>.lock`` for the service that writes ``<db>``.

    Two services on one database would overwrite each other's checkpoints (and a second one's
    resume would store the first one's day as finished). The lock is ``flock`` on a side file, so
    the kernel drops it when the process dies (SIGKILL, power cut: nothing stale to clean up),
    and it never touches the database itself: the read-only commands (``history``, ``report``)
    do not take it and are never blocked. The holder's pid is written into the file for the
    message. ``acquire`` raises StateInUse at once when another process holds it.

    A full or read-only state folder does not stop the service (it counts in memory, see
    ``sitsense.storage``): the lock file is then opened read-only if it exists, else the folder
    itself is locked, and the pid is not written.
    """

    def __init__(self, db: str | os.PathLike):
        self.db = Path(db)
        self.path = beside(self.db, ".lock")
        self._fd: int | None = None

    def acquire(self) -> "StateLock":
        if self._fd is not None:
            return self
        if self.db.is_dir():
            return self  # not a database: Store.open says so (exit 78)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            if not is_storage_error(exc):
                raise StoreError(f"cannot create the lock file {self.path}: {exc.strerror}") from None
            fd = self._open_without_writing(exc)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read_pid(fd)
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                who = f" (pid {holder})" if holder else ""
                raise StateInUse(f"another sitsense is already using {self.db}{who}") from None
            raise StoreError(f"cannot lock {self.path}: {exc.strerror}") from None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError:
            pass  # a full or read-only folder: the pid is only for the message
        self._fd = fd
        return self

    def _open_without_writing(self, why: OSError) -> int:
        """Something to flock in a folder that takes no writes: the lock file read-only, else the folder."""
        for target, flags in ((self.path, os.O_RDONLY), (self.path.parent, os.O_RDONLY | os.O_DIRECTORY)):
            try:
                return os.open(target, flags | os.O_CLOEXEC)
            except OSError:
                continue
        raise StoreError(f"cannot create the lock file {self.path} ({why.strerror}) nor open its folder") from None

    def release(self) -> None:
        """Unlock (closing the file); the file stays, so no other process races on its creation."""
        if self._fd is not None:
            try:
                os.ftruncate(self._fd, 0)
            except OSError:
                pass
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "StateLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def lock_holder(db: str | os.PathLike[str]) -> int | None:
    """Who runs a service on ``db`` now: the holder's pid (0 if unknown), or None when nobody holds
    its lock. Creates nothing; a lock file this user may not read counts as nobody (the caller then
    meets the service's permissions elsewhere)."""
    try:
        fd = os.open(beside(db, ".lock"), os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # refused while a service holds it exclusively
    except OSError:
        return _read_pid(fd) or 0
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None
