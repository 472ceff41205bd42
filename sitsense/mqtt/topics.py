"""MQTT topics and payloads, pure and tested as data (a leaf: the client and ``hass`` import it).

Topics under ``<prefix>/<device_id>/``: ``status`` (retained online/offline, Last Will), plain
retained tiles, ``state`` (retained JSON), ``alert`` and ``event`` (QoS 1, not retained, each with
a unique ``id``), ``cmd/<name>`` in and ``cmd/<name>/result`` out, ``last_command`` (retained),
``posture_check`` (retained JSON: ``ok`` or the latest posture notice, with what to do).
"""

from __future__ import annotations

import json
import re
import socket
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..clock import shift_wall
from ..config import DEVICE_ID_CHARS, DEVICE_ID_MAX
from ..control import RequestRejected, check_args, lookup
from ..events import (Acknowledged, Alert, AlertOutcome, BreakEnded, BreakTaken, Calibrated, DaySummary, Event,
                      Paused, PostureNotice, Remounted, Resumed, SensorStatus, Snoozed)
from ..outputs.base import StateSnapshot

ONLINE, OFFLINE = "online", "offline"
MAX_COMMAND_BYTES = 1024

DEVICE_ID_PATTERN = rf"[{DEVICE_ID_CHARS}]{{1,{DEVICE_ID_MAX}}}"  # a non-empty device id (re.fullmatch)

# A replay (``sitsense simulate --mqtt``) publishes as its own device, ``<device_id>-replay``, so it
# never overwrites the live device's retained tiles or marks it offline.
REPLAY_SUFFIX = "-replay"

# Events published on ``event``. Not published: Alert (its own topic), PostureChanged (shown by the
# tiles; publishing every change would flood a phone) and HoldCue (the buzzer's second-by-second
# cues of a guided release). DaySummary covers the final RunSummary too.
PUBLISHED_EVENTS: tuple[type[Event], ...] = (BreakTaken, BreakEnded, AlertOutcome, DaySummary, Calibrated, Remounted,
                                             SensorStatus, Paused, Resumed, Snoozed, Acknowledged, PostureNotice)

# Plain retained topics for dashboard tiles, relative to the device's base topic.
TILES = ("posture", "bout_min", "today/sitting_min", "today/breaks", "today/alerts", "today/release_min",
         "sensor", "alerts", "storage")

# Tiles that change merely because time passes (whole minutes of sitting).
CLOCK_TILES = frozenset({"bout_min", "today/sitting_min"})


@dataclass(frozen=True)
class TopicSpec:
    """One row of the topic table: a topic under ``<prefix>/<device_id>/``, how it travels, its payload.

    ``retained`` is None for the topics sitsense reads (commands: never retained); ``docs/reference/mqtt.md``
    is generated from ``TOPIC_TABLE`` and a test checks every publish against it."""

    name: str
    retained: bool | None
    qos: int
    payload: str

    @property
    def incoming(self) -> bool:
        return self.retained is None


TOPIC_TABLE: tuple[TopicSpec, ...] = (
    TopicSpec("status", True, 1, "`online`; `offline` on a clean stop, and as the Last Will when the Pi vanishes "
              "(after about 1.5 x `keepalive_s`)"),
    TopicSpec("posture", True, 0, "`sitting`, `standing`, `walking`, `lying`, `not_worn` or `unknown` (shown once it "
              "lasted `state_interval_s`)"),
    TopicSpec("bout_min", True, 0, "current sedentary bout, whole minutes"),
    TopicSpec("today/sitting_min", True, 0, "sitting today, whole minutes"),
    TopicSpec("today/breaks", True, 0, "breaks today"),
    TopicSpec("today/alerts", True, 0, "alerts today"),
    TopicSpec("today/release_min", True, 0, "hip-flexor release today, minutes with one decimal"),
    TopicSpec("sensor", True, 0, "`ok` or a short fault text (e.g. `i2c_error`), published as soon as it changes"),
    TopicSpec("alerts", True, 0, "`on`, `paused until 10:45` or `snoozed until 09:52` (the wearer's local time), "
              "published as soon as it changes"),
    TopicSpec("storage", True, 0, "the state folder: `ok`, `full`, `read-only` or `failing` (then the day's state "
              "and the outbox are only in memory)"),
    TopicSpec("state", True, 0, "JSON: `{time, posture, p, bout_min, bout_start, today: {sitting_min, breaks, "
              "alerts, release_min}, sensor, storage, alerts, paused_until, snoozed_until}`; the last two are "
              "ISO 8601 times, `null` when no pause or snooze is in force"),
    TopicSpec("alert", False, 1, "JSON: `{id, event_type, time, bout_min, reminder, message, exercise: {id, name, "
              "dose, cue}, safety}`; `event_type` is `stand_up` (first alert of a bout) or `reminder`"),
    TopicSpec("event", False, 1, "JSON with `type`, a unique `id`, the wall `time` and the event's fields "
              "(the types are listed below)"),
    TopicSpec("posture_check", True, 1, "JSON `{code, message}`: `ok`, `uncalibrated` (no upright reference yet) "
              "or `sit_stand_alike` (this wearer's sitting looks like their standing), with what to do; "
              "published on connect and when it changes"),
    TopicSpec("cmd/<name>", None, 1, "commands to sitsense (below); never retained"),
    TopicSpec("cmd/<name>/result", False, 1, 'JSON answer to each command, e.g. '
              '`{"command": "snooze", "ok": true, "t": 1862.0}`'),
    TopicSpec("last_command", True, 1, "the latest answer, accepted or refused, with its wall `time`"),
)


def resolve_device_id(device_id: str, hostname: str | None = None) -> str:
    """The configured id, or the host name made topic-safe (letters, digits, '_' and '-')."""
    if device_id:
        return device_id
    name = hostname if hostname is not None else socket.gethostname()
    name = re.sub(rf"[^{DEVICE_ID_CHARS}]", "-", name.split(".")[0]).strip("-")[:DEVICE_ID_MAX]
    return name or "sitsense"


def replay_device_id(device_id: str, hostname: str | None = None) -> str:
    """The device id a replay publishes as: the live one (see ``resolve_device_id``) plus ``-replay``."""
    return resolve_device_id(device_id, hostname) + REPLAY_SUFFIX


@dataclass(frozen=True)
class Topics:
    """Every topic of one device, derived from ``<prefix>/<device_id>``."""

    base: str

    @classmethod
    def for_device(cls, prefix: str, device_id: str) -> "Topics":
        return cls(f"{prefix.strip('/')}/{device_id}")

    @property
    def status(self) -> str:
        return f"{self.base}/status"

    @property
    def state(self) -> str:
        return f"{self.base}/state"

    @property
    def alert(self) -> str:
        return f"{self.base}/alert"

    @property
    def event(self) -> str:
        return f"{self.base}/event"

    @property
    def cmd_filter(self) -> str:
        """The subscription for commands; '+' is one level, so results are not matched."""
        return f"{self.base}/cmd/+"

    def tile(self, name: str) -> str:
        return f"{self.base}/{name}"

    def cmd(self, name: str) -> str:
        return f"{self.base}/cmd/{name}"

    def cmd_result(self, name: str) -> str:
        return f"{self.base}/cmd/{name}/result"

    @property
    def posture_check(self) -> str:
        """Retained: whether postures are measured as they should be (``posture_check_payload``)."""
        return f"{self.base}/posture_check"

    @property
    def last_command(self) -> str:
        """Retained: the answer to the latest command, accepted or refused (outside ``cmd/+``)."""
        return f"{self.base}/last_command"

    def cmd_name(self, topic: str) -> str | None:
        """The command a topic of this device's command tree names (one level under ``cmd/``), else None."""
        prefix = self.base + "/cmd/"
        name = topic[len(prefix):]
        if not topic.startswith(prefix) or not name or "/" in name:
            return None
        return name


def encode(payload: Any) -> bytes:
    """Compact UTF-8 JSON, the form of every JSON payload sitsense publishes."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False,
                      default=str).encode("utf-8")


def iso(wall: datetime) -> str:
    """The ISO 8601 form of wall times in payloads (whole seconds, with the UTC offset)."""
    return wall.isoformat(timespec="seconds")


def _minutes(seconds: float, digits: int = 1) -> float:
    return round(seconds / 60.0, digits)


def alert_payload(alert: Alert, *, time_iso: str) -> dict[str, Any]:
    """The ``alert`` message; ``event_type`` lets Home Assistant's event entity fire on it."""
    exercise = None
    if alert.exercise:
        exercise = {k: alert.exercise.get(k) for k in ("id", "name", "dose", "cue")}
    return {
        "id": alert.id,
        "event_type": "stand_up" if alert.reminder <= 1 else "reminder",
        "time": alert.time or time_iso,
        "bout_min": _minutes(alert.bout_s),
        "reminder": alert.reminder,
        "message": alert.message,
        "exercise": exercise,
        "safety": alert.safety,
    }


def event_payload(event: Event, *, event_id: str, time_iso: str) -> dict[str, Any]:
    """An ``event`` message: the event's own fields, a unique ``id`` and the wall ``time``."""
    out = event.to_dict()
    out["id"] = event_id
    out["time"] = time_iso
    return out


def _in_force(state: StateSnapshot, until_t: float | None) -> datetime | None:
    """The wall time a pause or snooze ends, or None if there is none or it is over."""
    if until_t is None or until_t <= state.t:
        return None
    return shift_wall(state.wall, until_t - state.t)


def alerts_tile(state: StateSnapshot) -> str:
    """``on``, ``paused until HH:MM`` or ``snoozed until HH:MM`` (the wearer's local time)."""
    if (until := _in_force(state, state.paused_until_t)) is not None:
        return f"paused until {until:%H:%M}"
    if (until := _in_force(state, state.snoozed_until_t)) is not None:
        return f"snoozed until {until:%H:%M}"
    return "on"


def tile_values(state: StateSnapshot) -> dict[str, str]:
    """The plain tile payloads. Whole minutes for bout and sitting, so tiles change at most once a
    minute; release minutes keep a decimal because a day's release is only a few minutes."""
    return {
        "posture": state.posture,
        "bout_min": str(int(state.bout_s // 60)),
        "today/sitting_min": str(int(state.sitting_today_s // 60)),
        "today/breaks": str(state.breaks_today),
        "today/alerts": str(state.alerts_today),
        "today/release_min": f"{state.release_today_s / 60.0:.1f}",
        "sensor": state.sensor,
        "alerts": alerts_tile(state),
        "storage": state.storage,
    }


def state_payload(state: StateSnapshot) -> dict[str, Any]:
    """The retained JSON ``state``: the tiles' values as numbers, plus timestamps (a pause or snooze
    that is over shows as null)."""
    paused_until, snoozed_until = (_in_force(state, state.paused_until_t), _in_force(state, state.snoozed_until_t))
    bout_start = iso(shift_wall(state.wall, -state.bout_s)) if state.bout_s > 0 else None
    return {
        "time": iso(state.wall),
        "posture": state.posture,
        "p": round(state.p, 3),
        "bout_min": int(state.bout_s // 60),
        "bout_start": bout_start,
        "today": {
            "sitting_min": int(state.sitting_today_s // 60),
            "breaks": state.breaks_today,
            "alerts": state.alerts_today,
            "release_min": round(state.release_today_s / 60.0, 1),
        },
        "sensor": state.sensor,
        "storage": state.storage,
        "alerts": alerts_tile(state),
        "paused_until": paused_until and iso(paused_until),
        "snoozed_until": snoozed_until and iso(snoozed_until),
    }


def _short(text: str, limit: int = 80) -> str:
    """A topic or name from the network, quoted and cut for a one-line message."""
    shown = repr(text)
    return shown if len(shown) <= limit else shown[:limit - 3] + "..."


POSTURE_CHECK_OK = {"code": "ok", "message": "postures are measured from an upright reference"}


def posture_check_payload(current: dict[str, str], event: Event) -> dict[str, str]:
    """The ``posture_check`` after ``event``: a posture notice replaces it; a new upright reference
    answers the ``uncalibrated`` one."""
    if isinstance(event, PostureNotice):
        return {"code": event.code, "message": event.message}
    if isinstance(event, Calibrated) and current.get("code") == "uncalibrated":
        return dict(POSTURE_CHECK_OK)
    return current


def last_command_payload(result: dict[str, Any], *, time_iso: str) -> dict[str, Any]:
    """The retained ``last_command``: a command's answer (``command``, ``ok``, ``error`` or details)
    and the wall ``time`` it was given."""
    return {**result, "time": time_iso}


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def parse_command(topics: Topics, topic: str, payload: bytes, *, retained: bool = False) -> tuple[str, dict[str, Any]]:
    """Validate one incoming message; returns (name, args) or raises RequestRejected with the reason."""
    name = topics.cmd_name(topic)
    if name is None:
        raise RequestRejected(f"topic {_short(topic)} is outside this device's command tree {topics.cmd_filter}")
    lookup(name)  # an unknown name says so first
    if retained:
        raise RequestRejected(f"{name}: retained command ignored (it would repeat on every reconnect); "
                              "publish commands without the retain flag")
    if len(payload) > MAX_COMMAND_BYTES:
        raise RequestRejected(f"{name}: payload of {len(payload)} bytes is over the {MAX_COMMAND_BYTES}-byte limit")
    try:
        text = payload.decode("utf-8").strip()
        data = json.loads(text, parse_constant=_reject_constant) if text else {}
    except (UnicodeDecodeError, ValueError) as exc:
        raise RequestRejected(f"{name}: payload is not JSON ({exc})") from None
    except RecursionError:  # '[[[[...' deeper than Python's stack: no command is nested at all
        raise RequestRejected(f"{name}: payload is nested too deeply") from None
    if not isinstance(data, dict):
        raise RequestRejected(f"{name}: payload must be a JSON object or empty, not {type(data).__name__}")
    return name, check_args(name, data)
