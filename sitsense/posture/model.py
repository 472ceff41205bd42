"""The posture model: a small multinomial logistic regression shipped as plain arrays in an ``.npz``.

Classes are the four postures and the six postural transitions between sitting, standing and
lying; the smoother (``smoothing.py``) uses the transition classes as the only doors between
postures. Inference is one matrix product; training is full-batch gradient descent in numpy,
deterministic for the same data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

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
    """Standardisation, weights and metadata of the logistic regression."""

    mean: np.ndarray  # (F,)
    scale: np.ndarray  # (F,)
    weights: np.ndarray  # (F, C)
    bias: np.ndarray  # (C,)
    prior: np.ndarray  # (C,) class prior the fit assumed (frequencies after re-weighting)
    up_axis: np.ndarray = field(default_factory=NOMINAL_UP_AXIS.copy)
    forward_axis: np.ndarray = field(default_factory=NOMINAL_FORWARD_AXIS.copy)
    trained_on: str = ""

    def log_proba(self, features: np.ndarray) -> np.ndarray:
        """Log class probabilities (m, C) of feature rows (m, F)."""
        z = ((features - self.mean) / self.scale) @ self.weights + self.bias
        z -= z.max(axis=1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))

    def proba(self, features: np.ndarray) -> np.ndarray:
        return np.exp(self.log_proba(features))

    def save(self, path: str | Path) -> None:
        """Write the model as plain arrays (no pickles)."""
        p = Path(path)
        with open(p, "wb") as fh:
            np.savez_compressed(
                fh, version=np.array(MODEL_VERSION), feature_names=np.array(FEATURE_NAMES),
                states=np.array(STATES), mean=self.mean, scale=self.scale, weights=self.weights,
                bias=self.bias, prior=self.prior, up_axis=self.up_axis, forward_axis=self.forward_axis,
                trained_on=np.array(self.trained_on))

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
        if w.shape != (N_FEATURES, len(STATES)) or not np.isfinite(w).all():
            raise ModelError(f"{p}: weights have shape {w.shape}, expected {(N_FEATURES, len(STATES))}")
        return cls(arrays["mean"], arrays["scale"], w, arrays["bias"], arrays["prior"],
                   arrays.get("up_axis", NOMINAL_UP_AXIS), arrays.get("forward_axis", NOMINAL_FORWARD_AXIS),
                   str(arrays.get("trained_on", "")))


def fit_logistic(features: np.ndarray, labels: np.ndarray, *, l2: float = 1e-3, iterations: int = 600,
                 learning_rate: float = 0.05, class_weight_power: float = 0.5, trained_on: str = ""
                 ) -> PostureModel:
    """Fit a multinomial logistic regression with Adam on the full batch (deterministic).

    Classes are re-weighted by ``frequency ** -class_weight_power`` so the short transition
    classes are not drowned by the long postures.
    """
    if len(features) == 0:
        raise ModelError("no labelled steps to train on")
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
    w = np.zeros((x.shape[1], n_classes))
    b = np.log(prior)
    params = [w, b]
    m1 = [np.zeros_like(p) for p in params]
    m2 = [np.zeros_like(p) for p in params]
    for it in range(1, iterations + 1):
        z = x @ w + b
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        g = (p - y) * sw[:, None]
        grads = [x.T @ g + l2 * w, g.sum(axis=0)]
        for i, (param, grad) in enumerate(zip(params, grads)):
            m1[i] = 0.9 * m1[i] + 0.1 * grad
            m2[i] = 0.999 * m2[i] + 0.001 * grad * grad
            step = learning_rate * (m1[i] / (1 - 0.9 ** it)) / (np.sqrt(m2[i] / (1 - 0.999 ** it)) + 1e-8)
            param -= step
    return PostureModel(mean, scale, w, b, effective_prior, trained_on=trained_on)
