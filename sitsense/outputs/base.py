"""What every output (console, buzzer, MQTT, store) offers the service, and the state it is shown."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from ..events import Event


@dataclass(frozen=True)
class StateSnapshot:
    """The live state outputs may show; built by the service once per step."""

    t: float
    wall: datetime
    posture: str
    p: float
    bout_s: float
    sitting_today_s: float
    breaks_today: int
    alerts_today: int
    release_today_s: float
    sensor: str = "ok"
    storage: str = "ok"  # the state folder: ok, full, read-only or failing (sitsense.storage)
    paused_until_t: float | None = None
    snoozed_until_t: float | None = None


class Output(Protocol):
    """An event sink; ``handle`` and ``update_state`` must return quickly and never raise."""

    def handle(self, event: Event) -> None: ...

    def update_state(self, state: StateSnapshot) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class WantsFreshState(Protocol):
    """An output that needs the postures up to a time decided now (the store's checkpoints); the
    service otherwise decides them in batches (``posture.decide_every_s``)."""

    def wants_fresh_state(self, t: float) -> bool: ...
