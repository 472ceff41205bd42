"""A stand-in for paho's ``Client`` that records what is published, for tests without a broker.

Pass it as ``MqttOutput(cfg, client=FakeMqttClient())`` (``sitsense.mqtt.client``); ``start()`` "connects" at once, QoS 1
publishes are acknowledged at once, and ``deliver()`` plays an incoming message.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any


@dataclass
class Published:
    topic: str
    payload: bytes
    qos: int
    retain: bool


class _Info:
    def __init__(self, mid: int):
        self.mid = mid
        self.rc = 0

    def wait_for_publish(self, timeout: float | None = None) -> None:
        return None


class _Reason:
    is_failure = False

    def __str__(self) -> str:
        return "Success"


class _Message:
    def __init__(self, topic: str, payload: bytes, retain: bool):
        self.topic, self.payload, self.retain, self.qos = topic, payload, retain, 1


class FakeMqttClient:
    """Records ``published``; ``online`` says whether publishes are "sent" (False drops them)."""

    def __init__(self, *, auto_connect: bool = True):
        self.published: list[Published] = []
        self.subscriptions: list[tuple[str, int]] = []
        self.will: tuple[str, Any, int, bool] | None = None
        self.online = False
        self.auto_connect = auto_connect
        self._mid = 0
        self._lock = threading.Lock()
        self.on_connect = self.on_connect_fail = self.on_disconnect = None
        self.on_publish = self.on_message = self.on_socket_open = None

    # the parts of paho's API that MqttOutput uses
    def will_set(self, topic: str, payload: Any = None, qos: int = 0, retain: bool = False) -> None:
        self.will = (topic, payload, qos, retain)

    def reconnect_delay_set(self, min_delay: int = 1, max_delay: int = 120) -> None:
        pass

    def username_pw_set(self, username: str | None, password: str | None = None) -> None:
        self.username = username

    def tls_set(self, **kwargs: Any) -> None:
        self.tls = kwargs

    def connect_async(self, host: str, port: int = 1883, keepalive: int = 60) -> None:
        self.address = (host, port, keepalive)

    def loop_start(self) -> None:
        if self.auto_connect:
            self.connect_now()

    def loop_stop(self) -> None:
        pass

    def disconnect(self) -> None:
        self.online = False

    def subscribe(self, topics: list[tuple[str, int]]) -> tuple[int, int]:
        self.subscriptions.extend(topics)
        return 0, self._next_mid()

    def publish(self, topic: str, payload: Any = None, qos: int = 0, retain: bool = False, properties: Any = None) -> _Info:
        mid = self._next_mid()
        data = payload.encode() if isinstance(payload, str) else bytes(payload or b"")
        if self.online:
            with self._lock:
                self.published.append(Published(topic, data, qos, retain))
            if self.on_publish is not None:
                self.on_publish(self, None, mid, _Reason(), None)
        return _Info(mid)

    # driving the fake
    def connect_now(self) -> None:
        """Act as if the broker accepted the connection."""
        self.online = True
        if self.on_connect is not None:
            self.on_connect(self, None, None, _Reason(), None)

    def drop(self) -> None:
        """Act as if the connection was lost."""
        self.online = False
        if self.on_disconnect is not None:
            self.on_disconnect(self, None, None, _Reason(), None)

    def deliver(self, topic: str, payload: bytes | str = b"", *, retain: bool = False) -> None:
        """Play an incoming message, as if the broker delivered it."""
        data = payload.encode() if isinstance(payload, str) else payload
        if self.on_message is not None:
            self.on_message(self, None, _Message(topic, data, retain))

    def on(self, topic: str) -> list[Published]:
        with self._lock:
            return [p for p in self.published if p.topic == topic]

    def _next_mid(self) -> int:
        with self._lock:
            self._mid = self._mid % 65535 + 1
            return self._mid
