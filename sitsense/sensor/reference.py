"""The upright reference from ``sitsense calibrate``: measured from still standing, kept as JSON.

The file is ``calibration.json`` in the state folder (``sitsense.paths``).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..errors import CalibrationError
from ..paths import calibration_path

MAX_STD_G = 0.03  # per-axis spread allowed while "standing still" (breathing and sway stay below)
GRAVITY_TOLERANCE_G = 0.15  # |mean| must be 1 g within this, or the sensor is not at rest


@dataclass(frozen=True)
class Reference:
    """Mean gravity while standing still, in the sensor frame (g), and how it was measured."""

    upright_g: tuple[float, ...]  # (x, y, z) in g
    magnitude_g: float
    std_g: float
    samples: int
    duration_s: float
    time: str = ""  # ISO 8601 wall time of the measurement
    sensor: str = ""

    @property
    def unit(self) -> np.ndarray:
        """The upright direction as a unit vector."""
        v = np.asarray(self.upright_g, dtype=float)
        return v / np.linalg.norm(v)


def measure_reference(accel_g: np.ndarray, duration_s: float, *, time: str = "", sensor: str = "") -> Reference:
    """The mean gravity direction of a still stretch of samples; CalibrationError if it was not still."""
    accel_g = np.asarray(accel_g, dtype=float).reshape(-1, 3)
    if len(accel_g) < 10:
        raise CalibrationError(f"only {len(accel_g)} samples arrived; check the sensor with 'sitsense doctor'")
    mean = accel_g.mean(axis=0)
    std = float(accel_g.std(axis=0).max())
    mag = float(np.linalg.norm(mean))
    if std > MAX_STD_G:
        raise CalibrationError(f"too much movement (spread {std:.3f} g, allowed {MAX_STD_G} g): stand still, "
                               "upright, arms relaxed, and run 'sitsense calibrate' again")
    if abs(mag - 1.0) > GRAVITY_TOLERANCE_G:
        raise CalibrationError(f"the sensor measured {mag:.2f} g instead of about 1 g; it is not at rest or "
                               "is faulty (run 'sitsense doctor')")
    return Reference(tuple(float(x) for x in mean), mag, std, len(accel_g), float(duration_s), time, sensor)


def save_reference(ref: Reference, path: str | os.PathLike | None = None) -> Path:
    """Write the reference atomically; creates the state directory if needed."""
    p = Path(path) if path else calibration_path()
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".part")
    tmp.write_text(json.dumps({"version": 1, **asdict(ref)}, indent=2) + "\n", encoding="utf-8")
    tmp.replace(p)
    return p


def load_reference(path: str | os.PathLike | None = None) -> Reference | None:
    """The stored reference, or None if there is none; CalibrationError if the file is damaged."""
    p = Path(path) if path else calibration_path()
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise CalibrationError(f"{p}: cannot read the calibration ({exc}); run 'sitsense calibrate' again") from None
    try:
        vec = tuple(float(x) for x in data["upright_g"])
        assert len(vec) == 3 and all(np.isfinite(vec)) and np.linalg.norm(vec) > 0.5
        return Reference(vec, float(data["magnitude_g"]), float(data["std_g"]), int(data["samples"]),
                         float(data["duration_s"]), str(data.get("time", "")), str(data.get("sensor", "")))
    except (KeyError, TypeError, ValueError, AssertionError):
        raise CalibrationError(f"{p}: not a valid calibration file; run 'sitsense calibrate' again") from None


def calibrate(source, duration_s: float, *, settle_s: float = 1.0, cue=None) -> Reference:
    """The clip-on ritual: cue 'start', skip ``settle_s``, measure ``duration_s`` of stillness, cue 'done'.

    ``source`` is an opened LiveSource (or anything with ``blocks()``, ``clock`` and ``close()``);
    ``cue(name)`` is called with 'start', 'done' or 'failed' (the buzzer hooks in here).
    """
    cue = cue or (lambda name: None)
    cue("start")
    chunks = []
    start_s = None
    end_s = None
    try:
        for t_s, accel_g in source.blocks():
            if not len(t_s):
                continue
            if start_s is None:
                start_s = float(t_s[0]) + settle_s
                end_s = start_s + duration_s
            keep = (t_s >= start_s) & (t_s < end_s)
            chunks.append(accel_g[keep])
            if t_s[-1] >= end_s:
                break
    finally:
        source.close()
    data = np.concatenate(chunks) if chunks else np.empty((0, 3))
    rate = getattr(source, "sample_rate_hz", 0) or 0
    if rate and len(data) < 0.8 * duration_s * rate:
        cue("failed")
        raise CalibrationError(f"only {len(data)} samples in {duration_s:g} s arrived (expected about "
                               f"{duration_s * rate:.0f}); check the sensor with 'sitsense doctor'")
    wall = source.clock.wall().isoformat(timespec="seconds")
    chip = getattr(source, "chip", None)
    try:
        ref = measure_reference(data, duration_s, time=wall, sensor=chip.name if chip else "")
    except CalibrationError:
        cue("failed")
        raise
    cue("done")
    return ref
