"""Synthetic belt signals of the dynamic releases, to measure the recogniser (no recordings exist yet).

Body frame as in ``sitsense.synth``: x up, y left, z forward; the board is mounted with a random
tilt. Each generator draws its own wearer and movement parameters from a seed, with the cycle
period wandering (people do not swing like metronomes), harmonics, micro-motion and sensor noise.
The physical model, per class:
- leg_swings: pelvis rocks fore-aft at the swing rate (0.6-1.4 Hz), 2-8 deg of pitch plus a
  0.03-0.15 g fore-aft acceleration; the vertical only sees a small bounce at twice the rate.
- lunges: one lunge every 1.8-4 s; the pelvis drops 0.25-0.5 m and comes back (vertical
  acceleration D/2 (2 pi f)^2), the trunk leans 5-15 deg, and each landing gives a short jolt.
- walking: vertical bounce at 1.4-2.3 Hz (0.12-0.35 g), fore-aft at the step rate, lateral at
  half of it, with a stride asymmetry so the autocorrelation peaks at the stride too.
- still: standing quietly (sway and breathing only).
- other: upright fidgeting: weight shifts, reaching, random bursts with no steady rhythm.
"""

from __future__ import annotations

import numpy as np

from .synth import _rotation  # the same mount model as the posture simulator

CLASSES = ("still", "walking", "leg_swings", "lunges", "other")


def _phase(rng: np.random.Generator, f_hz: float, n: int, fs: float, wander: float) -> np.ndarray:
    """Phase of a rhythm whose rate drifts by about ``wander`` (relative) over the window."""
    drift = np.cumsum(rng.normal(0, 1, n))
    drift = drift / (np.abs(drift).max() or 1.0) * wander
    return 2 * np.pi * np.cumsum(f_hz * (1 + drift)) / fs + rng.uniform(0, 2 * np.pi)


def _lowpass_noise(rng: np.random.Generator, n: int, k: int, scale: float) -> np.ndarray:
    x = rng.normal(0, 1, (n, 3))
    x = np.apply_along_axis(lambda c: np.convolve(c, np.ones(k) / k, mode="same"), 0, x)
    return x * (scale / max(float(x.std()), 1e-9))


def window(kind: str, *, seconds: float = 10.0, sample_rate_hz: float = 25.0,
           seed: int = 0) -> np.ndarray:
    """(n, 3) acceleration in g for one window of ``kind`` (one of CLASSES)."""
    rng = np.random.default_rng(seed)
    fs = sample_rate_hz
    n = int(round(seconds * fs))
    t = np.arange(n) / fs
    pitch_deg = np.zeros(n) + rng.normal(0, 1.0)
    acc = np.zeros((n, 3))
    if kind == "leg_swings":
        ph = _phase(rng, rng.uniform(0.6, 1.4), n, fs, rng.uniform(0.03, 0.12))
        pitch_deg += rng.uniform(2, 8) * np.sin(ph)
        acc[:, 2] += rng.uniform(0.03, 0.15) * np.sin(ph + rng.uniform(-0.5, 0.5))
        acc[:, 0] += rng.uniform(0.005, 0.03) * np.sin(2 * ph)
        acc[:, 1] += rng.uniform(0.0, 0.03) * np.sin(ph + 1.0)
    elif kind == "lunges":
        f = 1 / rng.uniform(1.8, 4.0)
        ph = _phase(rng, f, n, fs, rng.uniform(0.03, 0.12))
        depth_m = rng.uniform(0.25, 0.5)
        acc[:, 0] += depth_m / 2 * (2 * np.pi * f) ** 2 / 9.81 * np.cos(ph)
        pitch_deg -= rng.uniform(5, 15) * (0.5 - 0.5 * np.cos(ph))  # lean forward at the bottom
        acc[:, 2] += rng.uniform(0.03, 0.1) * np.sin(ph + 0.5)
        landing = (np.sin(ph) > 0.98).astype(float)
        acc[:, 0] += np.convolve(landing, np.hanning(5), mode="same") * rng.uniform(0.1, 0.4)
    elif kind == "walking":
        ph = _phase(rng, rng.uniform(1.4, 2.3), n, fs, rng.uniform(0.02, 0.06))
        acc[:, 0] += rng.uniform(0.12, 0.35) * np.sin(ph) + rng.uniform(0.02, 0.08) * np.sin(2 * ph)
        acc[:, 0] += rng.uniform(0.0, 0.06) * np.sin(ph / 2)  # one leg a little heavier
        acc[:, 2] += rng.uniform(0.06, 0.15) * np.sin(ph + 0.8)
        acc[:, 1] += rng.uniform(0.04, 0.1) * np.sin(ph / 2)
        pitch_deg += 4
    elif kind == "other":
        k = int(fs * rng.uniform(0.4, 1.5))
        acc += _lowpass_noise(rng, n, k, rng.uniform(0.02, 0.08))
        pitch_deg += np.cumsum(rng.normal(0, 0.3, n))
    elif kind != "still":
        raise ValueError(f"unknown kind {kind!r} (known: {', '.join(CLASSES)})")
    # breathing, sway and micro-motion for everyone
    pitch_deg += 0.4 * np.sin(2 * np.pi * rng.uniform(0.2, 0.3) * t) + np.cumsum(rng.normal(0, 0.05, n))
    p = np.radians(pitch_deg)
    up = np.stack([np.cos(p), np.zeros(n), np.sin(p)], axis=1)
    acc_body = up + acc + _lowpass_noise(rng, n, 5, 0.004)
    axis = rng.normal(size=3)
    mount = _rotation(axis / np.linalg.norm(axis), np.radians(rng.uniform(0, 25)))
    acc_sensor = acc_body @ mount.T + rng.normal(0, 0.002, (n, 3))
    return np.round(acc_sensor * 16384.0) / 16384.0


def dataset(per_class: int, *, seed: int = 0, seconds: float = 10.0,
            sample_rate_hz: float = 25.0) -> list[tuple[str, np.ndarray]]:
    """``per_class`` windows of every class, each from its own seed."""
    out = []
    for ci, kind in enumerate(CLASSES):
        for i in range(per_class):
            out.append((kind, window(kind, seconds=seconds, sample_rate_hz=sample_rate_hz,
                                     seed=seed * 1_000_003 + ci * 10_007 + i)))
    return out
