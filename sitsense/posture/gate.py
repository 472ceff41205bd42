"""Which posture changes a step's movement allows: likelihood factors for the sequence filter.

A change between sitting (or lying) and standing needs the hip lifted or lowered: the doors of
the filter (its transition states) open with the lift (``movement.py``) and stay shut below
``lift_g[0]``. Getting up from lying lifts the hip most (every HAPT lie-to-stand reaches 0.21 g;
sitting up from lying has a median of 0.15 g), so its door needs ``rise_lift_g``. Sitting and
lying are also joined by a large turn of the pelvis with at least ``roll_lift_g`` of lift (a
sensor laid on a table turns without any). Holding a still posture through a lift is
unlikely (``still_through_lift`` per step at ``still_lift_g[1]``), and walking needs gait in three
of the four context blocks. A step is quiet when neither lift nor turn happened in its last
``quiet_s``: after a movement the filter commits to a posture there, and nothing changes while
it stays quiet.

Thresholds come from the HAPT distributions (``docs/design/architecture.md``, "Posture stage"): transitions reach
0.10 g and more, still sitting stays under 0.06 g in 99% of steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .movement import HALF_S, hip_movement


@dataclass
class Movement:
    """What the gate found in a batch of steps; ``factors()`` only when the filter needs them."""

    gate: "MovementGate"
    quiet: np.ndarray  # (m,) no lift and no turn in the last ``quiet_s``
    lift_g: np.ndarray  # (m,) largest one-second range of |a| in the context
    down_first: np.ndarray  # (m,) |a| fell before it rose (a lowering), see ``hip_movement``
    recent_g: np.ndarray  # (m,) largest range of |a| in the last 1.5 s
    turned_deg: np.ndarray  # (m,) the pelvis's turn over the context
    gait: np.ndarray  # (m,) gait in three of the four context blocks

    def factors(self) -> np.ndarray:
        """(m, C) likelihood factor per filter state (model.STATES order)."""
        g = self.gate
        door = g.door(self.lift_g, g.lift_g)
        # a turn opens the doors between sitting and lying only with some lift (a sensor laid on a table has none)
        roll = np.where(self.lift_g >= g.roll_lift_g, np.maximum(door, g.door(self.turned_deg, g.turn_deg)), 0.0)
        f = np.empty((len(self.quiet), 10))
        f[:, [0, 1, 3]] = np.exp(math.log(g.still_through_lift) * _ramp(self.recent_g, g.still_lift_g))[:, None]
        f[:, 2] = np.where(self.gait, 1.0, g.no_gait)
        # stand_to_sit, sit_to_stand, sit_to_lie, lie_to_sit, stand_to_lie, lie_to_stand
        f[:, 4:] = np.column_stack([door, door, roll, roll, roll, g.door(self.lift_g, g.rise_lift_g)])
        return f


@dataclass(frozen=True)
class MovementGate:
    """Factors of the ten filter states from the hip's movement and the pelvis's turn."""

    lift_g: tuple[float, float] = (0.05, 0.10)
    rise_lift_g: tuple[float, float] = (0.10, 0.20)
    still_lift_g: tuple[float, float] = (0.05, 0.30)
    turn_deg: tuple[float, float] = (15.0, 30.0)
    roll_lift_g: float = 0.03  # HAPT's gentlest lie-to-sit lifts 0.05 g
    door_floor: float = 1e-4  # a door just past its threshold, rising to 1 at the top of the ramp
    still_through_lift: float = 0.01
    no_gait: float = 0.01
    gait_std_g: float = 0.06
    quiet_s: float = 3.0

    def assess(self, t_s: np.ndarray, accel_g: np.ndarray, ends_s: np.ndarray, sample_rate_hz: float,
               step_s: float, std_g: np.ndarray, turn_deg: np.ndarray) -> Movement:
        """The movement of steps ending at ``ends_s``; ``std_g`` (m, K) and ``turn_deg`` (m, K-1) per context block."""
        pairs, down_first = hip_movement(t_s, accel_g, ends_s, sample_rate_hz, step_s)
        n_pairs = min(pairs.shape[1], int(round(self.quiet_s / HALF_S)) - 1)
        n_turns = min(turn_deg.shape[1], int(round(self.quiet_s)))
        top, total = np.maximum.reduce, np.add.reduce  # what .max() and .sum() call, without their wrappers
        quiet = ((top(pairs[:, -n_pairs:], axis=1) < self.lift_g[0])
                 & (total(turn_deg[:, :n_turns], axis=1) < self.turn_deg[0]))
        return Movement(self, quiet, top(pairs, axis=1), down_first, top(pairs[:, -2:], axis=1),
                        total(turn_deg, axis=1), (std_g >= self.gait_std_g).sum(axis=1) >= 3)

    def door(self, x: np.ndarray, lo_hi: tuple[float, float]) -> np.ndarray:
        """Shut below ``lo``, ``door_floor`` just above it, rising log-linearly to 1 at ``hi``."""
        s = _ramp(x, lo_hi)
        return np.where(s > 0, np.exp(math.log(self.door_floor) * (1 - s)), 0.0)


def _ramp(x: np.ndarray, lo_hi: tuple[float, float]) -> np.ndarray:
    lo, hi = lo_hi
    return np.clip((x - lo) / (hi - lo), 0.0, 1.0)
