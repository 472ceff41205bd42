"""A real Mosquitto for the tests: started on a free loopback port with its own config file.

Also a small paho subscriber (``Collector``) that records what arrives, with polling waits.
With ``tls`` the listener speaks only TLS (the test makes the certificates, see test_mqtt_tls.py).
Without the ``mosquitto`` binary the fixtures skip (or fail under CI=true, see ``require``).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import pytest

from tests.conftest import require

MOSQUITTO = shutil.which("mosquitto") or next(
    (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if os.access(p, os.X_OK)), None)
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    """Poll ``predicate`` every 10 ms; fail the test with ``what`` if it stays false for ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


class Mosquitto:
    """One broker process; ``stop()`` and ``start()`` keep the port (and, with ``persist``, the
    sessions and retained messages), so outages can be staged."""

    def __init__(self, workdir: Path, *, users: dict[str, str] | None = None, persist: bool = False,
                 tls: BrokerTls | None = None):
        require(MOSQUITTO is not None, "mosquitto not installed (apt install mosquitto)")
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.host = "127.0.0.1"
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        lines = [f"listener {self.port} {self.host}", "log_dest stderr", "log_type error", "log_type warning",
                 # started as root (containers, CI) mosquitto would switch to user 'mosquitto', which
                 # cannot read the test's private temp folder; as any other user this line is ignored
                 f"user {pwd.getpwuid(os.getuid()).pw_name}"]
        if tls:  # listener options: they apply to the listener line above
            lines[1:1] = [f"cafile {tls.cafile}", f"certfile {tls.certfile}", f"keyfile {tls.keyfile}",
                          f"require_certificate {'true' if tls.require_certificate else 'false'}"]
        if users:
            require(MOSQUITTO_PASSWD is not None, "mosquitto_passwd not installed (apt install mosquitto)")
            pwfile = self.dir / "passwd"
            pwfile.touch(mode=0o600)
            for user, password in users.items():
                subprocess.run([MOSQUITTO_PASSWD, "-b", str(pwfile), user, password], check=True,
                               capture_output=True)
            lines += ["allow_anonymous false", f"password_file {pwfile}"]
        else:
            lines.append("allow_anonymous true")
        if persist:
            lines += ["persistence true", f"persistence_location {self.dir}/", "autosave_interval 0"]
        else:
            lines.append("persistence false")
        self.conf = self.dir / "mosquitto.conf"
        self.conf.write_text("\n".join(lines) + "\n")
        self.log = self.dir / "mosquitto.log"

    def start(self) -> None:
        with open(self.log, "ab") as logf:
            self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=logf, stderr=logf)
        deadline = time.monotonic() + 5.0
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {self.log.read_text()[-2000:]}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"mosquitto did not listen on {self.port}: {self.log.read_text()[-2000:]}")
                time.sleep(0.02)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@dataclass(frozen=True)
class BrokerTls:
    """A TLS listener: the CA that signed client certificates, the broker's certificate and key, and
    whether a client must present a certificate signed by ``cafile``."""

    cafile: Path
    certfile: Path
    keyfile: Path
    require_certificate: bool = False


@dataclass
class Received:
    topic: str
    payload: bytes
    retain: bool
    qos: int

    @property
    def text(self) -> str:
        return self.payload.decode("utf-8")


class Collector:
    """A paho subscriber that records every message; ``session`` keeps its subscriptions and
    queued QoS 1 messages across a broker restart (clean_session False)."""

    def __init__(self, broker: Mosquitto, topics: list[str], *, session: bool = False,
                 username: str | None = None, password: str | None = None, tls_ca: Path | None = None,
                 tls_cert: Path | None = None, tls_key: Path | None = None):
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.messages: list[Received] = []
        self._lock = threading.Lock()
        self._topics = topics
        self.subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-{uuid.uuid4().hex[:8]}",
                                  clean_session=not session)
        if username:
            self.client.username_pw_set(username, password)
        if tls_ca:
            self.client.tls_set(ca_certs=str(tls_ca), certfile=tls_cert and str(tls_cert),
                                keyfile=tls_key and str(tls_key))
        self.client.reconnect_delay_set(min_delay=1, max_delay=1)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port, keepalive=10)
        self.client.loop_start()
        if not self.subscribed.wait(5):
            raise AssertionError("test client could not connect and subscribe")

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            return
        if self._topics:
            client.subscribe([(t, 1) for t in self._topics])
        else:
            self.subscribed.set()

    def _on_message(self, client, userdata, msg):
        with self._lock:
            self.messages.append(Received(msg.topic, bytes(msg.payload), bool(msg.retain), msg.qos))

    def on(self, topic: str) -> list[Received]:
        with self._lock:
            return [m for m in self.messages if m.topic == topic]

    def last(self, topic: str) -> Received | None:
        found = self.on(topic)
        return found[-1] if found else None

    def wait_for(self, topic: str, count: int = 1, timeout: float = 5.0) -> list[Received]:
        wait_until(lambda: len(self.on(topic)) >= count, timeout, f"{count} message(s) on {topic}")
        return self.on(topic)

    def wait_value(self, topic: str, value: str, timeout: float = 5.0) -> Received:
        wait_until(lambda: (m := self.last(topic)) is not None and m.text == value, timeout,
                   f"{topic} = {value!r} (last: {self.last(topic)})")
        return self.last(topic)  # type: ignore[return-value]

    def publish(self, topic: str, payload: bytes | str, *, qos: int = 1, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=qos, retain=retain).wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture(scope="module")
def broker(tmp_path_factory) -> Iterator[Mosquitto]:
    """A shared anonymous broker for one test module (tests use distinct device ids)."""
    b = Mosquitto(tmp_path_factory.mktemp("mosquitto"))
    b.start()
    yield b
    b.stop()


@pytest.fixture
def fresh_broker(tmp_path) -> Iterator[Mosquitto]:
    """A broker of one's own (with persistence), for tests that stop and start it."""
    b = Mosquitto(tmp_path / "mosquitto", persist=True)
    b.start()
    yield b
    b.stop()


@pytest.fixture
def auth_broker(tmp_path) -> Iterator[Mosquitto]:
    """A broker that only lets in user 'wearer' with password 'correct horse'."""
    b = Mosquitto(tmp_path / "mosquitto", users={"wearer": "correct horse"})
    b.start()
    yield b
    b.stop()
