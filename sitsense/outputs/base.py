"""What every output (console, buzzer, MQTT, store) offers the service, and how commands come back."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Protocol

from ..events import Event

COMMANDS = ("snooze", "pause", "resume", "calibrate", "ack", "release")


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
    paused_until_t: float | None = None


@dataclass
class Command:
    """A request from outside (MQTT, the button): ``name`` is one of COMMANDS.

    ``reply`` is called by the service's loop with the result (a JSON-able dict).
    """

    name: str
    args: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    reply: Callable[[dict[str, Any]], None] | None = None


SubmitCommand = Callable[[Command], None]


class Output(Protocol):
    """An event sink; ``handle`` and ``update_state`` must return quickly and never raise."""

    def handle(self, event: Event) -> None: ...

    def update_state(self, state: StateSnapshot) -> None: ...

    def close(self) -> None: ...
