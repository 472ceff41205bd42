"""What arrives over MQTT is bounded (issue 18 items 3 and 7).

Anyone who may publish to ``cmd/+`` (the README's broker setup had no ACL) could exhaust the Pi:
a 30 MB payload, 20 000 distinct command names (a log-once set that never forgot), 50 000 valid
commands (no rate limit), 2000 ``online`` on ``homeassistant/status`` (each republished all of
discovery). Deep nesting and huge integers reached only the catch-all handler.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

import pytest

from sitsense.clock import SimClock
from sitsense.config import MqttConfig
from sitsense.control import Request
from sitsense.mqtt.client import MqttOutput
from sitsense.mqtt.fake import FakeMqttClient
from sitsense.mqtt.topics import Topics

DEVICE = "inbound"
TOPICS = Topics.for_device("sitsense", DEVICE)


class Rig:
    """An MqttOutput on the fake client, recording what it submits."""

    def __init__(self, **mqtt: object):
        self.clock = SimClock(datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc))
        self.submitted: list[Request] = []
        self.fake = FakeMqttClient()
        cfg = MqttConfig(device_id=DEVICE, **{"discovery": False, **mqtt})  # type: ignore[arg-type]
        self.out = MqttOutput(cfg, client=self.fake, outbox=":memory:", submit=self.submitted.append,
                              clock=self.clock)
        self.out.start()

    def replies(self, name: str) -> list[dict]:
        return [json.loads(m.payload) for m in self.fake.on(TOPICS.cmd_result(name))]


@pytest.fixture
def rig():
    r = Rig()
    yield r
    r.out.close()


@pytest.mark.parametrize("payload", [
    b"[" * 1020,                                   # deeper than Python's recursion limit
    b'{"minutes": ' + b"[" * 1000 + b"]" * 1 + b"}",
    b'{"minutes": ' + b"9" * 400 + b"}",           # an integer no float can hold
    b'{"minutes": -' + b"9" * 400 + b"}",
], ids=["nested list", "nested field", "huge integer", "huge negative integer"])
def test_deep_nesting_and_huge_integers_are_rejections_not_crashes(rig, caplog, payload):
    with caplog.at_level(logging.DEBUG, logger="sitsense.mqtt.client"):
        rig.fake.deliver(TOPICS.cmd("snooze"), payload)
    assert not [r for r in caplog.records if "incoming message" in r.getMessage()]  # not the catch-all
    assert rig.out.stats["rejected"] == 1 and rig.submitted == []
    [reply] = rig.replies("snooze")
    assert reply["ok"] is False and len(reply["error"]) < 200, reply


def test_run_state_puts_the_mqtt_outbox_beside_the_database(tmp_path, monkeypatch):
    """'run --state X' used to keep the outbox in the default state folder."""
    from sitsense.cli import main

    default = tmp_path / "default-state"
    monkeypatch.setenv("STATE_DIRECTORY", str(default))
    conf = tmp_path / "c.toml"
    conf.write_text('[mqtt]\nenabled = true\nhost = "127.0.0.1"\nport = 1\ndevice_id = "elsewhere"\n'
                    "discovery = false\n")
    db = tmp_path / "mine" / "s.db"
    assert main(["run", "--config", str(conf), "--sensor", "fake:plan:sit 1m", "--speed", "0",
                 "--state", str(db)]) == 0
    assert (db.parent / "mqtt-outbox.db").exists()
    assert not (default / "mqtt-outbox.db").exists()
