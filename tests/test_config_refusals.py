"""Half-right configs are refused before the service starts (issue 18 items 4 and 5).

Every setting that would make ``sitsense run`` fail is caught by ``check-config`` with exit 78
(EX_CONFIG, which the unit's RestartPreventExitStatus does not retry), and ``run`` exits 78 for it
too instead of 1 (which systemd retries forever). TLS is on whenever any ``tls_*`` is set: a
client certificate without ``tls_ca`` uses the system's CA store, never a plaintext connection.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Callable

import pytest

from sitsense.cli import main
from sitsense.config import load_config, parse_hhmm_range
from tests.mosquitto import Collector, Mosquitto, wait_until
from tests.test_mqtt_broker import closing  # noqa: F401 (fixture)
from tests.test_mqtt_tls import certs, start_service_output, tls_broker  # noqa: F401 (fixtures)


def _secret(tmp_path: Path, name: str, text: str, mode: int = 0o600) -> str:
    path = tmp_path / name
    path.write_text(text)
    path.chmod(mode)
    return str(path)


def _key_file(tmp_path: Path, mode: int) -> tuple[str, str]:
    """A real client certificate and key (made by the TLS tests' openssl), the key with ``mode``."""
    from tests.test_mqtt_tls import Pki

    pki = Pki(tmp_path / "pki")
    pair = pki.issue(pki.ca("ca"), "pi", "client")
    pair.key.chmod(mode)
    return str(pair.crt), str(pair.key)


MQTT_ON = {"enabled": True, "host": "127.0.0.1", "port": 1, "discovery": False}

# (case, section, keys, what the one-line message must name); keys may be a function of tmp_path
CASES: list[tuple[str, str, Callable[[Path], dict] | dict, str]] = [
    ("empty host", "mqtt", {**MQTT_ON, "host": ""}, "mqtt.host = ''"),
    ("missing posture model", "posture", lambda p: {"model": str(p / "nope.npz")}, "posture.model"),
    ("not a posture model", "posture", lambda p: {"model": _secret(p, "m.npz", "not numpy")}, "not a posture model"),
    ("empty password file", "mqtt", lambda p: {**MQTT_ON, "username": "pi", "password_file": _secret(p, "pw", "\n")},
     "the file is empty"),
    ("password without a user", "mqtt", lambda p: {**MQTT_ON, "password_file": _secret(p, "pw", "s3cret\n")},
     "mqtt.username"),
    ("active hours past midnight", "tracker", {"active_hours": "08:00-24:59"}, "tracker.active_hours"),
    ("empty topic level", "mqtt", {**MQTT_ON, "topic_prefix": "a//b"}, "mqtt.topic_prefix"),
    ("leading slash", "mqtt", {**MQTT_ON, "discovery_prefix": "/homeassistant"}, "mqtt.discovery_prefix"),
    ("tls_key readable by others", "mqtt", lambda p: {**MQTT_ON, **dict(zip(("tls_cert", "tls_key"),
                                                                           _key_file(p, 0o644)))}, "chmod 600"),
    ("tls_key without tls_cert", "mqtt", lambda p: {**MQTT_ON, "tls_key": _key_file(p, 0o600)[1]},
     "without mqtt.tls_cert"),
    ("tls_ca not a certificate", "mqtt", lambda p: {**MQTT_ON, "tls_ca": _secret(p, "ca.crt", "garbage\n")},
     "TLS files do not load"),
]


def _write(tmp_path: Path, section: str, keys: dict) -> Path:
    conf = tmp_path / "sitsense.toml"
    body = "".join(f"{k} = {json.dumps(v)}\n" for k, v in keys.items())
    conf.write_text(f"[{section}]\n{body}")
    return conf


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_check_config_and_run_both_refuse_it_with_78(case, tmp_path, capsys):
    name, section, keys, named = case
    conf = _write(tmp_path, section, keys(tmp_path) if callable(keys) else keys)
    assert main(["check-config", str(conf)]) == 78, name
    err = capsys.readouterr().err
    assert named in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1, err  # one line, naming file and key
    code = main(["run", "--config", str(conf), "--sensor", "fake:plan:sit 1m", "--speed", "0", "--no-state"])
    err = capsys.readouterr().err
    assert code == 78 and named in err, err


def test_the_end_of_the_day_is_24_00_and_nothing_later():
    assert parse_hhmm_range("08:00-24:00") == (480, 1440)
    assert parse_hhmm_range("22:30-06:15") == (1350, 375)


def test_a_password_in_the_environment_without_a_user_is_refused_too(tmp_path, monkeypatch, capsys):
    conf = _write(tmp_path, "mqtt", MQTT_ON)
    monkeypatch.setenv("SITSENSE_MQTT_PASSWORD", "s3cret")
    assert main(["check-config", str(conf)]) == 78
    err = capsys.readouterr().err
    assert "SITSENSE_MQTT_PASSWORD" in err and "s3cret" not in err


# -------------------------------------------------------------------------------------------- TLS

def test_a_client_certificate_without_tls_ca_never_talks_plaintext(tmp_path, certs, closing, caplog):  # noqa: F811
    """The issue's case: tls_cert and tls_key set, tls_ca empty, against a plaintext port that takes
    the password. Before, the client connected in plaintext and sent it; now it speaks TLS (which
    that port does not), so it never gets in."""
    broker = Mosquitto(tmp_path / "plain", users={"pi": "s3cret"})
    broker.start()
    try:
        monkey_env = {"SITSENSE_MQTT_PASSWORD": "s3cret"}
        conf = tmp_path / "c.toml"
        conf.write_text(f'[mqtt]\nenabled = true\nhost = "127.0.0.1"\nport = {broker.port}\nusername = "pi"\n'
                        f'device_id = "plain"\ndiscovery = false\nreconnect_max_s = 1\n'
                        f'tls_cert = "{certs.client.crt}"\ntls_key = "{certs.client.key}"\n')
        from sitsense.mqtt.client import MqttOutput

        out = MqttOutput.from_config(load_config(conf), environ=monkey_env)
        closing(out)
        assert "tls" in out.describe()
        out.start()
        wait_until(lambda: out.last_error, 5, "the TLS handshake with a plaintext port to fail")
        assert not out.connected, "connected in plaintext"
    finally:
        broker.stop()


def test_without_tls_ca_the_system_ca_store_verifies_the_broker(tls_broker, certs, tmp_path, closing,  # noqa: F811
                                                              monkeypatch):
    """An empty tls_ca with a client certificate uses the system's CA store; here the store is the
    test CA (SSL_CERT_FILE, which OpenSSL's default paths honour), and the alert arrives over TLS."""
    from tests.test_mqtt_broker import make_alert

    monkeypatch.setenv("SSL_CERT_FILE", str(certs.ca.crt))
    sub = Collector(tls_broker, ["sitsense/syscas/#"], tls_ca=certs.ca.crt)
    closing(sub)
    out = start_service_output(tls_broker, "syscas", tmp_path, host="localhost", tls_cert=str(certs.client.crt),
                               tls_key=str(certs.client.key))
    closing(out)
    assert "system CAs" in out.describe()
    out.handle(make_alert(1, "syscas"))
    [msg] = sub.wait_for("sitsense/syscas/alert")
    assert json.loads(msg.payload)["id"] == "syscas-0001"
