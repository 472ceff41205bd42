"""The Output the service feeds for the page: it keeps what the page shows and pokes the server.

Everything here runs on the service's loop thread and returns at once: each change builds a new
``page`` dict (replaced whole, so the server's thread only ever reads a finished one) and calls
``notify``, which must not block (the server passes ``loop.call_soon_threadsafe``).
"""

from __future__ import annotations

import logging
from collections import deque
from datetime import datetime, timedelta
from typing import Any, Callable

from ..events import (Acknowledged, Alert, AlertOutcome, DaySummary, Event, HoldCue, PostureChanged,
                      RunSummary)
from ..outputs.base import StateSnapshot
from .views import alert_view, notice_for, release_view, state_view, timeline_view, week_view

log = logging.getLogger(__name__)

RELEASE_SHOWN_AFTER_S = 60.0  # a finished or stopped release stays on the page this long
MAX_NOTICES = 50


def _midnight(wall: datetime) -> datetime:
    return wall.replace(hour=0, minute=0, second=0, microsecond=0)


class WebFeed:
    """See the module docstring. ``service`` gives the tracker (today's figures), the coach's daily
    goal and ``wall_at``; ``days`` are stored day summaries for the week chart (oldest first);
    ``segments`` today's stored posture segments (from before this run)."""

    def __init__(self, service: Any, *, days: list[dict[str, Any]] | None = None,
                 segments: list[tuple[datetime, datetime, str]] | None = None, speed: float = 1.0):
        self.service = service
        self.tracker = service.tracker
        self.goal_s = float(service.cfg.coach.daily_goal_min) * 60.0
        self.speed = speed
        self.notify: Callable[[], None] = lambda: None
        self.on_close: Callable[[], None] = lambda: None  # the server's close
        self.notices: deque[dict[str, Any]] = deque(maxlen=MAX_NOTICES)  # append/popleft are thread-safe
        self.version = 0
        self._days: list[dict[str, Any]] = list(days or [])[-7:]
        self._day_start: datetime | None = None
        self._closed: list[tuple[datetime, datetime, str]] = list(segments or [])
        self._open: tuple[datetime, str] | None = None
        self._state: StateSnapshot | None = None
        self._seed: tuple[list, list] | None = None
        self._alert: dict[str, Any] | None = None
        self._release: dict[str, Any] | None = None
        self._timeline: dict[str, Any] = {"day_start": None, "segments": [], "open": None}
        self.page: dict[str, Any] = {"version": 0, "state": None, "alert": None, "release": None,
                                     "timeline": self._timeline, "week": week_view(self._days, None),
                                     "speed": speed}

    # ------------------------------------------------------------------ output protocol

    def handle(self, event: Event) -> None:
        wall = self.service.wall_at(event.t)
        if isinstance(event, PostureChanged):
            self._posture(self.service.wall_at(event.since_t), event.posture)
        elif isinstance(event, Alert):
            self._alert = alert_view(event)
        elif isinstance(event, Acknowledged) and self._alert and self._alert["id"] == event.alert_id:
            self._alert = {**self._alert, "acknowledged": True}
        elif isinstance(event, AlertOutcome) and self._alert and self._alert["id"] == event.alert_id:
            self._alert = None
        elif isinstance(event, HoldCue):
            view = release_view(event)
            if view is not None:
                self._release = view
        elif isinstance(event, DaySummary) and not isinstance(event, RunSummary):
            self._days = (self._days + [event.to_dict()])[-7:]
        notice = notice_for(event, wall)
        if notice is not None:
            self.notices.append(notice)
        self._publish()

    def seed(self, days: list[dict[str, Any]], segments: list[tuple[datetime, datetime, str]]) -> None:
        """History read in another thread (the store): applied by the loop's next state, before what
        this run has seen. Safe from any thread (one assignment)."""
        self._seed = (list(days), list(segments))

    def update_state(self, state: StateSnapshot) -> None:
        self._state = state
        if self._seed is not None:
            self._apply_seed()
        if self._day_start is None or state.wall >= self._day_start + timedelta(days=1):
            self._new_day(state.wall)
        r = self._release
        if r is not None and r["phase"] in ("done", "cancel") and state.t - r["t"] > RELEASE_SHOWN_AFTER_S:
            self._release = None
        self._publish(state_changed=True)

    def close(self) -> None:
        self.on_close()

    # ------------------------------------------------------------------ internals

    def _apply_seed(self) -> None:
        days, segments = self._seed  # type: ignore[misc]
        self._seed = None
        self._days = (days + self._days)[-7:]
        live = [a for a, _, _ in self._closed[:1]] or ([self._open[0]] if self._open else [])
        first = live[0] if live else None
        self._closed = [(a, b if first is None else min(b, first), p) for a, b, p in segments
                        if first is None or a < first] + self._closed
        self._rebuild_timeline()

    def _posture(self, start: datetime, posture: str) -> None:
        # a backdated change (the sensor was off all along) rewrites what was drawn since
        self._closed = [(a, min(b, start), p) for a, b, p in self._closed if a < start]
        if self._open is not None and self._open[0] < start:
            self._closed.append((self._open[0], start, self._open[1]))
        self._open = (start, posture)
        self._rebuild_timeline()

    def _new_day(self, wall: datetime) -> None:
        self._day_start = _midnight(wall)
        self._closed = [(max(a, self._day_start), b, p) for a, b, p in self._closed if b > self._day_start]
        if self._open is not None and self._open[0] < self._day_start:
            self._open = (self._day_start, self._open[1])
        self._rebuild_timeline()

    def _rebuild_timeline(self) -> None:
        if self._day_start is None:
            return
        open_ = None
        if self._open is not None:
            open_ = [round(max(0.0, (self._open[0] - self._day_start).total_seconds() / 3600.0), 4), self._open[1]]
        self._timeline = {"day_start": self._day_start.isoformat(timespec="seconds"),
                          "segments": timeline_view(self._closed, self._day_start), "open": open_}

    def _publish(self, state_changed: bool = False) -> None:
        page = dict(self.page)
        state = self._state
        if state is not None and state_changed:
            tr = self.tracker
            view = state_view(state, posture_s={p: tr.today.seconds[p] for p in ("sitting", "standing", "walking", "lying")},
                              heeded=tr.today.heeded, goal_s=self.goal_s, snoozed_until_t=tr.snoozed_until_t)
            page["state"] = view
            assert self._day_start is not None  # set by the first state
            page["week"] = week_view(self._days, {"date": self._day_start.date().isoformat(),
                                                  **{f"{p}_s": s for p, s in view["today"]["posture_s"].items()},
                                                  "alerts": state.alerts_today, "heeded": tr.today.heeded,
                                                  "release_s": state.release_today_s})
        page["alert"] = self._alert
        release = self._release
        if release is not None and state is not None:
            left = min(release["phase_s"], max(0.0, release["t"] + release["phase_s"] - state.t))
            release = {**release, "ends_in_s": round(left, 1)}
        page["release"] = release
        page["timeline"] = self._timeline
        self.version += 1
        page["version"] = self.version
        self.page = page  # one assignment: the server's thread sees the old page or the new one
        try:
            self.notify()
        except Exception:  # the page must never stop the loop
            log.exception("web: notify failed")
