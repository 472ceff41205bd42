"""Reliability of the dynamic-release recogniser: synthetic confusion matrix and real false positives.

Run: PYTHONPATH=. python bench/recognition.py [--per-class 200] [--hapt ../shared/data/hapt]
The rules were tuned on synthetic seed 1; the matrix below uses seed 2 (held out). Real recordings
of leg swings or lunges do not exist yet, so only false positives can be measured on real data.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import numpy as np

from sitsense.exercise_synth import CLASSES, dataset
from sitsense.plan import parse_plan
from sitsense.recognition import LABELS, recognise
from sitsense.synth import synthesize
from sitsense.traces import HAPT_ACTIVITY_NAMES, LABELS as TRACE_LABELS, read_hapt

RATE_HZ = 25.0
WINDOW = int(10 * RATE_HZ)


def table(title: str, rows: dict[str, Counter]) -> None:
    print(f"\n{title}")
    print(f"{'true / predicted':22s}" + "".join(f"{c:>11s}" for c in LABELS) + "     n  recall")
    for name, cnt in rows.items():
        n = sum(cnt.values())
        recall = cnt[name] / n if name in LABELS and n else float("nan")
        print(f"{name:22s}" + "".join(f"{cnt[c]:11d}" for c in LABELS) + f"{n:6d}  {recall:6.3f}")


def windows(accel: np.ndarray, codes: np.ndarray):
    for i in range(0, len(accel) - WINDOW + 1, WINDOW // 2):
        w = codes[i:i + WINDOW]
        if np.all(w == w[0]):
            yield int(w[0]), accel[i:i + WINDOW]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-class", type=int, default=200)
    ap.add_argument("--seed", type=int, default=2)
    ap.add_argument("--hapt", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data" / "hapt"))
    args = ap.parse_args()

    rows = {c: Counter() for c in CLASSES}
    for kind, a in dataset(args.per_class, seed=args.seed, sample_rate_hz=RATE_HZ):
        rows[kind][recognise(a, RATE_HZ)] += 1
    table(f"synthetic exercise signals (seed {args.seed}, held out), 10 s windows at 25 Hz", rows)

    rows = {}
    for seed in range(10):  # the posture simulator's wearers: an independent generator
        tr = synthesize(parse_plan("stand 3m, walk 5m, sit 3m, walk 2m"), sample_rate_hz=RATE_HZ, seed=seed)
        for code, a in windows(tr.accel_g, tr.labels):
            rows.setdefault(f"synth {TRACE_LABELS[code]}", Counter())[recognise(a, RATE_HZ)] += 1
    table("the posture simulator's wearers (sitsense.synth, 10 seeds)", rows)

    root = Path(args.hapt)
    if (root / "RawData" / "labels.txt").is_file():
        rows = {}
        for tr in read_hapt(root):
            acc = tr.accel_g[::2]  # 50 Hz -> 25 Hz like the live sensor (HAPT is already low-passed at 20 Hz)
            act = tr.activity[::2]
            for code, a in windows(acc, act):
                if code:
                    rows.setdefault(f"HAPT {HAPT_ACTIVITY_NAMES[code].lower()}", Counter())[recognise(a, RATE_HZ)] += 1
        table("real HAPT recordings (waist-worn phone, users 1-24): false exercise detections", rows)
        fp = sum(c["leg_swings"] + c["lunges"] for c in rows.values())
        n = sum(sum(c.values()) for c in rows.values())
        print(f"\nreal windows called leg_swings or lunges: {fp} of {n} ({fp / n:.2%})")
    else:
        print(f"\nHAPT not found at {root}: real false-positive check skipped")


if __name__ == "__main__":
    main()
