"""A simple tilt-and-movement classifier: enough for the pipeline to run end to end.

Upright comes from the first still seconds of the recording (the wearer stands still after
clipping the sensor on) or an explicit reference. Each step looks at the last ``window_s``:
much movement is walking, a large tilt from upright is lying, a moderate one sitting.
"""

from __future__ import annotations

import numpy as np

from ..events import Calibrated, Event
from .base import PostureEstimate


class TiltClassifier:
    """Provisional classifier over causal windows, vectorised per block."""

    def __init__(self, *, step_s: float = 1.0, window_s: float = 2.0, calibration_s: float = 5.0,
                 not_worn_s: float = 600.0, sit_angle_deg: float = 15.0, lie_angle_deg: float = 60.0,
                 walk_std_g: float = 0.12, still_std_g: float = 0.005):
        self.step_s = step_s
        self.window_s = window_s
        self.calibration_s = calibration_s
        self.not_worn_s = not_worn_s
        self.sit_cos = np.cos(np.radians(sit_angle_deg))
        self.lie_cos = np.cos(np.radians(lie_angle_deg))
        self.walk_std_g = walk_std_g
        self.still_std_g = still_std_g
        self._up: np.ndarray | None = None
        self._t = np.empty(0)
        self._a = np.empty((0, 3))
        self._next_step_t: float | None = None
        self._still_since: float | None = None
        self._cal_since: float | None = None
        self._cal_sum = np.zeros(3)
        self._cal_n = 0
        self._not_worn = False
        self._events: list[Event] = []

    def set_reference(self, upright_g: np.ndarray | None) -> None:
        self._up = None if upright_g is None else np.asarray(upright_g, float) / np.linalg.norm(upright_g)

    def pop_events(self) -> list[Event]:
        out, self._events = self._events, []
        return out

    def flush(self) -> list[PostureEstimate]:
        """Nothing is held back: every completed step is decided as it arrives."""
        return []

    def process(self, t_s: np.ndarray, accel_g: np.ndarray) -> list[PostureEstimate]:
        if len(t_s) == 0:
            return []
        t = np.concatenate([self._t, t_s])
        a = np.concatenate([self._a, accel_g])
        if self._next_step_t is None:
            self._next_step_t = float(np.floor(t[0] / self.step_s) + 1) * self.step_s
        ends = np.arange(self._next_step_t, t[-1] + 1e-9, self.step_s)
        out: list[PostureEstimate] = []
        if len(ends):
            out = self._steps(t, a, ends)
            self._next_step_t = float(ends[-1] + self.step_s)
        keep = t > (t[-1] - self.window_s - self.step_s)
        self._t, self._a = t[keep], a[keep]
        return out

    def _steps(self, t: np.ndarray, a: np.ndarray, ends: np.ndarray) -> list[PostureEstimate]:
        hi = np.searchsorted(t, ends, side="right")
        lo = np.searchsorted(t, ends - self.window_s, side="right")
        cs = np.vstack([np.zeros((1, 3)), np.cumsum(a, axis=0)])
        cs2 = np.vstack([np.zeros((1, 3)), np.cumsum(a * a, axis=0)])
        n = np.maximum(hi - lo, 1)
        mean = (cs[hi] - cs[lo]) / n[:, None]
        var = (cs2[hi] - cs2[lo]) / n[:, None] - mean ** 2
        std = np.sqrt(np.maximum(var, 0.0).sum(axis=1))  # vector std: all axes, orientation wobble included
        out = []
        for i, end in enumerate(ends.tolist()):
            if hi[i] - lo[i] < 2:
                out.append(PostureEstimate(end, "unknown", 0.5))
                continue
            out.append(self._decide(end, mean[i], float(std[i])))
        return out

    def _decide(self, t: float, g: np.ndarray, std: float) -> PostureEstimate:
        gnorm = g / max(np.linalg.norm(g), 1e-6)
        # not worn: no human micro-movement for a long time
        if std < self.still_std_g:
            if self._still_since is None:
                self._still_since = t - self.window_s
            if t - self._still_since >= self.not_worn_s:
                since = self._still_since if not self._not_worn else None
                self._not_worn = True
                return PostureEstimate(t, "not_worn", 0.9, since)
        else:
            self._still_since = None
            self._not_worn = False
        if self._up is None:
            self._calibrate_step(t, gnorm, std)
            return PostureEstimate(t, "unknown", 0.5)
        if std > self.walk_std_g:
            return PostureEstimate(t, "walking", 0.8)
        c = float(gnorm @ self._up)
        if c < self.lie_cos:
            return PostureEstimate(t, "lying", 0.8)
        if c < self.sit_cos:
            return PostureEstimate(t, "sitting", 0.7)
        return PostureEstimate(t, "standing", 0.7)

    def _calibrate_step(self, t: float, gnorm: np.ndarray, std: float) -> None:
        if std > 0.03:
            self._cal_since, self._cal_sum, self._cal_n = None, np.zeros(3), 0
            return
        if self._cal_since is None:
            self._cal_since = t
        self._cal_sum += gnorm
        self._cal_n += 1
        if t - self._cal_since >= self.calibration_s - 1e-9:
            up = self._cal_sum / np.linalg.norm(self._cal_sum)
            self._up = up
            self._events.append(Calibrated(t, "still-start", tuple(float(x) for x in up)))
