"""The wearer's own sitting and standing orientations, learned from postures whose entry was certain.

A population model cannot tell sitting from standing for wearers whose pelvis barely tilts in
the chair. What it can tell is the movement: a stand-to-sit lowers the hip, a stand-up lifts it.
Every bout entered by such a movement (and every explicit calibration) shows what this wearer's
sitting or standing looks like from this mount; the model keeps a few prototypes of each (unit
gravity vectors in the sensor's own axes, so they survive a new upright reference) and, after
the next ambiguous movement, says how much nearer the new posture is to one than to the other.
Only nearness counts: a posture unlike every prototype (sitting up from lying, say, when only
sitting down from standing was seen) gets no evidence either way.

Prototypes are merged when they lie within ``MERGE_DEG`` of each other, so slumped, upright and
perched sitting each keep their own. When a sitting and a standing prototype lie closer than
``ALIKE_DEG``, this wearer's sitting and standing look alike from the mount: ``alike()`` says so
and the evidence is weak there, which is the honest answer.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

POSTURES = ("sitting", "standing")
MERGE_DEG = 3.0
ALIKE_DEG = 3.0
MAX_PROTOTYPES = 6
MAX_WEIGHT = 50.0  # a prototype keeps following the wearer: new evidence never counts less than 1/50
SCALE_DEG = 2.0  # evidence per degree of difference between the two nearest distances
NEAR_DEG = 5.0  # farther than this from every prototype of a posture is simply "not like it": no more evidence
CAP = 3.0  # at most e**3 (20:1) per step, so a stray step cannot decide alone


def _unit(v) -> np.ndarray:
    v = np.asarray(v, float)
    return v / max(float(np.linalg.norm(v)), 1e-9)


class WearerModel:
    """Prototype orientations per posture, with weights; see the module docstring."""

    def __init__(self):
        self.prototypes: dict[str, list[list]] = {p: [] for p in POSTURES}  # [unit (3,), weight]
        self.learned = {p: 0 for p in POSTURES}  # confident entries seen (for the diagnostic)

    def clear(self) -> None:
        self.prototypes = {p: [] for p in POSTURES}

    def add(self, posture: str, gravity_g, *, weight: float = 1.0, count: bool = True) -> None:
        """Learn one observation of ``posture``: merge into the nearest prototype or start a new one."""
        if posture not in self.prototypes:
            return
        u = _unit(gravity_g)
        protos = self.prototypes[posture]
        if count:
            self.learned[posture] += 1
        best, best_deg = None, 180.0
        for p in protos:
            d = math.degrees(math.acos(max(-1.0, min(1.0, float(p[0] @ u)))))
            if d < best_deg:
                best, best_deg = p, d
        if best is not None and best_deg <= MERGE_DEG:
            w = best[1]
            best[0] = _unit(best[0] * w + u * weight)
            best[1] = min(w + weight, MAX_WEIGHT)
            return
        if len(protos) >= MAX_PROTOTYPES:
            del protos[min(range(len(protos)), key=lambda k: protos[k][1])]
        protos.append([u, float(weight)])

    def ready(self) -> bool:
        """Anything learned at all (the explicit calibration is a standing prototype)."""
        return any(self.prototypes[p] for p in POSTURES)

    def log_ratio(self, unit_g: np.ndarray) -> np.ndarray:
        """Per row of unit gravity vectors (m, 3): log evidence for sitting over standing (0 if not ready).

        A posture without prototypes counts as ``NEAR_DEG`` away: near the calibration's standing and
        nothing else known, that is evidence for standing; far from it, none either way.
        """
        if not self.ready():
            return np.zeros(len(unit_g))
        near = {}
        for p in POSTURES:
            if not self.prototypes[p]:
                near[p] = np.full(len(unit_g), NEAR_DEG)
                continue
            protos = np.array([q[0] for q in self.prototypes[p]])
            cos = np.clip(unit_g @ protos.T, -1.0, 1.0)
            near[p] = np.minimum(np.degrees(np.arccos(cos.max(axis=1))), NEAR_DEG)
        return np.clip((near["standing"] - near["sitting"]) / SCALE_DEG, -CAP, CAP)

    def alike(self) -> bool:
        """A sitting and a standing prototype lie within ``ALIKE_DEG``: the mount cannot tell them apart there."""
        for s in self.prototypes["sitting"]:
            for t in self.prototypes["standing"]:
                if math.degrees(math.acos(max(-1.0, min(1.0, float(s[0] @ t[0]))))) < ALIKE_DEG:
                    return True
        return False

    def rotate(self, rotation: np.ndarray) -> None:
        """The sensor was remounted: turn every prototype with it."""
        for protos in self.prototypes.values():
            for p in protos:
                p[0] = _unit(rotation @ p[0])

    def to_dict(self) -> dict[str, Any]:
        return {p: [[*(round(float(x), 5) for x in q[0]), round(float(q[1]), 2)] for q in protos]
                for p, protos in self.prototypes.items()} | {"learned": dict(self.learned)}

    @classmethod
    def from_dict(cls, data: Any) -> "WearerModel":
        """The model saved by ``to_dict``; anything unreadable gives an empty model."""
        w = cls()
        if not isinstance(data, dict):
            return w
        try:
            for p in POSTURES:
                for row in data.get(p, [])[:MAX_PROTOTYPES]:
                    v = np.asarray(row[:3], float)
                    if v.shape == (3,) and np.isfinite(v).all() and np.linalg.norm(v) > 0.5:
                        w.prototypes[p].append([_unit(v), float(min(max(row[3], 0.0), MAX_WEIGHT))])
            learned = data.get("learned", {})
            w.learned = {p: int(learned.get(p, 0)) for p in POSTURES}
        except (TypeError, ValueError, IndexError, AttributeError):
            return cls()
        return w
