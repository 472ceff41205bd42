"""The wearer's upright reference: explicit, from a still start, from walking, and after a remount.

- Explicit: ``sitsense calibrate`` (or the evaluation protocol) hands over the mean acceleration
  of a few seconds of still standing.
- Still start: without one, the first ``calibration_s`` of stillness is a *provisional*
  reference: the wearer may have sat down before clipping on, so nothing is reported from it
  (the classifier says ``unknown``) until a sit-down out of that posture confirms it was
  standing (``confirm``). After a recalibration request (``set_explicit(None)``: the wearer was
  told to stand still) the next still seconds count at once.
- Walking: the pelvis is upright while walking, so steady gait gives the upright direction too.
  Walking replaces a provisional still start, and a confirmed one that disagrees with it, and
  serves as the reference when nothing else exists.
- Heading: which horizontal direction the pelvis tilts to when sitting depends on where on the
  belt the sensor sits. Still postures tilted by 12-60 degrees (sitting) give that direction; it
  turns the calibrated frame so that "forward" means the wearer's own sitting tilt.
- Remount: the walking direction is remembered; steady gait that stays far from it means the
  sensor was clipped on differently, so every reference is turned by the same rotation and a
  ``Remounted`` event says so.

Everything here works on frame-free quantities (block means and movement energies), so a new
reference can take effect at the exact step it was found, whatever the block size.
"""

from __future__ import annotations

import math

import numpy as np

from ..events import Calibrated, Event, Remounted


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-9)


def angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    """Angle between two vectors in degrees."""
    c = float(_unit(a) @ _unit(b))
    return math.degrees(math.acos(max(-1.0, min(1.0, c))))


def minimal_rotation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest rotation (3, 3) taking direction ``a`` onto direction ``b``."""
    a, b = _unit(a), _unit(b)
    v = np.cross(a, b)
    s = float(np.linalg.norm(v))
    c = float(a @ b)
    if s < 1e-9:
        return np.eye(3)
    vx = np.array([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]])
    return np.eye(3) + vx + vx @ vx * ((1.0 - c) / s ** 2)


HEADING_TILT_DEG = (12.0, 60.0)
HEADING_FIRST_STEPS = 5
HEADING_MAX_GAP_STEPS = 640


_COS_TILT = (math.cos(math.radians(HEADING_TILT_DEG[0])), math.cos(math.radians(HEADING_TILT_DEG[1])))


def steady_mask(std_g: np.ndarray, turn_deg: np.ndarray) -> np.ndarray:
    """Steps whose whole context is still (a posture held, not a movement)."""
    every = np.logical_and.reduce  # what .all() calls, without its wrapper
    return np.asarray(every(std_g < 0.05, axis=1) & every(turn_deg < 3.0, axis=1))


def heading_candidates(up: np.ndarray, unit_g: np.ndarray, std_g: np.ndarray, turn_deg: np.ndarray) -> np.ndarray:
    """Steps whose posture is still and tilted like sitting (their gravity tells the sitting direction)."""
    c = unit_g @ up
    return (c <= _COS_TILT[0]) & (c >= _COS_TILT[1]) & steady_mask(std_g, turn_deg)


def horizontal(up: np.ndarray, g: np.ndarray) -> np.ndarray:
    """The part of ``g`` (.., 3) perpendicular to ``up``."""
    return g - (g @ up)[..., None] * up


class UprightReference:
    """Keeps the upright direction in device axes and raises calibration and remount events."""

    def __init__(self, *, step_s: float = 1.0, calibration_s: float = 5.0, still_std_g: float = 0.03,
                 still_turn_deg: float = 2.0, gait_std_g: tuple[float, float] = (0.08, 1.0),
                 gait_turn_deg: float = 10.0, walk_learn_s: float = 10.0, walk_disagree_deg: float = 20.0,
                 remount_deg: float = 25.0, remount_s: float = 8.0):
        self.step_s = step_s
        self.still_steps = max(1, math.ceil(calibration_s / step_s - 1e-9))
        self.still_std_g = still_std_g
        self.still_turn_deg = still_turn_deg
        self.gait_std_g = gait_std_g
        self.gait_turn_deg = gait_turn_deg
        self.walk_learn_steps = max(1, math.ceil(walk_learn_s / step_s - 1e-9))
        self.walk_disagree_deg = walk_disagree_deg
        self.remount_deg = remount_deg
        self.remount_steps = max(1, math.ceil(remount_s / step_s - 1e-9))
        self.up: np.ndarray | None = None
        self.source = ""
        self.confirmed = False  # a provisional still start is not yet known to have been standing
        self._asked = False  # a recalibration was asked for: the next still seconds are standing
        self.events: list[Event] = []
        self._still_sum = np.zeros(3)
        self._still_n = 0
        self._walk_sum = np.zeros(3)
        self._walk_n = 0
        self._walk_dir: np.ndarray | None = None
        self._off_sum = np.zeros(3)
        self._off_n = 0
        self.heading: np.ndarray | None = None
        self._head_sum = np.zeros(3)
        self._head_n = 0
        self._head_next = HEADING_FIRST_STEPS
        self.last_turn: np.ndarray | None = None  # the rotation of the last remount (the wearer model turns with it)

    def set_explicit(self, upright_g: np.ndarray | None, t: float = 0.0) -> None:
        """Use (or, with None, forget) an explicit upright reference."""
        if upright_g is None:
            self.up, self.source, self.confirmed, self._asked = None, "", False, True
            return
        u = np.asarray(upright_g, float)
        if u.shape != (3,) or not np.isfinite(u).all() or np.linalg.norm(u) < 0.3:
            raise ValueError(f"upright reference must be 3 finite numbers near 1 g, got {upright_g!r}")
        self.up, self.source, self.confirmed = _unit(u), "explicit", True
        self.events.append(Calibrated(t, "explicit", tuple(float(x) for x in self.up)))

    def gait_mask(self, std_g: np.ndarray, turn_deg: np.ndarray) -> np.ndarray:
        """Steps of steady gait: every context block moves like walking and the mean direction holds."""
        lo, hi = self.gait_std_g
        every = np.logical_and.reduce  # what .all() calls, without its wrapper
        return np.asarray(every((std_g >= lo) & (std_g <= hi), axis=1) & every(turn_deg <= self.gait_turn_deg, axis=1))

    def still_mask(self, std_g: np.ndarray, turn_deg: np.ndarray) -> np.ndarray:
        """Steps whose latest block is still enough to take a reference from."""
        return (std_g[:, 0] < self.still_std_g) & (turn_deg[:, 0] < self.still_turn_deg)

    def confirm(self, t: float) -> bool:
        """A sit-down left the provisional still start: it was standing. True if that confirmed it."""
        if self.up is None or self.confirmed or self.source != "still-start":
            return False
        self.confirmed = True
        self.events.append(Calibrated(t, "still-start", tuple(float(x) for x in self.up)))
        return True

    def update(self, t_s: np.ndarray, unit_g: np.ndarray, gait: np.ndarray, still: np.ndarray,
               valid: np.ndarray, steady: np.ndarray) -> list[tuple[int, np.ndarray | None, np.ndarray | None, bool]]:
        """Feed steps: latest block's unit gravity; gait, still (for a reference) and steady (for the heading) flags.

        Returns (step, up, heading, confirmed) for every step after which the frame changed.
        """
        changes: list[tuple[int, np.ndarray | None, np.ndarray | None, bool]] = []
        i = 0
        m = len(t_s)
        gait_l = gait.tolist()
        while i < m:
            if self.up is None:
                idx = np.flatnonzero(valid[i:]) + i
            else:
                idx = np.flatnonzero(valid[i:] & (gait[i:] | (steady[i:] & self._tilted(unit_g[i:])))) + i
            i = m
            ks = idx.tolist()
            j = 0
            while j < len(ks):
                k = ks[j]
                if self.up is not None and not gait_l[k]:  # a run of heading steps: up cannot change in it
                    j2 = j + 1
                    while j2 < len(ks) and not gait_l[ks[j2]]:
                        j2 += 1
                    changes += self._heading_steps(unit_g, ks[j:j2])
                    j = j2
                    continue
                j += 1
                before = (self.up, self.heading, self.confirmed)
                if gait_l[k]:
                    self._gait_step(float(t_s[k]), unit_g[k])
                else:  # no reference yet (heading steps went above)
                    self._still_step(float(t_s[k]), unit_g[k], bool(still[k]))
                if self.up is not before[0] or self.heading is not before[1] or self.confirmed != before[2]:
                    changes.append((k, self.up, self.heading, self.confirmed))
                    if self.up is not before[0]:  # the candidates depend on up: look again from here
                        i = k + 1
                        break
        return changes

    def _tilted(self, unit_g: np.ndarray) -> np.ndarray:
        c = unit_g @ self.up
        return (c <= _COS_TILT[0]) & (c >= _COS_TILT[1])

    def _heading_steps(self, unit_g: np.ndarray, ks: list[int]) -> list[tuple[int, np.ndarray | None,
                                                                             np.ndarray | None, bool]]:
        """Learn the heading from the still tilted steps ``ks``, all at once but adding them one at a time
        in order (as a step-by-step loop would, to the bit); returns the steps after which it changed."""
        up = self.up
        assert up is not None
        dots = np.array([unit_g[k] @ up for k in ks])  # each its own 1-D product, exactly as one step takes it
        h = unit_g[ks] - dots[:, None] * up
        sums = np.cumsum(np.concatenate((self._head_sum[None], h)), axis=0)  # a running sum adds one step at a time
        n0 = self._head_n
        self._head_n = n0 + len(ks)
        self._head_sum = sums[-1].copy()
        changes: list[tuple[int, np.ndarray | None, np.ndarray | None, bool]] = []
        while self._head_next <= self._head_n:
            j = max(self._head_next - n0, 1)  # steps taken when the count reached the next update
            self.heading = _unit(horizontal(up, sums[j]))
            self._head_next = min(2 * self._head_next, n0 + j + HEADING_MAX_GAP_STEPS)
            changes.append((ks[j - 1], self.up, self.heading, self.confirmed))
        return changes

    def _still_step(self, t: float, g: np.ndarray, still: bool) -> None:
        if not still:
            self._still_sum[:] = 0.0
            self._still_n = 0
            return
        self._still_sum += g
        self._still_n += 1
        if self._still_n >= self.still_steps:
            self.up, self.source, self.confirmed = _unit(self._still_sum), "still-start", False
            if self._asked:  # the wearer was asked to stand still for this
                self._asked = False
                self.confirm(t)

    def _gait_step(self, t: float, g: np.ndarray) -> None:
        self._still_sum[:] = 0.0
        self._still_n = 0
        if self._walk_dir is None:
            self._walk_sum += g
            self._walk_n += 1
            if self._walk_n >= self.walk_learn_steps:
                self._walk_dir = _unit(self._walk_sum)
                if self.up is None or (self.source == "still-start" and (
                        not self.confirmed or angle_deg(self.up, self._walk_dir) > self.walk_disagree_deg)):
                    self.up, self.source, self.confirmed = self._walk_dir.copy(), "walking", True
                    self.events.append(Calibrated(t, "walking", tuple(float(x) for x in self.up)))
            return
        if self.up is None:  # the reference was dropped (recalibration asked for): walking gives it back
            self.up, self.source, self.confirmed, self._asked = self._walk_dir.copy(), "walking", True, False
            self.events.append(Calibrated(t, "walking", tuple(float(x) for x in self.up)))
        if angle_deg(g, self._walk_dir) <= self.remount_deg:
            self._off_sum[:] = 0.0
            self._off_n = 0
            self._walk_dir = _unit(self._walk_dir * 0.98 + g * 0.02)
            return
        self._off_sum += g
        self._off_n += 1
        if self._off_n >= self.remount_steps:
            new_dir = _unit(self._off_sum)
            turn = minimal_rotation(self._walk_dir, new_dir)
            angle = angle_deg(self._walk_dir, new_dir)
            self._walk_dir = new_dir
            self._off_sum[:] = 0.0
            self._off_n = 0
            self.up = _unit(turn @ self.up) if self.up is not None else new_dir.copy()
            self.confirmed = True
            self.last_turn = turn
            if self.heading is not None:
                self.heading = _unit(horizontal(self.up, turn @ self.heading))
            self._head_sum = turn @ self._head_sum
            self.source = "remount"
            self.events.append(Remounted(t, angle))
            self.events.append(Calibrated(t, "remount", tuple(float(x) for x in self.up)))
