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
        if c.status == "fail" and c.fix:
            print(f"      fix: {c.fix}")
    failed = sum(c.status == "fail" for c in checks)
    if not args.json:
        print(f"{len(checks) - failed} of {len(checks)} checks passed or skipped" if failed
              else "all checks passed")
    return 1 if failed else 0
