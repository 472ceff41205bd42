"""The sedentary tracker: a pure, deterministic state machine over (t, posture).

It owns every rule about bouts, breaks, limits, reminders, snooze, pause, active hours and the
day rollover, and emits typed events. No I/O, no threads, no clock reads: monotonic ``t`` and the
local wall time come in with each step. Durations use ``t``; only the day boundary and the
active-hours check use wall time, so a wall-clock jump neither creates nor erases sitting time.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

from .config import WEEKDAYS, TrackerConfig, in_window, parse_hhmm_range
from .events import (ACTIVE, POSTURES, SEDENTARY, Acknowledged, Alert, AlertOutcome, BreakEnded, BreakTaken,
                     DaySummary, Event, Paused, Resumed, RunSummary, Snoozed)

MAX_STEP_GAP_S = 10.0  # a longer gap between steps is counted as 'unknown' (no samples)
CORRECTION_HISTORY_S = 4 * 3600.0  # how far back a backdated correction (not_worn) may reach
OUTCOME_MAX_BREAK_S = 900.0  # an outcome is reported once its break ends or reaches this length


@dataclass
class DayStats:
    """Counters for one local day (or for a whole run)."""

    day: str = ""
    seconds: dict[str, float] = field(default_factory=lambda: {p: 0.0 for p in POSTURES})
    bouts: list[float] = field(default_factory=list)
    breaks: int = 0
    alerts: int = 0
    heeded: int = 0
    release_s: float = 0.0

    def summary(self, t: float, cls: type[DaySummary] = DaySummary, open_bout_s: float = 0.0) -> DaySummary:
        bouts = self.bouts + ([open_bout_s] if open_bout_s > 0 else [])
        s = self.seconds
        return cls(t=t, date=self.day, sitting_s=s["sitting"], standing_s=s["standing"],
                   walking_s=s["walking"], lying_s=s["lying"], not_worn_s=s["not_worn"],
                   unknown_s=s["unknown"], longest_bout_s=max(bouts, default=0.0), bouts=bouts,
                   breaks=self.breaks, alerts=self.alerts, heeded=self.heeded, release_s=self.release_s)

    def to_dict(self) -> dict[str, Any]:
        return {"day": self.day, "seconds": dict(self.seconds), "bouts": list(self.bouts), "breaks": self.breaks,
                "alerts": self.alerts, "heeded": self.heeded, "release_s": self.release_s}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DayStats":
        s = cls(day=d["day"], bouts=list(d["bouts"]), breaks=d["breaks"], alerts=d["alerts"],
                heeded=d["heeded"], release_s=d["release_s"])
        s.seconds.update(d["seconds"])
        return s


@dataclass
class _PendingAlert:
    id: str
    t: float
    reminder: int
    heeded: bool = False
    break_start_t: float | None = None

    def to_dict(self, shift_t: float = 0.0) -> dict[str, Any]:
        return {"id": self.id, "t": self.t + shift_t, "reminder": self.reminder, "heeded": self.heeded,
                "break_start_t": None if self.break_start_t is None else self.break_start_t + shift_t}

    @classmethod
    def from_dict(cls, d: dict[str, Any], shift_t: float = 0.0) -> "_PendingAlert":
        b = d.get("break_start_t")
        return cls(id=str(d["id"]), t=float(d["t"]) + shift_t, reminder=int(d["reminder"]),
                   heeded=bool(d.get("heeded", False)), break_start_t=None if b is None else float(b) + shift_t)


class Tracker:
    """Accumulates sedentary time and decides when to alert; see the module docstring."""

    def __init__(self, cfg: TrackerConfig):
        self.cfg = cfg
        self.sit_limit_s = cfg.sit_limit_min * 60.0
        self.snooze_s = cfg.snooze_min * 60.0
        self.heed_window_s = cfg.heed_window_min * 60.0
        self.active_window = parse_hhmm_range(cfg.active_hours)
        self.active_days = {WEEKDAYS.index(d) for d in cfg.active_days}
        self.posture = "unknown"
        self.last_t: float | None = None
        self.bout_start_t: float | None = None
        self.reminders = 0
        self.next_alert_t: float | None = None
        self.active_since_t: float | None = None  # start of the current stand-up inside a bout
        self.break_start_t: float | None = None  # start of a confirmed break, while it lasts
        self.paused_until_t: float | None = None
        self.snoozed_until_t: float | None = None
        self.pending: list[_PendingAlert] = []
        self.bout_alerts: list[str] = []  # ids of the alerts of the current bout (for ``acknowledge``)
        self._deferred: list[Event] = []  # events of a resume, handed out by the next step
        self.today = DayStats()
        self.run = DayStats(day="run")
        self._history: deque[tuple[float, float, str]] = deque()

    # ------------------------------------------------------------------ inputs

    def step(self, t: float, posture: str, wall: datetime, since_t: float | None = None) -> list[Event]:
        """Account the time since the previous step to ``posture`` and apply every rule."""
        events: list[Event] = self._deferred
        self._deferred = []
        day = wall.date().isoformat()
        if not self.today.day:
            self.today.day = day
        elif day > self.today.day:  # only forward: a clock set back does not reopen a day
            events.append(self.today.summary(t, open_bout_s=self.bout_s(t)))
            self.today = DayStats(day=day)
        if self.last_t is None:
            self.last_t = t
            self._enter(t, posture, events)
            self.posture = posture
            return events
        if since_t is not None and since_t < self.last_t:
            self._correct(since_t, posture, events)
        dt = t - self.last_t
        if dt <= 0:
            return events
        if dt > MAX_STEP_GAP_S:
            self._account(self.last_t, t - MAX_STEP_GAP_S, "unknown")
            self.last_t = t - MAX_STEP_GAP_S
        start = self.last_t
        self._account(start, t, posture)
        self.last_t = t
        if posture != self.posture:
            self._enter(start, posture, events)
            self.posture = posture
        self._rules(t, wall, events)
        return events

    def snooze(self, t: float, minutes: float) -> list[Event]:
        """Hold back the next reminder for ``minutes``."""
        self.snoozed_until_t = t + minutes * 60.0
        if self.next_alert_t is not None:
            self.next_alert_t = max(self.next_alert_t, self.snoozed_until_t)
        return [Snoozed(t, self.snoozed_until_t)]

    def pause(self, t: float, minutes: float, reason: str = "command") -> list[Event]:
        """No alerts for ``minutes`` (time is still counted)."""
        self.paused_until_t = t + minutes * 60.0
        return [Paused(t, self.paused_until_t, reason)]

    def resume(self, t: float, reason: str = "command") -> list[Event]:
        was_paused = self.paused_until_t is not None
        self.paused_until_t = None
        self.snoozed_until_t = None
        return [Resumed(t, reason)] if was_paused else []

    def acknowledge(self, t: float, alert_id: str) -> list[Event]:
        """The wearer acknowledged alert ``alert_id`` (the phone's *Done*): no more reminders in this bout.

        Only an alert of the current bout can be acknowledged (raises ValueError otherwise). The
        heed window stays open: a break after it still counts as heeded. A repeat changes nothing
        and returns no event.
        """
        if alert_id not in self.bout_alerts:
            raise ValueError(f"unknown alert id {alert_id!r}: not an alert of the current sitting bout")
        if self.next_alert_t is None:
            return []
        self.next_alert_t = None
        reminder = self.bout_alerts.index(alert_id) + 1
        return [Acknowledged(t, alert_id, reminder, self.bout_s(t))]

    def final_outcomes(self, t: float) -> list[Event]:
        """At the end of a run that nothing resumes (a replay): report outcomes still waiting
        (a break in progress, a window still open). A service that will resume keeps them instead."""
        events: list[Event] = self._deferred
        self._deferred = []
        if self.break_start_t is not None:
            self._report_outcomes(t, t - self.break_start_t, events)
        for pa in self.pending:
            if not pa.heeded:
                events.append(AlertOutcome(t, pa.id, pa.reminder, False, 0.0))
        self.pending = []
        return events

    def add_release(self, seconds: float) -> None:
        """Count release time reported by the coach."""
        self.today.release_s += seconds
        self.run.release_s += seconds

    # ------------------------------------------------------------------ queries

    def bout_s(self, t: float) -> float:
        """Length of the current sedentary bout: time elapsed since it began (0 when none)."""
        return 0.0 if self.bout_start_t is None else max(0.0, t - self.bout_start_t)

    def summary(self, t: float) -> RunSummary:
        """The whole run so far (the ongoing bout included)."""
        return self.run.summary(t, RunSummary, open_bout_s=self.bout_s(t))  # type: ignore[return-value]

    def day_summary(self, t: float) -> DaySummary:
        return self.today.summary(t, open_bout_s=self.bout_s(t))

    # ------------------------------------------------------------------ rules

    def _account(self, t0: float, t1: float, posture: str) -> None:
        dt = t1 - t0
        self.today.seconds[posture] += dt
        self.run.seconds[posture] += dt
        h = self._history
        if h and h[-1][2] == posture and h[-1][1] == t0:
            h[-1] = (h[-1][0], t1, posture)
        else:
            h.append((t0, t1, posture))
        while h and h[0][1] < t1 - CORRECTION_HISTORY_S:
            h.popleft()

    def _enter(self, start: float, posture: str, events: list[Event]) -> None:
        """The posture changed at ``start``: bouts begin, stand-ups begin, sensors come off."""
        if posture in SEDENTARY:
            if self.break_start_t is not None:
                self._end_break(start, events)
            if self.bout_start_t is None:
                self._start_bout(start)
            else:
                self.active_since_t = None  # a short stand-up: the bout goes on
        elif posture in ACTIVE:
            if self.bout_start_t is not None and self.active_since_t is None:
                self.active_since_t = start
        elif posture == "not_worn":
            if self.break_start_t is not None:
                self._end_break(start, events)
            if self.bout_start_t is not None:
                self._end_bout(self.active_since_t if self.active_since_t is not None else start)

    def _rules(self, t: float, wall: datetime, events: list[Event]) -> None:
        # a stand-up long enough becomes a break and ends the bout
        if self.active_since_t is not None and self.posture in ACTIVE \
                and t - self.active_since_t >= self.cfg.break_s:
            start = self.active_since_t
            self._end_bout(start)
            self.break_start_t = start
            self.today.breaks += 1
            self.run.breaks += 1
            events.append(BreakTaken(t, start, t - start))
            for pa in self.pending:
                if not pa.heeded and start <= pa.t + self.heed_window_s:
                    pa.heeded, pa.break_start_t = True, start
        if self.break_start_t is not None and t - self.break_start_t >= OUTCOME_MAX_BREAK_S:
            self._report_outcomes(t, t - self.break_start_t, events)
        self._expire_outcomes(t, events)
        # alerts: only while sitting or lying, in active hours, not paused
        due = self.next_alert_at()
        if due is None or t < due or self.posture not in SEDENTARY:
            return
        assert self.bout_start_t is not None
        if self.paused_until_t is not None:
            if t < self.paused_until_t:
                return
            self.paused_until_t = None
            events.append(Resumed(t, "pause ended"))
        if not self._in_active_hours(wall):
            return
        self.reminders += 1
        bout = t - self.bout_start_t
        # the coach writes the prompt (``message``); the tracker only says when, and how long the bout is
        alert = Alert(t=t, id=f"{wall.strftime('%Y%m%dT%H%M%S')}-{self.reminders}", bout_s=bout,
                      bout_start_t=self.bout_start_t, reminder=self.reminders, message="", time=wall.isoformat())
        events.append(alert)
        self.today.alerts += 1
        self.run.alerts += 1
        self.pending.append(_PendingAlert(alert.id, t, self.reminders))
        self.bout_alerts.append(alert.id)
        self.next_alert_t = max(t + self.snooze_s, self.snoozed_until_t or 0.0)

    def next_alert_at(self) -> float | None:
        """When the running bout's next alert falls due if it goes on (pauses and active hours aside),
        or None: no bout, acknowledged, or no reminders left."""
        if self.bout_start_t is None or self.next_alert_t is None or self.reminders >= self.cfg.max_reminders:
            return None
        return self.next_alert_t

    def alert_due(self, t: float, wall_at: Callable[[float], datetime]) -> bool:
        """Whether a sedentary posture at ``t`` would raise an alert now (nothing is changed);
        ``wall_at(t)`` is only asked when everything else says yes."""
        due = self.next_alert_at()
        return (due is not None and t >= due and (self.paused_until_t is None or t >= self.paused_until_t)
                and self._in_active_hours(wall_at(t)))

    def _in_active_hours(self, wall: datetime) -> bool:
        if wall.weekday() not in self.active_days:
            return False
        return in_window(wall.hour * 60 + wall.minute, self.active_window)

    def _start_bout(self, start: float) -> None:
        self._set_bout(start)
        self.snoozed_until_t = None

    def _set_bout(self, start: float | None) -> None:
        """A bout beginning at ``start`` (its first alert at the sit limit), or none."""
        self.bout_start_t = start
        self.active_since_t = None
        self.next_alert_t = None if start is None else start + self.sit_limit_s
        self.reminders = 0
        self.bout_alerts = []

    def _end_bout(self, end: float) -> None:
        assert self.bout_start_t is not None
        length = max(0.0, end - self.bout_start_t)
        self.today.bouts.append(length)
        self.run.bouts.append(length)
        self._set_bout(None)

    def _end_break(self, end: float, events: list[Event]) -> None:
        assert self.break_start_t is not None
        duration = end - self.break_start_t
        events.append(BreakEnded(end, self.break_start_t, duration))
        self._report_outcomes(end, duration, events)
        self.break_start_t = None

    def _report_outcomes(self, t: float, break_s: float, events: list[Event]) -> None:
        keep = []
        for pa in self.pending:
            if pa.heeded and pa.break_start_t == self.break_start_t:
                events.append(AlertOutcome(t, pa.id, pa.reminder, True, break_s))
                self.today.heeded += 1
                self.run.heeded += 1
            else:
                keep.append(pa)
        self.pending = keep

    def _expire_outcomes(self, t: float, events: list[Event]) -> None:
        keep = []
        for pa in self.pending:
            standing_up = self.active_since_t is not None and self.active_since_t <= pa.t + self.heed_window_s
            if not pa.heeded and t > pa.t + self.heed_window_s and not standing_up:
                events.append(AlertOutcome(t, pa.id, pa.reminder, False, 0.0))
            else:
                keep.append(pa)
        self.pending = keep

    def _correct(self, since_t: float, posture: str, events: list[Event]) -> None:
        """The classifier says ``posture`` held since ``since_t``: move that time and undo bouts."""
        moved = 0.0
        for i, (a, b, p) in enumerate(self._history):
            lo = max(a, since_t)
            if b <= lo or p == posture:
                continue
            self.today.seconds[p] -= b - lo
            self.run.seconds[p] -= b - lo
            moved += b - lo
        self.today.seconds[posture] += moved
        self.run.seconds[posture] += moved
        if posture == "not_worn":
            if self.bout_start_t is not None:
                if self.bout_start_t >= since_t - 2.0:  # the whole bout was the sensor on a table
                    self._set_bout(None)
                else:
                    self._end_bout(since_t)
            if self.break_start_t is not None:
                self._end_break(max(since_t, self.break_start_t), events)
        self.posture = posture

    # ------------------------------------------------------------------ persistence

    def close_bout(self, end_t: float) -> None:
        """End the running bout at ``end_t`` without a break (e.g. after a long outage).

        A break in progress ends at ``end_t`` too (the last time anything was known): its heeded
        prompts are reported, with the break's known length, by the next ``step``.
        """
        if self.bout_start_t is not None:
            self._end_bout(max(end_t, self.bout_start_t))
        if self.break_start_t is not None:
            self._end_break(max(end_t, self.break_start_t), self._deferred)

    def skip_to(self, t: float) -> None:
        """Nothing is known until ``t`` (the service was down): count that time as unknown.

        Without it the first step after a restart would treat the outage as a gap in the samples
        and give its last ``MAX_STEP_GAP_S`` to the posture it finds.
        """
        if self.last_t is not None and t > self.last_t:
            self._account(self.last_t, t, "unknown")
            self.last_t = t

    def snapshot(self) -> dict[str, Any]:
        """Everything needed to resume after a restart (JSON-able)."""
        return {"posture": self.posture, "last_t": self.last_t, "bout_start_t": self.bout_start_t,
                "reminders": self.reminders, "next_alert_t": self.next_alert_t,
                "active_since_t": self.active_since_t, "break_start_t": self.break_start_t,
                "paused_until_t": self.paused_until_t, "snoozed_until_t": self.snoozed_until_t,
                "pending": [pa.to_dict() for pa in self.pending], "bout_alerts": list(self.bout_alerts),
                "today": self.today.to_dict()}

    def restore(self, snap: dict[str, Any], shift_t: float = 0.0) -> None:
        """Resume from ``snapshot()``; ``shift_t`` maps old monotonic times onto the new clock."""
        def sh(v: float | None) -> float | None:
            return None if v is None else v + shift_t
        self.posture = snap["posture"]
        self.last_t = sh(snap["last_t"])
        self.bout_start_t = sh(snap["bout_start_t"])
        self.reminders = snap["reminders"]
        self.next_alert_t = sh(snap["next_alert_t"])
        self.active_since_t = sh(snap["active_since_t"])
        self.break_start_t = sh(snap["break_start_t"])
        self.paused_until_t = sh(snap["paused_until_t"])
        self.snoozed_until_t = sh(snap["snoozed_until_t"])
        # prompts still waiting for their break (older snapshots have none)
        self.pending = []
        for d in snap.get("pending") or []:
            try:
                self.pending.append(_PendingAlert.from_dict(d, shift_t))
            except (KeyError, TypeError, ValueError):
                continue  # a damaged entry loses one outcome, never the resume
        self.bout_alerts = [str(i) for i in snap.get("bout_alerts") or []]
        self.today = DayStats.from_dict(snap["today"])


def settle_pending(snap: dict[str, Any], end_t: float) -> list[AlertOutcome]:
    """Outcomes of the prompts a ``snapshot()`` left waiting, when nothing more will be known of them
    (its day is over): a prompt whose break was in progress is heeded, with the break's length up to
    ``end_t`` (at most OUTCOME_MAX_BREAK_S); the others were not heeded. Stamped ``end_t``."""
    out = []
    for d in snap.get("pending") or []:
        try:
            pa = _PendingAlert.from_dict(d)
        except (KeyError, TypeError, ValueError):
            continue
        if pa.heeded and pa.break_start_t is not None:
            out.append(AlertOutcome(end_t, pa.id, pa.reminder, True,
                                    min(max(0.0, end_t - pa.break_start_t), OUTCOME_MAX_BREAK_S)))
        else:
            out.append(AlertOutcome(end_t, pa.id, pa.reminder, False, 0.0))
    return out

