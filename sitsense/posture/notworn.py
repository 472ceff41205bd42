"""Not-worn detection: no human micro-movement for a sustained time means the sensor was taken off.

A worn sensor always moves a little: breathing and fidgeting turn the pelvis by tenths of a
degree within minutes. A sensor on a desk or in a bag keeps the same gravity vector to within
its noise. A stillness run starts when the movement energy drops below ``still_std_g`` and
restarts whenever the 4-second mean drifts more than ``drift_g`` from where the run began;
once a run has lasted ``not_worn_s`` the sensor is reported as not worn from the run's start.
After ``suspect_s`` of such stillness the posture is already withheld (reported ``unknown``), so
a sensor put down during a long sitting bout cannot trigger an alert while the proof builds up.
"""

from __future__ import annotations

import math

import numpy as np

from .features import CONTEXT_S


class NotWornDetector:
    """Tracks the current stillness run across blocks."""

    def __init__(self, *, not_worn_s: float = 600.0, suspect_s: float = 120.0, still_std_g: float = 0.02,
                 drift_g: float = 0.004):
        self.not_worn_s = not_worn_s
        self.suspect_s = min(suspect_s, not_worn_s)
        self.still_std_g = still_std_g
        self.drift_g = drift_g
        self._anchor: tuple[float, float, float] | None = None
        self._since: float = 0.0
        self.active = False

    def update(self, t_s: np.ndarray, valid: np.ndarray, std_g: np.ndarray, mean_g: np.ndarray
               ) -> tuple[np.ndarray, list[float | None], np.ndarray]:
        """Per step: not worn, the backdated start when that is first known, and suspected (still long enough to doubt)."""
        still = (valid & (np.maximum.reduce(std_g, axis=1) < self.still_std_g)).tolist()
        ts = t_s.tolist()
        means = mean_g.tolist()
        flags = np.zeros(len(ts), dtype=bool)
        suspect = np.zeros(len(ts), dtype=bool)
        since: list[float | None] = [None] * len(ts)
        for i, t in enumerate(ts):
            if not still[i]:
                self._anchor = None
                self.active = False
                continue
            m = means[i]
            a = self._anchor
            if a is None or math.dist(a, m) > self.drift_g:
                self._anchor = (m[0], m[1], m[2])
                self._since = t - CONTEXT_S
                self.active = False
                continue
            if t - self._since >= self.suspect_s:
                suspect[i] = True
            if t - self._since >= self.not_worn_s:
                flags[i] = True
                if not self.active:
                    since[i] = self._since
                    self.active = True
        return flags, since, suspect
