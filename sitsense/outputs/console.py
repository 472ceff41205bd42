"""Console output: a readable timeline for people, or JSON Lines for programs."""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime
from typing import Callable, TextIO

from ..durations import format_duration as _hms
from ..events import (Alert, AlertOutcome, BreakEnded, BreakTaken, Calibrated, DaySummary, Event, HoldCue,
                      Paused, PostureChanged, PostureNotice, Remounted, Resumed, RunSummary, SensorStatus,
                      Snoozed)
from .base import StateSnapshot


class ConsoleOutput:
    """Prints events; ``json_lines`` for machines, else a timeline with wall-clock times."""

    def __init__(self, stream: TextIO | None = None, *, json_lines: bool = False,
                 wall_at: Callable[[float], datetime] | None = None):
        self.stream = stream or sys.stdout
        self.json_lines = json_lines
        self.wall_at = wall_at

    def handle(self, event: Event) -> None:
        try:
            self._write(event)
        except BrokenPipeError:  # the reader went away (e.g. '| head'): stop printing, keep running
            self.stream = open(os.devnull, "w")

    def _write(self, event: Event) -> None:
        if self.json_lines:
            self.stream.write(json.dumps(event.to_dict(), separators=(",", ":")) + "\n")
            return
        line = self._describe(event)
        if line:
            stamp = self.wall_at(event.t).strftime("%H:%M:%S") if self.wall_at else f"{event.t:9.1f}s"
            self.stream.write(f"{stamp}  {line}\n")

    def update_state(self, state: StateSnapshot) -> None:
        pass

    def close(self) -> None:
        try:
            self.stream.flush()
        except BrokenPipeError:
            pass

    def _describe(self, ev: Event) -> str | None:
        if isinstance(ev, RunSummary):
            self.stream.write(format_summary(ev))
            return None
        if isinstance(ev, DaySummary):
            return f"day {ev.date} ended: sitting {_hms(ev.sitting_s)}, {ev.breaks} breaks, {ev.alerts} alerts"
        if isinstance(ev, PostureChanged):
            return f"{ev.posture}" + (f" (since {_hms(ev.t - ev.since_t)} ago)" if ev.t - ev.since_t > 60 else "")
        if isinstance(ev, Alert):
            text = f"ALERT #{ev.reminder}: {ev.message or f'{int(ev.bout_s // 60)} min seated.'}"
            if ev.exercise:
                text += f"\n{'':10}-> {ev.exercise.get('name')}: {ev.exercise.get('cue')}"
            return text
        if isinstance(ev, BreakTaken):
            return f"break: on your feet since {_hms(ev.duration_s)}"
        if isinstance(ev, BreakEnded):
            return f"break ended after {_hms(ev.duration_s)}"
        if isinstance(ev, AlertOutcome):
            if ev.heeded:
                extra = f", {_hms(ev.release_s)} of release" if ev.release_s else ""
                return f"alert {ev.alert_id} heeded: break of {_hms(ev.break_s)}{extra}"
            return f"alert {ev.alert_id} not heeded"
        if isinstance(ev, HoldCue):
            return f"release {ev.exercise_id}: {ev.cue}" + (f" (hold {ev.hold})" if ev.hold else "")
        if isinstance(ev, Calibrated):
            return f"upright reference taken ({ev.source})"
        if isinstance(ev, PostureNotice):
            return f"note: {ev.message}"
        if isinstance(ev, Remounted):
            return f"sensor remounted ({ev.angle_deg:.0f} deg turn): taking a new reference"
        if isinstance(ev, SensorStatus):
            return f"sensor: {ev.status}" + (f" ({ev.detail})" if ev.detail else "")
        if isinstance(ev, Paused):
            return f"alerts paused for {_hms(ev.until_t - ev.t)}"
        if isinstance(ev, Resumed):
            return f"alerts resumed ({ev.reason})"
        if isinstance(ev, Snoozed):
            return f"snoozed for {_hms(ev.until_t - ev.t)}"
        return None


def format_summary(s: DaySummary) -> str:
    """The end-of-run summary block."""
    worn = s.sitting_s + s.standing_s + s.walking_s + s.lying_s
    share = f" ({100 * s.sitting_s / worn:.0f}% of worn time)" if worn > 0 else ""
    lines = ["", "Summary",
             f"  sitting      {_hms(s.sitting_s)}{share}",
             f"  standing     {_hms(s.standing_s)}",
             f"  walking      {_hms(s.walking_s)}",
             f"  lying        {_hms(s.lying_s)}",
             f"  not worn     {_hms(s.not_worn_s)}",
             f"  unknown      {_hms(s.unknown_s)}",
             f"  longest bout {_hms(s.longest_bout_s)}",
             f"  breaks       {s.breaks}",
             f"  alerts       {s.alerts} ({s.heeded} heeded)"]
    if s.release_s:
        lines.append(f"  release      {_hms(s.release_s)}")
    return "\n".join(lines) + "\n"
