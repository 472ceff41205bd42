"""The posture model: a small neural network (one tanh layer) shipped as plain arrays in an ``.npz``.

Classes are the four postures and the six postural transitions between sitting, standing and
lying; the smoother (``smoothing.py``) uses the transition classes as the only doors between
postures. Inference is two matrix products; training is full-batch Adam in numpy from a fixed
seed, so the same data gives the same model. With no hidden layer it is a logistic regression.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import ModelError
from .features import FEATURE_NAMES, N_FEATURES

MODEL_VERSION = 1
DEFAULT_MODEL_PATH = Path(__file__).with_name("model.npz")

# State order shared by the model and the smoother.
STATES = ("sitting", "standing", "walking", "lying",
          "stand_to_sit", "sit_to_stand", "sit_to_lie", "lie_to_sit", "stand_to_lie", "lie_to_stand")
POSTURE_STATES = STATES[:4]
# HAPT activity id -> state index (walking and both stair activities are walking)
HAPT_STATE = {1: 2, 2: 2, 3: 2, 4: 0, 5: 1, 6: 3, 7: 4, 8: 5, 9: 6, 10: 7, 11: 8, 12: 9}
# The nominal mount in device axes: HAPT's phone on the belt has +x up and sitting tilts towards +y.
NOMINAL_UP_AXIS = np.array([1.0, 0.0, 0.0])
NOMINAL_FORWARD_AXIS = np.array([0.0, 1.0, 0.0])


@dataclass
class PostureModel:
    """Standardisation, weights and metadata of the network."""

    mean: np.ndarray  # (F,)
    scale: np.ndarray  # (F,)
    weights: np.ndarray  # (H, C), or (F, C) without a hidden layer
    bias: np.ndarray  # (C,)
    prior: np.ndarray  # (C,) class prior the fit assumed (frequencies after re-weighting)
    up_axis: np.ndarray = field(default_factory=NOMINAL_UP_AXIS.copy)
    forward_axis: np.ndarray = field(default_factory=NOMINAL_FORWARD_AXIS.copy)
    trained_on: str = ""
    hidden_weights: np.ndarray | None = None  # (F, H)
    hidden_bias: np.ndarray | None = None  # (H,)

    def log_proba(self, features: np.ndarray) -> np.ndarray:
        """Log class probabilities (m, C) of feature rows (m, F)."""
        x = (features - self.mean) / self.scale
        if self.hidden_weights is not None:
            x = np.tanh(x @ self.hidden_weights + self.hidden_bias)
        z = x @ self.weights + self.bias
        z -= z.max(axis=1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))

    def save(self, path: str | Path) -> None:
        """Write the model as plain arrays (no pickles)."""
        p = Path(path)
        with open(p, "wb") as fh:
            np.savez_compressed(
                fh, version=np.array(MODEL_VERSION), feature_names=np.array(FEATURE_NAMES),
                states=np.array(STATES), mean=self.mean, scale=self.scale, weights=self.weights,
                bias=self.bias, prior=self.prior, up_axis=self.up_axis, forward_axis=self.forward_axis,
                trained_on=np.array(self.trained_on),
                **self._hidden_arrays())

    def _hidden_arrays(self) -> dict[str, Any]:  # Any: numpy's stub lets a ** mapping fill allow_pickle
        """The hidden layer's arrays, when the model has one."""
        if self.hidden_weights is None or self.hidden_bias is None:
            return {}
        return {"hidden_weights": self.hidden_weights, "hidden_bias": self.hidden_bias}

    @classmethod
    def load(cls, path: str | Path | None = None) -> "PostureModel":
        """Read a model file (default: the one shipped with sitsense); raise ModelError if unusable."""
        p = Path(path) if path else DEFAULT_MODEL_PATH
        try:
            with np.load(p, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except FileNotFoundError:
            raise ModelError(f"{p}: no such posture model; train one with 'sitsense train --hapt DIR "
                             "-o FILE' or leave posture.model empty for the shipped one") from None
        except (OSError, ValueError) as exc:
            raise ModelError(f"{p}: not a posture model file ({exc})") from None
        need = ("version", "feature_names", "states", "mean", "scale", "weights", "bias", "prior")
        missing = [k for k in need if k not in arrays]
        if missing:
            raise ModelError(f"{p}: not a posture model file (missing {', '.join(missing)})")
        if int(arrays["version"]) != MODEL_VERSION:
            raise ModelError(f"{p}: model version {int(arrays['version'])}, this sitsense reads "
                             f"version {MODEL_VERSION}; retrain with 'sitsense train'")
        if tuple(arrays["feature_names"].tolist()) != FEATURE_NAMES or tuple(arrays["states"].tolist()) != STATES:
            raise ModelError(f"{p}: model was trained with other features or states; retrain with "
                             "'sitsense train'")
        w = arrays["weights"]
        hw = arrays.get("hidden_weights")
        n_in = N_FEATURES if hw is None else hw.shape[1]
        if (w.shape != (n_in, len(STATES)) or (hw is not None and hw.shape[0] != N_FEATURES)
                or not all(np.isfinite(a).all() for a in arrays.values() if a.dtype.kind == "f")):
            raise ModelError(f"{p}: weights have the wrong shape or are not finite; retrain with 'sitsense train'")
        return cls(arrays["mean"], arrays["scale"], w, arrays["bias"], arrays["prior"],
                   arrays.get("up_axis", NOMINAL_UP_AXIS), arrays.get("forward_axis", NOMINAL_FORWARD_AXIS),
                   str(arrays.get("trained_on", "")), hw, arrays.get("hidden_bias"))


PROGRESS_EVERY = 25


def fit(features: np.ndarray, labels: np.ndarray, *, hidden: int = 16, l2: float = 1e-3,
        iterations: int = 1500, learning_rate: float = 0.01, class_weight_power: float = 0.5,
        seed: int = 0, trained_on: str = "", progress: Callable[[int, int], None] | None = None) -> PostureModel:
    """Fit the network with Adam on the full batch (deterministic for a seed).

    ``progress(iteration, iterations)`` every ``PROGRESS_EVERY`` iterations, if given.

    Classes are re-weighted by ``frequency ** -class_weight_power`` so the short transition
    classes are not drowned by the long postures. ``hidden=0`` fits a logistic regression.
    """
    if len(features) == 0:
        raise ModelError("no labelled steps to train on")
    rng = np.random.default_rng(seed)
    n_classes = len(STATES)
    mean = features.mean(axis=0)
    scale = features.std(axis=0)
    scale[scale < 1e-9] = 1.0
    x = (features - mean) / scale
    y = np.eye(n_classes)[labels]
    counts = y.sum(axis=0)
    prior = (counts + 1.0) / (counts.sum() + n_classes)
    cw = prior ** -class_weight_power
    effective_prior = prior * cw / (prior * cw).sum()  # what the weighted fit believes; the smoother divides by it
    sw = cw[labels]
    sw /= sw.sum()
    n_in = x.shape[1]
    params = []
    if hidden:
        params += [rng.normal(0, 1 / np.sqrt(n_in), (n_in, hidden)), np.zeros(hidden)]
    n_top = hidden or n_in
    params += [rng.normal(0, 0.01, (n_top, n_classes)), np.log(prior)]
    m1 = [np.zeros_like(q) for q in params]
    m2 = [np.zeros_like(q) for q in params]
    for it in range(1, iterations + 1):
        if progress is not None and it % PROGRESS_EVERY == 0:
            progress(it, iterations)
        if hidden:
            w1, b1, w2, b2 = params
            h = np.tanh(x @ w1 + b1)
        else:
            w2, b2 = params
            h = x
        z = h @ w2 + b2
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        g = (p - y) * sw[:, None]
        grads = [h.T @ g + l2 * w2, g.sum(axis=0)]
        if hidden:
            gh = (g @ w2.T) * (1 - h * h)
            grads = [x.T @ gh + l2 * w1, gh.sum(axis=0)] + grads
        for i, (param, grad) in enumerate(zip(params, grads)):
            m1[i] = 0.9 * m1[i] + 0.1 * grad
            m2[i] = 0.999 * m2[i] + 0.001 * grad * grad
            param -= learning_rate * (m1[i] / (1 - 0.9 ** it)) / (np.sqrt(m2[i] / (1 - 0.999 ** it)) + 1e-8)
    if hidden:
        return PostureModel(mean, scale, params[2], params[3], effective_prior, trained_on=trained_on,
                            hidden_weights=params[0], hidden_bias=params[1])
    return PostureModel(mean, scale, params[0], params[1], effective_prior, trained_on=trained_on)
