"""The Service: wires source, posture, tracker, coach and outputs, and runs the loop.

``sitsense run`` and ``sitsense simulate`` both build one; only the sample source and the clock
differ. The loop never waits on an output: outputs queue their own work.
"""

from __future__ import annotations

import logging
import math
import queue
from datetime import datetime
from typing import TYPE_CHECKING, Any, Iterable, TypeGuard

import numpy as np

from .clock import Clock
from .config import Config
from .events import Alert, AlertOutcome, Event, PostureChanged, RunSummary, SensorStatus
from .control import Request, execute
from .outputs.base import Output, StateSnapshot, WantsFreshState
from .posture import PostureClassifier, PostureEstimate, make_classifier
from .sensor.source import ReportsStatus, SampleSource, TakesWakeups
from .tracker import Tracker

if TYPE_CHECKING:
    from .storage import StorageHealth
    from .coach import Coach

log = logging.getLogger(__name__)
ALERT_WAKE_MARGIN_S = 0.05  # after the step's last sample is in the FIFO, before reading it


class Service:
    """One wearer's pipeline; feed it blocks (``process_block``) or let ``run`` pull them from a source."""

    def __init__(self, cfg: Config, *, clock: Clock, source: SampleSource | None = None,
                 classifier: PostureClassifier | None = None, tracker: Tracker | None = None,
                 coach: Coach | None = None, outputs: Iterable[Output] = (), sample_rate_hz: float | None = None):
        self.cfg = cfg
        self.clock = clock
        self.source = source
        # the source's optional capabilities, looked up once (a protocol check costs microseconds)
        self._status_source = source if isinstance(source, ReportsStatus) else None
        self._wakeable_source = source if isinstance(source, TakesWakeups) else None
        rate = sample_rate_hz or (source.sample_rate_hz if source else cfg.sensor.sample_rate_hz)
        self.sample_rate_hz = rate
        self.classifier = classifier or make_classifier(cfg.posture, rate)
        self.tracker = tracker or Tracker(cfg.tracker)
        self.coach = coach
        self.outputs = list(outputs)
        self.requests: queue.SimpleQueue[Request] = queue.SimpleQueue()
        self.posture = "unknown"
        self.p = 0.0
        self.sensor_status = "ok"
        self.last_t: float | None = None
        # A later run resumes this one's state (``sitsense run`` with a state database): ``finish``
        # then leaves open heed windows and a break in progress to the final checkpoint, for the
        # resumed service to report, instead of reporting them as over (as a replay's end does).
        self.resumable = False
        self._state_t: float | None = None  # t of the last state given to the outputs
        self._stop = False
        self.block_hooks: list = []  # called after every block (watchdog, status lines)
        self.storage: StorageHealth | None = None  # the state folder's health, shown with the state

    # ------------------------------------------------------------------ loop

    def run(self) -> RunSummary:
        """Pull blocks from the source until it ends or ``stop()`` is called; return the summary."""
        assert self.source is not None, "run() needs a source"
        try:
            for t_s, accel_g in self.source.blocks():
                self.process_block(t_s, accel_g)
                if self._stop:
                    break
        finally:
            self.source.close()
        return self.finish()

    def stop(self) -> None:
        """Ask ``run`` to return after the current block (safe from a signal handler)."""
        self._stop = True
        if self.source is not None:
            self.source.close()

    def submit(self, request: Request) -> None:
        """Queue a request (``sitsense.control``) from any thread; it runs between blocks."""
        self.requests.put(request)

    def process_block(self, t_s: np.ndarray, accel_g: np.ndarray) -> None:
        """Classify a block, step the tracker for every completed step, and dispatch events."""
        status = None  # the sensor's new status, shown once the postures before it are decided
        if self._status_source is not None:
            for ev in self._status_source.pop_events():
                if isinstance(ev, SensorStatus):
                    status = ev
                self._emit(ev)
        if status is not None and status.status == self.sensor_status:
            status = None
        estimates = self.classifier.process(t_s, accel_g)
        if status is not None or (len(t_s) and self._decide_now(float(t_s[-1]))):
            estimates += self.classifier.flush()
        if self.coach is not None and len(t_s):
            for ev in self.coach.observe(t_s, accel_g, self.sample_rate_hz):
                self._emit(ev)
        for ev in self.classifier.pop_events():
            self._emit(ev)
        self._apply(estimates)
        if status is not None:
            self.sensor_status = status.status
        self._show_sensor_status(status, len(t_s) == 0)
        self._ask_for_the_next_alert()
        self._drain_requests()
        for hook in self.block_hooks:
            hook(self)

    def _apply(self, estimates: Iterable[PostureEstimate]) -> None:
        """Step the tracker, posture changes and the coach through the classifier's estimates."""
        for est in estimates:
            wall = self.wall_at(est.t)
            changed = est.posture != self.posture
            previous = self.posture
            self.posture, self.p = est.posture, est.p
            for ev in self.tracker.step(est.t, est.posture, wall, est.since_t):
                self._dispatch(ev)
            if changed:
                since = est.since_t if est.since_t is not None else est.t - self.classifier.step_s
                self._dispatch(PostureChanged(est.t, est.posture, est.p, previous, since))
            if self.coach is not None:
                for ev in self.coach.tick(est.t):
                    self._dispatch(ev)
            self.last_t = est.t
            if self.outputs:
                self._update_state(est.t, wall)

    def _show_sensor_status(self, change: SensorStatus | None, empty_block: bool) -> None:
        """Give the outputs a state when the sensor's status changed, and after every empty poll while
        it is faulty: no samples means no posture estimates, so no other state would show the fault
        (the ``sensor`` tile), and rate-limited outputs get their chance to publish it."""
        if not self.outputs or (change is None and not (empty_block and self.sensor_status != "ok")):
            return
        known = [x for x in (change.t if change else None, self.last_t, self._state_t) if x is not None]
        if empty_block or not known:
            known.append(self.clock.monotonic())  # nothing newer came from the sensor
        t = max(known)
        self._update_state(t, self.wall_at(t))

    def _ask_for_the_next_alert(self) -> None:
        """Have a live source read the sensor right after the step in which the next alert falls due."""
        due = self.tracker.next_alert_at()
        if self._wakeable_source is None or due is None:
            return
        step = self.classifier.step_s
        step_end = math.ceil(due / step - 1e-9) * step
        self._wakeable_source.wake_at(step_end + 2.0 / self.sample_rate_hz + ALERT_WAKE_MARGIN_S)


    def _decide_now(self, t: float) -> bool:
        """Postures up to ``t`` are needed now: an alert may fall due, or a checkpoint is due."""
        if self.tracker.alert_due(t, self.wall_at):
            return True
        return any(_wants_fresh_state(out) and out.wants_fresh_state(t) for out in self.outputs)

    def finish(self) -> RunSummary:
        """Decide what the classifier still holds back, then emit and return the final summary.

        Prompts still waiting for their outcome are reported now (not heeded, or heeded with the
        break so far) only when nothing resumes this run; a ``resumable`` service keeps them.
        """
        self._apply(self.classifier.flush())
        t = self.last_t if self.last_t is not None else 0.0
        if not self.resumable:
            for ev in self.tracker.final_outcomes(t):
                self._dispatch(ev)
        summary = self.tracker.summary(t)
        self._emit(summary)
        return summary

    # ------------------------------------------------------------------ events

    def _dispatch(self, ev: Event) -> None:
        """Route a tracker event through the coach (which may enrich it), then to the outputs."""
        extra: list[Event] = []
        if self.coach is not None:
            if isinstance(ev, Alert):
                ev = self.coach.on_alert(ev)
            elif isinstance(ev, AlertOutcome):
                ev = self.coach.on_outcome(ev)  # published once, with release_s
            extra = self.coach.on_event(ev)
        if isinstance(ev, AlertOutcome) and ev.release_s:
            self.tracker.add_release(ev.release_s)
        self._emit(ev)
        for e in extra:
            self._emit(e)

    def _emit(self, ev: Event) -> None:
        for out in self.outputs:
            try:
                out.handle(ev)
            except Exception:  # an output must never stop the loop
                log.exception("output %s failed on %s", type(out).__name__, ev.type)

    def _update_state(self, t: float, wall: datetime) -> None:
        if self._state_t is not None and t < self._state_t:
            return  # never older than a state already given (one shown during a sensor fault)
        self._state_t = t
        tr = self.tracker
        state = StateSnapshot(t=t, wall=wall, posture=self.posture, p=self.p, bout_s=tr.bout_s(t),
                              sitting_today_s=tr.today.seconds["sitting"], breaks_today=tr.today.breaks,
                              alerts_today=tr.today.alerts, release_today_s=tr.today.release_s,
                              sensor=self.sensor_status, paused_until_t=tr.paused_until_t,
                              snoozed_until_t=tr.snoozed_until_t,
                              storage=self.storage.status if self.storage is not None else "ok")
        for out in self.outputs:
            try:
                out.update_state(state)
            except Exception:
                log.exception("output %s failed on state", type(out).__name__)

    # ------------------------------------------------------------------ requests

    def _drain_requests(self) -> None:
        while True:
            try:
                request = self.requests.get_nowait()
            except queue.Empty:
                return
            result = self.execute(request)
            if request.reply is not None:
                try:
                    request.reply(result)
                except Exception:
                    log.exception("reply to %s failed", request.name)

    def execute(self, request: Request) -> dict[str, Any]:
        """Run one request now (see ``sitsense.control``); returns its JSON-able result."""
        t = self.last_t if self.last_t is not None else self.clock.monotonic()
        result, events = execute(self, request, t)
        for ev in events:
            self._emit(ev)
        return result

    # ------------------------------------------------------------------ time

    def wall_at(self, t: float) -> datetime:
        """Local wall time of monotonic ``t``."""
        return self.clock.wall_at(t)


_FRESH_STATE_CLASSES: dict[type, bool] = {}


def _wants_fresh_state(out: object) -> TypeGuard[WantsFreshState]:
    """Whether an output implements ``WantsFreshState`` (asked once per class: a protocol check
    costs microseconds, and this runs every block)."""
    cls = type(out)
    known = _FRESH_STATE_CLASSES.get(cls)
    if known is None:
        known = _FRESH_STATE_CLASSES[cls] = issubclass(cls, WantsFreshState)
    return known
