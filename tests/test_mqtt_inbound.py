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
from tests.test_mqtt_broker import closing  # noqa: F401 (fixture)

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
    with caplog.at_level(logging.DEBUG, logger="sitsense.mqtt"):
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


# -------------------------------------------------------------------------------- the pure rules

def test_a_token_bucket_per_name_lets_a_burst_through_then_one_per_interval():
    from sitsense.mqtt.inbound import RateLimiter

    limit = RateLimiter(3, 2.0, max_keys=2)
    assert [limit.allow("snooze", 0.0) for _ in range(5)] == [True, True, True, False, False]
    assert limit.allow("pause", 0.0)  # each name has its own bucket
    assert not limit.allow("snooze", 1.0) and limit.allow("snooze", 2.5) and not limit.allow("snooze", 2.6)
    for k in range(1000):  # a flood of names never holds more than max_keys buckets
        limit.allow(f"n{k}", 3.0)
    assert len(limit._buckets) == 2


def test_log_once_holds_a_bounded_number_of_keys():
    from sitsense.mqtt.inbound import LogOnce

    seen = LogOnce(max_keys=3)
    assert [seen.first(k) for k in "aab"] == [True, False, True]
    assert seen.first("c") and not seen.first("d") and seen.overflowed and len(seen) == 3
    seen.forget(("a",))
    assert seen.first("a")


def test_debounce_merges_a_flood_into_one_action_per_interval():
    from sitsense.mqtt.inbound import Debounce

    d = Debounce(30.0)
    assert d.offer(100.0) == 0.0  # the first: at once
    assert d.offer(101.0) == pytest.approx(29.0)  # inside the interval: once, at its end
    assert all(d.offer(101.0 + k / 100) is None for k in range(2000))  # the rest: merged into that one
    d.done(130.0)
    assert d.offer(170.0) == 0.0


# -------------------------------------------------------------------------------- floods, in process

def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_flood_of_valid_commands_is_rate_limited_before_the_service(rig, caplog):
    """50 000 valid commands used to be executed one by one on the service's loop (15.8 s of lost
    samples at 1x); now a name gets a burst and then one per interval, the rest never reach it."""
    from sitsense.mqtt.inbound import COMMAND_BURST, COMMAND_REFILL_S, REFUSAL_BURST, REFUSAL_REFILL_S

    import time

    started = time.monotonic()
    with caplog.at_level(logging.INFO, logger="sitsense"):
        for _ in range(5000):
            rig.fake.deliver(TOPICS.cmd("snooze"), b'{"minutes": 5}')
    elapsed = time.monotonic() - started
    assert COMMAND_BURST <= len(rig.submitted) <= COMMAND_BURST + elapsed / COMMAND_REFILL_S + 1
    assert rig.out.stats["rate_limited"] == 5000 - len(rig.submitted)
    refusals = [r for r in rig.replies("snooze") if not r["ok"]]
    assert 1 <= len(refusals) <= REFUSAL_BURST + elapsed / REFUSAL_REFILL_S + 1  # answers are a flood too
    assert "too many commands" in refusals[0]["error"]
    assert len([w for w in _warnings(caplog) if "too many" in w or "at once" in w]) == 1


def test_twenty_thousand_unknown_names_cost_neither_memory_nor_log(rig, caplog):
    """The log-once set used to remember every name (77 MB for 20 000 long ones, and 77 MB of log)."""
    import tracemalloc

    names = [f"n{k:05d}-" + "x" * 1000 for k in range(20_000)]
    tracemalloc.start()
    try:
        rig.fake.deliver(TOPICS.cmd(names[0]), b"")  # warm up: the first of its kind is logged and kept
        before = tracemalloc.take_snapshot()
        with caplog.at_level(logging.INFO, logger="sitsense"):
            for name in names[1:]:
                rig.fake.deliver(TOPICS.cmd(name), b"")
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    grown = sum(s.size_diff for s in after.compare_to(before, "filename"))
    assert grown < 1_000_000, f"{grown} bytes kept for 20 000 unknown names"
    assert rig.out.stats["rejected"] == 20_000
    logged = "\n".join(_warnings(caplog))
    assert len(logged) < 2000  # the first unknown name was the one WARNING; the rest are DEBUG
    assert all(len(r["error"]) < 300 for r in rig.replies(names[1]))  # a cut name in the answer


# -------------------------------------------------------------------------------- a real broker

def test_two_thousand_online_republish_discovery_twice_not_two_thousand_times(tmp_path, monkeypatch,
                                                                            closing):  # noqa: F811
    import sitsense.mqtt.client as client_module
    from tests.mosquitto import Collector, Mosquitto, wait_until
    from tests.test_mqtt_broker import make_output

    monkeypatch.setattr(client_module, "DISCOVERY_MIN_INTERVAL_S", 1.0)  # the merged one comes after 1 s, not 30
    broker = Mosquitto(tmp_path / "mosquitto")
    broker.start()
    closing(type("Stop", (), {"close": lambda self: broker.stop()})())
    sub = Collector(broker, ["homeassistant/+/hassflood/+/config"])
    closing(sub)
    out = make_output(broker, "hassflood", tmp_path)
    closing(out)
    out.start()
    wait_until(lambda: len(sub.messages) >= 13, 5, "the discovery configs of the connect")
    per_round = len(sub.messages)
    ha = Collector(broker, [])
    closing(ha)
    for _ in range(2000):
        ha.client.publish("homeassistant/status", "online", qos=0)
    ha.publish("homeassistant/status", "online")  # QoS 1: the 2000 before it were delivered by now
    wait_until(lambda: len(sub.messages) >= 3 * per_round, 10, "the first and the merged republish")
    wait_until(lambda: out.stats["discovery"] == 3, 5, "three rounds")
    import time

    time.sleep(1.5)  # a deliberate wait: longer than the interval, nothing more may come
    assert len(sub.messages) == 3 * per_round and out.stats["discovery"] == 3  # was 2001 rounds (26 013 messages)


def test_a_30_mb_payload_and_a_flood_of_names_do_not_kill_run_under_memorymax_128m(tmp_path, closing):  # noqa: F811
    """The issue's attack on a real 'sitsense run' inside a 128 MiB memory cgroup (the unit's
    MemoryMax): one 30 MB payload on cmd/snooze used to get it OOM-killed. Now the packet is refused
    before its body is read, the flood of 20 000 names and 2000 valid commands cost nothing lasting,
    and a command sent afterwards is still answered."""
    import os
    import subprocess
    import sys
    import time

    from tests.memcg import CgroupUnavailable, MemoryCgroup
    from tests.mosquitto import Collector, Mosquitto, wait_until

    try:
        cgroup = MemoryCgroup.create(128 * 1024 * 1024)
    except CgroupUnavailable as exc:
        pytest.skip(str(exc))
    closing(type("Remove", (), {"close": lambda self: cgroup.remove()})())
    broker = Mosquitto(tmp_path / "mosquitto")
    broker.start()
    closing(type("Stop", (), {"close": lambda self: broker.stop()})())
    conf = tmp_path / "c.toml"
    conf.write_text(f'[mqtt]\nenabled = true\nhost = "{broker.host}"\nport = {broker.port}\ndevice_id = "memdev"\n'
                    "discovery = false\nreconnect_max_s = 1\n[buzzer]\nenabled = false\n")
    log_path = tmp_path / "run.log"
    env = dict(os.environ, STATE_DIRECTORY=str(tmp_path / "state"), PYTHONUNBUFFERED="1")
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen([sys.executable, "-m", "sitsense.cli", "run", "--config", str(conf), "--sensor",
                                 "fake:plan:sit 30m", "--speed", "1", "--no-state"], stdout=subprocess.DEVNULL,
                                stderr=log_file, env=env, preexec_fn=cgroup.join)
    closing(type("Kill", (), {"close": lambda self: (proc.kill(), proc.wait())})())
    sub = Collector(broker, ["sitsense/memdev/status", "sitsense/memdev/cmd/+/result"])
    closing(sub)
    sub.wait_value("sitsense/memdev/status", "online", timeout=30)
    time.sleep(2.0)  # let start-up settle (calibration, the first classification) before the baseline
    baseline = cgroup.current_bytes()
    sub.publish("sitsense/memdev/cmd/snooze", b"x" * (30 * 1024 * 1024))
    for k in range(20_000):
        sub.client.publish(f"sitsense/memdev/cmd/n{k:05d}-" + "y" * 200, b"", qos=0)
    for _ in range(2000):
        sub.client.publish("sitsense/memdev/cmd/pause", b'{"minutes": 5}', qos=0)
    sub.publish("sitsense/memdev/cmd/resume", b"")
    sub.client.unsubscribe("sitsense/memdev/cmd/+/result")  # the answers to the flood are not the point
    answered = Collector(broker, ["sitsense/memdev/cmd/snooze/result"])
    closing(answered)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not answered.on("sitsense/memdev/cmd/snooze/result"):
        assert proc.poll() is None, f"run died (status {proc.returncode}): {log_path.read_text()[-1500:]}"
        sub.publish("sitsense/memdev/cmd/snooze", b'{"minutes": 5}')  # the rate limit may still hold it back
        time.sleep(1.0)
    replies = [json.loads(m.payload) for m in answered.on("sitsense/memdev/cmd/snooze/result")]
    assert any(r["ok"] for r in replies), replies
    assert proc.poll() is None and cgroup.oom_kills() == 0
    grown_mib = (cgroup.peak_bytes() - baseline) / 2**20
    print(f"memory of the cgroup: {baseline / 2**20:.1f} MiB before the attack, peak {grown_mib:+.1f} MiB")
    assert grown_mib < 16, f"the attack cost {grown_mib:.1f} MiB at its peak"  # a 30 MB payload held is 30+
    proc.terminate()
    assert proc.wait(30) == 0
    text = log_path.read_text()
    assert "Traceback" not in text and len(text) < 20_000, text[-2000:]
