"""The upright reference from ``sitsense calibrate``: measured from still standing, kept as JSON.

With ``--sit`` the wearer then sits still too, and the sitting direction is kept beside it
(``sitting_g``): the classifier starts the day knowing this wearer's own sitting, which matters
for people whose pelvis barely tilts in a chair. The file is ``calibration.json`` in the state
folder (``sitsense.paths``).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from ..errors import CalibrationError
from ..paths import calibration_path

MAX_STD_G = 0.03  # per-axis spread allowed while "standing still" (breathing and sway stay below)
SIT_DOWN_S = 6.0  # after the 'sit' cue: time to sit down and settle before the sitting is measured
ALIKE_DEG = 3.0  # sitting this close to standing cannot be told from the mount by its tilt
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
    sitting_g: tuple[float, ...] | None = None  # (x, y, z) mean gravity while sitting still (calibrate --sit)

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
    fields = asdict(ref)
    if fields["sitting_g"] is None:  # files without --sit look as they always did
        del fields["sitting_g"]
    tmp.write_text(json.dumps({"version": 1, **fields}, indent=2) + "\n", encoding="utf-8")
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
        sit = data.get("sitting_g")
        if sit is not None:
            sit = tuple(float(x) for x in sit)
            assert len(sit) == 3 and all(np.isfinite(sit)) and np.linalg.norm(sit) > 0.5
        return Reference(vec, float(data["magnitude_g"]), float(data["std_g"]), int(data["samples"]),
                         float(data["duration_s"]), str(data.get("time", "")), str(data.get("sensor", "")), sit)
    except (KeyError, TypeError, ValueError, AssertionError):
        raise CalibrationError(f"{p}: not a valid calibration file; run 'sitsense calibrate' again") from None


def calibrate(source, duration_s: float, *, settle_s: float = 1.0, cue=None, sit: bool = False,
              sit_down_s: float = SIT_DOWN_S) -> Reference:
    """The clip-on ritual: cue 'start', skip ``settle_s``, measure ``duration_s`` of stillness, cue 'done'.

    With ``sit``: after the standing, cue 'sit', give the wearer ``sit_down_s`` to sit down, and
    measure ``duration_s`` of still sitting too. ``source`` is an opened LiveSource (or anything
    with ``blocks()``, ``clock`` and ``close()``); ``cue(name)`` is called with 'start', 'sit',
    'done' or 'failed' (the buzzer hooks in here).
    """
    cue = cue or (lambda name: None)
    cue("start")
    spans = [(settle_s, duration_s)] + ([(settle_s + duration_s + sit_down_s, duration_s)] if sit else [])
    chunks: list[list[np.ndarray]] = [[] for _ in spans]
    t0 = None
    phase = 0
    try:
        for t_s, accel_g in source.blocks():
            if not len(t_s):
                continue
            if t0 is None:
                t0 = float(t_s[0])
            for k, (lo, length) in enumerate(spans):
                keep = (t_s >= t0 + lo) & (t_s < t0 + lo + length)
                chunks[k].append(accel_g[keep])
            if phase == 0 and sit and t_s[-1] >= t0 + spans[0][0] + duration_s:
                phase = 1
                cue("sit")
            if t_s[-1] >= t0 + spans[-1][0] + duration_s:
                break
    finally:
        source.close()
    wall = source.clock.wall().isoformat(timespec="seconds")
    chip = getattr(source, "chip", None)
    refs = []
    for k, parts in enumerate(chunks):
        data = np.concatenate(parts) if parts else np.empty((0, 3))
        rate = getattr(source, "sample_rate_hz", 0) or 0
        if rate and len(data) < 0.8 * duration_s * rate:
            cue("failed")
            raise CalibrationError(f"only {len(data)} samples in {duration_s:g} s arrived (expected about "
                                   f"{duration_s * rate:.0f}); check the sensor with 'sitsense doctor'")
        try:
            refs.append(measure_reference(data, duration_s, time=wall, sensor=chip.name if chip else ""))
        except CalibrationError as exc:
            cue("failed")
            if k == 1:
                raise CalibrationError(str(exc).replace("stand still, upright,", "sit still,")
                                       .replace("'sitsense calibrate'", "'sitsense calibrate --sit'")) from None
            raise
    cue("done")
    if sit:
        return replace(refs[0], sitting_g=refs[1].upright_g)
    return refs[0]


def sitting_tilt_deg(ref: Reference) -> float | None:
    """Degrees between the stored sitting and standing directions (None without ``--sit``)."""
    if ref.sitting_g is None:
        return None
    s = np.asarray(ref.sitting_g, float)
    c = float(ref.unit @ (s / np.linalg.norm(s)))
    return float(np.degrees(np.arccos(max(-1.0, min(1.0, c)))))
