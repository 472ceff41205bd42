"""The posture stage's contract: blocks of samples in, one smoothed posture per step out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..events import Event


@dataclass(frozen=True)
class PostureEstimate:
    """The posture over the step ending at ``t``, with its probability.

    ``since_t`` is set when the estimate corrects the past: the posture has held since then
    (used for ``not_worn``, which is only recognised after a long stillness).
    """

    t: float
    posture: str
    p: float
    since_t: float | None = None


class PostureClassifier(Protocol):
    """Streaming classifier; keeps its own filter state across blocks."""

    step_s: float

    def process(self, t_s: np.ndarray, accel_g: np.ndarray) -> list[PostureEstimate]:
        """Consume a block of samples (t in seconds, (n, 3) in g); return the steps it completed."""
        ...

    def flush(self) -> list[PostureEstimate]:
        """Decide now every completed step still held back for a later batch (end of a stream)."""
        ...

    def set_reference(self, upright_g: np.ndarray | None) -> None:
        """Use an explicit upright reference (from ``sitsense calibrate``), or forget it."""
        ...

    def pop_events(self) -> list[Event]:
        """Calibration and remount events raised since the last call."""
        ...


@runtime_checkable
class LearnsWearer(Protocol):
    """A classifier that learns the wearer's own sitting and standing (kept with the day's calibration)."""

    def teach(self, posture: str, gravity_g: np.ndarray) -> None:
        """A measured still ``posture`` of this wearer (``sitsense calibrate --sit``)."""
        ...

    def wearer_state(self) -> dict[str, Any]:
        """What was learned, as JSON-able data for the checkpoint."""
        ...

    def restore_wearer(self, state: Any) -> None:
        """Take back what ``wearer_state`` gave (anything unreadable is ignored)."""
        ...
