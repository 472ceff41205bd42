"""The MQTT output over TLS against a real Mosquitto ([mqtt] tls_ca, tls_cert, tls_key).

The certificates are made at test time with the ``openssl`` command line (EC P-256, so it takes
milliseconds): a throwaway CA, a broker certificate for 127.0.0.1 and localhost, a client
certificate, and a second, unrelated CA that a misconfigured device might point at.
Without ``openssl`` or ``mosquitto`` the tests skip (and fail under CI=true, see ``require``).
"""

from __future__ import annotations

import json
import logging
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from sitsense.clock import SystemClock
from sitsense.config import load_config
from sitsense.mqtt.client import MqttOutput
from sitsense.service import Service
from sitsense.wiring import attach_mqtt
from tests.conftest import require
from tests.mosquitto import BrokerTls, Collector, Mosquitto, wait_until
from tests.test_mqtt_broker import closing, make_alert  # noqa: F401 (closing is a fixture)

OPENSSL = shutil.which("openssl")

# A config of our own, so neither the system's openssl.cnf nor its defaults matter.
OPENSSL_CNF = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = sitsense test
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


@dataclass(frozen=True)
class Pair:
    crt: Path
    key: Path


class Pki:
    """Makes throwaway CAs and certificates with the openssl command line in ``folder``."""

    def __init__(self, folder: Path):
        require(OPENSSL is not None, "openssl command line not installed (apt install openssl)")
        self.dir = folder
        self.dir.mkdir(parents=True, exist_ok=True)
        self.cnf = self.dir / "openssl.cnf"
        self.cnf.write_text(OPENSSL_CNF)

    def _run(self, *args: str) -> None:
        done = subprocess.run([OPENSSL, *args], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"openssl {' '.join(args[:2])} failed: {done.stderr.strip()}")

    def _new_key_args(self, name: str) -> list[str]:
        return ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", str(self.dir / f"{name}.key"), "-config", str(self.cnf), "-subj", f"/CN={name}"]

    def ca(self, name: str) -> Pair:
        crt = self.dir / f"{name}.crt"
        self._run("req", "-x509", *self._new_key_args(name), "-extensions", "ca", "-days", "2", "-out", str(crt))
        return Pair(crt, self.dir / f"{name}.key")

    def issue(self, ca: Pair, name: str, kind: str) -> Pair:
        """A certificate signed by ``ca``; ``kind`` is 'server' or 'client' (a section of OPENSSL_CNF)."""
        csr, crt = self.dir / f"{name}.csr", self.dir / f"{name}.crt"
        self._run("req", "-new", *self._new_key_args(name), "-out", str(csr))
        self._run("x509", "-req", "-in", str(csr), "-CA", str(ca.crt), "-CAkey", str(ca.key),
                  "-set_serial", f"0x{secrets.token_hex(8)}", "-days", "2", "-extfile", str(self.cnf),
                  "-extensions", kind, "-out", str(crt))
        return Pair(crt, self.dir / f"{name}.key")


@dataclass(frozen=True)
class Certs:
    ca: Pair  # signed the broker's and the client's certificates
    server: Pair
    client: Pair
    other_ca: Pair  # a CA that signed nothing here: trusting it must not let us in


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> Certs:
    pki = Pki(tmp_path_factory.mktemp("pki"))
    ca = pki.ca("sitsense-test-ca")
    return Certs(ca=ca, server=pki.issue(ca, "broker", "server"), client=pki.issue(ca, "pi", "client"),
                 other_ca=pki.ca("unrelated-ca"))


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory, certs) -> Iterator[Mosquitto]:
    """A broker whose only listener speaks TLS (server certificate only)."""
    b = Mosquitto(tmp_path_factory.mktemp("mosquitto-tls"),
                  tls=BrokerTls(cafile=certs.ca.crt, certfile=certs.server.crt, keyfile=certs.server.key))
    b.start()
    yield b
    b.stop()


@pytest.fixture
def mtls_broker(tmp_path, certs) -> Iterator[Mosquitto]:
    """A TLS broker that also demands a client certificate signed by the test CA."""
    b = Mosquitto(tmp_path / "mosquitto-mtls", tls=BrokerTls(cafile=certs.ca.crt, certfile=certs.server.crt,
                                                             keyfile=certs.server.key, require_certificate=True))
    b.start()
    yield b
    b.stop()


def start_service_output(b: Mosquitto, device_id: str, tmp_path: Path, *, host: str = "127.0.0.1",
                         **mqtt: object) -> MqttOutput:
    """The MQTT output exactly as ``sitsense run`` builds it: a TOML file, load_config, attach_mqtt.
    Each device id has its own state folder (so its own outbox), kept across restarts in a test."""
    keys = {"enabled": True, "host": host, "port": b.port, "device_id": device_id, "discovery": False,
            "reconnect_max_s": 1, **mqtt}
    conf = tmp_path / f"{device_id}.toml"
    conf.write_text("[mqtt]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in keys.items())
                    + f"[store]\npath = {json.dumps(str(tmp_path / device_id / 'sitsense.db'))}\n")
    cfg = load_config(conf)
    service = Service(cfg, clock=SystemClock())
    out = attach_mqtt(service, cfg)
    assert service.outputs == [out]
    return out


def nothing_arrives(sub: Collector, prefix: str, seconds: float) -> bool:
    """True if ``sub`` got nothing under ``prefix`` for ``seconds`` (a deliberate wait: proving absence)."""
    try:
        wait_until(lambda: any(m.topic.startswith(prefix) for m in sub.messages), seconds, f"a message on {prefix}")
    except AssertionError:
        return True
    return False


def test_alert_and_online_status_arrive_over_tls(tls_broker, certs, tmp_path, closing):
    sub = Collector(tls_broker, ["sitsense/tlspi/#"], tls_ca=certs.ca.crt)
    closing(sub)
    # 'localhost' checks the DNS name in the broker's certificate, the subscriber checks 127.0.0.1
    out = start_service_output(tls_broker, "tlspi", tmp_path, host="localhost", tls_ca=str(certs.ca.crt))
    closing(out)
    assert "tls" in out.describe()
    sub.wait_value("sitsense/tlspi/status", "online")
    out.handle(make_alert(1, "tlspi"))
    [msg] = sub.wait_for("sitsense/tlspi/alert")
    assert json.loads(msg.payload)["id"] == "tlspi-0001" and msg.qos == 1
    assert out.wait_delivered(5) and len(out.outbox) == 0
    late = Collector(tls_broker, ["sitsense/tlspi/status"], tls_ca=certs.ca.crt)  # a phone opening the app
    closing(late)
    assert late.wait_value("sitsense/tlspi/status", "online").retain


def test_a_broker_certificate_from_another_ca_is_refused_with_a_clear_warning(tls_broker, certs, tmp_path,
                                                                              closing, caplog):
    caplog.set_level(logging.INFO, logger="sitsense")
    sub = Collector(tls_broker, ["sitsense/wrongca/#"], tls_ca=certs.ca.crt)
    closing(sub)
    out = start_service_output(tls_broker, "wrongca", tmp_path, tls_ca=str(certs.other_ca.crt))
    out.handle(make_alert(1, "wrongca"))  # the service goes on: alerts are kept in the outbox
    wait_until(lambda: out.last_error, 5, "the output to give up on the first connection attempt")
    assert nothing_arrives(sub, "sitsense/wrongca/", 2.5)  # reconnect_max_s = 1: two more attempts fail meanwhile
    assert not out.connected and len(out.outbox) == 1
    assert "certificate" in out.last_error and "mqtt.tls_ca" in out.last_error, out.last_error
    warnings = [r.getMessage() for r in caplog.records
                if r.name.startswith("sitsense") and r.levelno >= logging.WARNING]
    tls_warnings = [w for w in warnings if "certificate" in w and "mqtt.tls_ca" in w]
    assert len(tls_warnings) == 1, warnings  # said once, not on every retry
    assert "Traceback" not in caplog.text
    out.close()  # no hang, no exception; the alert stays on disk for the next start
    assert sub.last("sitsense/wrongca/status") is None
    # the user fixes tls_ca and restarts: the alert kept in the outbox arrives after all
    fixed = start_service_output(tls_broker, "wrongca", tmp_path, tls_ca=str(certs.ca.crt))
    closing(fixed)
    [msg] = sub.wait_for("sitsense/wrongca/alert")
    assert json.loads(msg.payload)["id"] == "wrongca-0001"
    sub.wait_value("sitsense/wrongca/status", "online")


def test_client_certificate_lets_the_pi_in_and_its_absence_keeps_it_out(mtls_broker, certs, tmp_path, closing,
                                                                        caplog):
    sub = Collector(mtls_broker, ["sitsense/+/alert", "sitsense/+/status"], tls_ca=certs.ca.crt,
                    tls_cert=certs.client.crt, tls_key=certs.client.key)
    closing(sub)
    anon = start_service_output(mtls_broker, "nocert", tmp_path, tls_ca=str(certs.ca.crt))
    closing(anon)
    anon.handle(make_alert(1, "nocert"))
    out = start_service_output(mtls_broker, "withcert", tmp_path, tls_ca=str(certs.ca.crt),
                               tls_cert=str(certs.client.crt), tls_key=str(certs.client.key))
    closing(out)
    out.handle(make_alert(1, "withcert"))
    [msg] = sub.wait_for("sitsense/withcert/alert")
    assert json.loads(msg.payload)["id"] == "withcert-0001"
    sub.wait_value("sitsense/withcert/status", "online")
    # without a certificate the broker hangs up (TLS 1.3: after the handshake); the log must say why
    wait_until(lambda: "mqtt.tls_cert" in anon.last_error, 5, "the output to report the missing client certificate")
    assert nothing_arrives(sub, "sitsense/nocert/", 1.5)
    assert not anon.connected and len(anon.outbox) == 1
    hints = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "client certificate" in
             r.getMessage()]
    assert len(hints) == 1 and f":{mtls_broker.port}" in hints[0], hints


def test_a_tls_port_without_tls_ca_is_reported(tls_broker, tmp_path, closing, caplog):
    out = start_service_output(tls_broker, "plain", tmp_path)  # the user forgot [mqtt] tls_ca
    closing(out)
    wait_until(lambda: "mqtt.tls_ca" in out.last_error, 5, "the output to suggest TLS")
    assert not out.connected
    assert any("is it a TLS port" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
