"""Helpers shared by the sensor tests: seeded traces, a sim clock, and a driver on an emulator."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np

from sitsense.clock import SimClock
from sitsense.sensor.emulator import MPU6050Emulator
from sitsense.sensor.mpu6050 import MPU6050
from sitsense.traces import Trace

START = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
LSB_2G = 1 / 16384


def wobbly_trace(seconds: float = 60.0, rate_hz: float = 25.0, seed: int = 1) -> Trace:
    """Gravity with a slow sway plus noise: every sample differs, values well inside +-2 g."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * rate_hz))
    t = np.arange(n) / rate_hz
    a = np.column_stack([0.95 + 0.05 * np.sin(t), 0.2 * np.cos(0.3 * t), 0.25 + 0.0 * t])
    a += rng.normal(0, 0.01, a.shape)
    return Trace(t, a, None, {"sample_rate_hz": f"{rate_hz:g}"})


def rig(trace: Trace | None = None, rate_hz: float = 25.0, **emu):
    """(clock, emulator, driver) wired together, nothing opened yet."""
    clock = SimClock(START)
    trace = trace if trace is not None else wobbly_trace(rate_hz=rate_hz)
    emulator = MPU6050Emulator(clock=clock, trace=trace, **emu)
    driver = MPU6050(bus=emulator, clock=clock, sample_rate_hz=rate_hz)
    return clock, emulator, driver


def poll(clock: SimClock, driver: MPU6050, seconds: float, every_s: float = 1.0):
    """Sleep-and-read like LiveSource for ``seconds``; returns (t, accel_g, events)."""
    ts, accs, events = [], [], []
    for _ in range(int(round(seconds / every_s))):
        clock.sleep(every_s)
        t, a = driver.read()
        ts.append(t)
        accs.append(a)
        events.extend(driver.pop_events())
    return np.concatenate(ts), np.concatenate(accs), events


def trace_index(emulator: MPU6050Emulator, driver: MPU6050, t: np.ndarray) -> np.ndarray:
    """Which trace sample each timestamp should carry (the chip samples at its own period)."""
    return np.rint((t - emulator._origin_s) / (1 / driver.sample_rate_hz)).astype(int)


def matched_indices(trace: Trace, accel_g: np.ndarray) -> np.ndarray:
    """The trace sample each delivered sample is (nearest in value; asserts it is within one LSB)."""
    idx = np.empty(len(accel_g), dtype=int)
    for lo in range(0, len(accel_g), 500):
        d = np.abs(accel_g[lo:lo + 500, None, :] - trace.accel_g[None, :, :]).max(axis=2)
        idx[lo:lo + 500] = d.argmin(axis=1)
        assert d.min(axis=1).max() <= LSB_2G, "a sample is not a trace sample"
    return idx


def fifo_tick_times(emulator: MPU6050Emulator, n: int) -> np.ndarray:
    """When the chip took the first ``n`` samples after the FIFO was last enabled (its own tick grid)."""
    enabled = [t for t, reg, value in emulator.writes if reg == 0x23 and value][-1]
    period = emulator.period_s
    k = np.floor((enabled - emulator._anchor_s) / period + 1e-6) + 1
    return emulator._anchor_s + (k + np.arange(n)) * period
