"""Hip movement: how much the body was lifted or lowered, which a turn of the pelvis cannot fake.

Standing up pushes the hip up and stops it (the magnitude |a| first rises above 1 g, then falls
below); sitting down does the reverse. A shift in the chair, slumping or sitting up straight
only turns the sensor, and a turn leaves |a| at 1 g. So the largest range of |a| (smoothed over
``SMOOTH_S``) within any one second of a step's context measures the movement that can change a
posture. Measured on HAPT: every labelled sit-to-stand and stand-to-sit reaches at least 0.10 g,
while 99.9% of steps whose context lies inside a sitting segment stay under 0.13 g (99% under 0.06).

Pure numpy and causal: a step needs the samples of its context and ``SMOOTH_S`` before it,
which the streaming classifier keeps, so results do not depend on how samples come in blocks.
"""

from __future__ import annotations

import numpy as np

from .features import CONTEXT_S

SMOOTH_S = 0.2
HALF_S = 0.5  # sub-blocks: the range over any two neighbours is a sliding one-second range
_HALVES = int(round(CONTEXT_S / HALF_S))


def smoothed_magnitude_g(accel_g: np.ndarray, sample_rate_hz: float) -> np.ndarray:
    """|a| through a causal moving average of ``SMOOTH_S`` (shorter at the very start).

    Each value is the mean of its own window (no running sum), so it is the same whatever came
    before the window: results do not depend on how the stream was cut into blocks.
    """
    mag = np.sqrt(np.einsum("ij,ij->i", accel_g, accel_g))
    n = min(max(1, int(round(SMOOTH_S * sample_rate_hz))), len(mag))
    out = np.empty_like(mag)
    if n:
        kernel, counts = _smoothing_arrays(n)
        out[n - 1:] = np.convolve(mag, kernel, "valid")
        out[:n - 1] = np.cumsum(mag[:n - 1]) / counts
    return out


_SMOOTHING: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _smoothing_arrays(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The moving average's kernel and the counts 1 .. n-1 of its shorter start (cached: one n per rate)."""
    if n not in _SMOOTHING:
        if len(_SMOOTHING) > 64:
            _SMOOTHING.clear()
        _SMOOTHING[n] = (np.full(n, 1.0 / n), np.arange(1, n))
    return _SMOOTHING[n]


def lift_range_g(t_s: np.ndarray, accel_g: np.ndarray, ends_s: np.ndarray, sample_rate_hz: float,
                 step_s: float = 1.0) -> np.ndarray:
    """Largest one-second range of smoothed |a| within the context of each step ending at ``ends_s``."""
    return sliding_ranges_g(t_s, accel_g, ends_s, sample_rate_hz, step_s).max(axis=1)


def sliding_ranges_g(t_s: np.ndarray, accel_g: np.ndarray, ends_s: np.ndarray, sample_rate_hz: float,
                     step_s: float = 1.0) -> np.ndarray:
    """(m, 7) ranges of smoothed |a| over each one second of a step's context, half a second apart (oldest first).

    ``ends_s`` must be evenly spaced by ``step_s``, a whole number of half seconds.
    """
    return hip_movement(t_s, accel_g, ends_s, sample_rate_hz, step_s)[0]


def hip_movement(t_s: np.ndarray, accel_g: np.ndarray, ends_s: np.ndarray, sample_rate_hz: float,
                 step_s: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """``sliding_ranges_g`` and, per step, whether |a| fell before it rose within the context.

    Sitting down lowers the hip first (|a| dips below 1 g, then peaks as the fall is stopped);
    standing up lifts it first. In HAPT the lowest half second of the context (at the step of the
    largest lift) comes before the highest in 81% of stand-to-sit transitions and after it in 98% of
    sit-to-stand ones.
    """
    m = len(ends_s)
    if m == 0 or len(t_s) == 0:
        return np.zeros((m, _HALVES - 1)), np.zeros(m, dtype=bool)
    per_step = int(round(step_s / HALF_S))
    n_sub = per_step * (m - 1) + _HALVES
    edges = ends_s[0] - CONTEXT_S + _half_offsets(n_sub + 1)
    idx = np.searchsorted(t_s, edges, side="right")
    first = max(int(idx[0]) - int(round(SMOOTH_S * sample_rate_hz)), 0)  # the smoothing needs no more
    mag = smoothed_magnitude_g(accel_g[first:], sample_rate_hz)
    lo, hi = idx[:-1] - first, idx[1:] - first
    filled = hi > lo
    mx = np.full(n_sub, -np.inf)
    mn = np.full(n_sub, np.inf)
    if filled.any():
        # non-empty spans are contiguous and in order: each ends where the next one starts
        starts = lo[filled]
        upto = mag[:hi[filled][-1]]
        mx[filled] = np.maximum.reduceat(upto, starts)
        mn[filled] = np.minimum.reduceat(upto, starts)
    pair = np.maximum(mx[1:], mx[:-1]) - np.minimum(mn[1:], mn[:-1])  # (n_sub - 1,)
    pair[~np.isfinite(pair)] = 0.0
    win = _windows(m, per_step)
    ranges = pair[win[:, :-1]]
    return ranges, mn[win].argmin(axis=1) < mx[win].argmax(axis=1)


_OFFSETS: dict[int, np.ndarray] = {}


def _half_offsets(n: int) -> np.ndarray:
    """``HALF_S * arange(n)`` (cached: batches come in a few sizes)."""
    if n not in _OFFSETS:
        if len(_OFFSETS) > 64:
            _OFFSETS.clear()
        _OFFSETS[n] = HALF_S * np.arange(n)
    return _OFFSETS[n]


_WINDOWS: dict[tuple[int, int], np.ndarray] = {}


def _windows(m: int, per_step: int) -> np.ndarray:
    """(m, 8) sub-block indices of each step's context (cached: batches come in a few sizes)."""
    key = (m, per_step)
    if key not in _WINDOWS:
        if len(_WINDOWS) > 64:
            _WINDOWS.clear()
        _WINDOWS[key] = per_step * np.arange(m)[:, None] + np.arange(_HALVES)[None, :]
    return _WINDOWS[key]



CALM_S = 0.3  # a calm moment: smoothed |a| within CALM_G for this long (the wearer stopped)
CALM_G = 0.04
SWING_G = 0.05  # a turn of smoothed |a| counts once it has come back this far
MAX_SWINGS = 3  # a sit-down falls, rises and settles; more turns than that are steps


def movement_after_calm(t_s: np.ndarray, accel_g: np.ndarray, end_s: float, sample_rate_hz: float) -> tuple[float, bool]:
    """The largest single movement in the context ending at ``end_s`` that starts after a calm
    moment and has ended in one: its range of smoothed |a| (g) and whether |a| fell before it
    rose; (0, False) if none.

    At the end of a walk the last steps swamp the context's range and direction; a wearer who
    stops and then sits down makes one more movement, after a calm moment, that lowers the hip
    like any sit-down. Steps after a pause are not one movement (|a| turns more than
    ``MAX_SWINGS`` times) and do not count. Uses only the samples of the context and
    ``SMOOTH_S + CALM_S`` before it.
    """
    lo, hi = np.searchsorted(t_s, [end_s - CONTEXT_S - SMOOTH_S - CALM_S, end_s], side="right")
    n = max(2, int(round(CALM_S * sample_rate_hz)))
    if hi - lo <= n:
        return 0.0, False
    mag = smoothed_magnitude_g(accel_g[lo:hi], sample_rate_hz)
    win = np.lib.stride_tricks.sliding_window_view(mag, n)
    calm = np.ones(len(mag), dtype=bool)
    calm[n - 1:] = (win.max(axis=1) - win.min(axis=1)) < CALM_G  # the CALM_S up to each sample
    start = int(np.searchsorted(t_s[lo:hi], end_s - CONTEXT_S, side="right"))
    edges = np.flatnonzero(np.diff(calm[start:].astype(np.int8))) + start + 1  # where calm turns on or off
    best = (0.0, False)
    for k in edges:
        if calm[k]:
            continue  # a run of movement starts at k, after a calm sample
        if not calm[k:].any():
            break  # still moving: a sit-down settles, steps go on
        stop = int(np.argmax(calm[k:])) + k
        run = mag[k - 1:stop]
        rng = float(run.max() - run.min())
        if rng > best[0] and _swings(run) <= MAX_SWINGS:
            best = (rng, bool(run.argmin() < run.argmax()))
    return best


def _swings(x: np.ndarray) -> int:
    """How many times ``x`` turns back by at least ``SWING_G`` from its last extreme."""
    turns, direction = 0, 0
    hi = lo = extreme = float(x[0])
    for v in x.tolist():
        if direction == 0:  # not yet moved SWING_G either way
            hi, lo = max(hi, v), min(lo, v)
            if hi - v >= SWING_G or v - lo >= SWING_G:
                direction, extreme = (-1 if hi - v >= SWING_G else 1), v
        elif (v - extreme) * direction > 0:
            extreme = v
        elif abs(v - extreme) >= SWING_G:
            turns, direction, extreme = turns + 1, -direction, v
    return turns
