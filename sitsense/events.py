"""Typed events that flow from the posture stage and the tracker to the coach and the outputs.

Every event carries ``t``: monotonic seconds on the service's clock (in a replay, seconds since the
trace started). ``to_dict`` gives the JSON Lines form printed by ``simulate --json`` and ``run --json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

POSTURES = ("sitting", "standing", "walking", "lying", "not_worn", "unknown")
SEDENTARY = frozenset({"sitting", "lying"})
ACTIVE = frozenset({"standing", "walking"})


@dataclass(frozen=True)
class Event:
    """Base of all events; ``type`` names the event in JSON."""

    type: ClassVar[str] = "event"
    t: float

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        for f in fields(self):
            out[f.name] = _jsonable(getattr(self, f.name))
        return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


@dataclass(frozen=True)
class PostureChanged(Event):
    """The smoothed posture changed; ``since_t`` is when it began (earlier than ``t`` if backdated)."""

    type: ClassVar[str] = "posture"
    posture: str
    p: float
    previous: str
    since_t: float


@dataclass(frozen=True)
class Alert(Event):
    """A sedentary bout reached the limit (``reminder`` 1) or went on after it (2, 3, ...)."""

    type: ClassVar[str] = "alert"
    id: str
    bout_s: float
    bout_start_t: float
    reminder: int
    message: str
    time: str = ""  # ISO 8601 wall time, filled by the service
    exercise: dict[str, Any] | None = None
    safety: str | None = None


@dataclass(frozen=True)
class BreakTaken(Event):
    """The wearer stood or walked for at least ``break_s``; the bout before it ended."""

    type: ClassVar[str] = "break"
    start_t: float
    duration_s: float  # length when the break was confirmed; see BreakEnded for the full length


@dataclass(frozen=True)
class BreakEnded(Event):
    """A confirmed break ended (the wearer sat or lay down again, or the sensor was taken off)."""

    type: ClassVar[str] = "break_end"
    start_t: float
    duration_s: float


@dataclass(frozen=True)
class AlertOutcome(Event):
    """Whether a prompt was followed by a real break within the heed window, and how long it was."""

    type: ClassVar[str] = "outcome"
    alert_id: str
    reminder: int
    heeded: bool
    break_s: float
    release_s: float = 0.0
    exercise_id: str | None = None


@dataclass(frozen=True)
class Acknowledged(Event):
    """The wearer acknowledged alert ``alert_id`` (``cmd/ack``, the phone's *Done*): no more
    reminders in this bout. Not a break: the prompt is heeded only if a real break follows."""

    type: ClassVar[str] = "acknowledged"
    alert_id: str
    reminder: int
    bout_s: float


@dataclass(frozen=True)
class Paused(Event):
    """Alerts are paused until ``until_t`` (time is still counted)."""

    type: ClassVar[str] = "pause"
    until_t: float
    reason: str


@dataclass(frozen=True)
class Resumed(Event):
    """Alerts resumed after a pause."""

    type: ClassVar[str] = "resume"
    reason: str


@dataclass(frozen=True)
class Snoozed(Event):
    """The current reminder was snoozed; the next one comes at ``until_t`` at the earliest."""

    type: ClassVar[str] = "snooze"
    until_t: float


@dataclass(frozen=True)
class Calibrated(Event):
    """A new upright reference was taken (explicit, from walking, or after a remount)."""

    type: ClassVar[str] = "calibration"
    source: str
    upright_g: tuple[float, ...]  # (x, y, z) in g


@dataclass(frozen=True)
class Remounted(Event):
    """The sensor's orientation changed in a way no posture explains; references were reset."""

    type: ClassVar[str] = "remount"
    angle_deg: float


@dataclass(frozen=True)
class SensorStatus(Event):
    """The sensor's health changed: ``ok`` or a short fault text."""

    type: ClassVar[str] = "sensor"
    status: str
    detail: str = ""
    lost_samples: int = 0


@dataclass(frozen=True)
class HoldCue(Event):
    """A cue of a guided release: ``start``, ``switch`` or ``done``."""

    type: ClassVar[str] = "hold"
    cue: str
    exercise_id: str
    hold: int = 0


@dataclass(frozen=True)
class ExerciseRecognised(Event):
    """A stretch of time in which the wearer's movement matched a dynamic release."""

    type: ClassVar[str] = "exercise_seen"
    exercise_id: str
    start_t: float
    duration_s: float


@dataclass(frozen=True)
class DaySummary(Event):
    """Statistics of one local day (at midnight) or of the run so far (type ``summary`` at the end)."""

    type: ClassVar[str] = "day_summary"
    date: str
    sitting_s: float
    standing_s: float
    walking_s: float
    lying_s: float
    not_worn_s: float
    unknown_s: float
    longest_bout_s: float
    bouts: list[float] = field(default_factory=list)
    breaks: int = 0
    alerts: int = 0
    heeded: int = 0
    release_s: float = 0.0


@dataclass(frozen=True)
class RunSummary(DaySummary):
    """The final summary of a replay or run."""

    type: ClassVar[str] = "summary"


@dataclass(frozen=True)
class PostureNotice(Event):
    """How postures are being measured needs the wearer's attention: said once, with what to do.

    ``code``: ``uncalibrated`` (no upright reference yet), ``sit_stand_alike`` (this wearer's sitting
    and standing look alike from the mount, or a long still stand suggests a sit-down went unseen).
    """

    type: ClassVar[str] = "posture_notice"
    code: str
    message: str
