"""Online temporal smoothing: an HMM forward filter whose only doors between postures are transitions.

Hidden states are the four postures and the six postural transitions (``model.STATES``). A
posture is left only through a transition state (sitting -> sit_to_stand -> standing), so a
stand-to-sit movement followed by stillness moves the belief to sitting even when the final tilt
alone is ambiguous, and a still posture cannot flicker. Walking and standing switch directly.
Small leaks between postures let the filter recover when a transition was missed. A posture
change needs movement: on steps whose whole context is still, the transition states are all but
ruled out, so a long ambiguous posture cannot drift into another through a made-up transition.
"""

from __future__ import annotations

import numpy as np

from .model import STATES

_S = {name: i for i, name in enumerate(STATES)}
# Per-second rates of leaving one state for another (transition states last about 3 s).
_RATES_PER_S = {
    ("sitting", "sit_to_stand"): 0.02, ("sitting", "sit_to_lie"): 0.005,
    ("standing", "stand_to_sit"): 0.02, ("standing", "stand_to_lie"): 0.005,
    ("standing", "walking"): 0.05, ("walking", "standing"): 0.05,
    ("walking", "stand_to_sit"): 0.005,
    ("lying", "lie_to_sit"): 0.01, ("lying", "lie_to_stand"): 0.01,
    ("stand_to_sit", "sitting"): 0.35, ("sit_to_stand", "standing"): 0.35,
    ("sit_to_lie", "lying"): 0.35, ("lie_to_sit", "sitting"): 0.35,
    ("stand_to_lie", "lying"): 0.35, ("lie_to_stand", "standing"): 0.35,
    ("sit_to_stand", "walking"): 0.05, ("lie_to_stand", "walking"): 0.05,
}
_LEAK_PER_S = 2e-5  # between any two postures without a transition (recovers from a missed one)
# Each state reports as a posture: a transition still counts as the posture it leaves.
REPORTED_AS = {"stand_to_sit": "standing", "sit_to_stand": "sitting", "sit_to_lie": "sitting",
               "lie_to_sit": "lying", "stand_to_lie": "standing", "lie_to_stand": "lying"}
OUTPUT_POSTURES = ("sitting", "standing", "walking", "lying")


def transition_matrix(step_s: float, leak_per_s: float = _LEAK_PER_S) -> np.ndarray:
    """Row-stochastic (C, C) matrix of state changes over one step of ``step_s`` seconds."""
    n = len(STATES)
    rate = np.zeros((n, n))
    for (a, b), r in _RATES_PER_S.items():
        rate[_S[a], _S[b]] = r
    for i in range(4):
        for j in range(4):
            if i != j and rate[i, j] == 0.0:
                rate[i, j] = leak_per_s
    total = rate.sum(axis=1)
    stay = np.exp(-total * step_s)
    a_mat = np.where(total[:, None] > 0, rate / np.maximum(total[:, None], 1e-12), 0.0) * (1 - stay)[:, None]
    a_mat[np.diag_indices(n)] = stay
    return a_mat


def report_matrix() -> np.ndarray:
    """(C, 4) 0/1 matrix summing state probabilities into the reported postures."""
    m = np.zeros((len(STATES), len(OUTPUT_POSTURES)))
    for i, name in enumerate(STATES):
        m[i, OUTPUT_POSTURES.index(REPORTED_AS.get(name, name))] = 1.0
    return m


class ForwardFilter:
    """HMM forward pass over steps; keeps its belief across blocks."""

    def __init__(self, step_s: float, prior: np.ndarray, *, emission_power: float = 0.7,
                 leak_per_s: float = _LEAK_PER_S, still_transition_factor: float = 1e-3):
        self.transition = transition_matrix(step_s, leak_per_s)
        self.log_prior = np.log(np.asarray(prior, float))
        self.emission_power = emission_power
        self.still_transition_factor = still_transition_factor
        self.report = report_matrix()
        self.belief = self.initial_belief()

    @staticmethod
    def initial_belief() -> np.ndarray:
        b = np.zeros(len(STATES))
        b[:4] = 0.25
        return b

    def reset(self) -> None:
        self.belief = self.initial_belief()

    def run(self, log_proba: np.ndarray, valid: np.ndarray, moving: np.ndarray | None = None) -> np.ndarray:
        """Filter m steps of model log-probabilities; return the reported posture probabilities (m, 4).

        Invalid steps (too few samples) only let time pass; on steps not ``moving`` the transition
        states' likelihood is scaled by ``still_transition_factor``.
        """
        like = np.exp((log_proba - self.log_prior) * self.emission_power)
        if moving is not None:
            like[~moving, 4:] *= self.still_transition_factor
        like /= like.max(axis=1, keepdims=True)
        out = np.empty((len(like), len(STATES)))
        b = self.belief
        a_mat = self.transition
        for i in range(len(like)):
            b = b @ a_mat
            if valid[i]:
                b = b * like[i]
                s = b.sum()
                b = b / s if s > 0 else self.initial_belief()
            out[i] = b
        self.belief = b
        return out @ self.report
