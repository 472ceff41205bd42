"""The tracker checkpoint's format: its version, migrations from older versions, and a checked read.

A checkpoint is ``{"version": 2, "snapshot": Tracker.snapshot(), "wall": ISO time, "t": s,
"calibration": {...}}``. Whatever is stored (an older version, a hand edit, a flipped bit on the
SD card), :func:`check` returns a checkpoint in which every field has the right type and a
plausible value, and names each problem it found. What is damaged gets the value of a fresh
start; what can be read is kept: the day's totals survive a damaged bout, and the bout survives a
damaged prompt outcome. Pure: no I/O.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from typing import Any

from .config import TrackerConfig
from .control import CONTROLS
from .events import POSTURES


def _top(cls: type, name: str) -> float:
    """The largest value a config key allows."""
    return float(next(f for f in fields(cls) if f.name == name).metadata["hi"])


VERSION = 2  # 1: no "version" key (prompts waiting for their outcome were added late in version 1)
MAX_SPAN_S = 2 * 86400.0  # a bout or break begun longer before the checkpoint is damage (a flipped digit)
MAX_REMINDERS = 100
# How far ahead of the last step each time can lie, from the largest settings that put it there: a
# time beyond that would silence alerts for longer than any setting can (a flipped digit).
MAX_AHEAD_S = {
    "next_alert_t": max(_top(TrackerConfig, "sit_limit_min"), _top(TrackerConfig, "snooze_min"),
                        CONTROLS["snooze"].args["minutes"].hi) * 60.0,
    "snoozed_until_t": max(_top(TrackerConfig, "snooze_min"), CONTROLS["snooze"].args["minutes"].hi) * 60.0,
    "paused_until_t": CONTROLS["pause"].args["minutes"].hi * 60.0,
}
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
BOUT_TIMES = ("bout_start_t", "next_alert_t", "active_since_t", "break_start_t", "paused_until_t", "snoozed_until_t")
COUNTS = ("breaks", "alerts", "heeded")


@dataclass
class Checked:
    """The outcome of :func:`check`: a usable checkpoint (or None) and the problems found.

    ``state`` is None when nothing in it can be used. ``resumable`` is False when the bout cannot
    be continued (the checkpoint's own time or wall time is damaged): only the day's totals are kept.
    ``migrated_from`` is the version it was written in when older than :data:`VERSION`.
    """

    state: dict[str, Any] | None
    problems: list[str] = field(default_factory=list)
    resumable: bool = False
    migrated_from: int | None = None


def fresh_bout() -> dict[str, Any]:
    """The bout fields of a tracker that has seen nothing yet."""
    return {"posture": "unknown", "last_t": None, "reminders": 0, "pending": [], "bout_alerts": [],
            **{k: None for k in BOUT_TIMES}}


def check(saved: Any) -> Checked:
    """Migrate ``saved`` (a decoded checkpoint) to :data:`VERSION` and repair what is damaged."""
    if not isinstance(saved, dict) or not isinstance(saved.get("snapshot"), dict):
        what = "no 'snapshot' object" if isinstance(saved, dict) else f"a {type(saved).__name__}, not an object"
        return Checked(None, [f"checkpoint: {what}"])
    problems: list[str] = []
    version = saved.get("version", 1)
    migrated = None
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        problems.append(f"version: {_show(version)} is not a version number")
    elif version > VERSION:
        problems.append(f"version: {version} was written by a newer sitsense (this one reads up to {VERSION})")
    elif version < VERSION:
        migrated = version
    snap = saved["snapshot"]
    if migrated == 1:
        snap = _from_version_1(snap)
    today = _check_today(snap.get("today"), problems)
    t = _number(saved.get("t"))
    if t is None:
        problems.append(f"t: {_show(saved.get('t'))} is not a time in seconds")
    wall = _wall(saved.get("wall"))
    if wall is None:
        problems.append(f"wall: {_show(saved.get('wall'))} is not an ISO time with its UTC offset")
    bout = _check_bout(snap, t, problems)
    if bout is not None and t is not None and bout["last_t"] is not None \
            and not bout["last_t"] - 1e-6 <= t <= bout["last_t"] + MAX_SPAN_S:
        problems.append(f"t: {t:g} s does not follow the last step at {bout['last_t']:g} s")
        bout = None
    resumable = t is not None and wall is not None and bout is not None
    if not resumable or bout is None:
        bout = fresh_bout()
    if today is None and not resumable:
        return Checked(None, problems, migrated_from=migrated)
    assert bout is not None  # resumable, or the fresh bout
    state: dict[str, Any] = {"version": VERSION, "snapshot": {**bout, "today": today or _empty_today()},
                             "wall": wall.isoformat() if wall else None, "t": t}
    calibration = _check_calibration(saved.get("calibration"), problems)
    if calibration is not None:
        state["calibration"] = calibration
    if isinstance(saved.get("wearer"), dict):  # the classifier checks its own learned postures
        state["wearer"] = saved["wearer"]
    return Checked(state, problems, resumable, migrated)


def _from_version_1(snap: dict[str, Any]) -> dict[str, Any]:
    """Version 1 saved no prompts waiting for their outcome and no alert ids of the bout at first:
    none are waiting, and the bout's reminders get stand-in ids (``acknowledge`` counts them)."""
    out = {"pending": [], **snap}
    if "bout_alerts" not in snap:
        n = _whole(snap.get("reminders"), 0, MAX_REMINDERS)
        out["bout_alerts"] = [f"v1-reminder-{k + 1}" for k in range(n or 0)]
    return out


# ---------------------------------------------------------------------------------------------- parts

def _check_today(d: Any, problems: list[str]) -> dict[str, Any] | None:
    """The day's totals (DayStats.to_dict), repaired field by field; None when its day is unreadable."""
    if not isinstance(d, dict):
        problems.append(f"snapshot.today: {_show(d)} is not an object")
        return None
    day = d.get("day")
    if not (isinstance(day, str) and (day == "" or _is_date(day))):
        problems.append(f"snapshot.today.day: {_show(day)} is not a date (YYYY-MM-DD)")
        return None
    out = _empty_today(day)
    seconds = d.get("seconds")
    if isinstance(seconds, dict):
        for posture in POSTURES:
            v = _number(seconds.get(posture), lo=0.0)
            if v is None:
                problems.append(f"snapshot.today.seconds.{posture}: {_show(seconds.get(posture))} is not "
                                "seconds (0 or more); counted as 0")
            else:
                out["seconds"][posture] = v
        extra = sorted(str(k) for k in seconds if k not in POSTURES)
        if extra:
            problems.append(f"snapshot.today.seconds: unknown posture {_show(extra[0])} dropped")
    else:
        problems.append(f"snapshot.today.seconds: {_show(seconds)} is not an object; counted as 0")
    bouts = d.get("bouts")
    if isinstance(bouts, list):
        out["bouts"] = [v for v in (_number(b, lo=0.0, hi=MAX_SPAN_S) for b in bouts) if v is not None]
        if len(out["bouts"]) != len(bouts):
            problems.append(f"snapshot.today.bouts: {len(bouts) - len(out['bouts'])} damaged bout length(s) dropped")
    else:
        problems.append(f"snapshot.today.bouts: {_show(bouts)} is not a list")
    for name in COUNTS:
        n = _whole(d.get(name), 0, 10**6)
        if n is None:
            problems.append(f"snapshot.today.{name}: {_show(d.get(name))} is not a count; counted as 0")
        else:
            out[name] = n
    release = _number(d.get("release_s"), lo=0.0, hi=MAX_SPAN_S)
    if release is None:
        problems.append(f"snapshot.today.release_s: {_show(d.get('release_s'))} is not seconds; counted as 0")
    else:
        out["release_s"] = release
    return out


def _check_bout(snap: dict[str, Any], t: float | None, problems: list[str]) -> dict[str, Any] | None:
    """The tracker's bout fields, or None (one problem each) when the bout cannot be continued."""
    before = len(problems)
    missing = [k for k in ("posture", "last_t", "reminders", *BOUT_TIMES, "pending", "bout_alerts") if k not in snap]
    for name in missing:
        problems.append(f"snapshot.{name}: missing")
    posture = snap.get("posture")
    if "posture" in snap and posture not in POSTURES:
        problems.append(f"snapshot.posture: {_show(posture)} is not a posture ({', '.join(POSTURES)})")
    last_t = _number(snap.get("last_t"))
    if snap.get("last_t") is not None and last_t is None:
        problems.append(f"snapshot.last_t: {_show(snap.get('last_t'))} is not a time in seconds")
    anchor = last_t if last_t is not None else t
    times: dict[str, float | None] = {}
    for name in BOUT_TIMES:
        v = snap.get(name)
        times[name] = x = _number(v)
        if v is None:
            continue
        if x is None or anchor is None:
            problems.append(f"snapshot.{name}: {_show(v)} is not a time in seconds")
        elif x > anchor + MAX_AHEAD_S.get(name, 0.0) + 1e-6 or (name not in MAX_AHEAD_S and x < anchor - MAX_SPAN_S):
            problems.append(f"snapshot.{name}: {_show(v)} is too far from the checkpoint's time ({anchor:g} s)")
    reminders = _whole(snap.get("reminders"), 0, MAX_REMINDERS)
    if "reminders" in snap and reminders is None:
        problems.append(f"snapshot.reminders: {_show(snap.get('reminders'))} is not a count 0..{MAX_REMINDERS}")
    alerts = snap.get("bout_alerts")
    alert_ids: list[str] = list(alerts) if isinstance(alerts, list) and all(isinstance(a, str) for a in alerts) else []
    if "bout_alerts" in snap and not alert_ids and alerts != []:
        problems.append(f"snapshot.bout_alerts: {_show(alerts)} is not a list of alert ids")
    if len(problems) == before:  # every field reads: do they describe a state the tracker can be in?
        why = _inconsistent(str(posture), last_t, times)
        if why is None and reminders != len(alert_ids):
            why = f"{reminders} reminder(s) in this bout but {len(alert_ids)} alert id(s)"
        if why:
            problems.append(f"snapshot: {why}")
    if len(problems) > before:
        return None
    pending = _check_pending(snap.get("pending"), problems)
    return {"posture": posture, "last_t": last_t, "reminders": reminders, "pending": pending,
            "bout_alerts": alert_ids, **times}


def _inconsistent(posture: str, last_t: float | None, times: dict[str, float | None]) -> str | None:
    """Why these bout fields cannot come from one tracker, or None (see Tracker._enter and _rules)."""
    start, active, brk = times["bout_start_t"], times["active_since_t"], times["break_start_t"]
    if last_t is None and any(v is not None for v in times.values()):
        return "last_t is null while other times are set"
    if start is None and (active is not None or times["next_alert_t"] is not None):
        return "bout_start_t is null while the bout's other times are set"
    if start is not None and brk is not None:
        return "a bout and a break at once"
    if last_t is not None and any(v is not None and v > last_t + 1e-6 for v in (start, active, brk)):
        return "a bout or break starts after the last step"
    if start is not None and active is not None and active < start:
        return "the stand-up began before its bout"
    if posture in ("standing", "walking") and start is not None and active is None:
        return f"{posture} inside a bout without the time the stand-up began"
    if brk is not None and posture not in ("standing", "walking", "unknown"):
        return f"a break in progress while {posture}"
    return None


def _check_pending(items: Any, problems: list[str]) -> list[dict[str, Any]]:
    """Prompts waiting for their outcome; a damaged one is dropped (its outcome is never reported)."""
    if not isinstance(items, list):
        problems.append(f"snapshot.pending: {_show(items)} is not a list")
        return []
    out = []
    for d in items:
        if not isinstance(d, dict):
            continue
        t, b = _number(d.get("t")), d.get("break_start_t")
        ok = (isinstance(d.get("id"), str) and t is not None and _whole(d.get("reminder"), 1, MAX_REMINDERS) is not None
              and isinstance(d.get("heeded", False), bool) and (b is None or _number(b) is not None))
        if ok:
            out.append({"id": d["id"], "t": t, "reminder": d["reminder"], "heeded": d.get("heeded", False),
                        "break_start_t": None if b is None else _number(b)})
    if len(out) != len(items):
        problems.append(f"snapshot.pending: {len(items) - len(out)} damaged prompt(s) dropped")
    return out


def _check_calibration(c: Any, problems: list[str]) -> dict[str, Any] | None:
    if c is None:
        return None
    upright = c.get("upright_g") if isinstance(c, dict) else None
    values = [_number(x, lo=-16.0, hi=16.0) for x in upright] if isinstance(upright, list) else []
    if len(values) != 3 or None in values or not any(values):
        problems.append(f"calibration: {_show(c)} is not an upright reference; calibrating afresh")
        return None
    source = c.get("source")
    return {"source": source if isinstance(source, str) else "?", "upright_g": values}


# ---------------------------------------------------------------------------------------------- values

def _empty_today(day: str = "") -> dict[str, Any]:
    return {"day": day, "seconds": {p: 0.0 for p in POSTURES}, "bouts": [], "breaks": 0, "alerts": 0,
            "heeded": 0, "release_s": 0.0}


def _number(v: Any, lo: float | None = None, hi: float | None = None) -> float | None:
    """``v`` as a finite float in ``lo..hi``, else None (bools, strings and NaN are not numbers)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    try:
        x = float(v)
    except OverflowError:  # an integer too large for a float
        return None
    if not math.isfinite(x) or (lo is not None and x < lo) or (hi is not None and x > hi):
        return None
    return x


def _whole(v: Any, lo: int, hi: int) -> int | None:
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        return None
    return v


def _wall(v: Any) -> datetime | None:
    if not isinstance(v, str):
        return None
    try:
        wall = datetime.fromisoformat(v)
    except ValueError:
        return None
    return wall if wall.tzinfo is not None and wall.utcoffset() is not None else None


def _is_date(text: str) -> bool:
    if not _DAY.match(text):
        return False
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _show(v: Any) -> str:
    """A value for a one-line message: short, never a whole damaged blob."""
    if v is None:
        return "null"
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."
