"""Leave-subjects-out cross-validation of the posture classifier over HAPT users, through the whole Service.

Users are split into folds of consecutive ids; each fold is held out once, a model is trained on
the others and the held-out recordings run through the Service (as ``sitsense simulate`` does,
with the protocol's upright reference) and are scored by the evaluation protocol. Counts are
pooled over all folds, so every user is covered exactly once; ``--per-user`` prints each user's
figures too. The provisional tilt classifier (no training) is scored on the same recordings.

    PYTHONPATH=. python bench/crossval.py --hapt ../shared/data/hapt --users 1-24 --fold-size 4 [--rate 25] [--per-user]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.service_runs import run_service  # noqa: E402
from sitsense.posture.classifier import StreamingClassifier  # noqa: E402
from sitsense.posture.evaluate import Tally, decimate, score, upright_reference  # noqa: E402
from sitsense.posture.provisional import TiltClassifier  # noqa: E402
from sitsense.posture.training import train  # noqa: E402
from sitsense.traces import Trace, parse_users, read_hapt  # noqa: E402


def user_tally(traces: list[Trace], make: Callable[[float], object], rate_hz: float | None) -> Tally:
    """The protocol's counts over one user's recordings, each through a fresh Service."""
    tally = Tally()
    for recording in traces:
        trace = decimate(recording, rate_hz) if rate_hz else recording
        run = run_service(trace, make(trace.sample_rate_hz), reference=upright_reference(trace))
        tally.add(score(trace, run.outputs))
    return tally


def crossval(root: str, users: list[int], fold_size: int, rate_hz: float | None, *,
             fit: Callable[[list[Trace]], object] | None = None,
             make: Callable[[object, float], object] | None = None,
             baseline: bool = True) -> tuple[dict[int, Tally], dict[int, Tally]]:
    """Per-user tallies of the trained classifier and of the provisional baseline."""
    traces = read_hapt(root, set(users))
    by_user: dict[int, list] = {}
    for tr in traces:
        by_user.setdefault(int(tr.metadata["user"]), []).append(tr)
    fit = fit or (lambda trs: train(trs))
    make = make or (lambda model, hz: StreamingClassifier(model, sample_rate_hz=hz))
    ours: dict[int, Tally] = {}
    base: dict[int, Tally] = {}
    for k in range(0, len(users), fold_size):
        held = set(users[k:k + fold_size])
        model = fit([tr for u, trs in by_user.items() if u not in held for tr in trs])
        for u in sorted(held):
            ours[u] = user_tally(by_user.get(u, []), lambda hz: make(model, hz), rate_hz)
            if baseline:
                base[u] = user_tally(by_user.get(u, []), lambda hz: TiltClassifier(), rate_hz)
    return ours, base


def total(tallies: dict[int, Tally]) -> Tally:
    out = Tally()
    for t in tallies.values():
        out.add(t)
    return out


def found(tally: Tally, kind: str) -> str:
    hits = [f for k, f, _ in tally.transitions if k == kind]
    return f"{sum(hits)}/{len(hits)}"


def per_user_line(user: int, tally: Tally) -> str:
    m = tally.metrics()
    lat = m["transition_latency_s"]["median"]
    return (f"{user:4d} {m['sit_stand_accuracy']:9.4f} {m['sedentary_balanced_accuracy']:9.4f} "
            f"{found(tally, 'sit_to_stand'):>6s} {found(tally, 'stand_to_sit'):>6s} "
            f"{'n/a' if lat is None else f'{lat:.1f}':>5s}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hapt", default=str(Path(__file__).resolve().parent.parent.parent / "shared/data/hapt"))
    ap.add_argument("--users", default="1-24")
    ap.add_argument("--fold-size", type=int, default=4)
    ap.add_argument("--rate", type=float, default=None, help="decimate to this rate first (Hz)")
    ap.add_argument("--per-user", action="store_true", help="print each user's figures")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    users = sorted(parse_users(args.users))
    t0 = time.process_time()
    by_user, base_by_user = crossval(args.hapt, users, args.fold_size, args.rate)
    ours, base = total(by_user).metrics(), total(base_by_user).metrics()
    if args.json:
        print(json.dumps({"classifier": ours, "provisional": base,
                          "per_user": {u: t.metrics() for u, t in by_user.items()}}, indent=2))
        return 0
    keys = ("sit_stand_accuracy", "sedentary_balanced_accuracy", "sit_to_stand_sensitivity",
            "stand_to_sit_sensitivity")
    print(f"leave-{args.fold_size}-users-out over users {args.users}"
          + (f" at {args.rate:g} Hz" if args.rate else "") + f", through the Service ({time.process_time() - t0:.0f} s CPU)")
    if args.per_user:
        print(f"{'user':>4s} {'sit/stand':>9s} {'sedentary':>9s} {'up':>6s} {'down':>6s} {'lat':>5s}")
        for u in sorted(by_user):
            print(per_user_line(u, by_user[u]))
    print(f"{'':32s}{'classifier':>12s}{'provisional':>12s}")
    for k in keys:
        print(f"{k:32s}{ours[k]:12.4f}{base[k]:12.4f}")
    lat = ours["transition_latency_s"]
    print(f"{'transition latency median/p90':32s}{lat['median']:6.1f}/{lat['p90']:.1f}")
    print(f"transitions found: sit-to-stand {found(total(by_user), 'sit_to_stand')}, "
          f"stand-to-sit {found(total(by_user), 'stand_to_sit')}")
    print("per-class recall:", {k: round(v, 4) for k, v in ours["per_class_recall"].items()})
    print("confusion:")
    for s, row in ours["confusion"].items():
        print(f"  {s:10s}", {o: n for o, n in row.items() if n})
    lat_users = [t.metrics()["transition_latency_s"]["median"] for t in by_user.values()]
    print(f"per user: sit/stand min {min(t.metrics()['sit_stand_accuracy'] for t in by_user.values()):.4f}, "
          f"latency median max {np.nanmax([x for x in lat_users if x is not None]):.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
