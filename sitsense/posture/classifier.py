"""The streaming posture classifier the service runs: features, reference, model, smoother, not-worn.

Each ``process`` call appends a block of samples and decides every step completed so far (all
steps at once in a few array operations, then a short loop for the filter), keeping only the
last few seconds of samples. Deciding costs about the same for one step as for sixty, so with
``decide_every_s`` the classifier waits until that much new data has arrived: on a Pi reading
its FIFO every second this cuts the CPU several-fold, and the estimates, stamped with their own
step times, arrive at most that much later. The one moment where lateness shows is getting up
(a guided hold starts on it, a break is proven by it): while the last posture decided is
sedentary (or unknown), a block with movement in it is decided at once, and so is every block up
to ``PROMPT_AFTER_MOVE_S`` after the movement stops. ``flush()`` decides whatever is pending.
Results do not depend on how the samples are split into blocks or when they are decided.
"""

from __future__ import annotations

import math

import numpy as np

from ..events import Event
from .base import PostureEstimate
from .calibration import UprightReference, steady_mask
from .features import BLOCK_S, CONTEXT_S, block_edges, features_from_moments, rotation_to_up, span_moments
from .model import PostureModel
from .notworn import NotWornDetector
from .smoothing import OUTPUT_POSTURES, ForwardFilter

_POSTURE_ARRAY = np.array(OUTPUT_POSTURES, dtype=object)
PROMPT_AFTER_MOVE_S = 6.0  # keep deciding at once this long after a movement out of a sedentary posture
_PROMPT_POSTURES = frozenset({"sitting", "lying", "unknown", "not_worn"})


class StreamingClassifier:
    """Posture every ``step_s`` from a belt-worn accelerometer; see the module docstring."""

    def __init__(self, model: PostureModel | None = None, *, step_s: float = 1.0, sample_rate_hz: float = 50.0,
                 calibration_s: float = 5.0, not_worn_s: float = 600.0, emission_power: float = 0.5,
                 leak_per_s: float = 2e-5, still_transition_factor: float = 1e-3, moving_std_g: float = 0.06,
                 min_coverage: float = 0.5, decide_every_s: float = 0.0):
        self.model = model if model is not None else PostureModel.load()
        self.step_s = float(step_s)
        self.sample_rate_hz = float(sample_rate_hz)
        self.min_block_samples = max(2, int(min_coverage * sample_rate_hz * BLOCK_S))
        self.reference = UprightReference(step_s=step_s, calibration_s=calibration_s)
        self.filter = ForwardFilter(step_s, self.model.prior, emission_power=emission_power, leak_per_s=leak_per_s,
                                    still_transition_factor=still_transition_factor)
        self.moving_std_g = moving_std_g
        self.not_worn = NotWornDetector(not_worn_s=not_worn_s)
        self._rotation: np.ndarray | None = None
        self.decide_every_s = float(decide_every_s)
        self._t = np.empty(0)
        self._a = np.empty((0, 3))
        self._pending_t: list[np.ndarray] = []
        self._pending_a: list[np.ndarray] = []
        self._next_end: float | None = None
        self._last_t = 0.0
        self._last_posture = "unknown"
        self._prompt_until = -math.inf

    # ------------------------------------------------------------------ contract

    def set_reference(self, upright_g: np.ndarray | None) -> None:
        """Use an explicit upright reference (mean acceleration while standing still), or forget it."""
        self.reference.set_explicit(upright_g, self._last_t)
        self._rotation = self._frame()

    def pop_events(self) -> list[Event]:
        out, self.reference.events = self.reference.events, []
        return out

    def process(self, t_s: np.ndarray, accel_g: np.ndarray) -> list[PostureEstimate]:
        if len(t_s) == 0:
            return []
        self._pending_t.append(np.asarray(t_s, float))
        self._pending_a.append(np.asarray(accel_g, float))
        self._last_t = float(t_s[-1])
        if self._last_posture in _PROMPT_POSTURES and len(t_s) > 1:
            a = self._pending_a[-1]
            # a range of 2 std is the least any signal with that std can have: a cheap, safe test
            if float((a.max(axis=0) - a.min(axis=0)).max()) >= 2 * self.moving_std_g:
                self._prompt_until = self._last_t + PROMPT_AFTER_MOVE_S
        due = self._next_end is None or self._last_t >= self._next_end + self.decide_every_s - self.step_s
        if not due and self._last_t > self._prompt_until:
            return []
        return self.flush()

    def flush(self) -> list[PostureEstimate]:
        """Decide every completed step still waiting (``decide_every_s``); call at the end of a stream."""
        if not self._pending_t:
            return []
        t = np.concatenate([self._t] + self._pending_t)
        a = np.concatenate([self._a] + self._pending_a)
        self._pending_t, self._pending_a = [], []
        if self._next_end is None:
            self._next_end = (math.floor(float(t[0]) / self.step_s + 1e-9) + 1) * self.step_s
        n_steps = int(math.floor((float(t[-1]) - self._next_end) / self.step_s + 1e-9)) + 1
        out: list[PostureEstimate] = []
        if n_steps > 0:
            ends = self._next_end + self.step_s * np.arange(n_steps)
            out = self._decide(t, a, ends)
            self._next_end = float(ends[-1] + self.step_s)
            self._last_posture = out[-1].posture
        keep = int(np.searchsorted(t, self._next_end - self.step_s - CONTEXT_S - BLOCK_S, side="left"))
        self._t, self._a = t[keep:], a[keep:]
        return out

    # ------------------------------------------------------------------ internals

    def _frame(self, up: np.ndarray | None = None, heading: np.ndarray | None = None) -> np.ndarray | None:
        if up is None:
            up, heading = self.reference.up, self.reference.heading
        if up is None:
            return None
        if heading is None:
            return rotation_to_up(up, self.model.up_axis, self.model.forward_axis)
        return rotation_to_up(up, up, heading)

    def _decide(self, t: np.ndarray, a: np.ndarray, ends: np.ndarray) -> list[PostureEstimate]:
        lo, hi = block_edges(ends)
        n, mean, cov = span_moments(t, a, lo, hi)
        valid = n.min(axis=1) >= self.min_block_samples
        mag = np.linalg.norm(mean, axis=-1)
        unit = mean / np.maximum(mag, 1e-6)[..., None]
        std = np.sqrt(np.maximum(np.trace(cov, axis1=-2, axis2=-1), 0.0))
        turn = np.degrees(np.arccos(np.clip(np.sum(unit[:, :-1] * unit[:, 1:], axis=-1), -1.0, 1.0)))
        ref = self.reference
        gait = ref.gait_mask(std, turn)
        still = ref.still_mask(std, turn)
        rotations = [self._rotation]
        changes = []
        for i, up, heading in ref.update(ends, unit[:, 0], gait, still, valid, steady_mask(std, turn)):
            changes.append(i)
            rotations.append(self._frame(up, heading))

        m = len(ends)
        log_p = np.zeros((m, len(self.model.prior)))
        calibrated = np.zeros(m, dtype=bool)
        bounds = [0] + [i + 1 for i in changes] + [m]
        for (i0, i1), rot in zip(zip(bounds[:-1], bounds[1:]), rotations):
            if rot is None or i1 <= i0:
                continue
            feats = features_from_moments(mean[i0:i1], cov[i0:i1], rot)
            log_p[i0:i1] = self.model.log_proba(feats)
            calibrated[i0:i1] = True
        self._rotation = rotations[-1]

        use = valid & calibrated
        moving = std.max(axis=1) >= self.moving_std_g  # energy, not turning: a slow drift is no transition
        probs = self.filter.run(log_p, use, moving)
        nw, since, suspect = self.not_worn.update(ends, valid, std, mean.mean(axis=1))
        best = probs.argmax(axis=1)
        p_best = probs[np.arange(m), best]
        names = _POSTURE_ARRAY[best]
        out: list[PostureEstimate] = []
        ends_l = ends.tolist()
        for i in range(m):
            if nw[i]:
                out.append(PostureEstimate(ends_l[i], "not_worn", 0.95, since[i]))
            elif not use[i] or suspect[i]:
                out.append(PostureEstimate(ends_l[i], "unknown", 0.5))
            else:
                out.append(PostureEstimate(ends_l[i], names[i], float(p_best[i])))
        return out
