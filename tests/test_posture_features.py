"""Posture features: the streaming and the per-window paths agree, any rate gives the same angles."""

from __future__ import annotations

import numpy as np
import pytest

from sitsense.posture.features import (CONTEXT_S, FEATURE_NAMES, rotation_to_up, step_features,
                                       window_features)

FWD = FEATURE_NAMES.index("fwd_0")
SIDE = FEATURE_NAMES.index("side_0")
TILT = FEATURE_NAMES.index("tilt_deg")
STD = FEATURE_NAMES.index("log_std_0")


def tilted(rate_hz: float, seconds: float, tilt_deg: float, toward: np.ndarray, seed: int = 0):
    """Still samples whose gravity is tilted from +x towards ``toward`` by ``tilt_deg``."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate_hz)
    g = np.cos(np.radians(tilt_deg)) * np.array([1.0, 0, 0]) + np.sin(np.radians(tilt_deg)) * toward
    t = np.arange(n) / rate_hz
    return t, g + rng.normal(0, 0.003, (n, 3))


@pytest.mark.parametrize("rate_hz", [20.0, 25.0, 50.0, 100.0])
def test_signed_tilt_in_the_wearers_frame_at_any_rate(rate_hz):
    rot = rotation_to_up(np.array([1.0, 0, 0]), np.array([1.0, 0, 0]), np.array([0, 1.0, 0]))
    t, a = tilted(rate_hz, 10, 30, np.array([0, 1.0, 0]))
    f, n = step_features(t, a, np.array([8.0]), rot)
    assert f[0, TILT] == pytest.approx(30, abs=0.5)
    assert f[0, FWD] == pytest.approx(np.sin(np.radians(30)), abs=0.01)  # forward, signed
    assert abs(f[0, SIDE]) < 0.01
    t, a = tilted(rate_hz, 10, 30, np.array([0, -1.0, 0]))
    f, _ = step_features(t, a, np.array([8.0]), rot)
    assert f[0, FWD] == pytest.approx(-np.sin(np.radians(30)), abs=0.01)  # backward is negative
    assert n.min() >= int(rate_hz) - 1


def test_calibration_removes_the_mount_tilt():
    mount_up = np.array([0.9, 0.3, 0.3]) / np.linalg.norm([0.9, 0.3, 0.3])
    rot = rotation_to_up(mount_up, np.array([1.0, 0, 0]), np.array([0, 1.0, 0]))
    assert rot @ mount_up == pytest.approx([1, 0, 0], abs=1e-9)
    assert rot @ rot.T == pytest.approx(np.eye(3), abs=1e-9)


def test_streaming_and_per_window_features_agree():
    rng = np.random.default_rng(3)
    rate = 50.0
    t = np.arange(int(20 * rate)) / rate
    a = np.array([1.0, 0.1, 0.2]) + rng.normal(0, 0.05, (len(t), 3))
    rot = rotation_to_up(np.array([1.0, 0.1, 0.2]), np.array([1.0, 0, 0]), np.array([0, 1.0, 0]))
    ends_i = np.array([300, 555, 999])
    # a sample at exactly t belongs to the window ending at t (lo < t <= hi)
    f_stream, _ = step_features(t, a, t[ends_i - 1], rot)
    win = int(CONTEXT_S * rate)
    windows = np.stack([a[i - win:i] for i in ends_i])
    f_naive = window_features(windows, rot)
    assert f_stream == pytest.approx(f_naive, abs=1e-6)


def test_movement_energy_separates_gait_from_stillness():
    rate = 50.0
    t = np.arange(int(10 * rate)) / rate
    still = np.tile([1.0, 0, 0], (len(t), 1))
    walk = still + np.column_stack([0.3 * np.sin(2 * np.pi * 1.9 * t), 0.1 * np.sin(np.pi * 1.9 * t),
                                    0.1 * np.sin(2 * np.pi * 1.9 * t + 1)])
    rot = np.eye(3)
    f_still, _ = step_features(t, still, np.array([9.0]), rot)
    f_walk, _ = step_features(t, walk, np.array([9.0]), rot)
    assert f_walk[0, STD] > f_still[0, STD] + 1.0  # an order of magnitude more movement
