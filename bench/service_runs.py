"""Run a trace through the whole Service (as ``sitsense simulate`` does) and keep what a wearer would see.

Used by ``crossval.py`` and ``composed_days.py``: the posture of every step (with backdated
corrections applied, as the tracker applies them), the events and the final summary. A
``LabelClassifier`` runs the trace's own labels through the same Service, so "the alerts its
labels call for" come from the same tracker rules as the classifier's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from sitsense.clock import SimClock
from sitsense.config import Config
from sitsense.events import Alert, BreakTaken, PostureChanged, RunSummary
from sitsense.posture.base import PostureEstimate
from sitsense.posture.evaluate import Outputs
from sitsense.sensor.source import ReplaySource
from sitsense.service import Service
from sitsense.traces import LABEL_CODE, LABELS, Trace

START = "2026-03-02T09:00:00+00:00"  # a Monday morning, inside the default active hours


class _Keep:
    """An output that keeps every event and the posture of every step."""

    def __init__(self):
        self.events: list = []
        self.t: list[float] = []
        self.posture: list[str] = []

    def handle(self, ev) -> None:
        self.events.append(ev)
        if isinstance(ev, PostureChanged) and ev.since_t < ev.t - 1.5 and self.t:
            k = len(self.t)  # a backdated correction: the posture held since since_t
            while k > 0 and self.t[k - 1] > ev.since_t:
                k -= 1
            self.posture[k:] = [ev.posture] * (len(self.posture) - k)

    def update_state(self, state) -> None:
        if self.t and state.t <= self.t[-1]:
            return
        self.t.append(state.t)
        self.posture.append(state.posture)

    def close(self) -> None:
        pass


@dataclass
class ServiceRun:
    """What one trace gave through the Service."""

    outputs: Outputs
    events: list
    summary: RunSummary

    def of(self, cls) -> list:
        return [e for e in self.events if isinstance(e, cls)]


def run_service(trace: Trace, clf, *, reference: np.ndarray | None = None, cfg: Config | None = None) -> ServiceRun:
    """The whole Service over ``trace`` (default config, 09:00 start), fed by a replay source."""
    clock = SimClock(datetime.fromisoformat(START))
    keep = _Keep()
    if reference is not None:
        clf.set_reference(reference)
    service = Service(cfg or Config(), clock=clock, source=ReplaySource(trace, clock), classifier=clf,
                      outputs=[keep])
    summary = service.run()
    outputs = Outputs(np.array(keep.t), np.array(keep.posture, dtype=object), np.ones(len(keep.t)))
    return ServiceRun(outputs, keep.events, summary)


class LabelClassifier:
    """The trace's labels as postures, one per step (a transition keeps the posture it leaves)."""

    step_s = 1.0

    def __init__(self, trace: Trace):
        names = np.array(LABELS + ("unknown",), dtype=object)[trace.labels]
        held = names.copy()
        last = "unknown"
        for i, n in enumerate(names.tolist()):  # carry postures across transition labels
            if n == "transition":
                held[i] = last
            else:
                last = n
        self.t = trace.t_s
        self.names = held
        self.next_end: float | None = None

    def set_reference(self, upright_g) -> None:
        pass

    def pop_events(self) -> list:
        return []

    def flush(self) -> list:
        return []

    def process(self, t_s: np.ndarray, accel_g: np.ndarray) -> list[PostureEstimate]:
        if len(t_s) == 0:
            return []
        if self.next_end is None:
            self.next_end = (math.floor(float(t_s[0]) / self.step_s + 1e-9) + 1) * self.step_s
        out = []
        while self.next_end <= float(t_s[-1]) + 1e-9:
            i = min(int(np.searchsorted(self.t, self.next_end - 1e-9)), len(self.t) - 1)
            out.append(PostureEstimate(self.next_end, str(self.names[i]), 1.0))
            self.next_end += self.step_s
        return out


def labelled_s(trace: Trace, *labels: str) -> float:
    """Seconds of the trace labelled with any of ``labels``."""
    codes = [LABEL_CODE[x] for x in labels]
    return float(np.isin(trace.labels, codes).sum()) / trace.sample_rate_hz


def false_breaks(trace: Trace, run: ServiceRun) -> int:
    """Breaks with no labelled standing or walking anywhere under them."""
    active = np.isin(trace.labels, [LABEL_CODE["standing"], LABEL_CODE["walking"]])
    count = 0
    for b in run.of(BreakTaken):
        lo, hi = np.searchsorted(trace.t_s, [b.start_t, b.start_t + b.duration_s])
        if not active[lo:hi].any():
            count += 1
    return count


EDGE_S = 30.0  # an alert the labels call for this close before the bout ends is a matter of seconds


def alert_check(run: ServiceRun, truth: ServiceRun, within_s: float = 300.0) -> tuple[int, int, int]:
    """(expected, missed, extra): the alerts the labels call for, those the run did not give within
    ``within_s``, and run alerts the labels never called for within ``within_s``.

    An alert within ``EDGE_S`` of the end of its bout (a reminder due just as the wearer gets up)
    is neither required nor extra: the labels cannot say to the second when a stand-up began.
    """
    ends = np.array([b.start_t for b in truth.of(BreakTaken)])

    def at_edge(t: float) -> bool:
        return bool(len(ends) and ((ends >= t - 10.0) & (ends <= t + EDGE_S)).any())

    got = np.array([a.t for a in run.of(Alert)])
    every = np.array([a.t for a in truth.of(Alert)])
    expected = [a.t for a in truth.of(Alert) if not at_edge(a.t)]
    missed = sum(1 for t in expected if not len(got) or np.abs(got - t).min() > within_s)
    extra = sum(1 for t in got if (not len(every) or np.abs(every - t).min() > within_s) and not at_edge(t))
    return len(expected), missed, extra
