"""Scenario composer: long, labelled days stitched from one HAPT user's real recordings.

Each plan item is filled with random crops of that user's segments of the posture; crops are
joined with a short cross-fade, so the signal has no steps, and a real transition segment of the
user (stand-to-sit, sit-to-stand, ...) is placed between postures that have one, with a second of
what was recorded around it, so the joins fade over those and the movement itself stays whole
(a 2 s sit-down faded into a walk on both sides would keep only its middle). The time a
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
from typing import Iterator

import numpy as np

from .errors import DatasetError
from .synth import plan_text
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


CHUNK_SAMPLES = 1 << 15  # samples handed out at once (11 min): a day of any length in little memory


def compose(hapt_dir: str | Path, user: int, plan: list[tuple[str, float]], *, seed: int = 0,
            start_time: str | None = None, progress=None, mix_recordings: bool = False,
            posture_shifts: bool = False) -> Trace:
    """Build a trace for ``user`` following ``plan`` [(posture, seconds), ...], in memory.

    ``compose_stream`` gives the very same samples piece by piece, for days of any length.
    """
    meta, chunks = compose_stream(hapt_dir, user, plan, seed=seed, start_time=start_time, progress=progress,
                                  mix_recordings=mix_recordings, posture_shifts=posture_shifts)
    parts = list(chunks)
    return Trace(np.concatenate([p.t_s for p in parts]), np.concatenate([p.accel_g for p in parts]),
                 np.concatenate([p.labels for p in parts]), meta, f"compose:user{user}")


def compose_stream(hapt_dir: str | Path, user: int, plan: list[tuple[str, float]], *, seed: int = 0,
                   start_time: str | None = None, progress=None, mix_recordings: bool = False,
                   chunk_samples: int = CHUNK_SAMPLES, posture_shifts: bool = False
                   ) -> tuple[dict[str, str], Iterator[Trace]]:
    """(metadata, the samples as pieces of about ``chunk_samples``). The recordings are read and the
    plan checked at once, so a bad request fails before anything is written."""
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
    meta = {"sample_rate_hz": "50", "source": "composed from HAPT (not for redistribution)",
            "hapt_user": str(user), "hapt_experiment": str(used), "seed": str(seed),
            "plan": plan_text(plan)}
    if start_time:
        meta["start_time"] = start_time
    if posture_shifts:
        meta["posture_shifts"] = "yes"
    rng = np.random.default_rng(seed)
    shifts = PostureShifts(pieces, rng) if posture_shifts else None
    return meta, _stitch(pieces, plan, rng, progress, chunk_samples, shifts)


def _stitch(pieces: dict, plan: list[tuple[str, float]], rng: np.random.Generator, progress,
            chunk_samples: int, shifts: "PostureShifts | None" = None) -> Iterator[Trace]:
    """Fill each plan item with crops of its posture (a transition recording first, when the
    posture changes), cross-faded one into the next."""
    rate = HAPT_SAMPLE_RATE_HZ
    fade = int(CROSSFADE_S * rate)
    out = _Stitcher(fade, int(round(sum(s for _, s in plan) * rate)), rate, chunk_samples)
    prev = None
    for k, (posture, seconds) in enumerate(plan):
        need = int(round(seconds * rate))
        target = out.total + need
        if prev is not None and prev != posture:
            trans = _transition(pieces, prev, posture, rng)
            if trans is not None and len(trans[0]) < need:
                samples, before_n, after_n = trans
                labels = np.full(len(samples), LABEL_CODE["transition"], dtype=np.int8)
                labels[:before_n] = LABEL_CODE[prev]
                labels[len(labels) - after_n:] = LABEL_CODE[posture]
                out.append(samples, labels)
        first = prev != posture
        while out.total < target:
            seg = pieces[posture][rng.integers(len(pieces[posture]))]
            crop_n = int(rng.uniform(MIN_CROP_S * rate, len(seg) + 1))
            crop_n = min(crop_n, target - out.total + fade)
            start = int(rng.integers(0, len(seg) - crop_n + 1))
            crop = seg[start:start + crop_n]
            if shifts is not None and posture == "sitting":
                crop = shifts.apply(crop, new_bout=first)
            first = False
            out.append(crop, LABEL_CODE[posture])
        yield from out.chunks()
        if progress:
            progress(k + 1, len(plan))
        prev = posture
    yield from out.chunks(final=True)


def _segments(recs: list[Trace]) -> dict[str, list[np.ndarray]]:
    """Cropped-in samples of every labelled segment, by posture and by transition id."""
    out: dict = {}
    margin = int(EDGE_MARGIN_S * HAPT_SAMPLE_RATE_HZ)
    fade = int(CROSSFADE_S * HAPT_SAMPLE_RATE_HZ)
    for rec in recs:
        act = rec.activity
        assert act is not None
        change = np.flatnonzero(np.diff(act.astype(np.int16))) + 1
        bounds = np.concatenate([[0], change, [len(act)]])
        for a, b in zip(bounds[:-1], bounds[1:]):
            aid = int(act[a])
            if aid == 0:
                continue
            if aid >= 7:  # with a cross-fade's worth of what came before and after: the joins fade there
                lo, hi = max(a - fade, 0), min(b + fade, len(act))
                out.setdefault(aid, []).append((rec.accel_g[lo:hi], a - lo, hi - b))
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


def _transition(pieces: dict, prev: str, posture: str, rng: np.random.Generator
                ) -> tuple[np.ndarray, int, int] | None:
    """A recorded transition between the two postures, with the samples recorded just before and after it
    (samples, how many before, how many after): the joins fade over those, never over the movement."""
    frm = "standing" if prev == "walking" else prev
    to = "standing" if posture == "walking" else posture
    tid = TRANSITIONS.get((frm, to))
    if tid is None or not pieces.get(tid):
        return None
    options = pieces[tid]
    return options[rng.integers(len(options))]


class _Stitcher:
    """Crops joined one after another, each cross-faded over the end of the one before.

    Only the last crop can still change (the next one fades over its end), so everything before
    it is final and handed out in pieces; the day stops at ``samples``.
    """

    def __init__(self, fade: int, samples: int, rate: float, chunk_samples: int):
        self.fade = fade
        self.samples = samples
        self.rate = rate
        self.chunk_samples = chunk_samples
        self.total = 0  # samples so far, the last crop included
        self.emitted = 0
        self._last: tuple[np.ndarray, np.ndarray] | None = None  # the crop the next one may fade over
        self._final: list[tuple[np.ndarray, np.ndarray]] = []
        self._final_n = 0

    def append(self, piece: np.ndarray, label: int | np.ndarray) -> None:
        """Append ``piece`` (one label, or one per sample), cross-fading its first samples over the end of
        what is there."""
        piece = piece.copy()
        fade = self.fade
        if self._last is not None and fade and len(piece) > 2 * fade and len(self._last[0]) > fade:
            w = (0.5 - 0.5 * np.cos(np.linspace(0, np.pi, fade)))[:, None]
            tail = self._last[0][-fade:]
            # the blend of two directions is shorter than either: keep |a| going from one to the other,
            # so a join turns the sensor without the dip in |a| that a lifted or lowered hip makes
            mixed = tail * (1 - w) + piece[:fade] * w
            mag = np.linalg.norm(tail, axis=1, keepdims=True) * (1 - w) + np.linalg.norm(piece[:fade], axis=1,
                                                                                          keepdims=True) * w
            piece[:fade] = mixed * (mag / np.maximum(np.linalg.norm(mixed, axis=1, keepdims=True), 1e-9))
            self._last = (self._last[0][:-fade], self._last[1][:-fade])
            self.total -= fade
        if self._last is not None:
            self._final.append(self._last)
            self._final_n += len(self._last[0])
        labels = np.full(len(piece), label, dtype=np.int8) if np.ndim(label) == 0 else np.asarray(label, np.int8)
        self._last = (piece, labels)
        self.total += len(piece)

    def chunks(self, final: bool = False) -> Iterator[Trace]:
        """The final samples as pieces (at the end, ``final``: everything, cut at the day's length)."""
        if final and self._last is not None:
            self._final.append(self._last)
            self._final_n += len(self._last[0])
            self._last = None
        if self._final_n < (1 if final else self.chunk_samples):
            return
        acc = np.concatenate([p[0] for p in self._final])
        labels = np.concatenate([p[1] for p in self._final])
        self._final, self._final_n = [], 0
        keep = max(0, min(len(acc), self.samples - self.emitted))
        if keep:
            t = np.arange(self.emitted, self.emitted + keep) / self.rate
            self.emitted += keep
            yield Trace(t, acc[:keep], labels[:keep], {}, "compose")
