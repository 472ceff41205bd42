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
- Transitions: a 2-3 s smooth rotation between postures with a movement burst, and the hip's
  vertical acceleration: getting up pushes it up first and then brakes (one period of a sine
  along gravity, 0.15 g per step of height from lying to sitting to standing), sitting or lying
  down lowers it first; HAPT's real transitions reach |a| ranges of 0.1-0.6 g the same way.
- Not worn: the board lies on a table (gravity through its face), sensor noise only.
- Sensor: white noise (2 mg rms) and 16-bit quantisation at +-2 g (16384 LSB/g).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterator

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
CHUNK_SAMPLES = 1 << 15  # samples made at once (11 min at 50 Hz): memory does not grow with the plan
_STATS_BLOCK = 1 << 16  # fixed, so the normalising statistics do not depend on the chunk size
SWAY_WINDOW_S = 20.0  # the slow sway is a random walk less its centred 20 s moving mean
MICRO_WINDOW = 5  # samples of the low-pass on the body micro-motion


def synthesize(plan: list[tuple[str, float]], *, sample_rate_hz: float = 50.0, seed: int = 0,
               start_time: str | None = None, transition_s: float = 2.5, sit_pitch_deg: float | None = None) -> Trace:
    """A labelled trace following ``plan`` [(posture, seconds), ...] for one synthetic wearer, in memory.

    For long plans use ``synth_chunks``, which yields the very same samples piece by piece.
    """
    parts = list(synth_chunks(plan, sample_rate_hz=sample_rate_hz, seed=seed, transition_s=transition_s,
                              sit_pitch_deg=sit_pitch_deg))
    meta = synth_metadata(plan, sample_rate_hz=sample_rate_hz, seed=seed, start_time=start_time)
    if not parts:
        return Trace(np.zeros(0), np.zeros((0, 3)), np.zeros(0, dtype=np.int8), meta, "synth")
    return Trace(np.concatenate([p.t_s for p in parts]), np.concatenate([p.accel_g for p in parts]),
                 np.concatenate([p.labels for p in parts]), meta, "synth")


def synth_metadata(plan: list[tuple[str, float]], *, sample_rate_hz: float, seed: int,
                   start_time: str | None = None) -> dict[str, str]:
    meta = {"sample_rate_hz": f"{sample_rate_hz:g}", "source": "sitsense synth", "seed": str(seed),
            "plan": plan_text(plan)}
    if start_time:
        meta["start_time"] = start_time
    return meta


PLAN_TEXT_MAX = 1 << 16  # characters of the plan kept in the metadata (a trace line may hold 1 MiB)


def plan_text(plan: list[tuple[str, float]]) -> str:
    """The plan for a trace's metadata; a very long plan is cut short, saying how many items it had."""
    text = ", ".join(f"{p} {s:g}s" for p, s in plan)
    if len(text) <= PLAN_TEXT_MAX:
        return text
    return text[:PLAN_TEXT_MAX].rsplit(", ", 1)[0] + f", ... ({len(plan)} items)"


def synth_chunks(plan: list[tuple[str, float]], *, sample_rate_hz: float = 50.0, seed: int = 0,
                 transition_s: float = 2.5, chunk_samples: int = CHUNK_SAMPLES,
                 sit_pitch_deg: float | None = None) -> Iterator[Trace]:
    """The trace of ``plan`` as pieces of ``chunk_samples``: the same samples whatever the piece size.

    Everything the model draws comes from one seeded generator in a fixed order; the two terms
    normalised by their spread over the whole trace (sway, micro-motion) get it from a first pass
    over their own random numbers, at a fixed block size, so no piece depends on how they are cut.
    """
    rate = sample_rate_hz
    rng = np.random.default_rng(seed)
    wearer = Wearer.draw(rng)
    if sit_pitch_deg is not None:  # a wearer who sits this far from their standing (a shallow sitter, say)
        wearer = replace(wearer, sit_pitch_deg=float(sit_pitch_deg))
    script = _Script(plan, wearer, rng, rate, transition_s)
    n = script.n_total
    sway_half = int(SWAY_WINDOW_S * rate) // 2
    sway_rng = _copy(rng)
    sway_scale = wearer.sway_deg / max(_spread(_sway_blocks(rng, n, sway_half, _STATS_BLOCK)), 1e-9)
    breath_hz = rng.uniform(0.2, 0.3)
    fidgets = _Fidgets(rng, n, rate)
    micro_rng = _copy(rng)
    micro_scale = 0.004 / max(_spread(_micro_blocks(rng, n, _STATS_BLOCK)), 1e-9)
    noise_rng = rng
    sway = _Rows(_sway_blocks(sway_rng, n, sway_half, chunk_samples))
    micro = _Rows(_micro_blocks(micro_rng, n, chunk_samples))
    burst_step = 6 * np.pi / (n - 1) if n > 1 else 0.0
    for lo in range(0, n, chunk_samples):
        hi = min(lo + chunk_samples, n)
        k = hi - lo
        t = np.arange(lo, hi) / rate
        pitch, roll, labels, worn, walking, burst, heave = script.fill(lo, hi)
        sway_deg = sway.take(k)
        sway_deg *= sway_scale
        breath = 0.4 * np.sin(2 * np.pi * breath_hz * t)
        fidget = fidgets.fill(lo, hi) * (labels == LABEL_CODE["sitting"])
        up = _up_in_body(np.radians(pitch + sway_deg[:, 0] + breath + fidget), np.radians(roll + sway_deg[:, 1]))
        acc_body = up * (1.0 + heave)[:, None]  # the hip's vertical acceleration in a transition
        # gait
        phase = 2 * np.pi * wearer.step_hz * t
        acc_body[:, 0] += walking * wearer.gait_g * np.sin(phase)
        acc_body[:, 2] += walking * 0.12 * np.sin(phase + 0.8)
        acc_body[:, 1] += walking * 0.08 * np.sin(phase / 2)
        acc_body[:, 2] += burst * np.sin(_linspace_part(6 * np.pi, burst_step, n, lo, hi))
        # body micro-motion (heartbeat, muscle tone): a few mg, low-passed, only while worn
        acc_body += micro.take(k) * micro_scale
        acc_sensor = _rotate(acc_body, wearer.mount)
        acc_sensor[~worn] = TABLE_G
        acc_sensor += noise_rng.normal(0, 0.002, acc_sensor.shape)
        acc_sensor = np.round(acc_sensor * LSB_PER_G) / LSB_PER_G
        yield Trace(t, acc_sensor, labels, {}, "synth")


HIP_HEIGHT = {"lying": 0, "sitting": 1, "standing": 2, "walking": 2}
HEAVE_G = 0.15  # peak vertical acceleration of the hip per step of height in a transition


class _Script:
    """The plan as samples: posture label, pelvis pitch and roll, worn, walking, transition burst."""

    def __init__(self, plan: list[tuple[str, float]], w: Wearer, rng: np.random.Generator, rate: float,
                 transition_s: float):
        pitch_of = {"standing": 0.0, "walking": 4.0, "sitting": w.sit_pitch_deg, "lying": 88.0}
        self.n_total = int(round(sum(s for _, s in plan) * rate))
        self.items = []  # (start, stop, label code, worn, walking, pitch, roll)
        self.ramps = []  # (start, samples, pitch from, pitch to, roll from, roll to, heave g)
        i = 0
        prev = None
        for posture, seconds in plan:
            n = int(round(seconds * rate))
            a, b = i, min(i + n, self.n_total)
            worn = posture != "not_worn"
            pitch = roll = 0.0
            if worn:
                pitch = pitch_of[posture] + rng.normal(0, 1.0)
                roll = w.lie_roll_deg if posture == "lying" else rng.normal(0, 2.0)
            if b > a:
                self.items.append((a, b, LABEL_CODE[posture], worn, posture == "walking", pitch, roll))
            if prev is not None and prev != posture and "not_worn" not in (prev, posture) \
                    and {prev, posture} != {"standing", "walking"} and b > a:
                k = min(int(transition_s * rate), n // 2, b - a)
                before = self.items[-2] if len(self.items) > 1 else None
                if k > 0 and before is not None and before[1] == a:
                    heave = HEAVE_G * (HIP_HEIGHT[posture] - HIP_HEIGHT[prev])
                    self.ramps.append((a, k, before[5], pitch, before[6], roll, heave))
            i += n
            prev = posture
        self.starts = np.array([item[0] for item in self.items], dtype=np.int64)

    def fill(self, lo: int, hi: int):
        k = hi - lo
        pitch, roll, burst, heave = np.zeros(k), np.zeros(k), np.zeros(k), np.zeros(k)
        labels = np.full(k, LABEL_CODE["unknown"], dtype=np.int8)
        worn = np.ones(k, dtype=bool)
        walking = np.zeros(k, dtype=bool)
        first = max(int(np.searchsorted(self.starts, lo, side="right")) - 1, 0)
        for a, b, code, on, walks, p, r in self.items[first:]:
            if a >= hi:
                break
            seg = slice(max(a, lo) - lo, min(b, hi) - lo)
            labels[seg] = code
            worn[seg] = on
            walking[seg] = walks
            pitch[seg] = p
            roll[seg] = r
        for a, n, p0, p1, r0, r1, h in self.ramps:  # few: one per change of posture
            if a >= hi or a + n <= lo:
                continue
            ramp = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, n))
            part = slice(max(a, lo) - a, min(a + n, hi) - a)
            seg = slice(max(a, lo) - lo, min(a + n, hi) - lo)
            pitch[seg] = p0 + (p1 - p0) * ramp[part]
            roll[seg] = r0 + (r1 - r0) * ramp[part]
            burst[seg] = (np.sin(np.linspace(0, np.pi, n)) * 0.25)[part]
            heave[seg] = (np.sin(np.linspace(0, 2 * np.pi, n)) * h)[part]
            labels[seg] = LABEL_CODE["transition"]
        return pitch, roll, labels, worn, walking, burst, heave


class _Fidgets:
    """Occasional small shifts of the pelvis while seated (degrees): about one every two minutes."""

    def __init__(self, rng: np.random.Generator, n: int, rate_hz: float):
        count = max(1, int(n / rate_hz / 120))
        self.events = []  # (start, samples, amplitude), in the order they were drawn
        for start in rng.integers(0, n, count):
            k = int(rate_hz * rng.uniform(1, 3))
            self.events.append((int(start), k, rng.uniform(2, 6)))
        self.n = n
        self.order = sorted(range(len(self.events)), key=lambda j: self.events[j][0])
        self.sorted_starts = np.array([self.events[j][0] for j in self.order], dtype=np.int64)
        self.longest = max(k for _, k, _ in self.events)

    def fill(self, lo: int, hi: int) -> np.ndarray:
        out = np.zeros(hi - lo)
        a = int(np.searchsorted(self.sorted_starts, lo - self.longest, side="left"))
        b = int(np.searchsorted(self.sorted_starts, hi, side="left"))
        for j in sorted(self.order[a:b]):  # added in the order drawn, as overlapping shifts add up
            start, k, amplitude = self.events[j]
            stop = min(start + k, self.n, hi)
            if stop <= lo:
                continue
            seg = np.sin(np.linspace(0, np.pi, k)) * amplitude
            first = max(start, lo)
            out[first - lo:stop - lo] += seg[first - start:stop - start]
        return out


def _rotate(body: np.ndarray, mount: np.ndarray) -> np.ndarray:
    """``body @ mount.T`` row by row, written out so no BLAS kernel makes a row depend on its neighbours."""
    out = np.empty_like(body)
    for i in range(3):
        out[:, i] = body[:, 0] * mount[i, 0] + body[:, 1] * mount[i, 1] + body[:, 2] * mount[i, 2]
    return out


def _linspace_part(stop: float, step: float, num: int, lo: int, hi: int) -> np.ndarray:
    """``np.linspace(0, stop, num)[lo:hi]``, computed the way numpy computes it."""
    y = np.arange(lo, hi, dtype=np.float64)
    y *= step
    y += 0.0
    if hi == num and num > 1:
        y[-1] = stop
    return y


def _copy(rng: np.random.Generator) -> np.random.Generator:
    """A generator that will draw what ``rng`` would draw next."""
    twin = np.random.Generator(type(rng.bit_generator)())
    twin.bit_generator.state = rng.bit_generator.state
    return twin


class _Rows:
    """Exactly ``k`` rows at a time from an iterator of blocks of rows."""

    def __init__(self, blocks: Iterator[np.ndarray]):
        self.blocks = blocks
        self.left: np.ndarray | None = None

    def take(self, k: int) -> np.ndarray:
        parts = []
        while k > 0:
            if self.left is None or len(self.left) == 0:
                self.left = next(self.blocks)
            parts.append(self.left[:k])
            k -= len(parts[-1])
            self.left = self.left[len(parts[-1]):]
        return parts[0].copy() if len(parts) == 1 else np.concatenate(parts)


class _CentredMean:
    """The mean of rows ``i - h .. i + h`` (cut short at the ends) for rows arriving block by block,
    by the same operations as on the whole array (a running sum, differences of it), so blocks
    change nothing. Rows come out ``h`` rows late."""

    def __init__(self, half: int, total: int, columns: int):
        self.half = half
        self.total = total
        self.sums = np.zeros((1, columns))  # running sums c[base:], c[i] = sum of rows before i
        self.base = 0
        self.made = 0
        self.ready = 0

    def push(self, rows: np.ndarray) -> np.ndarray:
        rows = rows.copy()
        rows[0] += self.sums[-1]
        self.sums = np.concatenate([self.sums, np.cumsum(rows, axis=0)])
        self.made += len(rows)
        upto = self.total if self.made == self.total else max(self.made - self.half, self.ready)
        idx = np.arange(self.ready, upto)
        lo = np.maximum(idx - self.half, 0)
        hi = np.minimum(idx + self.half + 1, self.total)
        mean = (self.sums[hi - self.base] - self.sums[lo - self.base]) / (hi - lo)[:, None]
        self.ready = upto
        keep = max(upto - self.half, 0)
        self.sums = self.sums[keep - self.base:]
        self.base = keep
        return mean


def _sway_blocks(rng: np.random.Generator, n: int, half: int, block: int) -> Iterator[np.ndarray]:
    """The sway before scaling: a 2-d random walk less its centred moving mean."""
    window = _CentredMean(half, n, 2)
    carry = np.zeros(2)
    waiting = np.zeros((0, 2))
    for lo in range(0, n, block):
        steps = rng.normal(0, 1, (min(block, n - lo), 2))
        steps[0] += carry
        walk = np.cumsum(steps, axis=0)
        carry = walk[-1]
        mean = window.push(walk)
        waiting = np.concatenate([waiting, walk])
        if len(mean):
            yield waiting[:len(mean)] - mean
            waiting = waiting[len(mean):]


def _micro_blocks(rng: np.random.Generator, n: int, block: int) -> Iterator[np.ndarray]:
    """Body micro-motion before scaling: white noise through a short moving mean."""
    window = _CentredMean(MICRO_WINDOW // 2, n, 3)
    for lo in range(0, n, block):
        mean = window.push(rng.normal(0, 1, (min(block, n - lo), 3)))
        if len(mean):
            yield mean


def _spread(blocks: Iterator[np.ndarray]) -> float:
    """The standard deviation of all values of all blocks (as ``np.std`` of them all), merged block by block."""
    count, mean, m2 = 0, 0.0, 0.0
    for block in blocks:
        k = block.size
        if k == 0:
            continue
        block_mean = float(block.mean())
        block_m2 = float(((block - block_mean) ** 2).sum())
        delta = block_mean - mean
        total = count + k
        mean += delta * k / total
        m2 += block_m2 + delta * delta * count * k / total
        count = total
    return float(np.sqrt(m2 / count)) if count else 0.0
