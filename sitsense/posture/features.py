"""Posture features: pure numpy over causal windows, at any sample rate.

A step ending at ``t`` looks at ``CONTEXT_BLOCKS`` one-second blocks before it. Each block
contributes its gravity direction in the wearer's calibrated frame (up, forward, side), its mean
acceleration magnitude relative to the context (a rise or a drop lifts or lowers it briefly), and its movement energy split along and across gravity (vertical bounce
versus postural sway). Between-block changes of direction separate slow whole-body movements
(sitting down, lying down) from periodic gait, whose one-second means barely move.

Block statistics come from cumulative sums, so any number of steps costs a few array operations;
``window_features`` computes the same numbers from an ``(m, n, 3)`` array of windows for the
naive per-window path and for tests.
"""

from __future__ import annotations

import numpy as np

BLOCK_S = 1.0
CONTEXT_BLOCKS = 4
CONTEXT_S = BLOCK_S * CONTEXT_BLOCKS
# Movement energies below this are clamped: it sits above the noise of phones and MEMS boards,
# so the model cannot learn one sensor's noise floor as a posture cue.
ENERGY_FLOOR_G = 0.015

_PER_BLOCK = ("up", "fwd", "side", "mag_rel", "log_std", "log_std_vert", "log_std_horiz")
FEATURE_NAMES: tuple[str, ...] = tuple(
    [f"{name}_{k}" for k in range(CONTEXT_BLOCKS) for name in _PER_BLOCK]
    + [f"turn_deg_{k}" for k in range(CONTEXT_BLOCKS - 1)]
    + ["tilt_deg", "abs_fwd", "abs_side", "turn_total_deg"])
N_FEATURES = len(FEATURE_NAMES)
# Second moments as products of axis pairs (xx, yy, zz, xy, xz, yz), and where each lands in a 3x3 covariance.
_PAIR_I = np.array([0, 1, 2, 0, 0, 1])
_PAIR_J = np.array([0, 1, 2, 1, 2, 2])
_COV_OF_PAIRS = np.array([0, 3, 4, 3, 1, 5, 4, 5, 2])


_BLOCK_OFFSETS_S = np.arange(CONTEXT_BLOCKS) * BLOCK_S


def block_edges(ends_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end times (m, K) of the context blocks of steps ending at ``ends_s``; block 0 is the latest."""
    hi = ends_s[:, None] - _BLOCK_OFFSETS_S[None, :]
    return hi - BLOCK_S, hi


def span_moments(t_s: np.ndarray, accel_g: np.ndarray, lo_s: np.ndarray, hi_s: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sample count, mean (.., 3) and covariance (.., 3, 3) of the samples with lo < t <= hi."""
    a_t = np.ascontiguousarray(accel_g.T)  # (3, n): rows are contiguous, so the products and sums run fast
    prod = np.empty((9, len(t_s)))
    prod[:3] = a_t
    np.multiply(a_t[_PAIR_I], a_t[_PAIR_J], out=prod[3:])
    cum = np.zeros((9, len(t_s) + 1))
    np.cumsum(prod, axis=1, out=cum[:, 1:])
    i_lo = np.searchsorted(t_s, lo_s, side="right")
    i_hi = np.searchsorted(t_s, hi_s, side="right")
    n = i_hi - i_lo
    s = np.moveaxis(cum[:, i_hi] - cum[:, i_lo], 0, -1)
    nn = np.maximum(n, 1)[..., None]
    mean = s[..., :3] / nn
    cov6 = s[..., 3:] / nn - mean[..., _PAIR_I] * mean[..., _PAIR_J]  # xx, yy, zz, xy, xz, yz
    cov = cov6[..., _COV_OF_PAIRS].reshape(n.shape + (3, 3))
    return n, mean, cov


def window_moments(windows_g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (m, 3) and covariance (m, 3, 3) of each window in an (m, n, 3) array."""
    mean = windows_g.mean(axis=1)
    d = windows_g - mean[:, None, :]
    cov = np.einsum("mni,mnj->mij", d, d) / windows_g.shape[1]
    return mean, cov


def features_from_moments(mean_g: np.ndarray, cov_g2: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """Feature matrix (m, N_FEATURES) from block means (m, K, 3) and covariances (m, K, 3, 3).

    ``rotation`` (3, 3) maps device axes to the calibrated frame (row 0 up, 1 forward, 2 side).
    """
    m = mean_g.shape[0]
    mag = np.linalg.norm(mean_g, axis=-1)
    unit = mean_g / np.maximum(mag, 1e-6)[..., None]
    frame = unit @ rotation.T  # (m, K, 3): up, fwd, side
    var_total = np.maximum(np.trace(cov_g2, axis1=-2, axis2=-1), 0.0)
    var_vert = np.maximum(np.einsum("mki,mkij,mkj->mk", unit, cov_g2, unit), 0.0)
    var_horiz = np.maximum(var_total - var_vert, 0.0)
    per_block = np.empty((m, CONTEXT_BLOCKS, len(_PER_BLOCK)))
    per_block[..., 0:3] = frame
    # relative to the context's mean: accelerometers' gain errors make the static magnitude a sensor cue
    per_block[..., 3] = mag - mag.mean(axis=1, keepdims=True)
    per_block[..., 4] = np.log10(np.maximum(np.sqrt(var_total), ENERGY_FLOOR_G))
    per_block[..., 5] = np.log10(np.maximum(np.sqrt(var_vert), ENERGY_FLOOR_G))
    per_block[..., 6] = np.log10(np.maximum(np.sqrt(var_horiz), ENERGY_FLOOR_G))
    cos_turn = np.clip(np.sum(unit[:, :-1] * unit[:, 1:], axis=-1), -1.0, 1.0)
    turn_deg = np.degrees(np.arccos(cos_turn))
    cos_total = np.clip(np.sum(unit[:, 0] * unit[:, -1], axis=-1), -1.0, 1.0)
    out = np.empty((m, N_FEATURES))
    nb = CONTEXT_BLOCKS * len(_PER_BLOCK)
    out[:, :nb] = per_block.reshape(m, nb)
    out[:, nb:nb + CONTEXT_BLOCKS - 1] = turn_deg
    out[:, -4] = np.degrees(np.arccos(np.clip(frame[:, 0, 0], -1.0, 1.0)))
    out[:, -3] = np.abs(frame[:, 0, 1])
    out[:, -2] = np.abs(frame[:, 0, 2])
    out[:, -1] = np.degrees(np.arccos(cos_total))
    return out


def step_features(t_s: np.ndarray, accel_g: np.ndarray, ends_s: np.ndarray, rotation: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Features (m, N_FEATURES) of steps ending at ``ends_s`` and the sample count of each block (m, K)."""
    lo, hi = block_edges(ends_s)
    n, mean, cov = span_moments(t_s, accel_g, lo, hi)
    return features_from_moments(mean, cov, rotation), n


def window_features(windows_g: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """Features of (m, n, 3) windows of ``CONTEXT_S`` seconds; n must split into K equal blocks."""
    m, n, _ = windows_g.shape
    per = n // CONTEXT_BLOCKS
    blocks = windows_g[:, n - per * CONTEXT_BLOCKS:].reshape(m, CONTEXT_BLOCKS, per, 3)[:, ::-1]
    mean, cov = window_moments(blocks.reshape(m * CONTEXT_BLOCKS, per, 3))
    return features_from_moments(mean.reshape(m, CONTEXT_BLOCKS, 3),
                                 cov.reshape(m, CONTEXT_BLOCKS, 3, 3), rotation)


def rotation_to_up(upright_g: np.ndarray, up_axis: np.ndarray, forward_axis: np.ndarray) -> np.ndarray:
    """Rotation (3, 3) whose rows are up, forward, side: up along ``upright_g``, forward nearest ``forward_axis``.

    ``up_axis``/``forward_axis`` are where up and forward point in the device frame for the
    nominal mount; the smallest rotation taking ``up_axis`` onto ``upright_g`` carries
    ``forward_axis`` along with it, so the wearer's calibration tilts the frame without spinning it.
    """
    u = np.asarray(upright_g, float)
    u = u / np.linalg.norm(u)
    a = np.asarray(up_axis, float) / np.linalg.norm(up_axis)
    v = np.cross(a, u)
    s = np.linalg.norm(v)
    c = float(a @ u)
    if s < 1e-9:
        r = np.eye(3) if c > 0 else -np.eye(3)
    else:
        vx = np.array([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]])
        r = np.eye(3) + vx + vx @ vx * ((1.0 - c) / s ** 2)
    fwd = r @ (np.asarray(forward_axis, float) / np.linalg.norm(forward_axis))
    fwd = fwd - (fwd @ u) * u
    fwd /= np.linalg.norm(fwd)
    side = np.cross(u, fwd)
    return np.vstack([u, fwd, side])
