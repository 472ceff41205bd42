"""CPU cost of classifying 24 h of 50 Hz data, streaming block by block as the service does.

The streaming classifier (block statistics from cumulative sums, all steps of a block at once)
runs beside a naive loop that cuts every step's window out of the signal and computes the same
features, model and filter one window at a time, on the same synthetic day in the same run, so
the ratio does not depend on the machine. Blocks of 1 s are what the live service reads from
the sensor's FIFO; 60 s blocks are what a replay feeds.

    PYTHONPATH=. python bench/bench_classifier.py [--hours 24] [--rate 50] [--naive-hours 1]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sitsense.config import PostureConfig  # noqa: E402
from sitsense.plan import parse_plan  # noqa: E402
from sitsense.posture.classifier import StreamingClassifier  # noqa: E402
from sitsense.posture.features import CONTEXT_S, rotation_to_up, window_features  # noqa: E402
from sitsense.posture.model import PostureModel  # noqa: E402
from sitsense.posture.smoothing import ForwardFilter  # noqa: E402
from sitsense.synth import synthesize  # noqa: E402

DAY_PLAN = "stand 1m, sit 50m, walk 5m, stand 4m"  # one hour, repeated
DECIDE_EVERY_S = PostureConfig().decide_every_s


def streaming_cpu_s(t_s: np.ndarray, accel_g: np.ndarray, rate_hz: float, block_s: float,
                    model: PostureModel, decide_every_s: float = 0.0, sequence: bool = True) -> tuple[float, int]:
    """CPU seconds to stream the data through the classifier in blocks; and the steps it decided.

    ``sequence=False``: the earlier plain filter, for comparison in the same run."""
    clf = StreamingClassifier(model, sample_rate_hz=rate_hz, decide_every_s=decide_every_s, sequence=sequence)
    n = int(round(block_s * rate_hz))
    steps = 0
    start = time.process_time()
    for lo in range(0, len(t_s), n):
        steps += len(clf.process(t_s[lo:lo + n], accel_g[lo:lo + n]))
        clf.pop_events()
    steps += len(clf.flush())
    return time.process_time() - start, steps


def naive_cpu_s(t_s: np.ndarray, accel_g: np.ndarray, rate_hz: float, model: PostureModel) -> tuple[float, int]:
    """CPU seconds of the per-window loop: slice, features, model and filter, one step at a time."""
    win = int(round(CONTEXT_S * rate_hz))
    step = int(round(rate_hz))
    rot = rotation_to_up(accel_g[:win].mean(axis=0), model.up_axis, model.forward_axis)
    filt = ForwardFilter(1.0, model.prior)
    ok = np.ones(1, dtype=bool)
    start = time.process_time()
    steps = 0
    for end in range(win, len(t_s) + 1, step):
        feats = window_features(accel_g[end - win:end][None], rot)
        filt.run(model.log_proba(feats), ok)
        steps += 1
    return time.process_time() - start, steps


def measure(quick: bool = False, rate_hz: float = 50.0, seed: int = 1) -> dict:
    """For bench/run_all.py: CPU for 24 h streamed as the live service does, beside the naive loop."""
    hours = 2.0 if quick else 24.0
    hour = synthesize(parse_plan(DAY_PLAN), sample_rate_hz=rate_hz, seed=seed)
    acc = np.tile(hour.accel_g, (int(np.ceil(hours)), 1))[:int(round(hours * 3600 * rate_hz))]
    t = np.arange(len(acc)) / rate_hz
    model = PostureModel.load()
    live_s, _ = streaming_cpu_s(t, acc, rate_hz, 1.0, model, DECIDE_EVERY_S)
    every_step_s, _ = streaming_cpu_s(t, acc, rate_hz, 1.0, model, 0.0)
    replay_s, _ = streaming_cpu_s(t, acc, rate_hz, 60.0, model, 0.0)
    n_naive = int(round(min(1.0, hours) * 3600 * rate_hz))
    naive_s = naive_cpu_s(t[:n_naive], acc[:n_naive], rate_hz, model)[0] * len(t) / n_naive
    per_day = 24.0 / hours
    fig = {"hours": hours, "rate_hz": rate_hz, "live_cpu_s_per_24h": round(live_s * per_day, 2),
           "every_step_cpu_s_per_24h": round(every_step_s * per_day, 2),
           "replay_cpu_s_per_24h": round(replay_s * per_day, 2), "naive_cpu_s_per_24h": round(naive_s * per_day, 2)}
    fig["rows"] = [[f"posture classifier, 24 h at {rate_hz:g} Hz streamed in 1 s reads (decide every "
                    f"{DECIDE_EVERY_S:g} s), CPU",
                    f"{fig['live_cpu_s_per_24h']} s ({24 * 3600 / fig['live_cpu_s_per_24h']:,.0f}x real time); "
                    f"every read decided {fig['every_step_cpu_s_per_24h']} s; 60 s replay blocks "
                    f"{fig['replay_cpu_s_per_24h']} s",
                    f"naive per-window loop {fig['naive_cpu_s_per_24h']} s", "under 3 s"]]
    return fig


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=24.0, help="length of the streamed day")
    ap.add_argument("--rate", type=float, default=50.0, help="sample rate (Hz)")
    ap.add_argument("--naive-hours", type=float, default=1.0,
                    help="hours the naive loop runs (its time is scaled to --hours)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    hour = synthesize(parse_plan(DAY_PLAN), sample_rate_hz=args.rate, seed=args.seed)
    reps = int(np.ceil(args.hours))
    acc = np.tile(hour.accel_g, (reps, 1))[:int(round(args.hours * 3600 * args.rate))]
    t = np.arange(len(acc)) / args.rate
    model = PostureModel.load()
    print(f"{args.hours:g} h at {args.rate:g} Hz ({len(t):,} samples), CPU seconds on this machine")
    results = {}
    for block_s, every_s, sequence, what in (
            (1.0, 0.0, True, "live, 1 s FIFO reads, decide every step"),
            (1.0, DECIDE_EVERY_S, True, f"live, 1 s FIFO reads, decide every {DECIDE_EVERY_S:g} s"),
            (1.0, DECIDE_EVERY_S, False, f"live, decide every {DECIDE_EVERY_S:g} s, the earlier plain filter"),
            (60.0, 0.0, True, "replay, 60 s blocks")):
        cpu, steps = streaming_cpu_s(t, acc, args.rate, block_s, model, every_s, sequence)
        results[what] = cpu
        print(f"  streaming ({what}): {cpu:6.2f} s  ({steps:,} steps; {args.hours * 3600 / cpu:,.0f}x real time)")
    n_naive = int(round(min(args.naive_hours, args.hours) * 3600 * args.rate))
    cpu, steps = naive_cpu_s(t[:n_naive], acc[:n_naive], args.rate, model)
    scaled = cpu * len(t) / n_naive
    print(f"  naive per-window loop:   {scaled:7.2f} s  (measured {cpu:.2f} s over "
          f"{n_naive / args.rate / 3600:g} h, {steps:,} steps, scaled)")
    for what, s in results.items():
        print(f"  naive / streaming ({what}): {scaled / s:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
