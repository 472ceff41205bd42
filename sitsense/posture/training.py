"""Training data from HAPT-layout recordings, and the training run behind ``sitsense train``.

Each recording is calibrated as in the evaluation protocol (first 5 s of its first standing);
every step whose latest block sits in a labelled activity becomes one row of features, labelled
with that activity's state. Recordings without standing are calibrated from their walking.
"""

from __future__ import annotations

import inspect
from typing import Callable

import numpy as np

from ..errors import DatasetError
from ..traces import Trace
from .evaluate import decimate, upright_reference
from .calibration import HEADING_FIRST_STEPS, heading_candidates, horizontal
from .features import BLOCK_S, CONTEXT_S, N_FEATURES, block_edges, features_from_moments, rotation_to_up, span_moments
from .model import HAPT_STATE, NOMINAL_FORWARD_AXIS, NOMINAL_UP_AXIS, PostureModel, fit

_STATE_OF_ACTIVITY = np.full(13, -1)
for _act, _state in HAPT_STATE.items():
    _STATE_OF_ACTIVITY[_act] = _state


def walking_reference(trace: Trace) -> np.ndarray | None:
    """Mean acceleration over the labelled walking of a recording."""
    if trace.activity is None:
        return None
    walk = trace.activity == 1
    return trace.accel_g[walk].mean(axis=0) if walk.any() else None


def _step_moments(trace: Trace, step_s: float):
    t = trace.t_s
    ends = np.arange(t[0] + CONTEXT_S, t[-1], step_s)
    lo, hi = block_edges(ends)
    n, mean, cov = span_moments(t, trace.accel_g, lo, hi)
    return ends, mean, cov


def recording_frame(trace: Trace, *, step_s: float = 1.0) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Upright (protocol reference, else walking) and sitting heading of one recording (None if unknown)."""
    up = upright_reference(trace)
    if up is None:
        up = walking_reference(trace)
    if up is None:
        return None, None
    up = up / np.linalg.norm(up)
    _, mean, cov = _step_moments(trace, step_s)
    unit = mean / np.maximum(np.linalg.norm(mean, axis=-1), 1e-6)[..., None]
    std = np.sqrt(np.maximum(np.trace(cov, axis1=-2, axis2=-1), 0.0))
    turn = np.degrees(np.arccos(np.clip(np.sum(unit[:, :-1] * unit[:, 1:], axis=-1), -1.0, 1.0)))
    cand = heading_candidates(up, unit[:, 0], std, turn)
    if cand.sum() < HEADING_FIRST_STEPS:
        return up, None
    h = horizontal(up, unit[cand, 0]).sum(axis=0)
    return up, h / np.linalg.norm(h)


def trace_rows(trace: Trace, up: np.ndarray | None, heading: np.ndarray | None,
               nominal_forward: np.ndarray, *, step_s: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Features and state labels of every labelled step of one HAPT recording."""
    if trace.activity is None:
        raise DatasetError(f"{trace.source}: no HAPT activity labels to train on")
    if up is None:
        return np.empty((0, N_FEATURES)), np.empty(0, dtype=int)
    rot = (rotation_to_up(up, up, heading) if heading is not None
           else rotation_to_up(up, NOMINAL_UP_AXIS, nominal_forward))
    ends, mean, cov = _step_moments(trace, step_s)
    probe = np.searchsorted(trace.t_s, ends - BLOCK_S / 2)
    state = _STATE_OF_ACTIVITY[trace.activity[np.minimum(probe, len(trace) - 1)].astype(int)]
    keep = state >= 0
    return features_from_moments(mean[keep], cov[keep], rot), state[keep]


def training_set(traces: list[Trace], *, rates_hz: tuple[float, ...] = (50.0, 25.0),
                 progress: Callable[[int, int], None] | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows from every recording at each sample rate (the model must work from 20 to 100 Hz).

    Also returns the nominal forward axis: the mean sitting heading over the recordings.
    ``progress(done, total)`` after each recording's rows, counted in recordings.
    """
    frames = [recording_frame(tr) for tr in traces]
    heads = [h for _, h in frames if h is not None]
    nominal = np.mean(heads, axis=0) if heads else NOMINAL_FORWARD_AXIS
    nominal = nominal - (nominal @ NOMINAL_UP_AXIS) * NOMINAL_UP_AXIS
    nominal /= np.linalg.norm(nominal)
    xs, ys = [], []
    for k, (trace, (up, heading)) in enumerate(zip(traces, frames), start=1):
        for rate in rates_hz:
            x, y = trace_rows(decimate(trace, rate), up, heading, nominal)
            if len(y):
                xs.append(x)
                ys.append(y)
        if progress is not None:
            progress(k, len(traces))
    if not xs:
        raise DatasetError("no labelled HAPT steps to train on")
    return np.vstack(xs), np.concatenate(ys), nominal


# Progress of a training run is counted in fit iterations: the full-batch iterations all cost the
# same, and building the rows beforehand costs about as much as this many of them (both scale with
# the number of rows; measured on HAPT users 1-24: 0.18 s of rows, 7.8 ms per iteration).
ROWS_AS_ITERATIONS = 25


def train(traces: list[Trace], *, trained_on: str = "", progress: Callable[[int, int], None] | None = None,
          **fit_options) -> PostureModel:
    """Fit the shipped model type on recordings.

    ``progress(done, total)`` now and then, in fit iterations (building the rows counts as
    ``ROWS_AS_ITERATIONS`` of them). The model is the same with or without it.
    """
    if progress is None:
        x, y, nominal = training_set(traces)
        model = fit(x, y, trained_on=trained_on, **fit_options)
    else:
        iterations = int(fit_options.get("iterations", inspect.signature(fit).parameters["iterations"].default))
        total = ROWS_AS_ITERATIONS + iterations
        x, y, nominal = training_set(
            traces, progress=lambda done, n: progress(round(ROWS_AS_ITERATIONS * done / n), total))
        model = fit(x, y, trained_on=trained_on, progress=lambda it, n: progress(ROWS_AS_ITERATIONS + it, total),
                    **fit_options)
        progress(total, total)
    model.forward_axis = nominal
    return model
