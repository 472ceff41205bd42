"""Scenario composer: long, labelled days stitched from one HAPT user's real recordings.

Each plan item is filled with random crops of that user's segments of the posture; crops are
joined with a short cross-fade, so the signal has no steps, and a real transition segment of the
user (stand-to-sit, sit-to-stand, ...) is placed between postures that have one. The time a
transition takes comes out of the following item, so the day lasts exactly as planned.

By default a day is made from one recording: each HAPT recording has its own phone mount, and a
day mixing two would be a wearer silently reclipping the sensor every few seconds. The first of
the user's recordings that has every posture the plan needs is used; ``mix_recordings`` draws
from all of them (more variety, unrealistic mounts).

``posture_shifts`` makes sitting bouts sit like people do: every few minutes the wearer slumps,
sits up or perches on the edge of the chair, a pure rotation of the pelvis about its lateral
axis (no hip lift), from nearly upright to well past their usual sitting tilt.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import DatasetError
from .traces import HAPT_SAMPLE_RATE_HZ, LABEL_CODE, Trace, read_hapt

# HAPT activity ids of each posture, and of the transition from one posture to another
POSTURE_ACTIVITIES = {"walking": (1,), "sitting": (4,), "standing": (5,), "lying": (6,)}
TRANSITIONS = {("standing", "sitting"): 7, ("sitting", "standing"): 8, ("sitting", "lying"): 9,
               ("lying", "sitting"): 10, ("standing", "lying"): 11, ("lying", "standing"): 12}
CROSSFADE_S = 1.0
EDGE_MARGIN_S = 1.0  # keep clear of the ends of a labelled segment (labels are not sample-exact)
MIN_CROP_S = 4.0
SHIFT_HOLD_S = (60.0, 480.0)  # how long a sitting posture is held before the next shift
SHIFT_TILT_DEG = (2.0, 15.0)  # shifted sitting: from this close to upright to this far past the usual tilt


def compose(hapt_dir: str | Path, user: int, plan: list[tuple[str, float]], *, seed: int = 0,
            start_time: str | None = None, progress=None, mix_recordings: bool = False,
            posture_shifts: bool = False) -> Trace:
    """Build a trace for ``user`` following ``plan`` [(posture, seconds), ...]."""
    rng = np.random.default_rng(seed)
    for posture, _ in plan:
        if posture == "not_worn":
            raise DatasetError("compose: HAPT has no 'off' recordings; use 'sitsense synth' for a sensor on a table")
    recs = read_hapt(hapt_dir, users={user})
    pieces = _segments(recs)
    used = "all"
    if not mix_recordings:
        for rec in recs:
            one = _segments([rec])
            if all(one.get(posture) for posture, _ in plan):
                pieces, used = one, rec.metadata.get("experiment", rec.source)
                break
    for posture, _ in plan:
        if not pieces.get(posture):
            raise DatasetError(f"compose: user {user} has no {posture} segment long enough to crop")
    rate = HAPT_SAMPLE_RATE_HZ
    fade = int(CROSSFADE_S * rate)
    shifts = PostureShifts(pieces, rng) if posture_shifts else None
    out_acc: list[np.ndarray] = []
    out_lab: list[np.ndarray] = []
    total = 0
    prev = None
    for k, (posture, seconds) in enumerate(plan):
        need = int(round(seconds * rate))
        target = total + need
        if prev is not None and prev != posture:
            trans = _transition(pieces, prev, posture, rng)
            if trans is not None and len(trans) < need:
                total = _append(out_acc, out_lab, trans, LABEL_CODE["transition"], fade, total)
                need -= len(trans)
        first = prev != posture
        while total < target:
            seg = pieces[posture][rng.integers(len(pieces[posture]))]
            crop_n = int(rng.uniform(MIN_CROP_S * rate, len(seg) + 1))
            crop_n = min(crop_n, target - total + fade)
            start = int(rng.integers(0, len(seg) - crop_n + 1))
            crop = seg[start:start + crop_n]
            if shifts is not None and posture == "sitting":
                crop = shifts.apply(crop, new_bout=first)
            first = False
            total = _append(out_acc, out_lab, crop, LABEL_CODE[posture], fade, total)
        if progress:
            progress(k + 1, len(plan))
        prev = posture
    acc = np.concatenate(out_acc)
    labels = np.concatenate(out_lab)
    n = int(round(sum(s for _, s in plan) * rate))
    acc, labels = acc[:n], labels[:n]
    meta = {"sample_rate_hz": "50", "source": "composed from HAPT (not for redistribution)",
            "hapt_user": str(user), "hapt_experiment": str(used), "seed": str(seed),
            "plan": ", ".join(f"{p} {s:g}s" for p, s in plan)}
    if posture_shifts:
        meta["posture_shifts"] = "yes"
    if start_time:
        meta["start_time"] = start_time
    return Trace(np.arange(len(acc)) / rate, acc, labels, meta, f"compose:user{user}")


def _segments(recs: list[Trace]) -> dict[str, list[np.ndarray]]:
    """Cropped-in samples of every labelled segment, by posture and by transition id."""
    out: dict = {}
    margin = int(EDGE_MARGIN_S * HAPT_SAMPLE_RATE_HZ)
    for rec in recs:
        act = rec.activity
        assert act is not None
        change = np.flatnonzero(np.diff(act.astype(np.int16))) + 1
        bounds = np.concatenate([[0], change, [len(act)]])
        for a, b in zip(bounds[:-1], bounds[1:]):
            aid = int(act[a])
            if aid == 0:
                continue
            if aid >= 7:
                out.setdefault(aid, []).append(rec.accel_g[a:b])
                continue
            for posture, ids in POSTURE_ACTIVITIES.items():
                if aid in ids and b - a - 2 * margin >= MIN_CROP_S * HAPT_SAMPLE_RATE_HZ:
                    out.setdefault(posture, []).append(rec.accel_g[a + margin:b - margin])
    return out


class PostureShifts:
    """Turns sitting crops about the pelvis's lateral axis, holding each shifted posture for minutes.

    The axes come from the recording itself: up is its mean standing gravity, the sitting tilt
    its mean sitting gravity; a shift rotates about their cross product, so the sitting tilt
    grows (slumped) or shrinks towards upright (perched) while |a| stays as it was.
    """

    def __init__(self, pieces: dict, rng: np.random.Generator):
        self.rng = rng
        up = _unit(np.concatenate(pieces["standing"]).mean(axis=0)) if pieces.get("standing") else None
        sit = _unit(np.concatenate(pieces["sitting"]).mean(axis=0)) if pieces.get("sitting") else None
        if up is None or sit is None:
            raise DatasetError("compose: posture shifts need the user's standing and sitting segments")
        self.up = up
        axis = np.cross(up, sit)
        if np.linalg.norm(axis) < 1e-3:  # sits exactly upright: any horizontal axis
            axis = np.cross(up, [0.0, 0.0, 1.0] if abs(up[2]) < 0.9 else [0.0, 1.0, 0.0])
        self.axis = _unit(axis)
        self.left_n = 0
        self.tilt_deg = 0.0

    def apply(self, crop: np.ndarray, *, new_bout: bool) -> np.ndarray:
        """The crop rotated to the current shifted posture (a new one is drawn when its time is up)."""
        if new_bout or self.left_n <= 0:
            lo, hi = SHIFT_HOLD_S
            self.left_n = int(self.rng.uniform(lo, hi) * HAPT_SAMPLE_RATE_HZ)
            self.tilt_deg = float(self.rng.uniform(*SHIFT_TILT_DEG) * (1 if self.rng.random() < 0.5 else -1))
        self.left_n -= len(crop)
        own = np.degrees(np.arccos(np.clip(_unit(crop.mean(axis=0)) @ self.up, -1.0, 1.0)))
        # a negative draw perches: towards upright, ending |draw| degrees from it; a positive one slumps
        angle = self.tilt_deg if self.tilt_deg > 0 else -max(own + self.tilt_deg, 0.0)
        return crop @ _axis_rotation(self.axis, np.radians(angle)).T


def _unit(v: np.ndarray) -> np.ndarray:
    return np.asarray(v, float) / max(float(np.linalg.norm(v)), 1e-9)


def _axis_rotation(axis: np.ndarray, angle_rad: float) -> np.ndarray:
    """Rotation by ``angle_rad`` about the unit ``axis`` (Rodrigues)."""
    k = np.array([[0.0, -axis[2], axis[1]], [axis[2], 0.0, -axis[0]], [-axis[1], axis[0], 0.0]])
    return np.eye(3) + np.sin(angle_rad) * k + (1.0 - np.cos(angle_rad)) * (k @ k)


def _transition(pieces: dict, prev: str, posture: str, rng: np.random.Generator) -> np.ndarray | None:
    frm = "standing" if prev == "walking" else prev
    to = "standing" if posture == "walking" else posture
    tid = TRANSITIONS.get((frm, to))
    if tid is None or not pieces.get(tid):
        return None
    options = pieces[tid]
    return options[rng.integers(len(options))]


def _append(acc: list[np.ndarray], lab: list[np.ndarray], piece: np.ndarray, label: int, fade: int,
            total: int) -> int:
    """Append ``piece``, cross-fading its first samples over the end of what is there."""
    piece = piece.copy()
    if acc and fade and len(piece) > 2 * fade and len(acc[-1]) > fade:
        w = (0.5 - 0.5 * np.cos(np.linspace(0, np.pi, fade)))[:, None]
        tail = acc[-1][-fade:]
        piece[:fade] = tail * (1 - w) + piece[:fade] * w
        acc[-1] = acc[-1][:-fade]
        lab[-1] = lab[-1][:-fade]
        total -= fade
    acc.append(piece)
    lab.append(np.full(len(piece), label, dtype=np.int8))
    return total + len(piece)
