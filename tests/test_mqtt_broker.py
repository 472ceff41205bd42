"""The MQTT output against a real Mosquitto: availability, payloads, discovery, commands, auth, outages."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import textwrap
import threading
import time
from datetime import datetime, timezone

import pytest

from sitsense.config import MqttConfig
from sitsense.events import Alert, BreakTaken, Calibrated, PostureNotice
from sitsense.control import Request
from sitsense.mqtt.client import MqttOutput
from sitsense.mqtt.hass import ENTITIES
from sitsense.mqtt.topics import TILES
from sitsense.outputs.base import StateSnapshot
from tests.conftest import REPO
from tests.mosquitto import Collector, Mosquitto, auth_broker, broker, free_port, fresh_broker, wait_until  # noqa: F401
from tests.test_mqtt_payloads import BAD, GOOD

WALL = datetime(2024, 3, 5, 10, 0, 0, tzinfo=timezone.utc)


def make_output(b: Mosquitto, device_id: str, tmp_path, **cfg) -> MqttOutput:
    cfg.setdefault("reconnect_max_s", 1)
    kw = {k: cfg.pop(k) for k in ("submit", "environ", "outbox") if k in cfg}
    kw.setdefault("outbox", tmp_path / f"{device_id}-outbox.db")
    return MqttOutput(MqttConfig(enabled=True, host=b.host, port=b.port, device_id=device_id, **cfg), **kw)


def make_alert(i: int, device_id: str = "pi") -> Alert:
    return Alert(t=1800.0 + i, id=f"{device_id}-{i:04d}", bout_s=1800.0 + i, bout_start_t=0.0, reminder=1,
                 message="stand up", time="", exercise={"id": "hk", "name": "Half-kneeling stretch",
                                                         "dose": "2 x 30 s", "cue": "tuck the pelvis"},
                 safety="no pinching")


def snap(t: float, bout_s: float, posture: str = "sitting") -> StateSnapshot:
    return StateSnapshot(t=t, wall=WALL, posture=posture, p=0.9, bout_s=bout_s, sitting_today_s=bout_s,
                         breaks_today=1, alerts_today=0, release_today_s=0.0)


@pytest.fixture
def closing():
    """Collects outputs and subscribers and closes them after the test, whatever happens."""
    items = []
    yield items.append
    for item in reversed(items):
        item.close()


CHILD = textwrap.dedent("""
    import sys, threading
    from sitsense.config import MqttConfig
    from sitsense.mqtt.client import MqttOutput
    out = MqttOutput(MqttConfig(host="127.0.0.1", port=int(sys.argv[1]), device_id="lwt", discovery=False),
                     outbox=sys.argv[2])
    out.start()
    assert out.wait_connected(10)
    print("ready", flush=True)
    threading.Event().wait()
""")


def test_status_online_retained_and_last_will_offline_when_the_process_dies(broker, tmp_path, closing):
    sub = Collector(broker, ["sitsense/lwt/status"])
    closing(sub)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(broker.port), str(tmp_path / "o.db")],
                             env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        sub.wait_value("sitsense/lwt/status", "online")
        child.kill()  # SIGKILL: no goodbye, the broker must publish the Last Will
        child.wait(5)
        sub.wait_value("sitsense/lwt/status", "offline")
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    late = Collector(broker, ["sitsense/lwt/status"])  # a phone opening the app later
    closing(late)
    msg = late.wait_value("sitsense/lwt/status", "offline")
    assert msg.retain


def test_online_is_retained_and_close_says_offline(broker, tmp_path, closing):
    sub = Collector(broker, ["sitsense/closer/status"])
    closing(sub)
    out = make_output(broker, "closer", tmp_path, discovery=False)
    out.start()
    sub.wait_value("sitsense/closer/status", "online")
    late = Collector(broker, ["sitsense/closer/status"])  # subscribes after the broker stored it
    closing(late)
    assert late.wait_value("sitsense/closer/status", "online").retain
    out.close()
    late.wait_value("sitsense/closer/status", "offline")


def test_alert_and_event_payloads_arrive_at_qos1_not_retained(broker, tmp_path, closing):
    sub = Collector(broker, ["sitsense/pay/alert", "sitsense/pay/event"])
    closing(sub)
    out = make_output(broker, "pay", tmp_path, discovery=False)
    closing(out)
    out.start()
    out.update_state(snap(1799.0, 1799.0))
    out.handle(make_alert(1, "pay"))
    out.handle(BreakTaken(t=1900.0, start_t=1840.0, duration_s=60.0))
    out.handle(Calibrated(t=1950.0, source="walking", upright_g=(0.0, 0.0, 1.0)))
    [msg] = sub.wait_for("sitsense/pay/alert")
    assert msg.qos == 1 and not msg.retain
    a = json.loads(msg.payload)
    assert a["id"] == "pay-0001" and a["bout_min"] == 30.0 and a["reminder"] == 1
    assert a["exercise"] == {"id": "hk", "name": "Half-kneeling stretch", "dose": "2 x 30 s", "cue": "tuck the pelvis"}
    assert a["safety"] == "no pinching" and a["message"] == "stand up" and a["event_type"] == "stand_up"
    assert datetime.fromisoformat(a["time"]) == datetime(2024, 3, 5, 10, 0, 2, tzinfo=timezone.utc)
    events = [json.loads(m.payload) for m in sub.wait_for("sitsense/pay/event", 2)]
    assert [e["type"] for e in events] == ["break", "calibration"]
    assert len({e["id"] for e in events}) == 2 and events[1]["upright_g"] == [0.0, 0.0, 1.0]
    assert out.wait_delivered(5) and len(out.outbox) == 0


def test_tiles_and_state_are_retained_on_change_and_rate_limited(broker, tmp_path, closing):
    out = make_output(broker, "tiles", tmp_path, discovery=False, state_interval_s=30.0)
    closing(out)
    out.start()
    assert out.wait_connected(5)
    sub = Collector(broker, ["sitsense/tiles/#"])
    closing(sub)
    out.update_state(snap(0.0, 60.0))       # published: the first state
    out.update_state(snap(10.0, 120.0))     # changed, but within 30 s: held back
    out.update_state(snap(31.0, 180.0))     # only the minute counters moved: held for a whole minute
    out.update_state(snap(40.0, 180.0, "standing"))  # a posture is shown once it lasted 30 s
    out.update_state(snap(50.0, 180.0))     # ... so this flicker never reaches the phone
    out.update_state(snap(60.0, 240.0))     # a minute after the last: published
    out.update_state(snap(70.0, 240.0, "standing"))
    out.update_state(snap(100.0, 240.0, "standing"))  # standing for 30 s, 40 s after the last: published
    sub.wait_value("sitsense/tiles/posture", "standing")
    sub.wait_for("sitsense/tiles/state", 3)  # a different topic: it may arrive after the posture tile
    assert [m.text for m in sub.on("sitsense/tiles/bout_min")] == ["1", "4"]
    assert [m.text for m in sub.on("sitsense/tiles/posture")] == ["sitting", "standing"]
    assert len(sub.on("sitsense/tiles/state")) == 3
    state = json.loads(sub.last("sitsense/tiles/state").payload)
    assert state["posture"] == "standing" and state["bout_min"] == 4 and state["today"]["breaks"] == 1
    late = Collector(broker, ["sitsense/tiles/#"])
    closing(late)
    for tile in ("posture", "bout_min", "today/sitting_min", "today/breaks", "today/alerts", "today/release_min",
                 "sensor", "state", "status"):
        wait_until(lambda: late.last(f"sitsense/tiles/{tile}") is not None, 5, f"retained {tile}")
        assert late.last(f"sitsense/tiles/{tile}").retain
    assert late.last("sitsense/tiles/today/release_min").text == "0.0"


def test_discovery_configs_are_retained_and_republished_when_ha_comes_online(broker, tmp_path, closing):
    sub = Collector(broker, ["homeassistant/+/disc/+/config"])
    closing(sub)
    out = make_output(broker, "disc", tmp_path)
    closing(out)
    out.start()
    wait_until(lambda: len(sub.messages) >= len(ENTITIES), 5, "every discovery config")
    first = {m.topic: json.loads(m.payload) for m in sub.messages}
    late = Collector(broker, ["homeassistant/+/disc/+/config"])
    closing(late)
    wait_until(lambda: len(late.messages) >= len(ENTITIES), 5, "every retained discovery config")
    assert all(m.retain for m in late.messages) and {m.topic for m in late.messages} == set(first)
    assert {t.split("/")[1] for t in first} == {"sensor", "binary_sensor", "event", "button"}
    assert first["homeassistant/event/disc/alert/config"]["state_topic"] == "sitsense/disc/alert"
    assert first["homeassistant/button/disc/snooze/config"]["command_topic"] == "sitsense/disc/cmd/snooze"
    sub.publish("homeassistant/status", "online")
    wait_until(lambda: len(sub.messages) >= 2 * len(ENTITIES), 5, "discovery republished")
    assert {m.topic for m in sub.messages[len(ENTITIES):]} == set(first)
    assert out.stats["discovery"] == 2


class _ClearRetained:
    """Removes a retained message at the end of a test (an empty retained payload deletes it)."""

    def __init__(self, b: Mosquitto, topic: str):
        self.b, self.topic = b, topic

    def close(self) -> None:
        c = Collector(self.b, [])
        c.publish(self.topic, b"", retain=True)
        c.close()


class FakeLoop:
    """Stands in for the service's loop: runs commands on its own thread and replies."""

    def __init__(self, fail: bool = False):
        self.commands: queue.Queue[Request] = queue.Queue()
        self.seen: list[Request] = []
        self.fail = fail
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def submit(self, command: Request) -> None:
        if self.fail:
            raise RuntimeError("queue full")
        self.commands.put(command)

    def _run(self) -> None:
        while True:
            c = self.commands.get()
            if c is None:
                return
            self.seen.append(c)
            c.reply({"ok": True, "args": c.args})

    def close(self) -> None:
        self.commands.put(None)  # type: ignore[arg-type]
        self._thread.join(2)


def _command_rig(broker, device: str, tmp_path, closing):
    """A connected output whose commands land in a FakeLoop: (loop, output)."""
    loop = FakeLoop()
    closing(loop)
    out = make_output(broker, device, tmp_path, discovery=False, submit=loop.submit)
    closing(out)
    out.start()
    assert out.wait_connected(5)
    return loop, out


def test_every_command_is_submitted_and_answered(broker, tmp_path, closing):
    loop, out = _command_rig(broker, "pi", tmp_path, closing)
    sub = Collector(broker, ["sitsense/pi/cmd/+/result"])
    closing(sub)
    for name, payload, _ in GOOD:
        sub.publish(f"sitsense/pi/cmd/{name}", payload)
    wait_until(lambda: len(sub.messages) == len(GOOD), 5, "a result for every command")
    assert [(c.name, c.args, c.source) for c in loop.seen] == [(n, a, "mqtt") for n, _, a in GOOD]
    results = [(m.topic, json.loads(m.payload)) for m in sub.messages]
    assert results == [(f"sitsense/pi/cmd/{n}/result", {"command": n, "ok": True, "args": a}) for n, _, a in GOOD]


def test_every_kind_of_bad_command_is_refused_on_its_result_topic_and_nothing_crashes(broker, tmp_path, closing,
                                                                                        caplog):
    closing(_ClearRetained(broker, "sitsense/pi/cmd/pause"))
    loop = FakeLoop()
    closing(loop)
    sub = Collector(broker, ["sitsense/pi/cmd/+/result"])
    closing(sub)
    # a retained command is delivered (retain flag set) on every subscribe: it must not act again
    sub.publish("sitsense/pi/cmd/pause", b'{"minutes": 30}', retain=True)
    out = make_output(broker, "pi", tmp_path, discovery=False, submit=loop.submit, outbox=tmp_path / "bad.db")
    closing(out)
    out.start()
    assert out.wait_connected(5)
    bad = [(t, p) for t, p, _ in BAD if t.startswith("sitsense/pi/cmd/") and t.count("/") == 3 and t[-1] != "/"]
    for topic, payload in bad:
        sub.publish(topic, payload)
    sub.publish("sitsense/pi/cmd/snooze", b"x" * 100_000)
    for topic, payload, _ in BAD[:3]:  # outside the tree: never even delivered to us
        sub.publish(topic, payload)
    sub.publish("sitsense/pi/cmd/resume", b"")  # the sentinel: ordered after everything above
    wait_until(lambda: len(loop.seen) >= 1, 5, "the sentinel command")
    results = lambda: [(m.topic, json.loads(m.payload)) for m in sub.messages if m.payload]  # noqa: E731
    wait_until(lambda: results() and results()[-1][0] == "sitsense/pi/cmd/resume/result", 5, "the sentinel's result")
    assert [c.name for c in loop.seen] == ["resume"]
    # the retained pause (delivered on subscribe), each bad command and the oversized one: refused,
    # each on its own result topic with the reason; then the sentinel's answer
    refused = ["sitsense/pi/cmd/pause"] + [t for t, _ in bad] + ["sitsense/pi/cmd/snooze"]
    assert [topic for topic, _ in results()] == [f"{t}/result" for t in refused] + ["sitsense/pi/cmd/resume/result"]
    for topic, body in results()[:-1]:
        assert body["ok"] is False and body["command"] == topic.split("/")[-2] and body["error"], body
    assert "retained" in results()[0][1]["error"] and "1024-byte" in results()[-2][1]["error"]
    assert out.stats["rejected"] == len(bad) + 2
    assert out.connected
    assert "Traceback" not in caplog.text
    # each distinct problem is logged once at WARNING; repeats (two bad ack ids) only at DEBUG
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING" and "ignored" in r.getMessage()]
    assert len(warnings) == len(set(warnings)) == len(bad) + 2 - 1


def test_clearing_a_retained_command_is_indistinguishable_from_an_empty_command(broker, tmp_path, closing):
    """Documents a limit of MQTT 3.1.1 (docs/wear/mqtt.md, Commands): the empty retained message that deletes a
    retained ``cmd/pause`` (``mosquitto_pub -r -n``) reaches a connected sitsense as a live message
    with the retain flag cleared, byte for byte what ``mosquitto_pub -n`` sends, so it runs ``pause``
    with its default. Only the copy a broker hands out on subscribe carries the flag (ignored)."""
    closing(_ClearRetained(broker, "sitsense/clr/cmd/pause"))
    loop, out = _command_rig(broker, "clr", tmp_path, closing)
    raw = Collector(broker, ["sitsense/clr/cmd/+"])  # what any MQTT 3.1.1 subscriber is given
    closing(raw)
    raw.publish("sitsense/clr/cmd/pause", b'{"minutes": 30}', retain=True)  # acts once, live
    raw.publish("sitsense/clr/cmd/pause", b"", retain=True)  # deletes it: also arrives live
    raw.publish("sitsense/clr/cmd/snooze", b"")  # a real empty command, for comparison
    wait_until(lambda: len(loop.seen) >= 3, 5, "three commands")
    assert [(c.name, c.args) for c in loop.seen] == [("pause", {"minutes": 30.0}), ("pause", {}), ("snooze", {})]
    assert [(m.payload, m.retain) for m in raw.messages] == [(b'{"minutes": 30}', False), (b"", False), (b"", False)]
    late = make_output(broker, "clr", tmp_path, discovery=False, submit=loop.submit, outbox=tmp_path / "late.db")
    out.close()  # the same client id: the late one replaces it
    closing(late)
    late.start()
    assert late.wait_connected(5)
    time.sleep(0.2)
    assert len(loop.seen) == 3 and late.stats["rejected"] == 0  # nothing retained is left to arrive


def test_a_failing_submit_is_answered_with_an_error(broker, tmp_path, closing):
    loop = FakeLoop(fail=True)
    closing(loop)
    out = make_output(broker, "failing", tmp_path, discovery=False, submit=loop.submit)
    closing(out)
    out.start()
    assert out.wait_connected(5)
    sub = Collector(broker, ["sitsense/failing/cmd/+/result"])
    closing(sub)
    sub.publish("sitsense/failing/cmd/snooze", b"")
    [msg] = sub.wait_for("sitsense/failing/cmd/snooze/result")
    assert json.loads(msg.payload) == {"command": "snooze", "ok": False, "error": "not accepted: queue full"}
    assert out.connected


def test_password_file_listener_right_and_wrong_password(auth_broker, tmp_path, closing, caplog):
    good = tmp_path / "good-pw"
    good.write_text("correct horse\n")
    good.chmod(0o600)
    bad = tmp_path / "bad-pw"
    bad.write_text("battery staple\n")
    bad.chmod(0o600)
    sub = Collector(auth_broker, ["sitsense/#"], username="wearer", password="correct horse")
    closing(sub)
    ok = make_output(auth_broker, "authok", tmp_path, discovery=False, username="wearer", password_file=str(good),
                     environ={})
    closing(ok)
    ok.start()
    sub.wait_value("sitsense/authok/status", "online")
    wrong = make_output(auth_broker, "authbad", tmp_path, discovery=False, username="wearer",
                        password_file=str(bad), environ={})
    closing(wrong)
    wrong.start()
    wrong.handle(make_alert(1, "authbad"))  # still accepted into the outbox
    wait_until(lambda: "refused" in wrong.last_error, 5, "the broker to refuse the wrong password")
    assert not wrong.connected and len(wrong.outbox) == 1
    assert "battery staple" not in caplog.text and "correct horse" not in caplog.text
    assert sub.last("sitsense/authbad/status") is None


def test_outage_50_alerts_arrive_in_order_without_duplicates(fresh_broker, tmp_path, closing):
    sub = Collector(fresh_broker, ["sitsense/out/alert"], session=True)  # a phone with a persistent session
    closing(sub)
    out = make_output(fresh_broker, "out", tmp_path, discovery=False)
    closing(out)
    out.start()
    assert out.wait_connected(5)
    out.handle(make_alert(0, "out"))
    sub.wait_for("sitsense/out/alert", 1)
    fresh_broker.stop()
    wait_until(lambda: not out.connected, 5, "the output to notice the outage")
    for i in range(1, 51):
        out.handle(make_alert(i, "out"))
    assert len(out.outbox) == 50
    fresh_broker.start()
    msgs = sub.wait_for("sitsense/out/alert", 51, timeout=15)
    ids = [json.loads(m.payload)["id"] for m in msgs]
    assert ids == [f"out-{i:04d}" for i in range(51)]
    assert out.wait_delivered(5) and len(out.outbox) == 0
    assert len(sub.on("sitsense/out/alert")) == 51  # and nothing more came after the flush


def test_the_outbox_survives_a_restart_of_the_service(broker, tmp_path, closing):
    path = tmp_path / "restart.db"
    dead = MqttOutput(MqttConfig(host="127.0.0.1", port=free_port(), device_id="rs", discovery=False,
                                 reconnect_max_s=1), outbox=path)
    dead.start()
    for i in range(5):
        dead.handle(make_alert(i, "rs"))
    dead.close()
    sub = Collector(broker, ["sitsense/rs/alert"])
    closing(sub)
    out = make_output(broker, "rs", tmp_path, discovery=False, outbox=path)
    closing(out)
    out.start()
    ids = [json.loads(m.payload)["id"] for m in sub.wait_for("sitsense/rs/alert", 5)]
    assert ids == [f"rs-{i:04d}" for i in range(5)]
    assert out.wait_delivered(5)


def _sim_config(tmp_path, b: Mosquitto, device_id: str, port: int | None = None):
    conf = tmp_path / f"{device_id}.toml"
    conf.write_text(f'[mqtt]\nhost = "{b.host}"\nport = {port or b.port}\ndevice_id = "{device_id}"\n'
                    'reconnect_max_s = 1\n')
    return conf


def test_simulate_mqtt_publishes_every_alert_the_json_output_shows(broker, tmp_path, closing, capsys):
    from sitsense.cli import main

    conf = _sim_config(tmp_path, broker, "simday")
    sub = Collector(broker, ["sitsense/simday-replay/#", "homeassistant/+/simday-replay/+/config"])
    closing(sub)
    assert main(["simulate", str(REPO / "examples" / "desk-morning.csv.gz"), "--config", str(conf),
                 "--mqtt", "--json", "--speed", "3600"]) == 0
    captured = capsys.readouterr()
    shown = [json.loads(line) for line in captured.out.splitlines()]
    assert "as sitsense/simday-replay/# (the live device sitsense/simday/# is not touched)" in captured.err
    alert_ids = [e["id"] for e in shown if e["type"] == "alert"]
    assert alert_ids  # the example morning has alerts
    got = [json.loads(m.payload)["id"] for m in sub.wait_for("sitsense/simday-replay/alert", len(alert_ids))]
    assert got == alert_ids
    wait_until(lambda: sub.last("sitsense/simday-replay/status") is not None
               and sub.last("sitsense/simday-replay/status").text == "offline", 5, "offline after the replay")
    late = Collector(broker, ["sitsense/simday-replay/#", "homeassistant/+/simday-replay/+/config"])
    closing(late)
    wait_until(lambda: len([m for m in late.messages if m.retain]) >= len(TILES) + 2 + len(ENTITIES), 5,
               "retained tiles, status, state and discovery")
    retained = {m.topic: m.text for m in late.messages if m.retain}
    assert retained["sitsense/simday-replay/today/alerts"] == str(len(alert_ids))
    assert json.loads(retained["sitsense/simday-replay/state"])["today"]["alerts"] == len(alert_ids)
    assert sum(t.startswith("homeassistant/") for t in retained) == len(ENTITIES)


def test_a_replay_leaves_the_live_device_untouched(broker, tmp_path, closing, capsys):
    """A replay next to the running service: the live retained status/tiles/discovery stay as they
    were, and the replay's alerts, status and Home Assistant device are its own."""
    from sitsense.cli import main

    live = make_output(broker, "desk", tmp_path)
    closing(live)
    live.start()
    assert live.wait_connected(5)
    live.update_state(snap(600.0, 600.0))
    sub = Collector(broker, ["sitsense/#", "homeassistant/+/desk/+/config", "homeassistant/+/desk-replay/+/config"])
    closing(sub)
    wait_until(lambda: sub.last("sitsense/desk/state") is not None  # published after the tiles
               and len([m for m in sub.messages if m.topic.startswith("homeassistant/")]) == len(ENTITIES), 5,
               "the live tiles and discovery")

    def retained_now() -> dict[str, bytes]:
        """What a phone opening the app sees: the retained messages of the live device."""
        c = Collector(broker, ["sitsense/desk/#"])
        try:
            wait_until(lambda: len(c.messages) >= len(TILES) + 2, 5, "the live device's retained tiles, status, state")
            return {m.topic: m.payload for m in c.messages if m.retain}
        finally:
            c.close()

    before = retained_now()
    assert before["sitsense/desk/status"] == b"online" and before["sitsense/desk/bout_min"] == b"10"
    live_unique_ids = {json.loads(m.payload)["unique_id"] for m in sub.messages if m.topic.startswith("homeassistant/")}
    n_before = len(sub.messages)

    trace = str(REPO / "examples" / "desk-morning.csv.gz")
    assert main(["simulate", trace, "--config", str(_sim_config(tmp_path, broker, "desk")), "--mqtt", "--json",
                 "--speed", "3600"]) == 0
    alert_ids = [e["id"] for e in map(json.loads, capsys.readouterr().out.splitlines()) if e["type"] == "alert"]
    assert alert_ids
    got = [json.loads(m.payload)["id"] for m in sub.wait_for("sitsense/desk-replay/alert", len(alert_ids))]
    assert got == alert_ids
    sub.wait_value("sitsense/desk-replay/status", "offline")

    during = sub.messages[n_before:]
    assert [m.topic for m in during if m.topic.startswith("sitsense/desk/")] == []
    replay_configs = {m.topic: json.loads(m.payload) for m in during if m.topic.startswith("homeassistant/")}
    assert len(replay_configs) == len(ENTITIES) and all("/desk-replay/" in t for t in replay_configs)
    assert len(live_unique_ids) == len(ENTITIES)
    assert not live_unique_ids & {c["unique_id"] for c in replay_configs.values()}
    assert {tuple(c["device"]["identifiers"]) for c in replay_configs.values()} == {("sitsense_desk-replay",)}
    assert {c["availability_topic"] for c in replay_configs.values()} == {"sitsense/desk-replay/status"}

    time.sleep(0.2)  # anything the replay might still have sent would have arrived by now
    assert retained_now() == before
    assert live.connected


def test_simulate_mqtt_fails_in_one_line_when_the_broker_is_unreachable(broker, tmp_path):
    port = free_port()  # nothing listens there
    conf = _sim_config(tmp_path, broker, "gone", port=port)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-m", "sitsense.cli", "simulate",
                           str(REPO / "examples" / "desk-morning.csv.gz"), "--config", str(conf), "--mqtt", "--json"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 69  # EX_UNAVAILABLE
    assert proc.stdout == ""  # nothing was replayed
    [line] = proc.stderr.splitlines()
    assert line.startswith("sitsense: mqtt: not connected within 5 s: ")
    assert f"127.0.0.1:{port}" in line and "check mqtt.host and mqtt.port" in line


def test_a_replay_may_not_publish_as_the_live_device(broker, tmp_path, capsys):
    from sitsense.cli import main

    conf = _sim_config(tmp_path, broker, "same")
    trace = str(REPO / "examples" / "desk-morning.csv.gz")
    assert main(["simulate", trace, "--config", str(conf), "--mqtt", "--mqtt-device", "same"]) == 78
    assert main(["simulate", trace, "--config", str(conf), "--mqtt", "--mqtt-device", "a/b"]) == 78
    err = capsys.readouterr().err.splitlines()
    assert err[0] == ("sitsense: --mqtt-device same: that is the live device; a replay would overwrite its "
                      "retained state and mark it offline, so choose another name")
    assert err[1].startswith("sitsense: --mqtt-device 'a/b': ")


def test_a_replay_counts_what_the_broker_never_acknowledged(fresh_broker, tmp_path):
    """A replay's outbox is in memory: what is not delivered by close() is lost, and counted."""
    from sitsense.mqtt.client import BrokerUnavailable

    out = make_output(fresh_broker, "lost", tmp_path, discovery=False, outbox=":memory:")
    out.flush_on_close_s = 1.0
    out.start_and_wait(5)
    out.handle(make_alert(0, "lost"))
    assert out.wait_delivered(5)
    fresh_broker.stop()
    wait_until(lambda: not out.connected, 5, "the output to notice the outage")
    for i in range(1, 4):
        out.handle(make_alert(i, "lost"))
    out.close()
    assert out.undelivered == 3 and out.stats["queued"] == 4
    with pytest.raises(BrokerUnavailable, match=r"not connected within 2 s: cannot reach the broker at "):
        make_output(fresh_broker, "lost2", tmp_path, outbox=":memory:").start_and_wait(2)


def test_a_posture_notice_is_an_event_and_the_retained_posture_check_until_it_is_answered(broker, tmp_path, closing):
    sub = Collector(broker, ["sitsense/chk/posture_check", "sitsense/chk/event"])
    closing(sub)
    out = make_output(broker, "chk", tmp_path, discovery=False)
    closing(out)
    out.start()
    assert json.loads(sub.wait_for("sitsense/chk/posture_check")[0].payload)["code"] == "ok"  # said on connect
    out.handle(PostureNotice(t=1.0, code="uncalibrated", message="no upright reference yet: calibrate"))
    out.handle(Calibrated(t=40.0, source="still-start", upright_g=(1.0, 0.0, 0.0)))  # the answer
    out.handle(PostureNotice(t=900.0, code="sit_stand_alike", message="run 'sitsense calibrate --sit'"))
    checks = [json.loads(m.payload) for m in sub.wait_for("sitsense/chk/posture_check", 4)]
    assert [c["code"] for c in checks] == ["ok", "uncalibrated", "ok", "sit_stand_alike"]
    assert "calibrate --sit" in checks[-1]["message"]
    events = [json.loads(m.payload) for m in sub.wait_for("sitsense/chk/event", 3)]
    assert [e["type"] for e in events] == ["posture_notice", "calibration", "posture_notice"]
    late = Collector(broker, ["sitsense/chk/posture_check"])  # a phone opening the app later sees the latest
    closing(late)
    msg = late.wait_for("sitsense/chk/posture_check")[0]
    assert msg.retain and json.loads(msg.payload)["code"] == "sit_stand_alike"
