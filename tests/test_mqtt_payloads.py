"""Topics, payloads, command validation, discovery and credentials of the MQTT output, as data."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

import pytest

from sitsense.config import MqttConfig
from sitsense.errors import OutputError
from sitsense.events import Alert, BreakTaken, DaySummary, HoldCue, PostureChanged, RunSummary
from sitsense.config import load_password
from sitsense.control import CONTROLS, RequestRejected
from sitsense.mqtt.client import MqttOutput
from sitsense.mqtt.hass import ALERT_EVENT_TYPES, discovery_messages
from sitsense.mqtt.outbox import Outbox
from sitsense.mqtt.topics import (MAX_COMMAND_BYTES, PUBLISHED_EVENTS, TILES, Topics, alert_payload, encode,
                                  event_payload, parse_command, replay_device_id, resolve_device_id, state_payload,
                                  tile_values)
from sitsense.outputs.base import StateSnapshot
from sitsense.paths import outbox_path, state_dir
from sitsense.config import StoreConfig

T = Topics.for_device("sitsense", "pi")
WALL = datetime(2024, 3, 5, 10, 30, 0, tzinfo=timezone.utc)


def snapshot(**kw) -> StateSnapshot:
    base = dict(t=3600.0, wall=WALL, posture="sitting", p=0.93, bout_s=47 * 60 + 59, sitting_today_s=3 * 3600 + 61,
                breaks_today=4, alerts_today=2, release_today_s=150.0, sensor="ok")
    base.update(kw)
    return StateSnapshot(**base)


def alert(**kw) -> Alert:
    base = dict(t=1800.0, id="pi-20240305-103000-1", bout_s=1800.0, bout_start_t=0.0, reminder=1,
                message="30 min sitting: stand up", time="2024-03-05T10:30:00+00:00",
                exercise={"id": "half_kneeling", "name": "Half-kneeling hip flexor stretch",
                          "dose": "2 x 30 s per side", "cue": "tuck the pelvis, squeeze the glute", "extra": 1},
                safety="stop if it pinches")
    base.update(kw)
    return Alert(**base)


def test_topics_live_under_prefix_and_device():
    assert T.status == "sitsense/pi/status"
    assert T.state == "sitsense/pi/state"
    assert T.alert == "sitsense/pi/alert"
    assert T.event == "sitsense/pi/event"
    assert T.tile("today/breaks") == "sitsense/pi/today/breaks"
    assert T.cmd("snooze") == "sitsense/pi/cmd/snooze"
    assert T.cmd_result("snooze") == "sitsense/pi/cmd/snooze/result"
    assert T.cmd_filter == "sitsense/pi/cmd/+"
    assert Topics.for_device("home/wear/", "a").status == "home/wear/a/status"


def test_device_id_falls_back_to_a_topic_safe_host_name():
    assert resolve_device_id("belt1") == "belt1"
    assert resolve_device_id("", hostname="raspberrypi.local") == "raspberrypi"
    assert resolve_device_id("", hostname="my pi+#") == "my-pi"
    assert resolve_device_id("", hostname="###") == "sitsense"


def test_a_replay_has_its_own_device_id_and_topics():
    assert replay_device_id("belt1") == "belt1-replay"
    assert replay_device_id("", hostname="raspberrypi.local") == "raspberrypi-replay"
    live, replay = Topics.for_device("sitsense", "belt1"), Topics.for_device("sitsense", replay_device_id("belt1"))
    assert replay.status == "sitsense/belt1-replay/status" and not replay.base.startswith(live.base + "/")
    ids = lambda d: {c["unique_id"] for _, c in discovery_messages(Topics.for_device("sitsense", d), d)}  # noqa: E731
    assert not ids("belt1") & ids("belt1-replay")


def test_alert_payload_has_the_documented_fields():
    p = alert_payload(alert(), time_iso="ignored")
    assert p == {"id": "pi-20240305-103000-1", "event_type": "stand_up", "time": "2024-03-05T10:30:00+00:00",
                 "bout_min": 30.0, "reminder": 1, "message": "30 min sitting: stand up",
                 "exercise": {"id": "half_kneeling", "name": "Half-kneeling hip flexor stretch",
                              "dose": "2 x 30 s per side", "cue": "tuck the pelvis, squeeze the glute"},
                 "safety": "stop if it pinches"}
    assert set(p) - {"event_type"} == {"id", "time", "bout_min", "reminder", "message", "exercise", "safety"}
    assert p["event_type"] in ALERT_EVENT_TYPES


def test_alert_without_time_or_exercise_uses_given_time_and_null():
    p = alert_payload(alert(time="", exercise=None, safety=None, reminder=2), time_iso="2024-03-05T11:00:00+00:00")
    assert p["time"] == "2024-03-05T11:00:00+00:00"
    assert p["exercise"] is None and p["safety"] is None
    assert p["event_type"] == "reminder"
    json.loads(encode(p))


def test_event_payload_keeps_type_and_fields_and_adds_id_and_time():
    p = event_payload(BreakTaken(t=10.0, start_t=4.0, duration_s=60.0), event_id="x1", time_iso="T")
    assert p == {"type": "break", "t": 10.0, "start_t": 4.0, "duration_s": 60.0, "id": "x1", "time": "T"}


def test_published_event_types_are_the_ones_documented():
    published = {cls.type for cls in PUBLISHED_EVENTS} | {RunSummary.type}  # RunSummary is a DaySummary
    assert published == {"break", "break_end", "outcome", "day_summary", "summary", "calibration", "remount",
                         "sensor", "pause", "resume", "snooze", "acknowledged", "posture_notice"}
    assert not any(issubclass(cls, (Alert, PostureChanged, HoldCue)) for cls in PUBLISHED_EVENTS)


def test_tiles_are_whole_minutes_and_counts():
    tiles = tile_values(snapshot())
    assert tuple(tiles) == TILES
    assert tiles == {"posture": "sitting", "bout_min": "47", "today/sitting_min": "181", "today/breaks": "4",
                     "today/alerts": "2", "today/release_min": "2.5", "sensor": "ok", "alerts": "on", "storage": "ok"}


def test_state_payload_numbers_and_timestamps():
    s = state_payload(snapshot(paused_until_t=3600.0 + 600))
    assert s["posture"] == "sitting" and s["bout_min"] == 47
    assert s["today"] == {"sitting_min": 181, "breaks": 4, "alerts": 2, "release_min": 2.5}
    assert s["time"] == "2024-03-05T10:30:00+00:00"
    assert s["bout_start"] == "2024-03-05T09:42:01+00:00"
    assert s["paused_until"] == "2024-03-05T10:40:00+00:00"
    assert state_payload(snapshot(bout_s=0.0))["bout_start"] is None
    json.loads(encode(s))


# -- commands ---------------------------------------------------------------------------------

GOOD = [
    ("snooze", b"", {}),
    ("snooze", b'{"minutes": 15}', {"minutes": 15.0}),
    ("pause", b'{"minutes": 60}', {"minutes": 60.0}),
    ("pause", b"{}", {}),
    ("resume", b"", {}),
    ("resume", b"  {} ", {}),
    ("calibrate", b"", {}),
    ("release", b"", {}),
    ("ack", b'{"id": "pi-20240305-103000-1"}', {"id": "pi-20240305-103000-1"}),
]


@pytest.mark.parametrize("name,payload,args", GOOD)
def test_valid_commands(name, payload, args):
    assert parse_command(T, T.cmd(name), payload) == (name, args)


def test_every_command_has_a_valid_form():
    assert {g[0] for g in GOOD} == set(CONTROLS)


BAD = [
    ("sitsense/other/cmd/snooze", b"", "outside"),
    ("sitsense/pi/snooze", b"", "outside"),
    ("sitsense/pi/cmd/snooze/result", b"", "outside"),
    ("sitsense/pi/cmd/", b"", "outside"),
    ("sitsense/pi/cmd/reboot", b"", "unknown command"),
    ("sitsense/pi/cmd/snooze", b"{minutes: 5}", "not JSON"),
    ("sitsense/pi/cmd/snooze", b"\xff\xfe", "not JSON"),
    ("sitsense/pi/cmd/snooze", b"5", "JSON object"),
    ("sitsense/pi/cmd/snooze", b"[]", "JSON object"),
    ("sitsense/pi/cmd/snooze", b'{"minutes": "5"}', "must be a number"),
    ("sitsense/pi/cmd/snooze", b'{"minutes": true}', "must be a number"),
    ("sitsense/pi/cmd/snooze", b'{"minutes": NaN}', "not JSON"),
    ("sitsense/pi/cmd/snooze", b'{"minutes": 1e999}', "must be a number"),
    ("sitsense/pi/cmd/snooze", b'{"minutes": 0}', "out of range"),
    ("sitsense/pi/cmd/snooze", b'{"minutes": 121}', "out of range"),
    ("sitsense/pi/cmd/pause", b'{"minutes": -5}', "out of range"),
    ("sitsense/pi/cmd/pause", b'{"minutes": 1441}', "out of range"),
    ("sitsense/pi/cmd/snooze", b'{"minutes": 5, "why": 1}', "unknown field"),
    ("sitsense/pi/cmd/resume", b'{"minutes": 5}', "unknown field"),
    ("sitsense/pi/cmd/ack", b"", "missing field"),
    ("sitsense/pi/cmd/ack", b'{"id": 7}', "must be a string"),
    ("sitsense/pi/cmd/ack", b'{"id": ""}', "1-128"),
    ("sitsense/pi/cmd/ack", b'{"id": "a b"}', "1-128"),
    ("sitsense/pi/cmd/snooze", b'{"minutes": 5,' + b" " * MAX_COMMAND_BYTES + b"}", "over the 1024-byte"),
]


@pytest.mark.parametrize("topic,payload,reason", BAD)
def test_bad_commands_are_rejected_with_a_reason(topic, payload, reason):
    with pytest.raises(RequestRejected, match=reason):
        parse_command(T, topic, payload)


def test_retained_commands_are_rejected():
    with pytest.raises(RequestRejected, match="retained"):
        parse_command(T, T.cmd("pause"), b'{"minutes": 60}', retained=True)


def test_payload_of_exactly_the_limit_is_accepted():
    body = b'{"minutes": 5}'
    padded = body[:-1] + b" " * (MAX_COMMAND_BYTES - len(body)) + b"}"
    assert len(padded) == MAX_COMMAND_BYTES
    assert parse_command(T, T.cmd("snooze"), padded) == ("snooze", {"minutes": 5.0})


# -- discovery --------------------------------------------------------------------------------

def test_discovery_configs():
    msgs = dict(discovery_messages(T, "pi", "homeassistant", sw_version="0.1.0"))
    by_id = {c["unique_id"]: (topic, c) for topic, c in msgs.items()}
    assert len(by_id) == len(msgs)  # unique ids are unique
    for topic, c in msgs.items():
        component, node, obj, last = topic.split("/")[1:]
        assert topic.startswith("homeassistant/") and node == "pi" and last == "config"
        assert c["availability_topic"] == "sitsense/pi/status"
        assert c["device"]["identifiers"] == ["sitsense_pi"]
        assert ("state_topic" in c) != (component == "button")
        json.loads(encode(c))
    _, sitting_today = by_id["sitsense_pi_sitting_today"]
    assert sitting_today["device_class"] == "duration" and sitting_today["unit_of_measurement"] == "min"
    assert sitting_today["state_topic"] == "sitsense/pi/today/sitting_min"
    for obj in ("current_bout", "release_today"):
        assert by_id[f"sitsense_pi_{obj}"][1]["device_class"] == "duration"
        assert by_id[f"sitsense_pi_{obj}"][1]["unit_of_measurement"] == "min"
    assert by_id["sitsense_pi_breaks_today"][1]["state_topic"] == "sitsense/pi/today/breaks"
    topic, sitting = by_id["sitsense_pi_sitting"]
    assert topic == "homeassistant/binary_sensor/pi/sitting/config"
    assert sitting["state_topic"] == "sitsense/pi/posture"
    topic, ev = by_id["sitsense_pi_alert"]
    assert topic == "homeassistant/event/pi/alert/config"
    assert ev["state_topic"] == "sitsense/pi/alert" and "stand_up" in ev["event_types"]
    for name in ("snooze", "pause"):
        topic, button = by_id[f"sitsense_pi_{name}"]
        assert topic == f"homeassistant/button/pi/{name}/config"
        assert button["command_topic"] == f"sitsense/pi/cmd/{name}"
        assert parse_command(T, button["command_topic"], button["payload_press"].encode())[0] == name


def test_binary_sensor_template_matches_the_posture_tile():
    # HA renders "{{ 'ON' if value == 'sitting' else 'OFF' }}"; mirror it to pin the contract.
    tmpl = dict(discovery_messages(T, "pi"))["homeassistant/binary_sensor/pi/sitting/config"]["value_template"]
    assert "value == 'sitting'" in tmpl


# -- credentials and outbox paths -------------------------------------------------------------

def test_password_from_env_wins_and_is_redacted(tmp_path):
    cfg = MqttConfig(username="u", password_file=str(tmp_path / "nope"))
    pw = load_password(cfg, {"SITSENSE_MQTT_PASSWORD": "hunter2"})
    assert pw == "hunter2" and "hunter2" not in repr(pw)


def test_password_file_must_be_private(tmp_path):
    f = tmp_path / "pw"
    f.write_text("s3cret\n")
    f.chmod(0o600)
    assert load_password(MqttConfig(username="u", password_file=str(f)), {}) == "s3cret"
    for mode in (0o640, 0o604, 0o644):
        f.chmod(mode)
        with pytest.raises(OutputError, match="chmod 600"):
            load_password(MqttConfig(username="u", password_file=str(f)), {})


def test_password_file_missing_or_empty(tmp_path):
    with pytest.raises(OutputError, match="cannot read"):
        load_password(MqttConfig(password_file=str(tmp_path / "missing")), {})
    f = tmp_path / "empty"
    f.write_text("\n")
    f.chmod(0o600)
    with pytest.raises(OutputError, match="empty"):
        load_password(MqttConfig(password_file=str(f)), {})


def test_password_without_user_is_an_error(tmp_path):
    with pytest.raises(OutputError, match="username"):
        MqttOutput(MqttConfig(device_id="x"), outbox=":memory:", environ={"SITSENSE_MQTT_PASSWORD": "p"})


def test_password_never_appears_in_logs(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    out = MqttOutput(MqttConfig(device_id="x", username="u", port=1), outbox=tmp_path / "o.db",
                     environ={"SITSENSE_MQTT_PASSWORD": "hunter2"})
    assert "password=***" in out.describe() and "hunter2" not in out.describe()
    out.start()
    out.handle(alert())
    out.close()
    assert "hunter2" not in caplog.text


def test_constructor_touches_no_network(tmp_path):
    out = MqttOutput(MqttConfig(device_id="x", host="203.0.113.1"), outbox=tmp_path / "o.db")
    assert not out.connected
    out.close()
    out.close()  # idempotent


def test_outbox_location(tmp_path, monkeypatch):
    assert state_dir(StoreConfig(path=str(tmp_path / "a" / "sitsense.db"))) == tmp_path / "a"
    monkeypatch.setenv("STATE_DIRECTORY", f"{tmp_path}/s1:{tmp_path}/s2")
    assert outbox_path(StoreConfig()) == tmp_path / "s1" / "mqtt-outbox.db"
    monkeypatch.delenv("STATE_DIRECTORY")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr("os.geteuid", lambda: 1000)  # a user (root's state is the service's)
    assert outbox_path() == tmp_path / ".local" / "state" / "sitsense" / "mqtt-outbox.db"


def test_outbox_is_bounded_ordered_and_persistent(tmp_path):
    path = tmp_path / "o.db"
    box = Outbox(path, max_messages=100)
    for i in range(150):
        box.add("t", str(i).encode())
    assert len(box) == 100 and box.dropped == 50
    rows = box.take(0, 1000)
    assert [r.payload for r in rows] == [str(i).encode() for i in range(50, 150)]
    box.remove([r.seq for r in rows[:10]])
    box.close()
    again = Outbox(path, max_messages=100)
    assert len(again) == 90 and again.dropped == 50
    assert again.take(0, 1)[0].payload == b"60"
    again.close()


def test_handle_ignores_posture_and_hold_events(tmp_path):
    out = MqttOutput(MqttConfig(device_id="x"), outbox=tmp_path / "o.db")
    out.handle(PostureChanged(t=1.0, posture="sitting", p=0.9, previous="standing", since_t=0.5))
    out.handle(HoldCue(t=2.0, cue="start", exercise_id="e"))
    assert len(out.outbox) == 0
    out.handle(DaySummary(t=3.0, date="2024-03-05", sitting_s=1, standing_s=1, walking_s=1, lying_s=0,
                          not_worn_s=0, unknown_s=0, longest_bout_s=1))
    out.handle(alert())
    rows = out.outbox.take(0, 10)
    assert [r.topic for r in rows] == ["sitsense/x/event", "sitsense/x/alert"]
    assert json.loads(rows[0].payload)["type"] == "day_summary" and rows[0].qos == 1
    out.close()


# -- rate limits, with the fake client --------------------------------------------------------

def _sitting(t: float, posture: str = "sitting") -> StateSnapshot:
    return snapshot(t=t, posture=posture, bout_s=t, sitting_today_s=t)


def test_a_sitting_hour_stays_within_the_state_budget(tmp_path):
    from sitsense.mqtt.fake import FakeMqttClient

    fake = FakeMqttClient()
    out = MqttOutput(MqttConfig(device_id="b", discovery=False, state_max_per_hour=60), client=fake, outbox=":memory:")
    out.start()
    for t in range(0, 3 * 3600):
        out.update_state(_sitting(float(t)))
    state_topics = [p for p in fake.published if p.topic != "sitsense/b/status"]
    times = [json.loads(p.payload)["bout_min"] for p in fake.on("sitsense/b/state")]
    assert len(state_topics) <= 3 * 60
    assert out.stats["state_deferred"] > 0
    assert times == sorted(times) and times[-1] >= 170  # still updated through the whole three hours
    out.close()


def test_a_flickering_posture_is_not_published(tmp_path):
    from sitsense.mqtt.fake import FakeMqttClient

    fake = FakeMqttClient()
    out = MqttOutput(MqttConfig(device_id="f", discovery=False), client=fake, outbox=":memory:")
    out.start()
    for t in range(0, 600):
        out.update_state(snapshot(t=float(t), posture="standing" if t % 7 < 3 else "sitting"))
    assert [p.payload for p in fake.on("sitsense/f/posture")] == [b"standing"]
    for t in range(600, 700):
        out.update_state(snapshot(t=float(t), posture="sitting"))
    assert [p.payload for p in fake.on("sitsense/f/posture")] == [b"standing", b"sitting"]
    out.close()


def test_a_sensor_fault_and_its_end_reach_the_tile_at_once(tmp_path):
    """The phone must see a fault while it lasts, not after the state interval has passed."""
    from dataclasses import replace

    from sitsense.mqtt.fake import FakeMqttClient

    fake = FakeMqttClient()
    out = MqttOutput(MqttConfig(device_id="s", discovery=False), client=fake, outbox=":memory:")
    out.start()
    for t in range(0, 100):
        out.update_state(_sitting(float(t)))
    out.update_state(replace(_sitting(100.0), sensor="i2c_error"))  # well inside the 30 s gap
    assert fake.on("sitsense/s/sensor")[-1].payload == b"i2c_error"
    out.update_state(replace(_sitting(103.0), sensor="ok"))
    assert fake.on("sitsense/s/sensor")[-1].payload == b"ok"
    out.close()


def test_fake_client_commands_and_will(tmp_path):
    from sitsense.mqtt.fake import FakeMqttClient

    fake = FakeMqttClient()
    got = []
    out = MqttOutput(MqttConfig(device_id="c"), client=fake, outbox=":memory:", submit=got.append)
    out.start()
    assert fake.will == ("sitsense/c/status", "offline", 1, True)
    assert ("sitsense/c/cmd/+", 1) in fake.subscriptions and ("homeassistant/status", 1) in fake.subscriptions
    fake.deliver("sitsense/c/cmd/snooze", b'{"minutes": 5}')
    fake.deliver("sitsense/c/cmd/snooze", b'{"minutes": "5"}')
    assert [(c.name, c.args) for c in got] == [("snooze", {"minutes": 5.0})]
    got[0].reply({"ok": True})
    results = [json.loads(m.payload) for m in fake.on("sitsense/c/cmd/snooze/result")]
    assert results == [{"command": "snooze", "ok": False, "error": "snooze.minutes: must be a number, not '5'"},
                       {"command": "snooze", "ok": True}]  # the refused one is answered at once
    out.close()
    assert fake.on("sitsense/c/status")[-1].payload == b"offline"


def test_the_blueprint_sends_commands_the_output_accepts():
    from tests.conftest import REPO

    text = (REPO / "config" / "homeassistant" / "stand-up-notify.yaml").read_text()
    assert 'topic: "{{ base }}/cmd/snooze"' in text and "'minutes': snooze_minutes | int" in text
    assert 'topic: "{{ base }}/cmd/ack"' in text and "'id': pressed_alert" in text
    assert parse_command(T, T.cmd("snooze"), b'{"minutes": 10}') == ("snooze", {"minutes": 10.0})
    assert "stand_up" in text and "reminder" in text  # the event types the event entity fires
    assert set(ALERT_EVENT_TYPES) == {"stand_up", "reminder"}


def test_the_posture_check_follows_notices_and_a_calibration_answers_the_uncalibrated_one():
    from sitsense.events import Calibrated, PostureNotice
    from sitsense.mqtt.topics import POSTURE_CHECK_OK, posture_check_payload

    cal = Calibrated(t=2.0, source="walking", upright_g=(1.0, 0.0, 0.0))
    uncal = posture_check_payload(POSTURE_CHECK_OK, PostureNotice(1.0, "uncalibrated", "calibrate"))
    assert uncal == {"code": "uncalibrated", "message": "calibrate"}
    assert posture_check_payload(uncal, cal) == POSTURE_CHECK_OK
    alike = posture_check_payload(POSTURE_CHECK_OK, PostureNotice(3.0, "sit_stand_alike", "calibrate --sit"))
    assert posture_check_payload(alike, cal) == alike  # a new upright does not make sitting look different
    assert posture_check_payload(alike, BreakTaken(t=4.0, start_t=3.0, duration_s=60.0)) is alike
    [(_, config)] = [(t, c) for t, c in discovery_messages(T, "pi") if "posture_check" in t]
    assert config["state_topic"] == config["json_attributes_topic"] == "sitsense/pi/posture_check"
    assert config["entity_category"] == "diagnostic"
