"""A synthetic wearer: belt-worn accelerometer traces from a documented physical model.

The model, in the body frame (x up, y left, z forward), for a sensor on the belt:
- Gravity: the accelerometer reads +1 g along "up". Each posture rotates the pelvis about the
  lateral axis (pitch): standing ~0 deg, sitting leans the pelvis back by a per-wearer angle
  (default 22 +- 6 deg, enough to be realistic and hard), lying ~90 deg with a random roll.
- The mount: the board sits on the belt with a fixed, arbitrary tilt (a random rotation of up to
  25 deg), which calibration removes; the wearer's first seconds are standing still.
- Micro-movement while worn: breathing (0.2-0.3 Hz), slow postural sway (a random walk of the
  orientation, ~0.3-1 deg), body micro-motion (4 mg rms per axis, low-passed; HAPT's worn
  2 s windows never fall below ~6 mg of vector standard deviation) and occasional fidgets when
  sitting. Nothing of that when not worn.
- Gait: vertical oscillation at the step frequency (1.7-2.1 Hz, 0.2-0.35 g), forward at the
  step frequency and lateral at half of it, with a slight forward lean.
- Transitions: a 2-3 s smooth rotation between postures with a movement burst.
- Not worn: the board lies on a table (gravity through its face), sensor noise only.
- Sensor: white noise (2 mg rms) and 16-bit quantisation at +-2 g (16384 LSB/g).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .traces import LABEL_CODE, Trace

LSB_PER_G = 16384.0


@dataclass(frozen=True)
class Wearer:
    """Per-person parameters of the model (drawn from a seed)."""

    mount: np.ndarray  # 3x3 rotation: body frame -> sensor frame
    sit_pitch_deg: float
    lie_roll_deg: float
    step_hz: float
    gait_g: float
    sway_deg: float

    @classmethod
    def draw(cls, rng: np.random.Generator) -> "Wearer":
        axis = rng.normal(size=3)
        axis /= np.linalg.norm(axis)
        return cls(mount=_rotation(axis, np.radians(rng.uniform(0, 25))),
                   sit_pitch_deg=float(np.clip(rng.normal(22, 6), 10, 40)),
                   lie_roll_deg=float(rng.uniform(-20, 20)),
                   step_hz=float(rng.uniform(1.7, 2.1)), gait_g=float(rng.uniform(0.2, 0.35)),
                   sway_deg=float(rng.uniform(0.3, 1.0)))


def _rotation(axis: np.ndarray, angle_rad: float) -> np.ndarray:
    """Rodrigues' rotation matrix."""
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle_rad) * k + (1 - np.cos(angle_rad)) * (k @ k)


def _up_in_body(pitch_rad: np.ndarray, roll_rad: np.ndarray) -> np.ndarray:
    """The 'up' direction seen from a pelvis pitched back by ``pitch`` and rolled by ``roll``."""
    cp, sp, cr, sr = np.cos(pitch_rad), np.sin(pitch_rad), np.cos(roll_rad), np.sin(roll_rad)
    return np.stack([cp * cr, sr * cp, sp], axis=-1)  # x up, y left, z forward (leaning back -> +z)


TABLE_G = np.array([0.0, 0.0, 1.0])  # board face-up on a table: gravity through its z axis


def synthesize(plan: list[tuple[str, float]], *, sample_rate_hz: float = 50.0, seed: int = 0,
               start_time: str | None = None, transition_s: float = 2.5) -> Trace:
    """A labelled trace following ``plan`` [(posture, seconds), ...] for one synthetic wearer."""
    rng = np.random.default_rng(seed)
    w = Wearer.draw(rng)
    pitch_of = {"standing": 0.0, "walking": 4.0, "sitting": w.sit_pitch_deg, "lying": 88.0}
    n_total = int(round(sum(s for _, s in plan) * sample_rate_hz))
    pitch = np.zeros(n_total)
    roll = np.zeros(n_total)
    labels = np.full(n_total, LABEL_CODE["unknown"], dtype=np.int8)
    worn = np.ones(n_total, dtype=bool)
    walking = np.zeros(n_total, dtype=bool)
    burst = np.zeros(n_total)
    i = 0
    prev = None
    for posture, seconds in plan:
        n = int(round(seconds * sample_rate_hz))
        seg = slice(i, min(i + n, n_total))
        labels[seg] = LABEL_CODE[posture]
        if posture == "not_worn":
            worn[seg] = False
        else:
            pitch[seg] = pitch_of[posture] + rng.normal(0, 1.0)
            roll[seg] = w.lie_roll_deg if posture == "lying" else rng.normal(0, 2.0)
            walking[seg] = posture == "walking"
        if prev is not None and prev != posture and "not_worn" not in (prev, posture) \
                and {prev, posture} != {"standing", "walking"}:
            k = min(int(transition_s * sample_rate_hz), n // 2)
            a, b = i, i + k
            ramp = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, k))
            p0 = pitch[a - 1]
            r0 = roll[a - 1]
            pitch[a:b] = p0 + (pitch[b] - p0) * ramp
            roll[a:b] = r0 + (roll[b] - r0) * ramp
            burst[a:b] = np.sin(np.linspace(0, np.pi, k)) * 0.25
            labels[a:b] = LABEL_CODE["transition"]
        i += n
        prev = posture
    t = np.arange(n_total) / sample_rate_hz
    # micro-movement: breathing and a slow random-walk sway of the orientation
    sway = np.cumsum(rng.normal(0, 1, (n_total, 2)), axis=0)
    sway -= _moving_mean(sway, int(20 * sample_rate_hz))
    sway *= w.sway_deg / max(float(np.std(sway)), 1e-9)
    breath = 0.4 * np.sin(2 * np.pi * rng.uniform(0.2, 0.3) * t)
    fidget = _fidgets(rng, n_total, sample_rate_hz) * (labels == LABEL_CODE["sitting"])
    up = _up_in_body(np.radians(pitch + sway[:, 0] + breath + fidget), np.radians(roll + sway[:, 1]))
    acc_body = up.copy()
    # gait
    phase = 2 * np.pi * w.step_hz * t
    acc_body[:, 0] += walking * w.gait_g * np.sin(phase)
    acc_body[:, 2] += walking * 0.12 * np.sin(phase + 0.8)
    acc_body[:, 1] += walking * 0.08 * np.sin(phase / 2)
    acc_body[:, 2] += burst * np.sin(np.linspace(0, 6 * np.pi, n_total))
    # body micro-motion (heartbeat, muscle tone): a few mg, low-passed, only while worn
    micro = _moving_mean(rng.normal(0, 1, (n_total, 3)), 5)
    acc_body += micro * (0.004 / max(float(micro.std()), 1e-9))
    acc_sensor = acc_body @ w.mount.T
    acc_sensor[~worn] = TABLE_G
    acc_sensor += rng.normal(0, 0.002, acc_sensor.shape)
    acc_sensor = np.round(acc_sensor * LSB_PER_G) / LSB_PER_G
    meta = {"sample_rate_hz": f"{sample_rate_hz:g}", "source": "sitsense synth", "seed": str(seed),
            "plan": ", ".join(f"{p} {s:g}s" for p, s in plan)}
    if start_time:
        meta["start_time"] = start_time
    return Trace(t, acc_sensor, labels, meta, "synth")


def _moving_mean(x: np.ndarray, n: int) -> np.ndarray:
    c = np.cumsum(np.vstack([np.zeros((1, x.shape[1])), x]), axis=0)
    idx = np.arange(len(x))
    lo = np.maximum(idx - n // 2, 0)
    hi = np.minimum(idx + n // 2 + 1, len(x))
    return (c[hi] - c[lo]) / (hi - lo)[:, None]


def _fidgets(rng: np.random.Generator, n: int, rate_hz: float) -> np.ndarray:
    """Occasional small shifts of the pelvis while seated (degrees)."""
    out = np.zeros(n)
    count = max(1, int(n / rate_hz / 120))  # about one every two minutes
    for start in rng.integers(0, n, count):
        k = int(rate_hz * rng.uniform(1, 3))
        seg = np.sin(np.linspace(0, np.pi, k)) * rng.uniform(2, 6)
        out[start:start + k] += seg[: max(0, min(k, n - start))]
    return out
