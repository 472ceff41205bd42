"""Training data from HAPT-layout recordings, and the training run behind ``sitsense train``.

Each recording is calibrated as in the evaluation protocol (first 5 s of its first standing);
every step whose latest block sits in a labelled activity becomes one row of features, labelled
with that activity's state. Recordings without standing are calibrated from their walking.
"""

from __future__ import annotations

import numpy as np

from ..errors import DatasetError
from ..traces import Trace
from .evaluate import decimate, upright_reference
from .features import BLOCK_S, CONTEXT_S, rotation_to_up, step_features
from .model import HAPT_STATE, NOMINAL_FORWARD_AXIS, NOMINAL_UP_AXIS, PostureModel, fit_logistic

_STATE_OF_ACTIVITY = np.full(13, -1)
for _act, _state in HAPT_STATE.items():
    _STATE_OF_ACTIVITY[_act] = _state


def walking_reference(trace: Trace) -> np.ndarray | None:
    """Mean acceleration over the labelled walking of a recording."""
    if trace.activity is None:
        return None
    walk = trace.activity == 1
    return trace.accel_g[walk].mean(axis=0) if walk.any() else None


def trace_rows(trace: Trace, *, step_s: float = 1.0, up: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """Features and state labels of every labelled step of one HAPT recording."""
    if trace.activity is None:
        raise DatasetError(f"{trace.source}: no HAPT activity labels to train on")
    if up is None:
        up = upright_reference(trace)
    if up is None:
        up = walking_reference(trace)
    if up is None:
        return np.empty((0, 0)), np.empty(0, dtype=int)
    rot = rotation_to_up(up, NOMINAL_UP_AXIS, NOMINAL_FORWARD_AXIS)
    t = trace.t_s
    ends = np.arange(t[0] + CONTEXT_S, t[-1], step_s)
    probe = np.searchsorted(t, ends - BLOCK_S / 2)
    state = _STATE_OF_ACTIVITY[trace.activity[np.minimum(probe, len(t) - 1)].astype(int)]
    keep = state >= 0
    feats, _ = step_features(t, trace.accel_g, ends[keep], rot)
    return feats, state[keep]


def training_set(traces: list[Trace], *, rates_hz: tuple[float, ...] = (50.0, 25.0)
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Rows from every recording at each sample rate (the model must work from 20 to 100 Hz)."""
    xs, ys = [], []
    for trace in traces:
        for rate in rates_hz:
            x, y = trace_rows(decimate(trace, rate))
            if len(y):
                xs.append(x)
                ys.append(y)
    if not xs:
        raise DatasetError("no labelled HAPT steps to train on")
    return np.vstack(xs), np.concatenate(ys)


def train(traces: list[Trace], *, trained_on: str = "") -> PostureModel:
    """Fit the shipped model type on recordings."""
    x, y = training_set(traces)
    return fit_logistic(x, y, trained_on=trained_on)
