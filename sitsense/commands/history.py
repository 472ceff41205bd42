"""``sitsense history [--days N] [--json]``: past days from the state database."""

from __future__ import annotations

import argparse

from ..jsonout import dumps


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--days", type=int, default=7, help="how many days back (default 7)")
    parser.add_argument("--json", action="store_true", help="one JSON object per day")
    parser.add_argument("--config", help="config file (for store.path)")
    parser.add_argument("--state", help="state database (default: store.path, or the state directory)")


def run(args: argparse.Namespace) -> int:
    from ..config import load_config
    from ..durations import format_duration as _m
    from ..errors import ConfigError
    from ..paths import db_path
    from ..store import Store

    if args.days < 1:
        raise ConfigError(f"--days {args.days}: must be 1 or more")
    cfg = load_config(args.config)
    path = args.state or db_path(cfg)
    store = Store(path).open(read_only=True)
    try:
        days = store.days(args.days)
    finally:
        store.close()
    if args.json:
        for d in days:
            print(dumps(d))
        return 0
    if not days:
        print(f"no finished days in {path} yet")
        return 0
    print(f"{'day':<11} {'sitting':>8} {'standing':>9} {'walking':>8} {'longest':>8} {'breaks':>6} {'alerts':>7} {'release':>8}")
    for d in days:
        heeded = f"{d.get('heeded', 0)}/{d['alerts']}"
        print(f"{d['date']:<11} {_m(d['sitting_s']):>8} {_m(d['standing_s']):>9} {_m(d['walking_s']):>8} "
              f"{_m(d['longest_bout_s']):>8} {d['breaks']:>6} {heeded:>7} {_m(d.get('release_s', 0)):>8}")
    return 0

