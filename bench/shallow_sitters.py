"""Synthetic shallow sitters: wearers whose pelvis tilts only a few degrees in the chair, through the Service.

No data set needed and nothing here was tuned on: ``sitsense.synth`` wearers with a chosen sitting
pitch (2-22°) live a short office day; each runs through the whole Service, calibrated on its
first 5 s of standing, with the sequence filter and with the earlier plain filter
(``sequence=False``) side by side. Per pitch: sit/stand accuracy of the steps 6 s or more into a
labelled posture, sitting-time error, alerts against those the labels call for, false breaks.

    PYTHONPATH=. python bench/shallow_sitters.py [--seeds 1-5] [--pitches 2,4,6,10,22]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.service_runs import LabelClassifier, alert_check, false_breaks, labelled_s, run_service  # noqa: E402
from sitsense.plan import parse_plan  # noqa: E402
from sitsense.posture.classifier import StreamingClassifier  # noqa: E402
from sitsense.posture.model import PostureModel  # noqa: E402
from sitsense.synth import synthesize  # noqa: E402
from sitsense.traces import parse_users  # noqa: E402

PLAN = "stand 2m, sit 35m, stand 2m, walk 3m, sit 45m, walk 2m, stand 1m, sit 20m, lie 10m, sit 10m, walk 3m"
RATE_HZ = 25.0


def measure(model: PostureModel, pitch: float, seed: int, sequence: bool) -> dict:
    trace = synthesize(parse_plan(PLAN), sample_rate_hz=RATE_HZ, seed=seed, sit_pitch_deg=pitch)
    clf = StreamingClassifier(model, sample_rate_hz=RATE_HZ, sequence=sequence)
    run = run_service(trace, clf, reference=trace.accel_g[:int(5 * RATE_HZ)].mean(axis=0))
    truth = run_service(trace, LabelClassifier(trace))
    names = trace.label_names()
    idx = np.minimum((run.outputs.t_s * RATE_HZ).astype(int), len(names) - 1)
    back = np.maximum(((run.outputs.t_s - 6) * RATE_HZ).astype(int), 0)
    settled = (names[idx] == names[back]) & np.isin(names[idx], ["sitting", "standing"])
    sit_true = labelled_s(trace, "sitting")
    expected, missed, extra = alert_check(run, truth)
    return {"sit_stand": float(np.mean(run.outputs.posture[settled] == names[idx][settled])),
            "sit_err": (run.summary.sitting_s - sit_true) / sit_true, "alerts_ok": not (missed or extra),
            "false_breaks": false_breaks(trace, run)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="1-5")
    ap.add_argument("--pitches", default="2,4,6,10,22")
    args = ap.parse_args()
    seeds = sorted(parse_users(args.seeds))
    pitches = [float(p) for p in args.pitches.split(",")]
    model = PostureModel.load()
    print(f"plan: {PLAN} ({len(seeds)} wearers per pitch, {RATE_HZ:g} Hz, shipped model)")
    print(f"{'pitch':>5s} | {'sequence: sit/stand':>19s} {'sit err (worst)':>16s} {'alerts ok':>9s} {'false':>5s} | "
          f"{'plain: sit/stand':>16s} {'sit err (worst)':>16s} {'alerts ok':>9s} {'false':>5s}")
    for pitch in pitches:
        line = f"{pitch:5.0f}"
        for sequence in (True, False):
            rs = [measure(model, pitch, seed, sequence) for seed in seeds]
            worst = max((r["sit_err"] for r in rs), key=abs)
            line += (f" | {np.mean([r['sit_stand'] for r in rs]):{19 if sequence else 16}.4f} "
                     f"{np.mean([r['sit_err'] for r in rs]):+7.2%} ({worst:+6.1%}) "
                     f"{sum(r['alerts_ok'] for r in rs):>5d}/{len(rs):<3d} {sum(r['false_breaks'] for r in rs):5d}")
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
