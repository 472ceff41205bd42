"""The release loop's brain: which release to suggest (from ``catalogue.py``), the prompt, and guided holds.

The tracker decides *when* the wearer has sat too long and whether a prompt was heeded; the coach
decides *what* to do about it (one exercise from the catalogue, its dose and cue), times the holds
once the wearer stands up, and turns a heeded break into release minutes against the daily goal.
Pure and deterministic: time only comes in with the events and ``tick(t)``; no I/O, no threads.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, replace

import numpy as np

from .catalogue import BY_ID, SAFETY_NOTE, Exercise, eligible, exercise
from .config import CoachConfig
from .events import (ACTIVE, Alert, AlertOutcome, BreakTaken, DaySummary, Event, ExerciseRecognised, HoldCue,
                     PostureChanged, RunSummary)

log = logging.getLogger(__name__)

# Relative weight of each kind when choosing: the releases lead, the complementary strength work
# (done on the floor, so the sensor cannot prove it) is mixed in now and then; long bouts lean hard
# on static hip-flexor stretches.
_WEIGHTS_NORMAL = {"static": 3.0, "dynamic": 4.0, "self-release": 1.0, "strength": 0.5}
_WEIGHTS_LONG = {"static": 12.0, "dynamic": 2.0, "self-release": 1.0, "strength": 0.5}


@dataclass(frozen=True)
class Cue:
    """One scheduled cue of a guided session (offset from its start)."""

    offset_s: float
    cue: str  # start | switch | done
    hold: int


def hold_schedule(ex: Exercise) -> list[Cue]:
    """The cues that time one session of ``ex``: start, switch at the end of each hold, done."""
    d = ex.dose
    cues = [Cue(0.0, "start", 1)]
    t = 0.0
    for k in range(1, d.segments + 1):
        t += d.segment_s
        if k == d.segments:
            cues.append(Cue(t, "done", k))
        elif d.per_side or not d.rest_s:
            cues.append(Cue(t, "switch", k + 1))
        else:  # end of a set: rest, then start the next one
            cues.append(Cue(t, "switch", k + 1))
            t += d.rest_s
            cues.append(Cue(t, "start", k + 1))
    return cues


@dataclass
class _Prompt:
    alert_id: str
    bout_start_t: float
    t: float
    exercise: Exercise


@dataclass
class _Session:
    exercise: Exercise
    start_t: float
    cues: list[Cue]
    alert_id: str | None
    next_i: int = 1  # cue 0 (start) is emitted when the session begins
    seen: str = ""  # label of the last recognition window
    seen_run: int = 0  # consecutive windows with that label
    reported: bool = False


class Coach:
    """Chooses releases, fills alerts, times guided holds and counts release minutes.

    The service passes every Alert through ``on_alert`` and every AlertOutcome through
    ``on_outcome`` (both return the enriched event to publish instead), then every event to
    ``on_event`` (a DaySummary starts a new day), calls ``tick(t)`` once per step and
    ``start_release(t)`` for the button's double press. Events it returns go to the outputs.
    """

    def __init__(self, cfg: CoachConfig | None = None, *, seed: int | None = None,
                 heed_window_s: float = 600.0):
        self.cfg = cfg or CoachConfig()
        self.heed_window_s = heed_window_s
        self._rng = random.Random(self.cfg.seed if seed is None else seed)
        self._pool = eligible(self.cfg)
        if not self._pool:  # cannot happen with the shipped catalogue, but keep the contract clear
            raise ValueError("no exercise fits the configured level and equipment")
        self._history: list[str] = []  # every choice, oldest first
        self._used_today: dict[str, int] = {}
        self._by_bout: dict[float, Exercise] = {}
        self._prompts: dict[str, _Prompt] = {}
        self._pending: _Prompt | None = None
        self._session: _Session | None = None
        self._credited_bouts: set[float] = set()
        self._buf_t: list[np.ndarray] = []
        self._buf_a: list[np.ndarray] = []
        self.recognised_today_s: dict[str, float] = {}  # dynamic releases seen in the signal
        self.release_today_s = 0.0  # heeded prompts, each break capped by its exercise's dose
        self.guided_today_s = 0.0  # finished button-started sessions (no prompt: not in release_today_s)

    # ------------------------------------------------------------ choosing

    def is_long(self, bout_s: float, reminder: int = 1) -> bool:
        """A bout that earns a static hip-flexor stretch: past the first reminder or long_bout_min."""
        return reminder >= 2 or bout_s >= self.cfg.long_bout_min * 60.0

    def choose(self, bout_s: float, reminder: int = 1, *, static_first: bool = False) -> Exercise:
        """Pick the next exercise: no back-to-back repeat, static stretches after long bouts.

        ``static_first`` takes a static hip-flexor stretch whenever the rotation allows one.
        """
        long_bout = self.is_long(bout_s, reminder)
        weights = _WEIGHTS_LONG if long_bout else _WEIGHTS_NORMAL
        recent = set(self._history[-min(2, len(self._pool) - 1):]) if self._history else set()
        candidates = [e for e in self._pool if e.id not in recent] or list(self._pool)
        if static_first and any(e.hip_flexor_static for e in candidates):
            candidates = [e for e in candidates if e.hip_flexor_static]
        if not long_bout and self._history and not any(
                BY_ID[i].kind == "dynamic" for i in self._history[-2:]):
            weights = {**weights, "dynamic": weights["dynamic"] * 3}  # mix dynamic ones in
        w = [weights[e.kind] / (1.0 + self._used_today.get(e.id, 0)) for e in candidates]
        pick = self._rng.choices(candidates, weights=w, k=1)[0]
        self._history.append(pick.id)
        del self._history[:-20]
        self._used_today[pick.id] = self._used_today.get(pick.id, 0) + 1
        return pick

    # ------------------------------------------------------------ events

    def on_alert(self, alert: Alert) -> Alert:
        """The alert with its exercise, message and safety note filled in."""
        long_bout = self.is_long(alert.bout_s, alert.reminder)
        ex = self._by_bout.get(alert.bout_start_t)
        if ex is None or (long_bout and not ex.hip_flexor_static):
            # A new bout, or a long one whose suggestion is not yet a static hip-flexor stretch: a long
            # bout (a reminder, or a first alert that fires late) takes one whenever the rotation allows.
            # When the rotation has just used it, this reminder gets another exercise, and the next one
            # tries again (by then the stretch has left the last two picks). Once static, it is kept.
            ex = self.choose(alert.bout_s, alert.reminder, static_first=long_bout)
            self._by_bout[alert.bout_start_t] = ex
        prompt = _Prompt(alert.id, alert.bout_start_t, alert.t, ex)
        self._prompts[alert.id] = prompt
        while len(self._prompts) > 50:  # outcomes that never came (service restarted, say)
            self._prompts.pop(next(iter(self._prompts)))
        self._pending = prompt
        return replace(alert, exercise=ex.as_dict(), message=self.message(alert, ex), safety=SAFETY_NOTE)

    def message(self, alert: Alert, ex: Exercise) -> str:
        """The one-line prompt text: bout length, reminder number, the release and today's progress."""
        minutes = int(alert.bout_s // 60)
        if alert.reminder <= 1:
            head = f"{minutes} min seated. Stand up for a release: {ex.name}, {ex.dose.text()}."
        elif alert.reminder == 2:
            head = f"Reminder 2: still seated after {minutes} min. {ex.name}, {ex.dose.text()}."
        else:
            head = (f"Reminder {alert.reminder}: {minutes} min without a break. "
                    f"Up now: {ex.name}, {ex.dose.text()}.")
        done_min = self.release_today_s / 60.0
        goal_min = self.cfg.daily_goal_min
        tail = (f" Release today: {done_min:.0f} of {goal_min:g} min."
                if done_min < goal_min else f" Today's {goal_min:g} release minutes are done; keep moving.")
        return head + tail

    def on_outcome(self, outcome: AlertOutcome) -> AlertOutcome:
        """The outcome with ``exercise_id`` and ``release_s`` (the break up to the dose, once per break)."""
        return self._enrich(outcome)

    def on_event(self, event: Event) -> list[Event]:
        """React to any event (after ``on_alert``/``on_outcome`` for those); returns new events (hold cues)."""
        if isinstance(event, PostureChanged):
            return self._on_posture(event)
        if isinstance(event, BreakTaken):
            return self._maybe_start(event.t)
        if isinstance(event, DaySummary) and not isinstance(event, RunSummary):
            self.new_day()  # the tracker closed a local day
        return []

    def _on_posture(self, ev: PostureChanged) -> list[Event]:
        if ev.posture in ACTIVE:
            return self._maybe_start(ev.t)
        s = self._session
        if s is None:
            return []
        stops = ev.posture in ("sitting", "not_worn") or (ev.posture == "lying" and s.exercise.position == "upright")
        if stops:
            self._session = None
            log.info("guided %s stopped: wearer is %s", s.exercise.id, ev.posture)
            return [HoldCue(ev.t, "cancel", s.exercise.id, 0)]
        return []

    def _maybe_start(self, t: float) -> list[Event]:
        p = self._pending
        if (not self.cfg.guided_holds or self._session is not None or p is None
                or t - p.t > self.heed_window_s or t < p.t):
            return []
        return self._begin(p.exercise, t, p.alert_id)

    def start_release(self, t: float, exercise_id: str | None = None) -> list[Event]:
        """Start a guided release now (the button's double press); the pending prompt's exercise if any."""
        if exercise_id:
            ex = exercise(exercise_id)
        elif self._pending is not None and t - self._pending.t <= self.heed_window_s:
            ex = self._pending.exercise
        else:
            ex = self.choose(0.0)
        out: list[Event] = []
        if self._session is not None:
            out.append(HoldCue(t, "cancel", self._session.exercise.id, 0))
        alert_id = self._pending.alert_id if self._pending and self._pending.exercise is ex else None
        return out + self._begin(ex, t, alert_id)

    def _begin(self, ex: Exercise, t: float, alert_id: str | None) -> list[Event]:
        self._session = _Session(ex, t, hold_schedule(ex), alert_id)
        log.info("guided %s started at %.1f s", ex.id, t)
        return [HoldCue(t, "start", ex.id, 1)]

    def tick(self, t: float) -> list[Event]:
        """Cues of the running session that are due by ``t`` (stamped with their scheduled time)."""
        s = self._session
        out: list[Event] = []
        while s is not None and s.next_i < len(s.cues) and s.start_t + s.cues[s.next_i].offset_s <= t:
            c = s.cues[s.next_i]
            out.append(HoldCue(s.start_t + c.offset_s, c.cue, s.exercise.id, c.hold))
            s.next_i += 1
        if s is not None and s.next_i >= len(s.cues):
            self._session = None
            if s.alert_id is None:  # no prompt, so no outcome: kept apart, nothing proves the break
                self.guided_today_s += s.exercise.dose.work_s
            elif self._pending is not None and self._pending.alert_id == s.alert_id:
                self._pending = None  # done: a later stand-up in this window does not restart it
        return out

    def observe(self, t_s: np.ndarray, accel_g: np.ndarray, sample_rate_hz: float) -> list[Event]:
        """Feed raw samples while a guided session runs; reports a dynamic release seen in the signal.

        Cheap when idle (nothing is kept). Two consecutive 10 s windows (hop 5 s) that the
        recogniser labels as the session's exercise give one ExerciseRecognised per session.
        """
        from .recognition import EXERCISE_LABELS, WINDOW_S, recognise

        s = self._session
        if s is None or s.exercise.id not in EXERCISE_LABELS.values():
            self._buf_t, self._buf_a = [], []
            return []
        self._buf_t.append(np.asarray(t_s, float))
        self._buf_a.append(np.asarray(accel_g, float))
        t_all, a_all = np.concatenate(self._buf_t), np.concatenate(self._buf_a)
        n, hop = int(round(WINDOW_S * sample_rate_hz)), int(round(WINDOW_S / 2 * sample_rate_hz))
        out: list[Event] = []
        while len(t_all) >= n:
            label = recognise(a_all[:n], sample_rate_hz)
            end_t = float(t_all[n - 1])
            s.seen_run = s.seen_run + 1 if label == s.seen else 1
            s.seen = label
            if EXERCISE_LABELS.get(label) == s.exercise.id:
                self.recognised_today_s[s.exercise.id] = self.recognised_today_s.get(s.exercise.id, 0.0) + (
                    WINDOW_S if s.seen_run == 1 else WINDOW_S / 2)
                if s.seen_run >= 2 and not s.reported:
                    s.reported = True
                    dur = WINDOW_S * 1.5
                    out.append(ExerciseRecognised(end_t, s.exercise.id, end_t - dur, dur))
            t_all, a_all = t_all[hop:], a_all[hop:]
        self._buf_t, self._buf_a = [t_all], [a_all]
        return out

    @property
    def session(self) -> tuple[str, float] | None:
        """(exercise id, start t) of the running guided session, or None."""
        return (self._session.exercise.id, self._session.start_t) if self._session else None

    def _enrich(self, o: AlertOutcome) -> AlertOutcome:
        p = self._prompts.pop(o.alert_id, None)
        if p is None:
            return o
        release_s = 0.0
        if o.heeded and p.bout_start_t not in self._credited_bouts:
            release_s = min(max(o.break_s, 0.0), p.exercise.dose.work_s)
            self._credited_bouts.add(p.bout_start_t)
            self.release_today_s += release_s
        if self._pending is p:
            self._pending = None
        return replace(o, release_s=release_s, exercise_id=p.exercise.id)

    def new_day(self) -> None:
        """Reset today's counters at the local day boundary (the rotation history carries on)."""
        self.release_today_s = 0.0
        self.guided_today_s = 0.0
        self._used_today.clear()
        self.recognised_today_s.clear()
        self._credited_bouts.clear()
        self._by_bout.clear()
