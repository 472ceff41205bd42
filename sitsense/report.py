"""Day reports: what the day looked like, as text, JSON or a timeline picture.

Built either from a trace (classified on the fly through the Service) or from the state
database's event log and day history. Everything here works on ``DayReport`` objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any, Callable, Iterable

from .clock import shift_wall
from .durations import format_duration as _hm
from .events import (Alert, AlertOutcome, BreakTaken, DaySummary, Event, PostureChanged, PostureNotice,
                     RunSummary)
from .outputs.base import StateSnapshot

POSTURE_COLOURS = {"sitting": "#d9534f", "lying": "#9b59b6", "standing": "#5bc0de", "walking": "#5cb85c",
                   "not_worn": "#cccccc", "unknown": "#eeeeee"}
BOUT_GROUPS_MIN = ((0, 30, "under 30 min"), (30, 60, "30-60 min"), (60, float("inf"), "over 60 min"))


@dataclass
class DayReport:
    """One local day: posture segments, alerts, breaks and the day's statistics."""

    date: str
    segments: list[tuple[datetime, datetime, str]] = field(default_factory=list)
    alerts: list[tuple[datetime, str]] = field(default_factory=list)  # (when, id)
    heeded_ids: set[str] = field(default_factory=set)
    breaks: list[tuple[datetime, float]] = field(default_factory=list)  # (start, seconds)
    stats: dict[str, Any] = field(default_factory=dict)
    notices: dict[str, str] = field(default_factory=dict)  # posture notice code -> its latest message

    @property
    def worn_s(self) -> float:
        s = self.stats
        return s.get("sitting_s", 0) + s.get("standing_s", 0) + s.get("walking_s", 0) + s.get("lying_s", 0)

    def bout_groups(self) -> dict[str, int]:
        bouts = [b / 60 for b in self.stats.get("bouts", []) if b >= 60]
        return {name: sum(lo <= b < hi for b in bouts) for lo, hi, name in BOUT_GROUPS_MIN}

    def to_dict(self, goal_min: float) -> dict[str, Any]:
        s = self.stats
        sitting_h = s.get("sitting_s", 0) / 3600
        return {
            "date": self.date,
            "posture_s": {p: round(s.get(f"{p}_s", 0), 1) for p in ("sitting", "standing", "walking", "lying",
                                                                    "not_worn", "unknown")},
            "worn_s": round(self.worn_s, 1),
            "sitting_share": round(s.get("sitting_s", 0) / self.worn_s, 4) if self.worn_s else None,
            "bouts": self.bout_groups(),
            "longest_bout_s": round(s.get("longest_bout_s", 0), 1),
            "breaks": s.get("breaks", 0),
            "breaks_per_sitting_hour": round(s.get("breaks", 0) / sitting_h, 2) if sitting_h > 0 else None,
            "alerts": s.get("alerts", 0),
            "heeded": s.get("heeded", 0),
            "release_min": round(s.get("release_s", 0) / 60, 2),
            "release_goal_min": goal_min,
            "posture_notices": dict(self.notices),
        }


class TimelineRecorder:
    """An output that collects what a report needs while a trace is replayed."""

    def __init__(self, wall_at: Callable[[float], datetime]):
        self.wall_at = wall_at
        self.days: dict[str, DayReport] = {}
        self._current: tuple[datetime, str] | None = None
        self._last_wall: datetime | None = None
        self.summaries: list[DaySummary] = []
        self._notices: list[tuple[str, str, str]] = []  # (date, code, message)

    def _day(self, when: datetime) -> DayReport:
        key = when.date().isoformat()
        return self.days.setdefault(key, DayReport(key))

    def handle(self, ev: Event) -> None:
        if isinstance(ev, PostureChanged):
            start = self.wall_at(ev.since_t)
            self._close_segment(start)
            self._current = (start, ev.posture)
        elif isinstance(ev, Alert):
            when = self.wall_at(ev.t)
            self._day(when).alerts.append((when, ev.id))
        elif isinstance(ev, AlertOutcome) and ev.heeded:
            for day in self.days.values():
                day.heeded_ids.add(ev.alert_id)
        elif isinstance(ev, BreakTaken):
            start = self.wall_at(ev.start_t)
            self._day(start).breaks.append((start, ev.duration_s))
        elif isinstance(ev, DaySummary):
            self.summaries.append(ev)
        elif isinstance(ev, PostureNotice):  # attached to its day, if anything else happened on it
            self._notices.append((self.wall_at(ev.t).date().isoformat(), ev.code, ev.message))

    def _close_segment(self, end: datetime) -> None:
        if self._current is None:
            return
        start, posture = self._current
        # a backdated change rewrites the tail of the timeline
        for day in self.days.values():
            day.segments = [(a, min(b, end), p) for a, b, p in day.segments if a < end]
        while start < end:  # split at midnight
            midnight = datetime.combine(start.date() + timedelta(days=1), datetime.min.time(), start.tzinfo)
            stop = min(end, midnight)
            if stop > start:
                self._day(start).segments.append((start, stop, posture))
            start = stop

    def update_state(self, state: StateSnapshot) -> None:
        self._last_wall = state.wall

    def close(self) -> None:
        pass

    def finish(self, end: datetime) -> list[DayReport]:
        """Close the last segment and attach each day's statistics."""
        self._close_segment(end)
        self._current = None
        for s in self.summaries:
            if isinstance(s, RunSummary):  # the run's total, not a day
                continue
            self.days.setdefault(s.date, DayReport(s.date)).stats = s.to_dict()
        last = [s for s in self.summaries if isinstance(s, RunSummary)]
        open_days = [d for d in self.days.values() if not d.stats]
        if last and open_days:
            # the run's last (unfinished) day: its numbers are the run total minus the finished days
            total = last[-1].to_dict()
            done = [d.stats for d in self.days.values() if d.stats]
            for k in ("sitting_s", "standing_s", "walking_s", "lying_s", "not_worn_s", "unknown_s",
                      "breaks", "alerts", "heeded", "release_s"):
                total[k] = total[k] - sum(d.get(k, 0) for d in done)
            done_bouts = sum(len(d.get("bouts", [])) for d in done)
            total["bouts"] = total["bouts"][done_bouts:]
            total["longest_bout_s"] = max(total["bouts"], default=0.0)
            open_days[-1].stats = total
        for date, code, message in self._notices:
            if date in self.days:
                self.days[date].notices[code] = message
        return [self.days[k] for k in sorted(self.days)]


def from_trace(trace, cfg, *, start: datetime, quiet: bool = True) -> list[DayReport]:
    """Replay ``trace`` (a Trace, or a TraceReader streaming a file) through the Service and report
    each day it covers."""
    from .clock import SimClock
    from .progress import Progress
    from .sensor.source import ReplaySource
    from .wiring import build_service

    tz = None
    if cfg.tracker.timezone:
        from zoneinfo import ZoneInfo
        tz = ZoneInfo(cfg.tracker.timezone)
    clock = SimClock(start, tz=tz)
    source = ReplaySource(trace, clock)
    service = build_service(cfg, source=source, clock=clock, console=False)
    recorder = TimelineRecorder(service.wall_at)
    service.outputs.append(recorder)
    bar = Progress(source.progress()[1], "report", quiet=quiet)
    service.block_hooks.append(lambda s: bar.update(source.progress()[0]))
    with bar:
        service.run()
    return recorder.finish(service.wall_at(service.last_t or 0.0))


def stored_days(store, n: int | None = None) -> dict[str, dict[str, Any]]:
    """Day statistics by date: finished days from the history, and the day in progress from the
    last checkpoint (the service is running, or stopped before the day ended). The last ``n``."""
    days = {d["date"]: d for d in store.days()}
    today = _day_in_progress(store)
    if today is not None and today["date"] not in days:
        days[today["date"]] = today
    dates = sorted(days)[-n:] if n else sorted(days)
    return {d: days[d] for d in dates}


def _day_in_progress(store) -> dict[str, Any] | None:
    """The statistics of the day the last checkpoint was counting, as a day summary's dict."""
    from .checkpoint import check
    from .tracker import DayStats

    saved = check(store.get("tracker")).state  # a damaged checkpoint: what can be read of it
    if saved is None:
        return None
    snap = saved["snapshot"]
    stats = DayStats.from_dict(snap["today"])
    t = saved["t"] or 0.0
    open_bout = t - snap["bout_start_t"] if snap["bout_start_t"] is not None else 0.0
    if not stats.day:
        return None
    d = stats.summary(t, open_bout_s=open_bout).to_dict()
    d["in_progress"] = True
    return d


def from_store(store, dates: Iterable[str]) -> list[DayReport]:
    """Rebuild day reports from the state database's history and event log."""
    wanted = sorted(set(dates))
    if not wanted:
        return []
    days = {d: v for d, v in stored_days(store).items() if d in wanted}
    events = store.events(since_wall=wanted[0])
    before = store.last_event_before("posture", wanted[0])  # the posture the first day began in
    segments = _stored_segments(([before] if before else []) + events)
    reports = []
    for date in wanted:
        rep = DayReport(date, stats=days.get(date, {}))
        for a, b, posture in segments:
            day_start = datetime.combine(datetime.fromisoformat(date).date(), time(0), a.tzinfo)
            lo, hi = max(a, day_start), min(b, day_start + timedelta(days=1))
            if lo < hi:
                rep.segments.append((lo, hi, posture))
        for ev in events:
            if ev["wall"][:10] != date:
                continue
            wall = datetime.fromisoformat(ev["wall"])
            kind = ev["type"]
            if kind == "alert":
                rep.alerts.append((wall, ev["id"]))
            elif kind == "outcome" and ev.get("heeded"):
                rep.heeded_ids.add(ev["alert_id"])
            elif kind == "break":
                rep.breaks.append((shift_wall(wall, -ev["duration_s"]), ev["duration_s"]))
            elif kind == "posture_notice":
                rep.notices[str(ev.get("code", ""))] = str(ev.get("message", ""))
        reports.append(rep)
    return reports


def _stored_segments(events: list[dict[str, Any]]) -> list[tuple[datetime, datetime, str]]:
    """Posture segments from logged posture events, carried across midnight.

    A segment lasts until the next posture, the end of the run (its logged ``summary``) or the last
    logged event. A posture event may be backdated (``since_t``): it cuts short whatever was drawn since.
    """
    segments: list[tuple[datetime, datetime, str]] = []
    current: tuple[datetime, str] | None = None
    last_wall: datetime | None = None
    for ev in events:
        wall = datetime.fromisoformat(ev["wall"])
        last_wall = wall if last_wall is None else max(last_wall, wall)
        if ev["type"] == "summary" and current:  # the service stopped: nothing is known until it restarts
            segments.append((current[0], max(wall, current[0]), current[1]))
            current = None
        if ev["type"] != "posture":
            continue
        start = shift_wall(wall, ev.get("since_t", ev["t"]) - ev["t"])
        if current:
            segments = [(a, min(b, start), p) for a, b, p in segments if a < start]
            segments.append((current[0], start, current[1]))
        current = (start, ev["posture"])
    if current and last_wall is not None:
        segments.append((current[0], max(last_wall, current[0]), current[1]))
    return segments


# ---------------------------------------------------------------------- text

def format_day(rep: DayReport, goal_min: float) -> str:
    d = rep.to_dict(goal_min)
    p = d["posture_s"]
    share = f" ({100 * d['sitting_share']:.0f}% of worn time)" if d["sitting_share"] is not None else ""
    span = ""
    if rep.segments:
        first, last = rep.segments[0][0], rep.segments[-1][1]
        end = "24:00" if last.date().isoformat() > rep.date else f"{last:%H:%M}"
        span = f" ({first:%H:%M}-{end})"
    groups = ", ".join(f"{n} {name}" for name, n in d["bouts"].items())
    bph = f" ({d['breaks_per_sitting_hour']:.1f} per sitting hour)" if d["breaks_per_sitting_hour"] is not None else ""
    so_far = ", so far (the day is not over)" if rep.stats.get("in_progress") else ""
    lines = [f"{rep.date}{span}{so_far}",
             f"  sitting     {_hm(p['sitting'])}{share}",
             f"  standing    {_hm(p['standing'])}, walking {_hm(p['walking'])}, lying {_hm(p['lying'])}",
             f"  not worn    {_hm(p['not_worn'])}" + (f", unknown {_hm(p['unknown'])}" if p["unknown"] >= 60 else ""),
             f"  bouts       {groups}; longest {_hm(d['longest_bout_s'])}",
             f"  breaks      {d['breaks']}{bph}",
             f"  alerts      {d['alerts']}, {d['heeded']} heeded",
             f"  release     {d['release_min']:.1f} of {goal_min:g} min goal"]
    lines += [f"  note        {message}" for message in rep.notices.values()]
    return "\n".join(lines) + "\n"


def format_trend(reports: list[DayReport], goal_min: float) -> str:
    """One line per day and the direction of travel."""
    lines = [f"{'day':<11} {'sitting':>8} {'share':>6} {'>30min':>7} {'breaks/h':>9} {'heeded':>7} {'release':>8}"]
    for rep in reports:
        d = rep.to_dict(goal_min)
        share = f"{100 * d['sitting_share']:.0f}%" if d["sitting_share"] is not None else "-"
        long_bouts = d["bouts"]["30-60 min"] + d["bouts"]["over 60 min"]
        bph = f"{d['breaks_per_sitting_hour']:.1f}" if d["breaks_per_sitting_hour"] is not None else "-"
        lines.append(f"{rep.date:<11} {_hm(d['posture_s']['sitting']):>8} {share:>6} {long_bouts:>7} {bph:>9} "
                     f"{str(d['heeded']) + '/' + str(d['alerts']):>7} {d['release_min']:>5.1f}/{goal_min:g}"
                     + ("  (so far)" if rep.stats.get("in_progress") else ""))
    whole = [r for r in reports if not r.stats.get("in_progress")]  # a day half done would bend the line
    if len(whole) >= 2:
        sit = [r.stats.get("sitting_s", 0) / 60 for r in whole]
        rel = [r.stats.get("release_s", 0) / 60 for r in whole]
        lines.append(f"trend: sitting {_slope(sit):+.0f} min/day, release {_slope(rel):+.1f} min/day "
                     f"over {len(whole)} finished days")
    return "\n".join(lines) + "\n"


def _slope(values: list[float]) -> float:
    n = len(values)
    mx = (n - 1) / 2
    my = sum(values) / n
    den = sum((i - mx) ** 2 for i in range(n))
    return sum((i - mx) * (v - my) for i, v in enumerate(values)) / den if den else 0.0


# ---------------------------------------------------------------------- picture

def plot(reports: list[DayReport], out_png: str, goal_min: float) -> None:
    """A PNG: each day as a coloured posture timeline with alerts and breaks, cumulative sitting beneath."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.patches import Patch
        from matplotlib.artist import Artist
        from matplotlib.lines import Line2D
    except ImportError:
        from .errors import OutputError
        raise OutputError("--plot needs matplotlib: pip install 'sitsense[plot]'") from None
    n = len(reports)
    fig, axes = plt.subplots(2, 1, figsize=(12, 2.2 + 0.7 * n + 2.2), height_ratios=[0.7 * n + 0.6, 2.2],
                             constrained_layout=True)
    ax, cum_ax = axes
    for row, rep in enumerate(reports):
        y = n - 1 - row
        for a, b, posture in rep.segments:
            h0 = _hours(a)
            width = max((b - a).total_seconds() / 3600, 1e-4)
            ax.broken_barh([(h0, width)], (y - 0.35, 0.7), facecolors=POSTURE_COLOURS.get(posture, "#999"))
        for when, aid in rep.alerts:
            heeded = aid in rep.heeded_ids
            ax.plot(_hours(when), y + 0.5, marker="v", color="#222" if heeded else "#c00", markersize=9)
        for start, _dur in rep.breaks:
            ax.plot(_hours(start), y - 0.5, marker="^", color="#2a7", markersize=7)
        # cumulative sitting time
        xs, ys, total = [], [], 0.0
        for a, b, posture in rep.segments:
            xs.append(_hours(a))
            ys.append(total / 60)
            if posture == "sitting":
                total += (b - a).total_seconds()
            xs.append(_hours(b, end=True))
            ys.append(total / 60)
        cum_ax.plot(xs, ys, label=rep.date)
    ax.set_yticks(range(n))
    ax.set_yticklabels([r.date for r in reversed(reports)])
    ax.set_ylim(-0.9, n - 0.1)
    ax.set_xlabel("local time")
    ax.set_title("sitsense: posture through the day")
    handles: list[Artist] = [Patch(color=c, label=p.replace("_", " ")) for p, c in POSTURE_COLOURS.items()]
    handles += [Line2D([], [], marker="v", color="#c00", linestyle="", label="alert (ignored)"),
                Line2D([], [], marker="v", color="#222", linestyle="", label="alert (heeded)"),
                Line2D([], [], marker="^", color="#2a7", linestyle="", label="break")]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.25 if n < 3 else -0.12), ncol=9,
              fontsize=8, frameon=False)
    lo = min((_hours(r.segments[0][0]) for r in reports if r.segments), default=0)
    hi = max((_hours(r.segments[-1][1], end=True) for r in reports if r.segments), default=24)
    from matplotlib.ticker import FuncFormatter

    for a in axes:
        a.set_xlim(max(0, lo - 0.25), min(24.5, hi + 0.25))
        a.xaxis.set_major_formatter(FuncFormatter(lambda h, _pos: f"{int(h):02d}:{int(round(h % 1 * 60)) % 60:02d}"))
    cum_ax.set_ylabel("sitting so far (min)")
    cum_ax.set_xlabel("local time")
    cum_ax.grid(alpha=0.3)
    if n > 1:
        cum_ax.legend(fontsize=8)
    fig.savefig(out_png, dpi=100)
    plt.close(fig)


def _hours(when: datetime, end: bool = False) -> float:
    """Hour of the day as a float; an end time at midnight is 24, not 0."""
    h = when.hour + when.minute / 60 + when.second / 3600
    return 24.0 if end and h == 0 else h
