"""``sitsense doctor``: check I2C, the sensor, GPIO and the broker; say how to fix what fails."""

from __future__ import annotations

import argparse
import json

from ._sensor_args import add_sensor_arguments, load_config_for


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_sensor_arguments(parser, seconds_help="how long to read samples (default: 4)")
    parser.add_argument("--json", action="store_true", help="print the checks as JSON Lines")


def run(args: argparse.Namespace) -> int:
    from ..doctor import run_checks

    cfg = load_config_for(args)
    checks = run_checks(cfg, args.sensor, args.speed, args.seconds or 4.0)
    for c in checks:
        if args.json:
            print(json.dumps({"check": c.name, "status": c.status, "detail": c.detail, "fix": c.fix}))
            continue
        print(f"{c.status.upper():4}  {c.name}: {c.detail}")
        if c.status in ("fail", "note") and c.fix:
            print(f"      fix: {c.fix}")
    failed = [c.name for c in checks if c.status == "fail"]
    if not args.json:
        print(summary_line(checks))
    return 1 if failed else 0


def summary_line(checks) -> str:
    """The last line: what failed, by name, or that everything passed (and how many were skipped)."""
    failed = [c.name for c in checks if c.status == "fail"]
    if failed:
        return (f"{len(failed)} of {len(checks)} checks failed ({', '.join(failed)}); "
                f"the fix lines above say what to do")
    skipped = sum(c.status == "skip" for c in checks)
    notes = sum(c.status == "note" for c in checks)
    extra = [f"{skipped} skipped"] * bool(skipped) + [f"{notes} note{'s' * (notes > 1)} above"] * bool(notes)
    return "all checks passed" + (f" ({', '.join(extra)})" if extra else "")
