"""The documented Mosquitto setup (docs/wear/mqtt.md, "Mosquitto on the Pi"), run as written (issue 18
item 3): its ACL keeps every account but the wearer's out of the device's topics, and its
``max_packet_size`` stops a huge message at the broker. The files are taken from the page's own code
block, so the page stays true.
"""

from __future__ import annotations

import os
import pwd
import re

import pytest

from sitsense.config import MqttConfig
from sitsense.control import Request
from sitsense.mqtt.client import MqttOutput
from tests.mosquitto import MOSQUITTO_PASSWD, Collector, Mosquitto, wait_until
from tests.conftest import REPO, require
from tests.test_mqtt_broker import closing  # noqa: F401 (fixture)

PASSWORDS = {"wearer": "wearer's secret", "stranger": "someone else"}


BROKER_PAGE = REPO / "docs" / "wear" / "mqtt.md"


def documented_files() -> dict[str, str]:
    """The files the page's 'Mosquitto on the Pi' block writes with ``sudo tee PATH <<'EOF'``."""
    text = BROKER_PAGE.read_text()
    section = text[text.index("\n## Mosquitto on the Pi\n"):]
    section = section[:section.index("\n## ", 1)]
    return dict(re.findall(r"sudo tee (\S+) >/dev/null <<'EOF'\n(.*?)\nEOF\n", section, flags=re.S))


@pytest.fixture
def documented_broker(tmp_path):
    require(MOSQUITTO_PASSWD is not None, "mosquitto_passwd not installed (apt install mosquitto)")
    files = documented_files()
    conf_text, acl_text = files["/etc/mosquitto/conf.d/sitsense.conf"], files["/etc/mosquitto/acl"]
    b = Mosquitto(tmp_path / "mosquitto", users=PASSWORDS)  # makes the password file
    acl = b.dir / "acl"
    acl.write_text(acl_text + "\n")
    lines = []
    for line in conf_text.splitlines():
        if line.startswith("listener "):
            line = f"listener {b.port} {b.host}"
        line = line.replace("/etc/mosquitto/passwd", str(b.dir / "passwd")).replace("/etc/mosquitto/acl", str(acl))
        lines.append(line)
    lines += ["log_dest stderr", "log_type error", "persistence false",
              f"user {pwd.getpwuid(os.getuid()).pw_name}"]  # as tests/mosquitto.py: root would switch users
    b.conf.write_text("\n".join(lines) + "\n")
    b.start()
    yield b
    b.stop()


def test_the_documented_block_has_the_acl_and_the_packet_limit():
    files = documented_files()
    conf = files["/etc/mosquitto/conf.d/sitsense.conf"]
    assert "acl_file /etc/mosquitto/acl" in conf and re.search(r"^max_packet_size \d+$", conf, re.M)
    assert "user wearer" in files["/etc/mosquitto/acl"]


def test_only_the_wearer_reads_and_commands_and_huge_messages_stop_at_the_broker(documented_broker, tmp_path,
                                                                                closing):  # noqa: F811
    b = documented_broker
    submitted: list[Request] = []
    out = MqttOutput(MqttConfig(enabled=True, host=b.host, port=b.port, device_id="acl", username="wearer",
                                reconnect_max_s=1), outbox=tmp_path / "o.db", submit=submitted.append,
                     environ={"SITSENSE_MQTT_PASSWORD": PASSWORDS["wearer"]})
    closing(out)
    out.start()
    assert out.wait_connected(5)
    stranger = Collector(b, ["sitsense/#", "homeassistant/#"], username="stranger", password=PASSWORDS["stranger"])
    closing(stranger)
    phone = Collector(b, ["sitsense/acl/#"], username="wearer", password=PASSWORDS["wearer"])
    closing(phone)
    phone.wait_value("sitsense/acl/status", "online")  # the wearer reads the device ...
    stranger.client.publish("sitsense/acl/cmd/pause", b'{"minutes": 600}', qos=1)  # the broker drops it
    phone.publish("sitsense/acl/cmd/resume", b"")  # the sentinel, after the stranger's command
    wait_until(lambda: [r.name for r in submitted] == ["resume"], 5, "the wearer's command")
    assert not stranger.messages  # ... the stranger nothing: no state, no discovery, no answers
    # over max_packet_size: the broker refuses it (and disconnects the sender); sitsense never sees it
    big = Collector(b, [], username="wearer", password=PASSWORDS["wearer"])
    closing(big)
    big.client.publish("sitsense/acl/cmd/snooze", b"x" * (2 * 1024 * 1024), qos=1)
    phone.publish("sitsense/acl/cmd/calibrate", b"")
    wait_until(lambda: [r.name for r in submitted] == ["resume", "calibrate"], 5, "the second sentinel")
    assert out.stats["oversized"] == 0 and out.stats["rejected"] == 0 and out.connected
