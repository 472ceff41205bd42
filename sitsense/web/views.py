"""What the page shows, as JSON-able dicts built from the service's state and events (pure).

Times go to the page as ISO wall times for display and as seconds relative to the state's ``t``
for countdowns (the phone's clock may differ from the Pi's; a fake sensor's may run faster).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ..coach import exercise as exercise_by_id
from ..coach import hold_schedule
from ..events import (Acknowledged, Alert, AlertOutcome, BreakTaken, Calibrated, Event, HoldCue, Paused,
                      Remounted, Resumed, SensorStatus, Snoozed)
from ..outputs.base import StateSnapshot

POSTURE_WORDS = {"sitting": "Sitting", "standing": "Standing", "walking": "Walking", "lying": "Lying down",
                 "not_worn": "Sensor off", "unknown": "Unknown"}


def _iso(wall: datetime) -> str:
    return wall.isoformat(timespec="seconds")


def _clock(wall: datetime) -> str:
    return wall.strftime("%H:%M")


def _min(seconds: float) -> str:
    m = int(round(seconds / 60.0))
    return f"{m} min" if m < 60 else f"{m // 60} h {m % 60:02d} min"


def state_view(state: StateSnapshot, *, posture_s: dict[str, float], heeded: int, goal_s: float,
               snoozed_until_t: float | None = None) -> dict[str, Any]:
    """The live figures: posture, bout, today's counts and release against the goal, pause and snooze."""
    def at(t: float | None) -> str | None:
        return None if t is None or t <= state.t else _iso(state.wall + timedelta(seconds=t - state.t))

    return {
        "time": _iso(state.wall),
        "posture": state.posture,
        "posture_text": POSTURE_WORDS.get(state.posture, state.posture),
        "p": round(state.p, 3),
        "bout_s": round(state.bout_s, 1),
        "sensor": state.sensor,
        "paused_until": at(state.paused_until_t),
        "paused_for_s": None if state.paused_until_t is None else round(state.paused_until_t - state.t, 1),
        "snoozed_until": at(snoozed_until_t),
        "today": {
            "sitting_s": round(state.sitting_today_s, 1),
            "posture_s": {k: round(v, 1) for k, v in posture_s.items()},
            "breaks": state.breaks_today,
            "alerts": state.alerts_today,
            "heeded": heeded,
            "release_s": round(state.release_today_s, 1),
            "goal_s": goal_s,
        },
    }


def alert_view(alert: Alert) -> dict[str, Any]:
    """The current prompt: message, exercise with dose and steps, and the guide's safety line."""
    ex = alert.exercise or {}
    return {
        "id": alert.id,
        "time": alert.time,
        "reminder": alert.reminder,
        "bout_s": round(alert.bout_s, 1),
        "message": alert.message,
        "exercise": {k: ex.get(k) for k in ("id", "name", "dose", "cue", "steps", "caution")} if ex else None,
        "safety": alert.safety,
        "acknowledged": False,
    }


def release_view(cue: HoldCue) -> dict[str, Any] | None:
    """The guided release after a buzzer cue: which hold or rest runs now and how long it lasts
    (``phase_s``, from the cue's scheduled time ``t``). None for an unknown exercise."""
    try:
        ex = exercise_by_id(cue.exercise_id)
    except KeyError:
        return None
    schedule = hold_schedule(ex)
    d = ex.dose
    word = "Hold" if d.hold_s else "Set"
    base = {"t": cue.t, "cue": cue.cue, "hold": cue.hold, "holds": d.segments,
            "exercise": {"id": ex.id, "name": ex.name, "cue": ex.cue, "dose": d.text()}}
    if cue.cue == "done":
        return {**base, "phase": "done", "phase_s": 0.0, "label": "Release done: well done"}
    if cue.cue == "cancel":
        return {**base, "phase": "cancel", "phase_s": 0.0, "label": "Release stopped (you sat down)"}
    idx = next((i for i, c in enumerate(schedule) if c.cue == cue.cue and c.hold == cue.hold), None)
    if idx is None or idx + 1 >= len(schedule):
        return {**base, "phase": "hold", "phase_s": d.segment_s, "label": f"{word} {cue.hold} of {d.segments}"}
    phase_s = schedule[idx + 1].offset_s - schedule[idx].offset_s
    resting = cue.cue == "switch" and not d.per_side and d.rest_s > 0
    if resting:
        label = f"Rest, then {word.lower()} {cue.hold} of {d.segments}"
    elif d.per_side:
        label = f"{word} {cue.hold} of {d.segments}: {'first' if cue.hold % 2 else 'second'} side"
    else:
        label = f"{word} {cue.hold} of {d.segments}"
    return {**base, "phase": "rest" if resting else "hold", "phase_s": phase_s, "label": label}


def notice_for(event: Event, wall: datetime) -> dict[str, Any] | None:
    """A one-line notice for events the wearer should see flash by; None for the rest."""
    text = None
    kind = event.type
    if isinstance(event, Alert):
        text = event.message
    elif isinstance(event, Snoozed):
        text = f"Snoozed: next reminder at {_clock(wall + timedelta(seconds=event.until_t - event.t))} at the earliest"
    elif isinstance(event, Paused):
        text = f"Alerts paused until {_clock(wall + timedelta(seconds=event.until_t - event.t))}"
    elif isinstance(event, Resumed):
        text = "Alerts resumed" + (" (the pause ended)" if event.reason == "pause ended" else "")
    elif isinstance(event, Acknowledged):
        text = "Done: no more reminders for this sitting bout"
    elif isinstance(event, Calibrated):
        text = {"explicit": "Calibrated: new upright reference taken",
                "still-start": "Calibrated: upright reference taken while you stood still",
                "walking": "Upright reference updated from your walking",
                "remount": "The sensor was moved on the belt: references turned to match"}.get(
            event.source, f"Upright reference updated ({event.source})")
    elif isinstance(event, Remounted):
        text = f"Sensor remounted ({event.angle_deg:.0f}° turn)"
    elif isinstance(event, SensorStatus):
        text = "Sensor ok again" if event.status == "ok" else f"Sensor problem: {event.status}"
    elif isinstance(event, BreakTaken):
        text = f"Break: on your feet since {_clock(wall - timedelta(seconds=event.t - event.start_t))}"
    elif isinstance(event, AlertOutcome):
        if event.heeded:
            text = f"Alert heeded: a break of {_min(event.break_s)}"
            if event.release_s:
                text += f", {_min(event.release_s)} of release"
        else:
            text = "Alert not followed by a break"
    if text is None:
        return None
    return {"kind": kind, "text": text, "time": _iso(wall),
            "id": getattr(event, "id", None) or getattr(event, "alert_id", None)}


def timeline_view(segments: list[tuple[datetime, datetime, str]], day_start: datetime) -> list[list[Any]]:
    """Posture segments as [start hour, end hour, posture] from local midnight (hours of the day)."""
    out = []
    for a, b, posture in segments:
        h0 = (a - day_start).total_seconds() / 3600.0
        h1 = (b - day_start).total_seconds() / 3600.0
        h0, h1 = max(0.0, h0), min(24.0, h1)
        if h1 > h0:
            out.append([round(h0, 4), round(h1, 4), posture])
    return out


def week_view(days: list[dict[str, Any]], today: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The last 7 days (oldest first): hours per posture, alerts, heeded and release minutes.

    ``days`` are stored day summaries; ``today`` the live day (replaces a stored one of its date)."""
    by_date = {d["date"]: d for d in days if d.get("date")}
    if today is not None:
        by_date[today["date"]] = today
    out = []
    for date in sorted(by_date)[-7:]:
        d = by_date[date]
        out.append({"date": date,
                    "hours": {p: round(float(d.get(f"{p}_s", 0.0)) / 3600.0, 2)
                              for p in ("sitting", "standing", "walking", "lying")},
                    "alerts": int(d.get("alerts", 0)), "heeded": int(d.get("heeded", 0)),
                    "release_min": round(float(d.get("release_s", 0.0)) / 60.0, 1)})
    return out
