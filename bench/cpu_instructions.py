"""Instructions the live classifier executes per 24 h at 50 Hz, beside a baseline commit's, under callgrind.

CPU seconds on a shared VM wander by a quarter between runs; instruction counts do not. Both trees
stream the same synthetic day (made once, by this tree) in 1 s reads, deciding every
``decide_every_s`` as the service does. Each tree runs twice, over ``--short`` and ``--long`` hours,
and the difference is scaled to 24 h, so imports and model loading drop out. The ratio then
carries a published CPU figure of the baseline over to this tree (instructions are a proxy for
time: cache and SIMD effects are left out).

    PYTHONPATH=. python bench/cpu_instructions.py --baseline 80bb4ab [--short 1 --long 3] [--baseline-cpu-s 2.59]

Needs valgrind (``apt-get install -y valgrind``) and git; takes about 5 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RATE_HZ = 50.0
COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")


class BenchError(Exception):
    """The benchmark cannot run as asked."""


def child(tree: Path, data: Path, hours: float) -> None:
    """Under callgrind: stream ``hours`` of ``data`` through ``tree``'s own classifier bench."""
    sys.path.insert(0, str(tree))
    import numpy as np

    import sitsense
    from bench.bench_classifier import DECIDE_EVERY_S, streaming_cpu_s
    from sitsense.posture.model import PostureModel

    if not Path(sitsense.__file__).resolve().is_relative_to(tree.resolve()):
        raise SystemExit(f"sitsense was imported from {sitsense.__file__}, not from {tree}")

    acc = np.load(data)[:int(round(hours * 3600 * RATE_HZ))]
    t = np.arange(len(acc)) / RATE_HZ
    streaming_cpu_s(t, acc, RATE_HZ, 1.0, PostureModel.load(), DECIDE_EVERY_S)


def instructions(tree: Path, data: Path, hours: float, work: Path) -> int:
    """Instructions callgrind counts for one run of ``child`` in ``tree``."""
    env = dict(os.environ, PYTHONPATH=str(tree), OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
               PYTHONHASHSEED="0")
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={work / 'callgrind.out'}",
           sys.executable, str(Path(__file__).resolve()), "--child", str(tree), str(data), str(hours)]
    run = subprocess.run(cmd, env=env, cwd=tree, capture_output=True, text=True)
    found = COLLECTED.findall(run.stderr)
    if run.returncode != 0 or not found:
        tail = run.stderr.strip().splitlines()[-1:] or ["no output"]
        raise BenchError(f"callgrind run in {tree} failed: {tail[0]}")
    return int(found[-1])


def per_day(tree: Path, data: Path, short_h: float, long_h: float, work: Path) -> int:
    """Instructions of 24 h of streaming in ``tree`` (the long run minus the short one, scaled)."""
    diff = instructions(tree, data, long_h, work) - instructions(tree, data, short_h, work)
    return round(diff * 24.0 / (long_h - short_h))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", default="80bb4ab", help="git revision to compare with (default: v1, 80bb4ab)")
    ap.add_argument("--short", type=float, default=1.0, help="hours of the short run")
    ap.add_argument("--long", type=float, default=3.0, help="hours of the long run")
    ap.add_argument("--baseline-cpu-s", type=float, default=2.59,
                    help="the baseline's published CPU seconds per 24 h (v1: 2.59)")
    ap.add_argument("--child", nargs=3, metavar=("TREE", "DATA", "HOURS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(Path(args.child[0]), Path(args.child[1]), float(args.child[2]))
        return 0
    try:
        return compare(args)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def compare(args) -> int:
    if shutil.which("valgrind") is None:
        raise BenchError("valgrind not found: install it (apt-get install -y valgrind) and run again")
    if not 0 < args.short < args.long:
        raise BenchError(f"--short ({args.short:g}) must be above 0 and below --long ({args.long:g})")
    sys.path.insert(0, str(ROOT))
    import numpy as np

    from bench.bench_classifier import DAY_PLAN
    from sitsense.plan import parse_plan
    from sitsense.synth import synthesize

    with tempfile.TemporaryDirectory(prefix="sitsense-cpu-") as tmp:
        work = Path(tmp)
        hour = synthesize(parse_plan(DAY_PLAN), sample_rate_hz=RATE_HZ, seed=1)
        data = work / "day.npy"
        np.save(data, np.tile(hour.accel_g, (int(np.ceil(args.long)), 1)))
        base = work / "baseline"
        made = subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(base), args.baseline],
                              capture_output=True, text=True)
        if made.returncode != 0:
            raise BenchError(f"cannot check out --baseline {args.baseline}: {made.stderr.strip().splitlines()[-1]}")
        try:
            now = per_day(ROOT, data, args.short, args.long, work)
            before = per_day(base, data, args.short, args.long, work)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)], capture_output=True)
    ratio = now / before
    print(f"live classifier, 24 h at {RATE_HZ:g} Hz, 1 s reads, instructions under callgrind:")
    print(f"  this tree:           {now / 1e9:7.2f} G")
    print(f"  baseline {args.baseline}: {before / 1e9:7.2f} G")
    print(f"  ratio {ratio:.3f}: about {ratio * args.baseline_cpu_s:.2f} s at the baseline's "
          f"{args.baseline_cpu_s:g} s per 24 h")
    return 0


if __name__ == "__main__":
    sys.exit(main())
