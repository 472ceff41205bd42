"""MQTT output: alerts and live state for a phone dashboard or Home Assistant, and commands back.

The first half is pure (topic names, payload builders, command validation) and tested as data.
``MqttOutput`` is the paho-mqtt 2.x client around them: it connects in ``start()`` (never in the
constructor), runs in paho's own thread, and never blocks the service's loop. Alerts and events go
through an on-disk :class:`~sitsense.outputs.outbox.Outbox` and are deleted only after the broker's
PUBACK, so a broker outage or a restart loses nothing; the retained state is simply republished.

Topics under ``<prefix>/<device_id>/`` (see ``docs-drafts/mqtt.md`` for the table):
``status`` (retained online/offline, Last Will), plain retained tiles, ``state`` (retained JSON),
``alert`` and ``event`` (QoS 1, not retained, each with a unique ``id``), ``cmd/<name>`` in and
``cmd/<name>/result`` out.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
import math
import os
import queue
import re
import socket
import ssl
import stat
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Mapping

from .. import __version__
from ..clock import Clock, SystemClock, shift_wall
from ..config import Config, MqttConfig, StoreConfig
from ..errors import OutputError
from ..events import Alert, Event
from .base import COMMANDS, Command, StateSnapshot, SubmitCommand
from .hass import discovery_messages, hass_status_topic
from ..paths import outbox_path
from .outbox import Outbox

log = logging.getLogger(__name__)

PASSWORD_ENV = "SITSENSE_MQTT_PASSWORD"
ONLINE, OFFLINE = "online", "offline"
MAX_COMMAND_BYTES = 1024

# Tracker events published on ``event``. Not published: ``alert`` (its own topic), ``posture``
# (shown by the tiles; publishing every change would flood a phone) and ``hold`` (the buzzer's
# second-by-second cues of a guided release).
EVENT_TYPES = frozenset({"break", "break_end", "outcome", "day_summary", "summary", "calibration",
                         "remount", "sensor", "pause", "resume", "snooze", "acknowledged"})

# Plain retained topics for dashboard tiles, relative to the device's base topic.
TILES = ("posture", "bout_min", "today/sitting_min", "today/breaks", "today/alerts", "today/release_min",
         "sensor")

# Tiles that change merely because time passes (whole minutes of sitting).
CLOCK_TILES = frozenset({"bout_min", "today/sitting_min"})

_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")

# A replay (``sitsense simulate --mqtt``) publishes as its own device, ``<device_id>-replay``, so it
# never overwrites the live device's retained tiles or marks it offline.
REPLAY_SUFFIX = "-replay"


# ---------------------------------------------------------------------------------------------
# Topics and payloads (pure)

def resolve_device_id(device_id: str, hostname: str | None = None) -> str:
    """The configured id, or the host name made topic-safe (letters, digits, '_' and '-')."""
    if device_id:
        return device_id
    name = hostname if hostname is not None else socket.gethostname()
    name = re.sub(r"[^A-Za-z0-9_-]", "-", name.split(".")[0]).strip("-")[:64]
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


def encode(payload: Any) -> bytes:
    """Compact UTF-8 JSON, the form of every JSON payload sitsense publishes."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False,
                      default=str).encode("utf-8")


def _minutes(seconds: float, digits: int = 1) -> float:
    return round(seconds / 60.0, digits)


def alert_payload(alert: Alert, *, time_iso: str) -> dict[str, Any]:
    """The ``alert`` message; ``event_type`` lets Home Assistant's event entity fire on it."""
    ex = alert.exercise or None
    exercise = None
    if ex:
        exercise = {k: ex.get(k) for k in ("id", "name", "dose", "cue")}
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


def _iso(wall: datetime) -> str:
    return wall.isoformat(timespec="seconds")


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
    }


def state_payload(state: StateSnapshot) -> dict[str, Any]:
    """The retained JSON ``state``: the tiles' values as numbers, plus timestamps."""
    paused_until = None
    if state.paused_until_t is not None:
        paused_until = _iso(shift_wall(state.wall, state.paused_until_t - state.t))
    bout_start = _iso(shift_wall(state.wall, -state.bout_s)) if state.bout_s > 0 else None
    return {
        "time": _iso(state.wall),
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
        "paused_until": paused_until,
    }


# ---------------------------------------------------------------------------------------------
# Commands (pure validation)

class CommandRejected(OutputError):
    """Error raised when a message on a command topic is not a valid command (it is then ignored)."""


class BrokerUnavailable(OutputError):
    """Error raised when a replay cannot reach the broker, or could not hand it every message."""

    exit_code = 69  # EX_UNAVAILABLE


@dataclass(frozen=True)
class _Arg:
    kind: type
    lo: float
    hi: float
    required: bool = False


# name -> allowed JSON keys. ``minutes`` left out means "the service's default" (snooze: the
# configured snooze time; pause: until resumed or the service's default).
COMMAND_ARGS: dict[str, dict[str, _Arg]] = {
    "snooze": {"minutes": _Arg(float, 1, 120)},
    "pause": {"minutes": _Arg(float, 1, 24 * 60)},
    "resume": {},
    "calibrate": {},
    "release": {},
    "ack": {"id": _Arg(str, 1, 128, required=True)},
}
assert set(COMMAND_ARGS) == set(COMMANDS), "every command needs an argument schema"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def parse_command(topics: Topics, topic: str, payload: bytes, *, retained: bool = False) -> tuple[str, dict]:
    """Validate one incoming message; returns (name, args) or raises CommandRejected with the reason."""
    prefix = topics.base + "/cmd/"
    if not topic.startswith(prefix) or "/" in topic[len(prefix):] or not topic[len(prefix):]:
        raise CommandRejected(f"topic {topic!r} is outside this device's command tree {topics.cmd_filter}")
    name = topic[len(prefix):]
    if name not in COMMAND_ARGS:
        raise CommandRejected(f"unknown command {name!r} (known: {', '.join(COMMAND_ARGS)})")
    if retained:
        raise CommandRejected(f"{name}: retained command ignored (it would repeat on every reconnect); "
                              "publish commands without the retain flag")
    if len(payload) > MAX_COMMAND_BYTES:
        raise CommandRejected(f"{name}: payload of {len(payload)} bytes is over the {MAX_COMMAND_BYTES}-byte limit")
    try:
        text = payload.decode("utf-8").strip()
        data = json.loads(text, parse_constant=_reject_constant) if text else {}
    except (UnicodeDecodeError, ValueError) as exc:
        raise CommandRejected(f"{name}: payload is not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise CommandRejected(f"{name}: payload must be a JSON object or empty, not {type(data).__name__}")
    schema = COMMAND_ARGS[name]
    args: dict[str, Any] = {}
    for key, value in data.items():
        spec = schema.get(key)
        if spec is None:
            allowed = ", ".join(schema) or "none"
            raise CommandRejected(f"{name}: unknown field {key!r} (allowed: {allowed})")
        if spec.kind is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise CommandRejected(f"{name}.{key}: must be a number, not {value!r}")
            if not spec.lo <= value <= spec.hi:
                raise CommandRejected(f"{name}.{key} = {value}: out of range ({spec.lo:g}..{spec.hi:g})")
            args[key] = float(value)
        else:
            if not isinstance(value, str):
                raise CommandRejected(f"{name}.{key}: must be a string, not {value!r}")
            if not _ID_RE.match(value):
                raise CommandRejected(f"{name}.{key}: must be 1-128 letters, digits or '_.:-'")
            args[key] = value
    missing = [k for k, spec in schema.items() if spec.required and k not in args]
    if missing:
        raise CommandRejected(f"{name}: missing field {missing[0]!r}")
    return name, args


# ---------------------------------------------------------------------------------------------
# Credentials

class Secret(str):
    """A string that never shows itself in a repr or a log line."""

    def __repr__(self) -> str:
        return "'***'"


def load_password(cfg: MqttConfig, environ: Mapping[str, str] | None = None) -> Secret | None:
    """The broker password: ``SITSENSE_MQTT_PASSWORD`` wins, else ``password_file`` (mode 0600 only)."""
    env = os.environ if environ is None else environ
    if env.get(PASSWORD_ENV):
        return Secret(env[PASSWORD_ENV])
    if not cfg.password_file:
        return None
    path = Path(cfg.password_file).expanduser()
    try:
        st = path.stat()
        if st.st_mode & 0o077:
            raise OutputError(f"mqtt.password_file = {str(path)!r}: mode {stat.S_IMODE(st.st_mode):04o} lets "
                              f"other users read it; run 'chmod 600 {path}' (owner read/write only)")
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"mqtt.password_file = {str(path)!r}: cannot read it ({exc.strerror}); "
                          "create it with the password on one line, mode 0600") from None
    password = text.rstrip("\r\n")
    if not password:
        raise OutputError(f"mqtt.password_file = {str(path)!r}: the file is empty")
    return Secret(password)


# ---------------------------------------------------------------------------------------------
# The client

_SEND_WINDOW = 20  # outbox messages handed to paho at once (paho's default in-flight limit)
_HELD_GIVE_UP_S = 30.0


class MqttOutput:
    """Publishes events and state to a broker and turns ``cmd/<name>`` messages into Commands.

    ``client`` is a paho ``Client`` (made from ``cfg`` if None); ``outbox`` an Outbox or a path
    (default: the state folder); ``submit`` receives accepted Commands (called from paho's thread;
    it should only enqueue); ``clock`` maps event times to wall time when no state arrived yet;
    ``client_id`` overrides ``sitsense-<device_id>``; ``close()`` waits up to ``flush_on_close_s``
    for queued alerts to reach the broker (what is left stays in the outbox for the next start; with
    an in-memory outbox, as a replay uses, it is lost and counted in ``undelivered``).
    """

    def __init__(self, cfg: MqttConfig, *, client: Any = None, outbox: Outbox | str | os.PathLike | None = None,
                 submit: SubmitCommand | None = None, clock: Clock | None = None,
                 environ: Mapping[str, str] | None = None, client_id: str | None = None,
                 flush_on_close_s: float = 2.0):
        self.cfg = cfg
        self.device_id = resolve_device_id(cfg.device_id)
        self.topics = Topics.for_device(cfg.topic_prefix, self.device_id)
        self.client_id = client_id or f"sitsense-{self.device_id}"
        self.flush_on_close_s = flush_on_close_s
        self._submit = submit
        self._clock = clock or SystemClock()
        self._password = load_password(cfg, environ)
        if self._password and not cfg.username:
            raise OutputError("mqtt: a password is set (SITSENSE_MQTT_PASSWORD or mqtt.password_file) "
                              "but mqtt.username is empty; set the user name too")
        if isinstance(outbox, Outbox):
            self.outbox = outbox
        else:
            self.outbox = Outbox(outbox if outbox is not None else outbox_path(StoreConfig()),
                                 max_messages=cfg.outbox_max)
        self.client = client if client is not None else self._make_client()
        self._configure(self.client)

        self._connected = False
        self._awaiting_connack = False  # a socket is open but the broker has not answered CONNECT yet
        self.last_error = ""
        self._logged: set[str] = set()
        self._state_lock = threading.Lock()
        self._latest: StateSnapshot | None = None
        self._published_tiles: dict[str, str] = {}
        self._last_state_t: float | None = None
        self._candidate: str | None = None
        self._candidate_since: float | None = None
        self._shown_posture: str | None = None
        self._tokens = 0.0
        self._bucket_t: float | None = None
        self._reply_lock = threading.Lock()
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        self._wake = threading.Event()
        self._worker: threading.Thread | None = None
        self._started = False
        self._closed = False
        self._quiet_failures = False  # during start_and_wait: the caller reports a failure itself
        self.undelivered = 0  # messages still unacknowledged when close() gave up (see volatile)
        self._unacked = 0
        self._added_at: dict[int, float] = {}
        self.ack_latencies_s: collections.deque[float] = collections.deque(maxlen=1000)
        self.stats = collections.Counter()

    @classmethod
    def from_config(cls, config: Config, **kwargs: Any) -> "MqttOutput":
        """Build from the whole config: the outbox goes in the store's state folder."""
        if kwargs.get("outbox") is None:
            kwargs["outbox"] = Outbox(outbox_path(config.store), max_messages=config.mqtt.outbox_max)
        return cls(config.mqtt, **kwargs)

    # -- setup ---------------------------------------------------------------------------------

    def _make_client(self) -> Any:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        return mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id, clean_session=True,
                           protocol=mqtt.MQTTv311)

    def _configure(self, client: Any) -> None:
        cfg = self.cfg
        client.will_set(self.topics.status, OFFLINE, qos=1, retain=True)
        client.reconnect_delay_set(min_delay=1, max_delay=cfg.reconnect_max_s)
        if cfg.username:
            client.username_pw_set(cfg.username, self._password)
        if cfg.tls_ca:
            try:
                client.tls_set(ca_certs=cfg.tls_ca, certfile=cfg.tls_cert or None, keyfile=cfg.tls_key or None)
            except (OSError, ValueError) as exc:
                raise OutputError(f"mqtt.tls_ca/tls_cert/tls_key: cannot load the TLS files: {exc}") from None
        client.on_socket_open = self._on_socket_open
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message

    def describe(self) -> str:
        """Connection settings for logs, with the password redacted."""
        auth = f" user={self.cfg.username} password={'***' if self._password else '(none)'}" if self.cfg.username else ""
        tls = " tls" if self.cfg.tls_ca else ""
        return f"{self.cfg.host}:{self.cfg.port} client_id={self.client_id}{auth}{tls}"

    def start(self) -> None:
        """Begin connecting in the background; returns at once. Idempotent."""
        if self._started or self._closed:
            return
        self._started = True
        self._worker = threading.Thread(target=self._run_sender, name="sitsense-mqtt-outbox", daemon=True)
        self._worker.start()
        log.info("MQTT: connecting to %s as %s", self.describe(), self.topics.base)
        try:
            self.client.connect_async(self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive_s)
        except (OSError, ValueError) as exc:
            raise OutputError(f"mqtt.host/port: cannot connect to {self.cfg.host}:{self.cfg.port}: {exc}") from None
        self.client.loop_start()

    def start_and_wait(self, timeout: float) -> None:
        """Start, and wait up to ``timeout`` s for the broker to accept the connection.

        For a replay, whose outbox lives in memory: without a broker its alerts would be lost, so it
        must not begin. Raises BrokerUnavailable (one line: where, why, what to check) after closing.
        """
        self._quiet_failures = True
        try:
            self.start()
            ok = self.wait_connected(timeout)
        except BaseException:
            self._quiet_failures = False
            raise
        if ok:
            self._quiet_failures = False
            return
        # still quiet while closing: paho's thread may report the failure once more meanwhile, and the
        # one line below is all the user should see
        where = f"{self.cfg.host}:{self.cfg.port}"
        why = self.last_error or f"no answer from {where}"
        if why.startswith("broker refused"):
            why += "; check mqtt.username and the password (SITSENSE_MQTT_PASSWORD or mqtt.password_file)"
        elif "check " not in why and "?" not in why:  # TLS and dropped connections carry their own hint
            why += "; check mqtt.host and mqtt.port and that the broker is running"
        self.close()
        raise BrokerUnavailable(f"mqtt: not connected within {timeout:g} s: {why}")

    @property
    def volatile(self) -> bool:
        """True when the outbox is in memory (a replay): what is not delivered by close() is lost."""
        return getattr(self.outbox, "path", "") == ":memory:"

    # -- Output protocol -------------------------------------------------------------------------

    def handle(self, event: Event) -> None:
        """Queue an alert or event for the broker; never raises, never waits for the network."""
        try:
            if isinstance(event, Alert):
                topic, payload = self.topics.alert, alert_payload(event, time_iso=self._wall_iso(event.t))
            elif event.type in EVENT_TYPES:
                eid = f"{self.device_id}-{event.type}-{uuid.uuid4().hex[:12]}"
                topic, payload = self.topics.event, event_payload(event, event_id=eid,
                                                                  time_iso=self._wall_iso(event.t))
            else:
                return
            seq = self.outbox.add(topic, encode(payload), qos=1)
            if len(self._added_at) > 4 * self.outbox.max_messages:  # rows dropped while offline
                self._added_at.clear()
            self._added_at[seq] = time.monotonic()
            self.stats["queued"] += 1
            self._wake.set()
        except Exception as exc:  # an output must never take the service down
            self._log_once(f"handle:{type(exc).__name__}", logging.ERROR, "MQTT: could not queue %s: %s",
                           getattr(event, "type", event), exc)

    def update_state(self, state: StateSnapshot) -> None:
        """Publish changed tiles and the JSON state, rate-limited for phones on mobile data.

        A posture is shown once it has lasted ``state_interval_s`` (a flickering classifier does not
        flood anyone); changes go out at most once per ``state_interval_s`` of state time, once a
        minute when only the minute counters moved, and within ``state_max_per_hour`` messages.
        """
        try:
            with self._state_lock:
                state = self._debounced(state)
                self._latest = state
                tiles = tile_values(state)
                changed = {k: v for k, v in tiles.items() if self._published_tiles.get(k) != v}
                if not changed or not self._connected:
                    return
                gap = self.cfg.state_interval_s
                if changed.keys() <= CLOCK_TILES:
                    gap = max(gap, 60.0)
                last = self._last_state_t
                urgent = "sensor" in changed  # a sensor fault (or its end) goes out at once
                if not urgent and last is not None and last <= state.t < last + gap:
                    return
                if not self._budget_allows(state.t, len(changed) + 1):
                    return
                self._last_state_t = state.t
                self._published_tiles.update(changed)
                self._publish_state(state, changed)  # under the lock: on_connect must not interleave
        except Exception as exc:
            self._log_once(f"state:{type(exc).__name__}", logging.ERROR, "MQTT: state update failed: %s", exc)

    def _debounced(self, state: StateSnapshot) -> StateSnapshot:
        """The snapshot with the last posture that lasted ``state_interval_s`` (caller holds the lock)."""
        if state.posture != self._candidate or self._candidate_since is None or state.t < self._candidate_since:
            self._candidate, self._candidate_since = state.posture, state.t
        if self._shown_posture is None or state.t - self._candidate_since >= self.cfg.state_interval_s:
            self._shown_posture = self._candidate
        if state.posture == self._shown_posture:
            return state
        return dataclasses.replace(state, posture=self._shown_posture)

    def _budget_allows(self, t: float, n: int) -> bool:
        """Token bucket for state messages: a tenth of the hourly budget as a burst, the rest spread
        evenly, so no hour exceeds ``state_max_per_hour`` and the tiles never stall for long."""
        budget = float(self.cfg.state_max_per_hour)
        burst = max(budget / 10.0, len(TILES) + 1.0)  # room for one full update
        if self._bucket_t is None or t < self._bucket_t:
            self._tokens, self._bucket_t = burst, t
        self._tokens = min(burst, self._tokens + (t - self._bucket_t) * (budget - burst) / 3600.0)
        self._bucket_t = t
        if self._tokens < n:
            self.stats["state_deferred"] += 1
            return False
        self._tokens -= n
        return True

    def close(self) -> None:
        """Say ``offline`` (retained), disconnect and stop the threads; idempotent."""
        if self._closed:
            return
        # A volatile outbox is waited for even while disconnected (paho keeps reconnecting): it is
        # the replay's only copy. A persistent one keeps what is left for the next start.
        if self._started and (self._connected or self.volatile) and self.flush_on_close_s > 0:
            if not self.flush(self.flush_on_close_s):
                if self.volatile:
                    self.undelivered = len(self.outbox)
                    log.info("MQTT: %d alert(s)/event(s) not acknowledged by %s:%s within %g s; lost (the "
                             "outbox is in memory)", self.undelivered, self.cfg.host, self.cfg.port,
                             self.flush_on_close_s)
                else:
                    log.warning("MQTT: %d alert(s)/event(s) not yet acknowledged at shutdown; kept for the next "
                                "start", len(self.outbox))
        elif self.volatile:
            self.undelivered = len(self.outbox)
        self._closed = True
        if self._started:
            try:
                if self._connected:
                    self._publish_final_state()
                    info = self.client.publish(self.topics.status, OFFLINE, qos=1, retain=True)
                    info.wait_for_publish(timeout=1.0)
            except Exception as exc:  # shutting down anyway
                log.debug("MQTT: could not say offline: %s", exc)
            self._inbox.put(("stop", None))
            self._wake.set()
            if self._worker is not None:
                self._worker.join(timeout=2.0)
            try:
                self.client.disconnect()
                self.client.loop_stop()
            except Exception as exc:
                log.debug("MQTT: disconnect: %s", exc)
        try:
            left = len(self.outbox)
        except Exception:
            left = -1
        self.outbox.close()
        log.info("MQTT: closed (%d message(s) left in the outbox for the next start)", left)

    def _publish_final_state(self) -> None:
        """Leave the retained tiles at the last state, whatever the rate limits held back."""
        with self._state_lock:
            latest = self._latest
            if latest is None:
                return
            changed = {k: v for k, v in tile_values(latest).items() if self._published_tiles.get(k) != v}
            if changed:
                self._published_tiles.update(changed)
                self._publish_state(latest, changed)

    # -- helpers for the CLI, the bench and tests ------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected

    def wait_connected(self, timeout: float) -> bool:
        """Poll until connected or ``timeout`` seconds passed."""
        deadline = time.monotonic() + timeout
        while not self._connected:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def flush(self, timeout: float) -> bool:
        """Poll until every queued alert/event was acknowledged by the broker (True) or time is up."""
        deadline = time.monotonic() + timeout
        while len(self.outbox) or self._unacked:
            if time.monotonic() > deadline:
                return False
            self._wake.set()
            time.sleep(0.01)
        return True

    # -- internals ----------------------------------------------------------------------------

    def _log_once(self, key: str, level: int, msg: str, *args: Any) -> None:
        """Log the first occurrence of ``key`` at ``level`` and repeats at DEBUG (no log floods).

        Connection failures during ``start_and_wait`` go to DEBUG only: its caller reports them."""
        if self._quiet_failures and key.startswith(("refused:", "unreachable")):
            log.debug(msg, *args)
        elif key in self._logged:
            log.debug(msg, *args)
        else:
            self._logged.add(key)
            log.log(level, msg, *args)

    def _wall_iso(self, t: float) -> str:
        latest = self._latest
        if latest is not None:
            wall = shift_wall(latest.wall, t - latest.t)
        else:
            wall = shift_wall(self._clock.wall(), t - self._clock.monotonic())
        return _iso(wall)

    def _publish_state(self, state: StateSnapshot, tiles: dict[str, str]) -> None:
        for name, value in tiles.items():
            self.client.publish(self.topics.tile(name), value, qos=0, retain=True)
        self.client.publish(self.topics.state, encode(state_payload(state)), qos=0, retain=True)
        self.stats["state_updates"] += 1

    def _publish_discovery(self) -> None:
        if not self.cfg.discovery:
            return
        for topic, config in discovery_messages(self.topics, self.device_id, self.cfg.discovery_prefix,
                                                sw_version=__version__):
            self.client.publish(topic, encode(config), qos=0, retain=True)
        self.stats["discovery"] += 1

    def _on_socket_open(self, client: Any, userdata: Any, sock: Any) -> None:
        # paho leaves Nagle's algorithm on: a small alert written just after a state update then
        # waits for the broker's delayed ACK (up to 40 ms on Linux). Alerts should go out at once.
        self._awaiting_connack = True
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except (OSError, AttributeError):
            pass

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        self._awaiting_connack = False
        if getattr(reason_code, "is_failure", False):
            self.last_error = f"broker refused the connection: {reason_code}"
            self._log_once(f"refused:{reason_code}", logging.ERROR,
                           "MQTT: %s refused the connection: %s (check mqtt.username and the password)",
                           self.describe(), reason_code)
            return
        self._connected = True
        self.last_error = ""
        self._logged = {k for k in self._logged if not k.startswith(("refused:", "unreachable", "lost"))}
        log.info("MQTT: connected to %s:%s", self.cfg.host, self.cfg.port)
        try:
            subs = [(self.topics.cmd_filter, 1)]
            if self.cfg.discovery:
                subs.append((hass_status_topic(self.cfg.discovery_prefix), 1))
            client.subscribe(subs)
            client.publish(self.topics.status, ONLINE, qos=1, retain=True)
            self._publish_discovery()
            with self._state_lock:
                latest = self._latest
                if latest is not None:
                    tiles = tile_values(latest)
                    self._published_tiles = dict(tiles)
                    self._last_state_t = latest.t
                    self._publish_state(latest, tiles)
        except Exception as exc:
            self._log_once(f"onconnect:{type(exc).__name__}", logging.ERROR, "MQTT: after connecting: %s", exc)
        self._inbox.put(("connected", None))
        self._wake.set()

    def _on_connect_fail(self, client: Any, userdata: Any) -> None:
        where = f"{self.cfg.host}:{self.cfg.port}"
        exc = sys.exc_info()[1]  # paho calls this inside its ``except OSError`` but does not pass it on
        key = "unreachable"
        if isinstance(exc, ssl.SSLCertVerificationError):
            key = "unreachable:tls"
            self.last_error = (f"TLS: the broker's certificate at {where} was not accepted "
                               f"({exc.verify_message}); check that mqtt.tls_ca is the CA that signed it "
                               "and that mqtt.host is a name in it")
        elif isinstance(exc, ssl.SSLError):
            key = "unreachable:tls"
            self.last_error = (f"TLS handshake with {where} failed ({exc.reason or exc}); check mqtt.tls_ca, "
                               "mqtt.tls_cert, mqtt.tls_key and that the port is the broker's TLS listener")
        else:
            reason = getattr(exc, "strerror", None) or (str(exc) if exc else "")
            self.last_error = f"cannot reach the broker at {where}" + (f": {reason}" if reason else "")
        self._log_once(key, logging.WARNING, "MQTT: %s; retrying (up to every %d s); alerts wait in %s",
                       self.last_error, self.cfg.reconnect_max_s,
                       "memory until the replay ends" if self.volatile else "the outbox")

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        was = self._connected
        self._connected = False
        if was and not self._closed:
            self._log_once("lost", logging.WARNING, "MQTT: connection lost (%s); reconnecting", reason_code)
        elif self._awaiting_connack and not self._closed:  # e.g. a TLS 1.3 broker wanting a client certificate
            hint = ("does it want a client certificate it trusts (mqtt.tls_cert, mqtt.tls_key)?" if self.cfg.tls_ca
                    else "is it a TLS port (mqtt.tls_ca)?")
            self.last_error = (f"the broker at {self.cfg.host}:{self.cfg.port} closed the connection without "
                               f"answering ({reason_code}); {hint}")
            self._log_once("unreachable:dropped", logging.WARNING, "MQTT: %s (retrying)", self.last_error)
        self._awaiting_connack = False
        self._inbox.put(("disconnected", None))
        self._wake.set()

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason_code: Any, properties: Any) -> None:
        self._inbox.put(("ack", mid))
        self._wake.set()

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        try:
            topic = message.topic
            if self.cfg.discovery and topic == hass_status_topic(self.cfg.discovery_prefix):
                if bytes(message.payload).strip() == b"online":
                    log.info("MQTT: Home Assistant is online; republishing discovery")
                    self._publish_discovery()
                return
            try:
                name, args = parse_command(self.topics, topic, bytes(message.payload), retained=bool(message.retain))
            except CommandRejected as exc:
                self.stats["rejected"] += 1
                self._log_once(f"reject:{topic}:{str(exc)[:60]}", logging.WARNING, "MQTT: ignored: %s", exc)
                return
            self.stats["commands"] += 1
            log.info("MQTT: command %s %s", name, args)
            command = Command(name=name, args=args, source="mqtt", reply=self._replier(name))
            if self._submit is None:
                command.reply({"ok": False, "error": "this sitsense does not take commands"})
                return
            try:
                self._submit(command)
            except Exception as exc:
                log.error("MQTT: command %s could not be submitted: %s", name, exc)
                command.reply({"ok": False, "error": f"not accepted: {exc}"})
        except Exception as exc:  # whatever arrives from the network must never crash us
            self._log_once(f"onmessage:{type(exc).__name__}", logging.ERROR, "MQTT: incoming message: %s", exc)

    def _replier(self, name: str) -> Callable[[dict[str, Any]], None]:
        topic = self.topics.cmd_result(name)

        def reply(result: dict[str, Any]) -> None:
            """Publish a command's result; safe from any thread, never raises."""
            try:
                body = result if isinstance(result, dict) else {"result": result}
                body = {"command": name, **body}
                with self._reply_lock:
                    if not self._closed:
                        self.client.publish(topic, encode(body), qos=1, retain=False)
            except Exception as exc:
                self._log_once(f"reply:{type(exc).__name__}", logging.ERROR, "MQTT: reply to %s: %s", name, exc)

        return reply

    def _run_sender(self) -> None:
        """The outbox sender: hands stored messages to paho in order and deletes them on PUBACK.

        After a reconnect paho resends what was in flight (same order); new messages wait until
        those are acknowledged, so the broker sees every alert in the order it was produced.
        """
        inflight: dict[int, int] = {}  # paho mid -> outbox seq
        held: set[int] = set()  # mids in flight when the connection dropped
        held_since: float | None = None
        cursor = 0  # highest seq handed to paho
        connected = False
        stopping = False
        while not stopping:
            self._wake.wait(timeout=5.0)
            self._wake.clear()
            acked: list[int] = []
            while True:
                try:
                    kind, value = self._inbox.get_nowait()
                except queue.Empty:
                    break
                if kind == "connected":
                    connected = True
                    held_since = time.monotonic() if held else None
                elif kind == "disconnected":
                    connected = False
                    held |= set(inflight)
                elif kind == "ack":
                    seq = inflight.pop(value, None)
                    held.discard(value)
                    if seq is not None:
                        acked.append(seq)
                        t0 = self._added_at.pop(seq, None)
                        if t0 is not None:
                            self.ack_latencies_s.append(time.monotonic() - t0)
                elif kind == "stop":
                    stopping = True
            try:
                self.outbox.remove(acked)
                self.stats["delivered"] += len(acked)
                if stopping:
                    break
                if held and connected and held_since is not None and time.monotonic() - held_since > _HELD_GIVE_UP_S:
                    log.warning("MQTT: %d message(s) from before the reconnect were not acknowledged; "
                                "going on (a receiver may see a duplicate id)", len(held))
                    held.clear()
                if connected and not held and len(inflight) < _SEND_WINDOW:
                    for row in self.outbox.take(cursor, _SEND_WINDOW - len(inflight)):
                        try:
                            info = self.client.publish(row.topic, row.payload, qos=row.qos, retain=False)
                        except ValueError as exc:  # a row paho can never send: drop it, do not stall
                            log.error("MQTT: dropping unsendable outbox message %d: %s", row.seq, exc)
                            self.outbox.remove([row.seq])
                            cursor = row.seq
                            continue
                        if info.rc not in (0, 4):  # MQTT_ERR_SUCCESS, MQTT_ERR_NO_CONN (paho keeps it queued)
                            log.warning("MQTT: publish refused (rc %s); will retry", info.rc)
                            self._wake.set()
                            break
                        inflight[info.mid] = row.seq
                        cursor = row.seq
            except Exception as exc:
                self._log_once(f"sender:{type(exc).__name__}", logging.ERROR, "MQTT: outbox sender: %s", exc)
            self._unacked = len(inflight)
