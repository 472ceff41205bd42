"""CPU cost of the live loop (driver + emulator, real time) beside a per-sample polling baseline.

Each configuration runs in its own process for ``--seconds`` of real time (default 60), all at
once; each measures its own CPU time (user + system) and its wake-ups. The emulator's work is
included (on real hardware the chip does it), so the live figures are an upper bound.

    PYTHONPATH=. python bench/bench_live_loop.py --seconds 60
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import time

import numpy as np


def _signal(w_s: np.ndarray) -> np.ndarray:
    """Someone sitting and breathing: gravity tilted back, a 0.25 Hz sway of a few mg."""
    sway = 0.004 * np.sin(2 * np.pi * 0.25 * w_s)
    return np.column_stack([0.93 + sway, 0.02 + 0 * w_s, 0.36 - sway])


def _emulated_source(rate_hz: float, seconds: float, poll_s: float):
    """(clock, emulator, opened LiveSource): the driver on the emulated chip, in real time."""
    from sitsense.clock import SystemClock
    from sitsense.sensor.emulator import MPU6050Emulator
    from sitsense.sensor.live import LiveSource
    from sitsense.sensor.mpu6050 import MPU6050

    clock = SystemClock()
    emu = MPU6050Emulator(clock=clock, signal=_signal, noise_g=0.002, seed=1)
    source = LiveSource(MPU6050(bus=emu, clock=clock, sample_rate_hz=rate_hz), clock=clock,
                        poll_interval_s=poll_s, stop_after_s=seconds)
    source.open()
    return clock, emu, source


def _live(rate_hz: float, seconds: float, poll_s: float) -> dict:
    _, emu, source = _emulated_source(rate_hz, seconds, poll_s)
    samples = 0
    cpu0, wall0 = time.process_time(), time.monotonic()
    for t_s, _ in source.blocks():
        samples += len(t_s)
    return {"cpu_s": time.process_time() - cpu0, "wall_s": time.monotonic() - wall0, "samples": samples,
            "wakeups": source.polls, "bus_transactions": emu.transactions}


def _per_sample(rate_hz: float, seconds: float, poll_s: float) -> dict:
    """The naive loop: sleep one sample period, read the six data registers, convert."""
    from sitsense.clock import SystemClock
    from sitsense.sensor.emulator import MPU6050Emulator
    from sitsense.sensor.mpu6050 import MPU6050, Reg, counts_to_g

    clock = SystemClock()
    emu = MPU6050Emulator(clock=clock, signal=_signal, noise_g=0.002, seed=1)
    drv = MPU6050(bus=emu, clock=clock, sample_rate_hz=rate_hz)
    drv.open()
    period = 1.0 / drv.sample_rate_hz
    samples = wakeups = 0
    cpu0, wall0 = time.process_time(), time.monotonic()
    next_t = wall0 + period
    while True:
        now = time.monotonic()
        if now - wall0 >= seconds:
            break
        if next_t > now:
            time.sleep(next_t - now)
        next_t += period
        wakeups += 1
        raw = emu.read_i2c_block_data(0x68, Reg.ACCEL_XOUT_H, 6)
        counts_to_g(bytes(raw), drv.range.lsb_per_g)
        samples += 1
    return {"cpu_s": time.process_time() - cpu0, "wall_s": time.monotonic() - wall0, "samples": samples,
            "wakeups": wakeups, "bus_transactions": emu.transactions}


def _service(rate_hz: float, seconds: float, poll_s: float) -> dict:
    """The whole service on the emulated chip in real time: driver, posture, tracker, coach."""
    from sitsense.config import Config
    from sitsense.wiring import build_service

    clock, emu, source = _emulated_source(rate_hz, seconds, poll_s)
    service = build_service(Config(), source=source, clock=clock, console=False)
    cpu0, wall0 = time.process_time(), time.monotonic()
    service.run()
    return {"cpu_s": time.process_time() - cpu0, "wall_s": time.monotonic() - wall0, "samples": 0,
            "wakeups": source.polls, "bus_transactions": emu.transactions}


def _run(job):
    kind, rate, seconds, poll_s = job
    fn = {"live": _live, "per_sample": _per_sample, "service": _service}[kind]
    out = fn(rate, seconds, poll_s)
    out.update(loop=kind, rate_hz=rate, cpu_percent=round(100 * out["cpu_s"] / out["wall_s"], 3),
               wakeups_per_s=round(out["wakeups"] / out["wall_s"], 2))
    out["cpu_s"], out["wall_s"] = round(out["cpu_s"], 4), round(out["wall_s"], 2)
    return out


def measure(seconds: float = 60.0, poll_s: float = 1.0, rates=(50.0, 25.0)) -> dict:
    """For bench/run_all.py: CPU per hour of wear of the whole service and of the bare driver loop."""
    jobs = [(kind, r, seconds, poll_s) for r in rates for kind in ("service", "live", "per_sample")]
    with mp.get_context("fork").Pool(2) as pool:
        results = pool.map(_run, jobs)
    rows = []
    for r in rates:
        by = {x["loop"]: x for x in results if x["rate_hz"] == r}
        per_h = {k: round(3600 * v["cpu_s"] / v["wall_s"], 1) for k, v in by.items()}
        rows.append([f"live loop at {r:g} Hz through the emulator, CPU per hour of wear",
                     f"{per_h['service']} s whole service ({per_h['live']} s driver alone)",
                     f"per-sample register polling {per_h['per_sample']} s (driver alone)", "under 30 s"])
    return {"seconds": seconds, "results": results, "rows": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="real time per configuration (default 60)")
    ap.add_argument("--poll", type=float, default=1.0, help="live loop poll interval in s (default 1)")
    ap.add_argument("--rates", default="50,25", help="sample rates in Hz (default 50,25)")
    args = ap.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    jobs = [(kind, r, args.seconds, args.poll) for r in rates for kind in ("live", "per_sample")]
    with mp.get_context("fork").Pool(len(jobs)) as pool:
        results = pool.map(_run, jobs)
    by = {(r["loop"], r["rate_hz"]): r for r in results}
    ratios = {f"{r:g}Hz": round(by[("per_sample", r)]["cpu_s"] / max(by[("live", r)]["cpu_s"], 1e-9), 1)
              for r in rates}
    print(json.dumps({"benchmark": "live_loop", "seconds": args.seconds, "poll_interval_s": args.poll,
                      "python": platform.python_version(), "machine": platform.machine(),
                      "cpus": os.cpu_count(), "results": results,
                      "baseline_cpu_over_live_cpu": ratios}, indent=2))


if __name__ == "__main__":
    main()
