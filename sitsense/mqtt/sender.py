"""The outbox sender: hands stored messages to the MQTT client in order, deletes them on PUBACK.

It runs on its own thread, woken by the client's callbacks through explicit methods
(``connected``, ``disconnected``, ``acknowledged``, ``wake``). After a reconnect paho resends what
was in flight (same order); new messages wait until those are acknowledged, so the broker sees
every alert in the order it was produced.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Callable, Protocol

from .outbox import Outbox

log = logging.getLogger(__name__)

SEND_WINDOW = 20  # outbox messages handed to paho at once (paho's default in-flight limit)
HELD_GIVE_UP_S = 30.0  # after a reconnect, how long to wait for the old in-flight messages' PUBACKs
_MQTT_ERR_SUCCESS, _MQTT_ERR_NO_CONN = 0, 4  # paho keeps a message published while offline queued


class PublishInfo(Protocol):
    """What paho's ``publish`` returns."""

    mid: int
    rc: int


Publish = Callable[[str, bytes, int], PublishInfo]


class OutboxSender:
    """Moves messages from ``outbox`` to ``publish(topic, payload, qos)``; see the module docstring.

    ``report(key, msg, *args)`` logs an unexpected failure once per ``key`` (the client's log-once).
    """

    def __init__(self, outbox: Outbox, publish: Publish, *,
                 report: Callable[..., None] | None = None):
        self.outbox = outbox
        self._publish = publish
        self._report = report or (lambda key, msg, *args: log.error(msg, *args))
        self.delivered = 0
        self.ack_latencies_s: collections.deque[float] = collections.deque(maxlen=1000)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        # set by the callbacks (any thread), read by the sender's loop
        self._online = False
        self._went_online = False
        self._went_offline = False
        self._acked_mids: list[int] = []
        self._stopping = False
        self._added_at: dict[int, float] = {}
        # the loop's own state
        self._inflight: dict[int, int] = {}  # paho mid -> outbox seq
        self._held: set[int] = set()  # mids in flight when the connection dropped
        self._held_since: float | None = None
        self._cursor = 0  # highest seq handed to paho
        self._unacked = 0

    # -- called from other threads ------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="sitsense-mqtt-outbox", daemon=True)
        self._thread.start()

    def queued(self, seq: int) -> None:
        """A message was added to the outbox (for the acknowledgement latency); wakes the sender."""
        with self._lock:
            if len(self._added_at) > 4 * self.outbox.max_messages:  # rows dropped while offline
                self._added_at.clear()
            self._added_at[seq] = time.monotonic()
        self._wake.set()

    def connected(self) -> None:
        with self._lock:
            self._online, self._went_online = True, True
        self._wake.set()

    def disconnected(self) -> None:
        with self._lock:
            self._online, self._went_offline = False, True
        self._wake.set()

    def acknowledged(self, mid: int) -> None:
        """The broker's PUBACK for paho message id ``mid``."""
        with self._lock:
            self._acked_mids.append(mid)
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout_s: float = 2.0) -> None:
        """Stop the thread (after handling what already arrived); idempotent."""
        with self._lock:
            self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)

    @property
    def idle(self) -> bool:
        """Nothing waits in the outbox and nothing is in flight."""
        return not len(self.outbox) and not self._unacked

    def wait_delivered(self, timeout_s: float) -> bool:
        """Poll until every queued message was acknowledged by the broker (True) or time is up."""
        deadline = time.monotonic() + timeout_s
        while not self.idle:
            if time.monotonic() > deadline:
                return False
            self._wake.set()
            time.sleep(0.01)
        return True

    # -- the sender's thread ------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            self._wake.wait(timeout=5.0)
            self._wake.clear()
            with self._lock:
                online, went_online, went_offline = self._online, self._went_online, self._went_offline
                acked_mids, self._acked_mids = self._acked_mids, []
                self._went_online = self._went_offline = False
                stopping = self._stopping
            try:
                if went_offline:
                    self._held |= set(self._inflight)
                acked = self._take_acks(acked_mids)
                if went_online and online:
                    self._held_since = time.monotonic() if self._held else None
                self.outbox.remove(acked)
                self.delivered += len(acked)
                if stopping:
                    return
                if online:
                    self._send()
            except Exception as exc:
                self._report(f"sender:{type(exc).__name__}", "MQTT: outbox sender: %s", exc)
            self._unacked = len(self._inflight)

    def _take_acks(self, mids: list[int]) -> list[int]:
        acked = []
        for mid in mids:
            seq = self._inflight.pop(mid, None)
            self._held.discard(mid)
            if seq is None:
                continue
            acked.append(seq)
            with self._lock:
                t0 = self._added_at.pop(seq, None)
            if t0 is not None:
                self.ack_latencies_s.append(time.monotonic() - t0)
        return acked

    def _send(self) -> None:
        held = self._held
        if held and self._held_since is not None and time.monotonic() - self._held_since > HELD_GIVE_UP_S:
            log.warning("MQTT: %d message(s) from before the reconnect were not acknowledged; "
                        "going on (a receiver may see a duplicate id)", len(held))
            held.clear()
        if held or len(self._inflight) >= SEND_WINDOW:
            return
        for row in self.outbox.take(self._cursor, SEND_WINDOW - len(self._inflight)):
            try:
                info = self._publish(row.topic, row.payload, row.qos)
            except ValueError as exc:  # a row paho can never send: drop it, do not stall
                log.error("MQTT: dropping unsendable outbox message %d: %s", row.seq, exc)
                self.outbox.remove([row.seq])
                self._cursor = row.seq
                continue
            if info.rc not in (_MQTT_ERR_SUCCESS, _MQTT_ERR_NO_CONN):
                log.warning("MQTT: publish refused (rc %s); will retry", info.rc)
                self._wake.set()
                return
            self._inflight[info.mid] = row.seq
            self._cursor = row.seq
