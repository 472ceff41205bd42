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

from ..events import Event, PostureNotice
from .base import PostureEstimate
from .calibration import UprightReference, steady_mask
from .features import BLOCK_S, CONTEXT_S, block_edges, features_from_moments, rotation_to_up, span_moments
from .model import PostureModel
from .movement import movement_after_calm
from .gate import MovementGate
from .notworn import NotWornDetector
from .smoothing import OUTPUT_POSTURES, WALK_DOOR_PER_S, ForwardFilter
from .wearer import WearerModel

PROMPT_AFTER_MOVE_S = 6.0  # keep deciding at once this long after a movement out of a sedentary posture
_PROMPT_POSTURES = frozenset({"sitting", "lying", "unknown", "not_worn"})
# Without an upright reference nothing tells sitting from standing; a wearer still for this long
# (no step, no stand-up) is counted as sitting: standing that still for a quarter of an hour is rare.
ASSUME_SITTING_S = 900.0
TAUGHT_WEIGHT = 5.0
UNSEEN_SIT_P = 0.8  # a sit-down whose posture alone the model calls standing at least this surely ...
UNSEEN_SITS = 3  # ... this often (and at least half the time): sitting and standing look alike
# Standing this long without a step is rare; a sit-down the filter missed looks exactly like it (the
# wearer is counted as standing until they next walk), so it is said rather than left silent.
STILL_STANDING_NOTICE_S = 1200.0
ALIKE_NOTICE = ("sitting and standing look alike from where the sensor is clipped ({why}): sitsense counts them by "
                "how you sit down and stand up; for a surer count run 'sitsense calibrate --sit' and clip the "
                "sensor where the belt follows the pelvis (hardware.md)")
UNCALIBRATED_NOTICE = ("no upright reference yet: postures are 'unknown' until you run 'sitsense calibrate' "
                       "(standing still) or walk a few steps; {minutes:g} minutes of stillness count as sitting")


class StreamingClassifier:
    """Posture every ``step_s`` from a belt-worn accelerometer; see the module docstring."""

    def __init__(self, model: PostureModel | None = None, *, step_s: float = 1.0, sample_rate_hz: float = 50.0,
                 calibration_s: float = 5.0, not_worn_s: float = 600.0, emission_power: float = 0.5,
                 leak_per_s: float = 2e-5, still_transition_factor: float = 1e-3, moving_std_g: float = 0.06,
                 min_coverage: float = 0.5, decide_every_s: float = 0.0, sequence: bool = True,
                 gate: MovementGate | None = None, prob_floor: float = 0.02, learn: bool = True,
                 assume_sitting_s: float = ASSUME_SITTING_S):
        self.model = model if model is not None else PostureModel.load()
        self.step_s = float(step_s)
        self.sample_rate_hz = float(sample_rate_hz)
        self.min_block_samples = max(2, int(min_coverage * sample_rate_hz * BLOCK_S))
        self.reference = UprightReference(step_s=step_s, calibration_s=calibration_s)
        self.sequence = sequence
        if sequence:
            self.filter = ForwardFilter(step_s, self.model.prior, emission_power=emission_power, leak_per_s=leak_per_s,
                                        prob_floor=prob_floor, group=True, extra_rates=WALK_DOOR_PER_S)
        else:  # the plain HMM of earlier versions: any movement opens every door, small leaks everywhere
            self.filter = ForwardFilter(step_s, self.model.prior, emission_power=emission_power, leak_per_s=leak_per_s,
                                        still_transition_factor=still_transition_factor, leaks=None)
        self.gate = gate or MovementGate(gait_std_g=moving_std_g)
        self.wearer = WearerModel() if learn else None
        self.assume_sitting_s = assume_sitting_s
        self._still_run_s = 0.0  # stillness without an upright reference (a long one is taken as sitting)
        self._noticed = False
        self._alike_noticed = False
        self._still_standing_s = 0.0  # counted as standing and quiet since
        self._sits = 0  # confident sit-downs seen, and those the model alone would call standing
        self._unseen_sits = 0
        self._notices: list[Event] = []
        self._episode = _EpisodeWatch((0.0, False), np.zeros(0), np.zeros(0, dtype=bool))
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
        if upright_g is not None and self.wearer is not None:
            self.wearer.add("standing", np.asarray(upright_g, float))

    def teach(self, posture: str, gravity_g: np.ndarray) -> None:
        """A measured still posture of this wearer counts like several learned ones."""
        if self.wearer is not None:
            self.wearer.add(posture, np.asarray(gravity_g, float), weight=TAUGHT_WEIGHT)

    def wearer_state(self) -> dict:
        return self.wearer.to_dict() if self.wearer is not None else {}

    def restore_wearer(self, state) -> None:
        if self.wearer is not None:
            self.wearer = WearerModel.from_dict(state)

    def pop_events(self) -> list[Event]:
        if not self.reference.events and not self._notices:
            return []
        out, self.reference.events = self.reference.events, []
        out, self._notices = out + self._notices, []
        return out

    def process(self, t_s: np.ndarray, accel_g: np.ndarray) -> list[PostureEstimate]:
        if len(t_s) == 0:
            return []
        a = np.asarray(accel_g, float)
        self._pending_t.append(np.asarray(t_s, float))
        self._pending_a.append(a)
        self._last_t = float(t_s[-1])
        if self._last_posture in _PROMPT_POSTURES and len(t_s) > 1:
            # a range of 2 std is the least any signal with that std can have: a cheap, safe test
            # (max - min of each axis; sorting a block this small is quicker than two column reductions)
            ordered = np.sort(a.T, axis=1)
            if float((ordered[:, -1] - ordered[:, 0]).max()) >= 2 * self.moving_std_g:
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
        valid = np.minimum.reduce(n, axis=1) >= self.min_block_samples
        # the ufuncs np.linalg.norm, np.sum and np.clip call, without their wrappers (the same numbers)
        mag = np.sqrt(np.add.reduce(mean * mean, axis=-1))
        unit = mean / np.maximum(mag, 1e-6)[..., None]
        std = np.sqrt(np.maximum(np.trace(cov, axis1=-2, axis2=-1), 0.0))
        turn = np.degrees(np.arccos(np.minimum(np.maximum(np.add.reduce(unit[:, :-1] * unit[:, 1:], axis=-1), -1.0),
                                               1.0)))
        ref = self.reference
        gait = ref.gait_mask(std, turn)
        still = ref.still_mask(std, turn)
        m = len(ends)
        rotations = [self._rotation]
        confirmed = np.full(m, ref.confirmed if self._rotation is not None else False)
        changes = []
        for i, up, heading, ok in ref.update(ends, unit[:, 0], gait, still, valid, steady_mask(std, turn)):
            changes.append(i)
            rotations.append(self._frame(up, heading))
            confirmed[i + 1:] = ok and up is not None
            if self.wearer is not None and ref.last_turn is not None:  # remounted: the wearer's postures turn too
                self.wearer.rotate(ref.last_turn)
                ref.last_turn = None

        calibrated = np.zeros(m, dtype=bool)
        bounds = [0] + [i + 1 for i in changes] + [m]
        segments = list(zip(zip(bounds[:-1], bounds[1:]), rotations))
        for (i0, i1), rot in segments:
            calibrated[i0:i1] = rot is not None
        self._rotation = rotations[-1]
        use = valid & calibrated
        quiet = np.zeros(m, dtype=bool)
        probs = None
        if self.sequence:
            mv = self.gate.assess(t, a, ends, self.sample_rate_hz, self.step_s, std, turn)
            quiet = mv.quiet
            if not changes:  # a committed posture held still: no need to ask the model
                probs = self.filter.hold(quiet, still, self.wearer is not None)
                if probs is not None:
                    self._episode = _EpisodeWatch(self._episode.peak, mv.lift_g, mv.down_first)
                    self._episode.finish()
        if probs is None:
            log_p = np.zeros((m, len(self.model.prior)))
            for (i0, i1), rot in segments:
                if rot is not None and i1 > i0:
                    log_p[i0:i1] = self.model.log_proba(features_from_moments(mean[i0:i1], cov[i0:i1], rot))
            if self.sequence:
                self._episode = _EpisodeWatch(self._episode.peak, mv.lift_g, mv.down_first)
                on_commit = lambda i, posture, confident: self._on_commit(  # noqa: E731
                    i, posture, confident, ends, confirmed, log_p[i])
                upright_cos = np.full(m, np.nan)
                for (i0, i1), rot in segments:
                    if rot is not None:
                        upright_cos[i0:i1] = unit[i0:i1, 0] @ rot[0]
                probs = self.filter.run(log_p, use, factors=mv.factors(), quiet=quiet, unit_g=unit[:, 0],
                                        steady=still, wearer=self.wearer, on_commit=on_commit,
                                        episode=self._episode.peak_until, upright_cos=upright_cos,
                                        after_calm=lambda i: movement_after_calm(t, a, float(ends[i]),
                                                                                 self.sample_rate_hz))
                self._episode.finish()
            else:
                moving = std.max(axis=1) >= self.moving_std_g  # energy, not turning: a slow drift is no transition
                probs = self.filter.run(log_p, use, moving)
                confirmed[:] = calibrated
        nw, since, suspect = self.not_worn.update(ends, valid, std, np.add.reduce(mean, axis=1) / mean.shape[1])
        best = probs.argmax(axis=1)
        if self.sequence and not self._alike_noticed:
            self._watch_still_standing(ends, (best == OUTPUT_POSTURES.index("standing")) & quiet & use & confirmed)
        p_best = probs[np.arange(m), best].tolist()
        names = [OUTPUT_POSTURES[b] for b in best.tolist()]
        out: list[PostureEstimate] = []
        ends_l = ends.tolist()
        # plain lists: indexing numpy arrays one element at a time costs more than the loop itself
        confirmed_l, valid_l, nw_l, quiet_l = confirmed.tolist(), valid.tolist(), nw.tolist(), quiet.tolist()
        use_l, suspect_l = use.tolist(), suspect.tolist()
        for i in range(m):
            if not confirmed_l[i] and valid_l[i] and not nw_l[i]:
                self._still_run_s = self._still_run_s + self.step_s if quiet_l[i] else 0.0
            if nw_l[i]:
                out.append(PostureEstimate(ends_l[i], "not_worn", 0.95, since[i]))
            elif not use_l[i] or suspect_l[i] or not confirmed_l[i]:
                guess = not confirmed_l[i] and not suspect_l[i] and self._still_run_s >= self.assume_sitting_s
                if not confirmed_l[i] and not self._noticed:
                    self._noticed = True
                    self._notices.append(PostureNotice(ends_l[i], "uncalibrated", UNCALIBRATED_NOTICE.format(
                        minutes=self.assume_sitting_s / 60)))
                out.append(PostureEstimate(ends_l[i], "sitting", 0.6) if guess and valid_l[i]
                           else PostureEstimate(ends_l[i], "unknown", 0.5))
            else:
                out.append(PostureEstimate(ends_l[i], names[i], p_best[i]))
        return out

    def _watch_still_standing(self, ends: np.ndarray, standing_quiet: np.ndarray) -> None:
        """Say once when the wearer has been counted as standing, without a step, for ``STILL_STANDING_NOTICE_S``."""
        m = len(standing_quiet)
        steps = np.arange(1, m + 1)
        last_break = np.maximum.accumulate(np.where(standing_quiet, 0, steps))  # the last step that was not
        run_s = np.where(last_break == 0, self._still_standing_s + steps * self.step_s,
                         (steps - last_break) * self.step_s)
        self._still_standing_s = float(run_s[-1])
        over = np.flatnonzero(run_s >= STILL_STANDING_NOTICE_S)
        if len(over):
            self._alike_noticed = True
            why = f"{STILL_STANDING_NOTICE_S / 60:g} minutes counted as standing without a step: were you sitting?"
            self._notices.append(PostureNotice(float(ends[over[0]]), "sit_stand_alike", ALIKE_NOTICE.format(why=why)))

    def _on_commit(self, i: int, posture: str, confident: bool, ends: np.ndarray, confirmed: np.ndarray,
                   log_p: np.ndarray) -> bool:
        """A commit of the filter: a confident sit-down out of a provisional still start confirms it,
        and one whose posture the model alone would call standing counts towards the alike notice.

        Returns whether the wearer may learn from the commit (only in a confirmed frame).
        """
        down = self._episode.down_first_until(i)
        if (not confirmed[i] and confident and posture == "sitting" and down
                and self.reference.confirm(float(ends[i]))):
            confirmed[i:] = True
        if confirmed[i] and not self._alike_noticed:
            if confident and posture == "sitting":
                self._sits += 1
                p = np.exp(log_p)
                self._unseen_sits += int(p[1] >= UNSEEN_SIT_P * (p[0] + p[1]))
            # the wearer learns this commit after the call: ask about the postures it knew before
            alike = self.wearer is not None and self.wearer.alike()
            if alike or (self._unseen_sits >= UNSEEN_SITS and 2 * self._unseen_sits >= self._sits):
                self._alike_noticed = True
                why = ("your sitting is within a few degrees of your standing" if alike else
                       f"{self._unseen_sits} of {self._sits} sit-downs looked like standing")
                self._notices.append(PostureNotice(float(ends[i]), "sit_stand_alike", ALIKE_NOTICE.format(why=why)))
        return bool(confirmed[i])


class _EpisodeWatch:
    """The strongest hip movement since the last commit, and whether |a| fell before it rose then."""

    def __init__(self, peak: tuple[float, bool], lift: np.ndarray, down_first: np.ndarray):
        self.peak = peak
        self.lift = lift
        self.down_first = down_first
        self.done = 0

    def _scan(self, upto: int) -> None:
        if upto > self.done:
            k = self.done + int(np.argmax(self.lift[self.done:upto]))  # the first of the largest, as a scan would
            if self.lift[k] > self.peak[0]:
                self.peak = (float(self.lift[k]), bool(self.down_first[k]))
            self.done = upto

    def peak_until(self, i: int) -> tuple[float, bool]:
        """The largest hip movement up to step ``i`` and whether it lowered first (the episode goes on)."""
        self._scan(i + 1)
        return self.peak

    def down_first_until(self, i: int) -> bool:
        """Whether the episode ending at step ``i`` lowered the hip first; starts the next episode."""
        self._scan(i + 1)
        down = self.peak[1]
        self.peak = (0.0, False)
        return down

    def finish(self) -> None:
        self._scan(len(self.lift))
