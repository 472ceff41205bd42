"""``sitsense report``: a day's (or days') report as text, JSON or a timeline picture."""

from __future__ import annotations

import argparse
from datetime import date

from ..jsonout import dumps


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("trace", nargs="?", help="a trace to classify and report (else the stored history)")
    parser.add_argument("--day", help="a stored day, YYYY-MM-DD")
    parser.add_argument("--days", type=int, help="the last N stored days, with a trend")
    parser.add_argument("--plot", metavar="OUT.png", help="also draw the timeline picture (needs matplotlib)")
    parser.add_argument("--json", action="store_true", help="JSON instead of text")
    parser.add_argument("--config", help="config file")
    parser.add_argument("--state", help="state database (default: store.path, or the state directory)")
    parser.add_argument("--start", help="trace only: wall time of t=0, ISO 8601")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from .. import report
    from ..config import load_config
    from ..errors import ConfigError, NothingToReport

    cfg = load_config(args.config)
    goal = cfg.coach.daily_goal_min
    given = [x for x in (args.trace, args.day, args.days) if x is not None]
    if len(given) > 1:
        raise ConfigError("report: give a TRACE, --day or --days, not several")
    if args.plot and not args.plot.lower().endswith((".png", ".svg", ".pdf")):
        raise ConfigError(f"--plot {args.plot}: the picture's name must end in .png (or .svg, .pdf)")
    if args.trace:
        from ..trace_reader import TraceReader
        from .simulate import local_tz, start_wall

        trace = TraceReader(args.trace)  # streamed in chunks
        reports = report.from_trace(trace, cfg, start=start_wall(args.start, trace.start_time, local_tz(cfg)),
                                    quiet=args.quiet)
        if not reports:
            raise NothingToReport(f"report: {args.trace}: no posture was decided in its {trace.summary().duration_s:.1f} s "
                                  "of samples (the first takes about 10 s); nothing to report")
    else:
        from ..paths import db_path
        from ..store import Store

        if args.day:
            try:
                dates = [date.fromisoformat(args.day).isoformat()]
            except ValueError:
                raise ConfigError(f"--day {args.day!r}: expected YYYY-MM-DD") from None
        else:
            n = 1 if args.days is None else args.days
            if n < 1:
                raise ConfigError(f"--days {n}: must be 1 or more")
            store = Store(args.state or db_path(cfg)).open(read_only=True)
            try:
                known = list(report.stored_days(store, n))
            finally:
                store.close()
            dates = known or [date.today().isoformat()]
        store = Store(args.state or db_path(cfg)).open(read_only=True)
        try:
            reports = report.from_store(store, dates)
        finally:
            store.close()
        if not any(r.stats or r.segments for r in reports):
            where = args.state or db_path(cfg)
            raise NothingToReport(f"report: nothing stored for {', '.join(dates)} in {where}; is the service "
                                  "running with this state database?")
    if args.json:
        print(dumps({"days": [r.to_dict(goal) for r in reports]}, indent=2))
    else:
        for r in reports:
            print(report.format_day(r, goal))
        if len(reports) > 1:
            print(report.format_trend(reports, goal))
    if args.plot:
        report.plot(reports, args.plot, goal)
        if not args.json:
            print(f"timeline picture: {args.plot}")
    return 0
