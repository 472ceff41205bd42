"""Which state updates reach the broker: pure, time comes in with each state.

A phone on mobile data should not be flooded: a posture is shown once it has lasted
``interval_s`` (a flickering classifier sends nothing); changes go out at most once per
``interval_s`` of state time, once a minute when only the minute counters moved, at once when the
sensor's status or the alerts (paused, snoozed) changed, and never more than ``max_per_hour`` messages in any hour (a token
bucket: a tenth of the budget as a burst, the rest spread evenly).
"""

from __future__ import annotations

import dataclasses

from ..outputs.base import StateSnapshot
from .topics import CLOCK_TILES, TILES, tile_values

Update = tuple[StateSnapshot, dict[str, str]]  # the state to publish and the tiles that changed


class StateThrottle:
    """Decides what to publish; the caller publishes exactly what it is handed."""

    def __init__(self, interval_s: float, max_per_hour: float):
        self.interval_s = interval_s
        self.max_per_hour = float(max_per_hour)
        self.latest: StateSnapshot | None = None  # the last state offered, posture debounced
        self.deferred = 0  # updates the hourly budget held back
        self._published: dict[str, str] = {}
        self._last_t: float | None = None
        self._candidate: str | None = None
        self._candidate_since: float | None = None
        self._shown_posture: str | None = None
        self._tokens = 0.0
        self._bucket_t: float | None = None

    def offer(self, state: StateSnapshot, *, connected: bool = True) -> Update | None:
        """A new state: what to publish now, or None (nothing changed, too soon, over budget, offline)."""
        state = self._debounced(state)
        self.latest = state
        changed = self._changed(state)
        if not changed or not connected:
            return None
        gap = self.interval_s
        if changed.keys() <= CLOCK_TILES:
            gap = max(gap, 60.0)
        last = self._last_t
        urgent = "sensor" in changed or "alerts" in changed  # a sensor fault, a pause or a snooze: at once
        if not urgent and last is not None and last <= state.t < last + gap:
            return None
        if not self._budget_allows(state.t, len(changed) + 1):
            return None
        self._last_t = state.t
        self._published.update(changed)
        return state, changed

    def everything(self) -> Update | None:
        """After a (re)connect: the latest state with every tile (retained messages may be gone)."""
        if self.latest is None:
            return None
        tiles = tile_values(self.latest)
        self._published = dict(tiles)
        self._last_t = self.latest.t
        return self.latest, tiles

    def held_back(self) -> Update | None:
        """At shutdown: the tiles the limits held back, so the retained tiles end at the last state."""
        if self.latest is None:
            return None
        changed = self._changed(self.latest)
        if not changed:
            return None
        self._published.update(changed)
        return self.latest, changed

    def _changed(self, state: StateSnapshot) -> dict[str, str]:
        return {k: v for k, v in tile_values(state).items() if self._published.get(k) != v}

    def _debounced(self, state: StateSnapshot) -> StateSnapshot:
        """The snapshot with the last posture that lasted ``interval_s``."""
        if state.posture != self._candidate or self._candidate_since is None or state.t < self._candidate_since:
            self._candidate, self._candidate_since = state.posture, state.t
        if self._shown_posture is None or state.t - self._candidate_since >= self.interval_s:
            self._shown_posture = self._candidate
        if state.posture == self._shown_posture or self._shown_posture is None:
            return state
        return dataclasses.replace(state, posture=self._shown_posture)

    def _budget_allows(self, t: float, n: int) -> bool:
        """Take ``n`` tokens at state time ``t`` if the bucket holds them."""
        burst = max(self.max_per_hour / 10.0, len(TILES) + 1.0)  # room for one full update
        if self._bucket_t is None or t < self._bucket_t:
            self._tokens, self._bucket_t = burst, t
        self._tokens = min(burst, self._tokens + (t - self._bucket_t) * (self.max_per_hour - burst) / 3600.0)
        self._bucket_t = t
        if self._tokens < n:
            self.deferred += 1
            return False
        self._tokens -= n
        return True
