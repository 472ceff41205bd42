"""The one table of runtime controls: each name with its argument schema and its handler.

Every way in (MQTT ``cmd/<name>``, the button, the local control socket, the web page) turns what
it received into a :class:`Request` and submits it; the service runs it between blocks through
:func:`execute` and hands the result (``{"ok": true, ...}`` or ``{"ok": false, "error": ...}``)
to the request's ``reply``. Arguments are checked here, once, by :func:`check_args`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol

from .errors import SitsenseError
from .events import Event

if TYPE_CHECKING:
    from .coach import Coach
    from .config import Config
    from .posture import PostureClassifier
    from .tracker import Tracker

ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
PAUSE_DEFAULT_MIN = 60.0


class RequestRejected(SitsenseError, ValueError):
    """Error raised when a request names no known control or its arguments break the schema."""


@dataclass(frozen=True)
class Arg:
    """One argument: a number in ``lo..hi`` (``kind`` float) or an id (``kind`` str, 1-128 of
    letters, digits and ``_.:-``)."""

    kind: type
    lo: float = 0.0
    hi: float = 0.0
    required: bool = False


@dataclass
class Request:
    """A control asked for from outside: ``name`` is a key of CONTROLS, ``args`` already checked.

    ``source`` says where it came from (``mqtt``, ``button``, ``socket``, ...); ``reply`` is called
    by the service's loop with the result (a JSON-able dict).
    """

    name: str
    args: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    reply: Callable[[dict[str, Any]], None] | None = None


Submit = Callable[[Request], None]


class Target(Protocol):
    """What the handlers act on: the parts of the service a control may change."""

    cfg: Config
    tracker: Tracker
    classifier: PostureClassifier
    coach: Coach | None


class Refused(Exception):
    """Raised by a handler: the request is valid but cannot be done now (the reason is the message)."""


Handler = Callable[[Target, float, Mapping[str, Any], str], "tuple[list[Event], dict[str, Any]]"]


@dataclass(frozen=True)
class Control:
    """One entry of the table."""

    name: str
    doc: str
    args: Mapping[str, Arg]
    handler: Handler


def _snooze(svc: Target, t: float, args: Mapping[str, Any], source: str) -> tuple[list[Event], dict[str, Any]]:
    return svc.tracker.snooze(t, float(args.get("minutes", svc.cfg.tracker.snooze_min))), {}


def _pause(svc: Target, t: float, args: Mapping[str, Any], source: str) -> tuple[list[Event], dict[str, Any]]:
    return svc.tracker.pause(t, float(args.get("minutes", PAUSE_DEFAULT_MIN)), source or "command"), {}


def _resume(svc: Target, t: float, args: Mapping[str, Any], source: str) -> tuple[list[Event], dict[str, Any]]:
    return svc.tracker.resume(t, source or "command"), {}


def _calibrate(svc: Target, t: float, args: Mapping[str, Any], source: str) -> tuple[list[Event], dict[str, Any]]:
    svc.classifier.set_reference(None)  # the next still seconds become the reference
    return [], {}


def _release(svc: Target, t: float, args: Mapping[str, Any], source: str) -> tuple[list[Event], dict[str, Any]]:
    if svc.coach is None:
        raise Refused("release: this run has no coach (guided releases are off)")
    return svc.coach.start_release(t), {}


def _ack(svc: Target, t: float, args: Mapping[str, Any], source: str) -> tuple[list[Event], dict[str, Any]]:
    alert_id = str(args["id"])
    try:
        events = svc.tracker.acknowledge(t, alert_id)
    except ValueError as exc:
        raise Refused(str(exc)) from None
    return events, {"id": alert_id, "detail": ("no more reminders for this sitting bout" if events
                                               else "already acknowledged: no more reminders for this sitting bout")}


# ``minutes`` left out means the service's default (snooze: tracker.snooze_min; pause: 60 min).
CONTROLS: dict[str, Control] = {c.name: c for c in (
    Control("snooze", "hold back the next reminder", {"minutes": Arg(float, 1, 120)}, _snooze),
    Control("pause", "no alerts for a while (time is still counted)", {"minutes": Arg(float, 1, 24 * 60)}, _pause),
    Control("resume", "end a pause or a snooze", {}, _resume),
    Control("calibrate", "take the next still standing seconds as the upright reference", {}, _calibrate),
    Control("ack", "acknowledge an alert: no more reminders this bout", {"id": Arg(str, required=True)}, _ack),
    Control("release", "start a guided release now", {}, _release),
)}


def lookup(name: str) -> Control:
    """The table's entry for ``name``; RequestRejected lists the known names."""
    try:
        return CONTROLS[name]
    except KeyError:
        raise RequestRejected(f"unknown command {_short(name)} (known: {', '.join(CONTROLS)})") from None


def check_args(name: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """The arguments of control ``name`` as the handler takes them; RequestRejected says what is wrong."""
    schema = lookup(name).args
    args: dict[str, Any] = {}
    for key, value in data.items():
        spec = schema.get(key)
        if spec is None:
            allowed = ", ".join(schema) or "none"
            raise RequestRejected(f"{name}: unknown field {key!r} (allowed: {allowed})")
        if spec.kind is float:
            number = _finite(value)
            if number is None:
                raise RequestRejected(f"{name}.{key}: must be a number, not {_short(value)}")
            if not spec.lo <= number <= spec.hi:
                raise RequestRejected(f"{name}.{key} = {_short(value)}: out of range ({spec.lo:g}..{spec.hi:g})")
            args[key] = number
        else:
            if not isinstance(value, str):
                raise RequestRejected(f"{name}.{key}: must be a string, not {_short(value)}")
            if not ID_RE.match(value):
                raise RequestRejected(f"{name}.{key}: must be 1-128 letters, digits or '_.:-'")
            args[key] = value
    missing = [k for k, spec in schema.items() if spec.required and k not in args]
    if missing:
        raise RequestRejected(f"{name}: missing field {missing[0]!r}")
    return args


def _finite(value: Any) -> float | None:
    """``value`` as a finite float; None for bools, non-numbers, NaN, infinities and integers too
    large for a float (``10**400`` in a command must be a rejection, not an OverflowError)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _short(value: Any) -> str:
    """A value for a one-line answer: a 1000-digit number or a long list is cut."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def execute(target: Target, request: Request, t: float) -> tuple[dict[str, Any], list[Event]]:
    """Run one request at service time ``t``: its result and the events it produced."""
    try:
        args = check_args(request.name, request.args)
        events, extra = CONTROLS[request.name].handler(target, t, args, request.source)
    except (RequestRejected, Refused) as exc:
        return {"ok": False, "command": request.name, "error": str(exc)}, []
    return {"ok": True, "command": request.name, "t": round(t, 3), **extra}, events
