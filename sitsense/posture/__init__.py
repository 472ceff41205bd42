"""Posture: from blocks of acceleration to one smoothed posture per step."""

from __future__ import annotations

from ..config import PostureConfig
from .base import PostureClassifier, PostureEstimate

__all__ = ["PostureClassifier", "PostureEstimate", "make_classifier"]


def make_classifier(cfg: PostureConfig, sample_rate_hz: float) -> PostureClassifier:
    """The classifier the service uses, built from the ``[posture]`` config."""
    from .classifier import StreamingClassifier
    from .model import PostureModel

    return StreamingClassifier(PostureModel.load(cfg.model or None), step_s=cfg.step_s,
                               sample_rate_hz=sample_rate_hz, calibration_s=cfg.calibration_s,
                               not_worn_s=cfg.not_worn_min * 60, decide_every_s=cfg.decide_every_s)
