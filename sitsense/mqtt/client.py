"""The MQTT output: paho-mqtt 2.x glue and diagnostics around the pure parts of this package.

``MqttOutput`` connects in ``start()`` (never in the constructor), runs in paho's own thread and
never blocks the service's loop. Alerts and events go through the on-disk
:class:`~sitsense.mqtt.outbox.Outbox` and its :class:`~sitsense.mqtt.sender.OutboxSender`, and are
deleted only after the broker's PUBACK, so a broker outage or a restart loses nothing; the retained
state (chosen by :class:`~sitsense.mqtt.throttle.StateThrottle`) is simply republished. Messages
on ``cmd/<name>`` go to the :class:`~sitsense.mqtt.intake.RequestIntake`, which answers each.
What is left here, a little over 450 lines, is one job: the connection's life (connect, reconnect,
close with the outbox flushed) and its diagnostics, each failure told once in one line with what to
check.
"""

from __future__ import annotations

import collections
import logging
import os
import socket
import ssl
import sys
import threading
import time
import uuid
from typing import Any, Mapping

from .. import __version__
from ..clock import Clock, SystemClock, shift_wall
from ..config import Config, MqttConfig, load_password
from ..control import Submit
from ..errors import MqttSettingError, OutputError
from ..events import Alert, Event
from ..outputs.base import StateSnapshot
from ..paths import outbox_path
from ..storage import StorageHealth
from .bounded import bounded_client_class
from .hass import discovery_messages, hass_status_topic
from .inbound import DISCOVERY_MIN_INTERVAL_S, MAX_INCOMING_PACKET_BYTES, Debounce, LogOnce
from .intake import RequestIntake
from .outbox import Outbox
from .sender import OutboxSender
from .throttle import StateThrottle, Update
from .topics import (OFFLINE, ONLINE, POSTURE_CHECK_OK, PUBLISHED_EVENTS, Topics, alert_payload, encode,
                     event_payload, iso, posture_check_payload, resolve_device_id, state_payload)

log = logging.getLogger(__name__)


class BrokerUnavailable(OutputError):
    """Error raised when a replay cannot reach the broker, or could not hand it every message."""

    exit_code = 69  # EX_UNAVAILABLE


class MqttOutput:
    """Publishes events and state to a broker and turns ``cmd/<name>`` messages into Requests.

    ``client`` is a paho ``Client`` (made from ``cfg`` if None); ``outbox`` an Outbox or a path
    (default: the state folder); ``submit`` receives accepted Requests (called from paho's thread;
    it should only enqueue); ``clock`` maps event times to wall time when no state arrived yet;
    ``client_id`` overrides ``sitsense-<device_id>``; ``close()`` waits up to ``flush_on_close_s``
    for queued alerts to reach the broker (what is left stays in the outbox for the next start; with
    an in-memory outbox, as a replay uses, it is lost and counted in ``undelivered``).
    """

    def __init__(self, cfg: MqttConfig, *, client: Any = None, outbox: Outbox | str | os.PathLike | None = None,
                 submit: Submit | None = None, clock: Clock | None = None,
                 environ: Mapping[str, str] | None = None, client_id: str | None = None,
                 flush_on_close_s: float = 2.0):
        self.cfg = cfg
        self.device_id = resolve_device_id(cfg.device_id)
        self.topics = Topics.for_device(cfg.topic_prefix, self.device_id)
        self.client_id = client_id or f"sitsense-{self.device_id}"
        self.flush_on_close_s = flush_on_close_s
        self._clock = clock or SystemClock()
        self._password = load_password(cfg, environ)
        if self._password and not cfg.username:
            raise MqttSettingError("mqtt: a password is set (SITSENSE_MQTT_PASSWORD or mqtt.password_file) "
                                   "but mqtt.username is empty; set the user name too")
        if isinstance(outbox, Outbox):
            self.outbox = outbox
        else:
            self.outbox = Outbox(outbox if outbox is not None else outbox_path(), max_messages=cfg.outbox_max)
        self.client = client if client is not None else self._make_client()
        self._configure(self.client)

        self._connected = False
        self._awaiting_connack = False  # a socket is open but the broker has not answered CONNECT yet
        self.last_error = ""
        self._logged = LogOnce()  # our own problems (connection, queueing), a handful of keys
        self._discovery_debounce = Debounce(DISCOVERY_MIN_INTERVAL_S)
        self._discovery_timer: threading.Timer | None = None
        self._state_lock = threading.Lock()  # the throttle and state publishing (service loop, paho thread)
        self._throttle = StateThrottle(cfg.state_interval_s, cfg.state_max_per_hour)
        self._posture_check = dict(POSTURE_CHECK_OK)  # retained on ``posture_check``, again on every connect
        self._reply_lock = threading.Lock()
        self.sender = OutboxSender(self.outbox, self._publish_stored, report=self._report_failure)
        self._started = False
        self._closed = False
        self._quiet_failures = False  # during start_and_wait: the caller reports a failure itself
        self.undelivered = 0  # messages still unacknowledged when close() gave up (see volatile)
        self.stats: collections.Counter[str] = collections.Counter()
        # what others send on cmd/+ (its rejections logged apart from ours, so they cannot silence them)
        self.intake = RequestIntake(self.topics, submit=submit, publish=self._publish_replies,
                                    now_iso=lambda: self._wall_iso(self._clock.monotonic()), stats=self.stats,
                                    report=self._report_failure)

    @classmethod
    def from_config(cls, config: Config, *, storage: StorageHealth | None = None, **kwargs: Any) -> "MqttOutput":
        """Build from the whole config: the outbox goes in the store's state folder (in memory while
        that takes no writes, reported to ``storage``)."""
        if kwargs.get("outbox") is None:
            kwargs["outbox"] = Outbox(outbox_path(config), max_messages=config.mqtt.outbox_max, storage=storage)
        return cls(config.mqtt, **kwargs)

    # -- setup ---------------------------------------------------------------------------------

    def _make_client(self) -> Any:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        client = bounded_client_class()(CallbackAPIVersion.VERSION2, client_id=self.client_id, clean_session=True,
                                        protocol=mqtt.MQTTv311)
        client.on_oversized = self._on_oversized
        return client

    def _configure(self, client: Any) -> None:
        cfg = self.cfg
        client.will_set(self.topics.status, OFFLINE, qos=1, retain=True)
        client.reconnect_delay_set(min_delay=1, max_delay=cfg.reconnect_max_s)
        if cfg.username:
            client.username_pw_set(cfg.username, self._password)
        if cfg.tls:  # any tls_* turns TLS on; no tls_ca means the system's CA store
            if cfg.tls_key and not cfg.tls_cert:
                raise MqttSettingError("mqtt.tls_key is set without mqtt.tls_cert; set the client certificate too")
            try:
                client.tls_set(ca_certs=cfg.tls_ca or None, certfile=cfg.tls_cert or None, keyfile=cfg.tls_key or None)
            except (OSError, ValueError) as exc:
                raise MqttSettingError(f"mqtt.tls_ca/tls_cert/tls_key: cannot load the TLS files: {exc}") from None
        client.on_socket_open = self._on_socket_open
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message

    def describe(self) -> str:
        """Connection settings for logs, with the password redacted."""
        auth = f" user={self.cfg.username} password={'***' if self._password else '(none)'}" if self.cfg.username else ""
        tls = (" tls" + ("" if self.cfg.tls_ca else " (system CAs)")) if self.cfg.tls else ""
        return f"{self.cfg.host}:{self.cfg.port} client_id={self.client_id}{auth}{tls}"

    def start(self) -> None:
        """Begin connecting in the background; returns at once. Idempotent."""
        if self._started or self._closed:
            return
        self._started = True
        self.sender.start()
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
        return self.outbox.path == ":memory:"

    # -- Output protocol -------------------------------------------------------------------------

    def handle(self, event: Event) -> None:
        """Queue an alert or event for the broker; never raises, never waits for the network."""
        try:
            check = posture_check_payload(self._posture_check, event)
            if check != self._posture_check:
                self._posture_check = check
                self.client.publish(self.topics.posture_check, encode(check), qos=1, retain=True)
            if isinstance(event, Alert):
                topic, payload = self.topics.alert, alert_payload(event, time_iso=self._wall_iso(event.t))
            elif isinstance(event, PUBLISHED_EVENTS):
                eid = f"{self.device_id}-{event.type}-{uuid.uuid4().hex[:12]}"
                topic, payload = self.topics.event, event_payload(event, event_id=eid,
                                                                  time_iso=self._wall_iso(event.t))
            else:
                return
            self.sender.queued(self.outbox.add(topic, encode(payload), qos=1))
            self.stats["queued"] += 1
        except Exception as exc:  # an output must never take the service down
            self._log_once(f"handle:{type(exc).__name__}", logging.ERROR, "MQTT: could not queue %s: %s",
                           getattr(event, "type", event), exc)

    def update_state(self, state: StateSnapshot) -> None:
        """Publish changed tiles and the JSON state, as the throttle allows (see ``throttle``)."""
        try:
            with self._state_lock:  # held while publishing: on_connect must not interleave
                self._publish_state(self._throttle.offer(state, connected=self._connected))
                self.stats["state_deferred"] = self._throttle.deferred
        except Exception as exc:
            self._log_once(f"state:{type(exc).__name__}", logging.ERROR, "MQTT: state update failed: %s", exc)

    def close(self) -> None:
        """Say ``offline`` (retained), disconnect and stop the threads; idempotent."""
        if self._closed:
            return
        # A volatile outbox is waited for even while disconnected (paho keeps reconnecting): it is
        # the replay's only copy. A persistent one keeps what is left for the next start.
        in_memory = self.volatile or getattr(self.outbox, "in_memory", False)  # the disk refused it: also the only copy
        if self._started and (self._connected or in_memory) and self.flush_on_close_s > 0:
            if not self.wait_delivered(self.flush_on_close_s):
                if in_memory:
                    self.undelivered = len(self.outbox)
                    log.log(logging.INFO if self.volatile else logging.WARNING,
                            "MQTT: %d alert(s)/event(s) not acknowledged by %s:%s within %g s; lost (the "
                            "outbox is in memory)", self.undelivered, self.cfg.host, self.cfg.port,
                            self.flush_on_close_s)
                else:
                    log.warning("MQTT: %d alert(s)/event(s) not yet acknowledged at shutdown; kept for the next "
                                "start", len(self.outbox))
        elif in_memory:
            self.undelivered = len(self.outbox)
        self._closed = True
        if self._discovery_timer is not None:
            self._discovery_timer.cancel()
        if self._started:
            try:
                if self._connected:
                    with self._state_lock:  # the tiles end at the last state, whatever the limits held back
                        self._publish_state(self._throttle.held_back())
                    info = self.client.publish(self.topics.status, OFFLINE, qos=1, retain=True)
                    info.wait_for_publish(timeout=1.0)
            except Exception as exc:  # shutting down anyway
                log.debug("MQTT: could not say offline: %s", exc)
            self.sender.stop()
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

    # -- helpers for the CLI, the bench and tests ------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def ack_latencies_s(self) -> collections.deque[float]:
        """Seconds from queueing to the broker's PUBACK, of the last 1000 alerts and events."""
        return self.sender.ack_latencies_s

    def wait_connected(self, timeout: float) -> bool:
        """Poll until connected or ``timeout`` seconds passed."""
        deadline = time.monotonic() + timeout
        while not self._connected:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def wait_delivered(self, timeout: float) -> bool:
        """Wait until every queued alert/event was acknowledged by the broker (True) or time is up."""
        return self.sender.wait_delivered(timeout)

    # -- internals ----------------------------------------------------------------------------

    def _log_once(self, key: str, level: int, msg: str, *args: Any) -> None:
        """Log the first occurrence of ``key`` at ``level`` and repeats at DEBUG (no log floods).

        Connection failures during ``start_and_wait`` go to DEBUG only: its caller reports them."""
        if self._quiet_failures and key.startswith(("refused:", "unreachable")):
            log.debug(msg, *args)
        elif self._logged.first(key):
            log.log(level, msg, *args)
        else:
            log.debug(msg, *args)

    def _wall_iso(self, t: float) -> str:
        latest = self._throttle.latest
        if latest is not None:
            return iso(shift_wall(latest.wall, t - latest.t))
        return iso(shift_wall(self._clock.wall(), t - self._clock.monotonic()))

    def _publish_state(self, update: Update | None) -> None:
        """Publish what the throttle chose (caller holds the state lock)."""
        if update is None:
            return
        state, tiles = update
        for name, value in tiles.items():
            self.client.publish(self.topics.tile(name), value, qos=0, retain=True)
        self.client.publish(self.topics.state, encode(state_payload(state)), qos=0, retain=True)
        self.stats["state_updates"] += 1

    def _publish_stored(self, topic: str, payload: bytes, qos: int) -> Any:
        """The sender's way out: one outbox message handed to paho."""
        return self.client.publish(topic, payload, qos=qos, retain=False)

    def _report_failure(self, key: str, msg: str, *args: Any) -> None:
        """An unexpected failure in the sender or the intake: ERROR once per ``key``."""
        self._log_once(key, logging.ERROR, msg, *args)

    def _publish_replies(self, messages: list[tuple[str, bytes, bool]]) -> None:
        """The intake's way out: a command's answers, together, unless closed (any thread)."""
        with self._reply_lock:
            if not self._closed:
                for topic, payload, retain in messages:
                    self.client.publish(topic, payload, qos=1, retain=retain)

    def _publish_discovery(self) -> None:
        if not self.cfg.discovery:
            return
        for topic, config in discovery_messages(self.topics, self.device_id, self.cfg.discovery_prefix,
                                                sw_version=__version__):
            self.client.publish(topic, encode(config), qos=0, retain=True)
        self.stats["discovery"] += 1

    def _on_hass_online(self) -> None:
        """Home Assistant (re)started: republish discovery now, or once at the end of the debounce
        interval if it was just published (a flood of 'online' costs one republish per interval)."""
        delay = self._discovery_debounce.offer(time.monotonic())
        if delay is None:
            return  # one is already waiting
        if delay <= 0:
            log.info("MQTT: Home Assistant is online; republishing discovery")
            self._publish_discovery()
            return
        timer = threading.Timer(delay, self._republish_discovery_later)
        timer.daemon = True
        self._discovery_timer = timer
        timer.start()

    def _republish_discovery_later(self) -> None:
        try:
            self._discovery_debounce.done(time.monotonic())
            if self._connected and not self._closed:  # else the next connect publishes it anyway
                log.info("MQTT: Home Assistant said online again; republishing discovery")
                self._publish_discovery()
        except Exception as exc:
            self._log_once(f"discovery:{type(exc).__name__}", logging.ERROR, "MQTT: discovery: %s", exc)

    def _on_oversized(self, size: int) -> None:
        """paho's reader refused a packet of ``size`` bytes before reading it (see ``bounded``)."""
        self.stats["oversized"] += 1
        self._log_once("oversized", logging.WARNING,
                       "MQTT: refused a message of %d bytes from the broker (the limit is %d); dropped the "
                       "connection to skip it and reconnecting; set max_packet_size and an ACL on the broker "
                       "(docs/wear/mqtt.md, 'Mosquitto on the Pi')", size, MAX_INCOMING_PACKET_BYTES)

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
        self._logged.forget(("refused:", "unreachable", "lost"))
        log.info("MQTT: connected to %s:%s", self.cfg.host, self.cfg.port)
        try:
            subs = [(self.topics.cmd_filter, 1)]
            if self.cfg.discovery:
                subs.append((hass_status_topic(self.cfg.discovery_prefix), 1))
            client.subscribe(subs)
            client.publish(self.topics.status, ONLINE, qos=1, retain=True)
            self._publish_discovery()
            client.publish(self.topics.posture_check, encode(self._posture_check), qos=1, retain=True)
            with self._state_lock:
                self._publish_state(self._throttle.everything())
        except Exception as exc:
            self._log_once(f"onconnect:{type(exc).__name__}", logging.ERROR, "MQTT: after connecting: %s", exc)
        self.sender.connected()

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
            hint = ("does it want a client certificate it trusts (mqtt.tls_cert, mqtt.tls_key)?" if self.cfg.tls
                    else "is it a TLS port (mqtt.tls_ca)?")
            self.last_error = (f"the broker at {self.cfg.host}:{self.cfg.port} closed the connection without "
                               f"answering ({reason_code}); {hint}")
            self._log_once("unreachable:dropped", logging.WARNING, "MQTT: %s (retrying)", self.last_error)
        self._awaiting_connack = False
        self.sender.disconnected()

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason_code: Any, properties: Any) -> None:
        self.sender.acknowledged(mid)

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        try:
            topic = message.topic
            payload = message.payload  # bytes; at most MAX_INCOMING_PACKET_BYTES (``bounded``)
            if self.cfg.discovery and topic == hass_status_topic(self.cfg.discovery_prefix):
                if len(payload) <= 16 and bytes(payload).strip() == b"online":
                    self._on_hass_online()
                return
            self.intake.receive(topic, bytes(payload), retained=bool(message.retain))
        except Exception as exc:  # whatever arrives from the network must never crash us
            self._log_once(f"onmessage:{type(exc).__name__}", logging.ERROR, "MQTT: incoming message: %s", exc)
