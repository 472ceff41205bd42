"""Leave-subjects-out cross-validation of the posture classifier over HAPT users.

Users are split into folds of consecutive ids; each fold is held out once, a model is trained on
the others and the held-out recordings are scored by the evaluation protocol. Counts are pooled
over all folds, so every user is covered exactly once. The provisional tilt classifier (no
training) is scored on the same recordings for comparison.

    PYTHONPATH=. python bench/crossval.py --hapt ../shared/data/hapt --users 1-24 --fold-size 4 [--rate 25]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sitsense.posture.classifier import StreamingClassifier  # noqa: E402
from sitsense.posture.evaluate import Tally, evaluate_traces  # noqa: E402
from sitsense.posture.provisional import TiltClassifier  # noqa: E402
from sitsense.posture.training import train  # noqa: E402
from sitsense.traces import parse_users, read_hapt  # noqa: E402


def crossval(root: str, users: list[int], fold_size: int, rate_hz: float | None, **clf_kw) -> tuple[dict, dict]:
    """Pooled metrics of the trained classifier and of the provisional baseline."""
    traces = read_hapt(root, set(users))
    by_user: dict[int, list] = {}
    for tr in traces:
        by_user.setdefault(int(tr.metadata["user"]), []).append(tr)
    ours, base = Tally(), Tally()
    for k in range(0, len(users), fold_size):
        held = set(users[k:k + fold_size])
        train_tr = [tr for u, trs in by_user.items() if u not in held for tr in trs]
        test_tr = [tr for u in sorted(held) for tr in by_user.get(u, [])]
        model = train(train_tr, trained_on=f"crossval without users {sorted(held)}")
        ours.add(evaluate_traces(test_tr, lambda hz: StreamingClassifier(model, sample_rate_hz=hz, **clf_kw),
                                 rate_hz=rate_hz))
        base.add(evaluate_traces(test_tr, lambda hz: TiltClassifier(), rate_hz=rate_hz))
    return ours.metrics(), base.metrics()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hapt", default=str(Path(__file__).resolve().parent.parent.parent / "shared/data/hapt"))
    ap.add_argument("--users", default="1-24")
    ap.add_argument("--fold-size", type=int, default=4)
    ap.add_argument("--rate", type=float, default=None, help="decimate to this rate first (Hz)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    users = sorted(parse_users(args.users))
    t0 = time.process_time()
    ours, base = crossval(args.hapt, users, args.fold_size, args.rate)
    if args.json:
        print(json.dumps({"classifier": ours, "provisional": base}, indent=2))
        return 0
    keys = ("sit_stand_accuracy", "sedentary_balanced_accuracy", "sit_to_stand_sensitivity",
            "stand_to_sit_sensitivity")
    print(f"leave-{args.fold_size}-users-out over users {args.users}"
          + (f" at {args.rate:g} Hz" if args.rate else "") + f" ({time.process_time() - t0:.0f} s CPU)")
    print(f"{'':32s}{'classifier':>12s}{'provisional':>12s}")
    for k in keys:
        print(f"{k:32s}{ours[k]:12.4f}{base[k]:12.4f}")
    print(f"{'transition latency median/p90':32s}{ours['transition_latency_s']['median']:6.1f}/"
          f"{ours['transition_latency_s']['p90']:.1f}")
    print("per-class recall:", {k: round(v, 4) for k, v in ours["per_class_recall"].items()})
    print("confusion:")
    for s, row in ours["confusion"].items():
        print(f"  {s:10s}", {o: n for o, n in row.items() if n})
    return 0


if __name__ == "__main__":
    sys.exit(main())
