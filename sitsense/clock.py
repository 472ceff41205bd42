"""Clocks: the live service reads the system, the simulator is driven by sample timestamps."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone, tzinfo
from datetime import time as time_of_day
from typing import Protocol


def shift_wall(wall: datetime, seconds: float) -> datetime:
    """``wall`` moved by ``seconds`` of elapsed time, shown in its own zone.

    Added in UTC: aware arithmetic in a zone with DST (``wall + timedelta``) is wall-clock
    arithmetic and would be an hour off across a DST change.
    """
    return (wall.astimezone(timezone.utc) + timedelta(seconds=seconds)).astimezone(wall.tzinfo)


def today_at_nine(tz: tzinfo | None = None) -> datetime:
    """09:00 today in ``tz`` (else the system's zone): where a replay without a start time begins."""
    today = datetime.now(tz).date() if tz else datetime.now().date()
    start = datetime.combine(today, time_of_day(9, 0))
    return start.replace(tzinfo=tz) if tz else start.astimezone()


class Clock(Protocol):
    """Monotonic seconds for durations, aware local wall time for day boundaries."""

    def monotonic(self) -> float: ...

    def wall(self) -> datetime: ...

    def wall_at(self, t_s: float) -> datetime:
        """Local wall time at monotonic ``t_s`` (elapsed time from now, so DST-correct)."""
        ...

    def sleep(self, seconds: float) -> None: ...

    def wait_until(self, t_s: float, interrupt: threading.Event) -> bool:
        """Block until this clock reads ``t_s`` or ``interrupt`` is set (True if it was).

        For threads that time something on the clock (the buzzer) without moving it.
        """
        ...


class SystemClock:
    """The real clocks of the machine."""

    def __init__(self, tz: tzinfo | None = None):
        self._tz = tz

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> datetime:
        now = datetime.now().astimezone()
        return now.astimezone(self._tz) if self._tz else now

    def wall_at(self, t_s: float) -> datetime:
        return shift_wall(self.wall(), t_s - time.monotonic())

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def wait_until(self, t_s: float, interrupt: threading.Event) -> bool:
        return interrupt.wait(max(0.0, t_s - time.monotonic()))


class _FromStart:
    """Wall time for a clock that read ``start_mono_s`` at ``start_wall``: the start plus the elapsed
    time, shown in ``tz`` (default: the start's own zone; a naive start is local time)."""

    def __init__(self, start_wall: datetime, start_mono_s: float, tz: tzinfo | None):
        if start_wall.tzinfo is None:
            start_wall = start_wall.astimezone()
        self._start_wall = start_wall
        self._tz = tz or start_wall.tzinfo
        self._start_mono_s = start_mono_s

    def monotonic(self) -> float:
        raise NotImplementedError

    def wall(self) -> datetime:
        return self.wall_at(self.monotonic())

    def wall_at(self, t_s: float) -> datetime:
        """Local wall time at monotonic ``t_s`` (computed as elapsed time, so DST-correct)."""
        return shift_wall(self._start_wall, t_s - self._start_mono_s).astimezone(self._tz)


class SimClock(_FromStart):
    """A clock moved forward by the caller (sample timestamps), mapped to wall time from a start.

    ``tz`` is the wearer's local zone (for day boundaries and active hours); without it the
    start time's own zone is used. With ``speed`` set, ``sleep`` really waits
    ``seconds / speed`` so a replay can run at a chosen multiple of real time. Threads that
    ``wait_until`` a time are woken when the caller moves the clock there; ``waiting()`` lists
    their deadlines, so a test can step simulated time from one to the next.
    """

    INTERRUPT_POLL_S = 0.02  # real time between looks at a waiter's interrupt event

    def __init__(self, start_wall: datetime, start_mono_s: float = 0.0, speed: float | None = None,
                 tz: tzinfo | None = None):
        super().__init__(start_wall, start_mono_s, tz)
        self._now_s = start_mono_s
        self.speed = speed
        self._moved = threading.Condition()
        self._deadlines: list[float] = []

    def monotonic(self) -> float:
        return self._now_s

    def advance_to(self, t_s: float) -> None:
        if t_s > self._now_s:
            with self._moved:
                self._now_s = t_s
                self._moved.notify_all()

    def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        if self.speed:
            time.sleep(seconds / self.speed)
        with self._moved:
            self._now_s += seconds
            self._moved.notify_all()

    def wait_until(self, t_s: float, interrupt: threading.Event) -> bool:
        with self._moved:
            self._deadlines.append(t_s)
            try:
                while self._now_s < t_s and not interrupt.is_set():
                    self._moved.wait(self.INTERRUPT_POLL_S)
            finally:
                self._deadlines.remove(t_s)
        return interrupt.is_set()

    def waiting(self) -> list[float]:
        """The times other threads are waiting for (``wait_until``), earliest first."""
        with self._moved:
            return sorted(self._deadlines)


class ScaledClock(_FromStart):
    """Real time run ``speed`` times faster, from a chosen start: for fake sensors with ``--speed X``.

    ``monotonic`` starts at ``start_mono_s`` and advances ``speed`` seconds per real second;
    ``sleep(s)`` really waits ``s / speed``; wall time is ``start_wall`` plus the elapsed time.
    ``real0`` is the system's ``time.monotonic()`` at which the clock read ``start_mono_s``
    (default: now); clocks in several processes given the same ``real0`` agree, so a restarted
    fake service finds its simulated world where it would be had it kept running.
    """

    def __init__(self, speed: float = 1.0, start_wall: datetime | None = None, start_mono_s: float = 0.0,
                 tz: tzinfo | None = None, real0: float | None = None):
        if not speed > 0:
            raise ValueError("speed must be positive")
        super().__init__(start_wall or datetime.now().astimezone(), start_mono_s, tz)
        self.speed = float(speed)
        self._real0 = time.monotonic() if real0 is None else float(real0)

    def monotonic(self) -> float:
        return self._start_mono_s + (time.monotonic() - self._real0) * self.speed

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds / self.speed)

    def wait_until(self, t_s: float, interrupt: threading.Event) -> bool:
        return interrupt.wait(max(0.0, (t_s - self.monotonic()) / self.speed))
