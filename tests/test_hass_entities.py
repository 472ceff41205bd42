"""What Home Assistant is told to show, as data: alerts paused or snoozed (and until when), the last
command's answer, readable postures, durations shown as minutes. tests/test_hass_live.py checks the
same against a real Home Assistant."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from sitsense.events import POSTURES
from sitsense.mqtt.hass import ENTITIES, POSTURE_NAMES, discovery_messages
from sitsense.mqtt.throttle import StateThrottle
from sitsense.mqtt.topics import Topics, alerts_tile, last_command_payload, state_payload, tile_values
from sitsense.outputs.base import StateSnapshot

T = Topics.for_device("sitsense", "pi")
WALL = datetime(2024, 3, 5, 10, 30, 0, tzinfo=timezone(timedelta(hours=1)))


def snap(t: float = 3600.0, **kw) -> StateSnapshot:
    base = dict(t=t, wall=WALL + timedelta(seconds=t - 3600.0), posture="sitting", p=0.9, bout_s=600.0,
                sitting_today_s=3600.0, breaks_today=1, alerts_today=1, release_today_s=0.0)
    base.update(kw)
    return StateSnapshot(**base)


def configs() -> dict[str, dict]:
    return {c["unique_id"].removeprefix("sitsense_pi_"): c for _, c in discovery_messages(T, "pi")}


def test_alerts_tile_says_on_paused_or_snoozed_until_the_local_time():
    assert alerts_tile(snap()) == "on"
    assert alerts_tile(snap(paused_until_t=3600.0 + 45 * 60)) == "paused until 11:15"
    assert alerts_tile(snap(snoozed_until_t=3600.0 + 10 * 60)) == "snoozed until 10:40"
    # a pause wins over a snooze; either one that is over no longer shows
    assert alerts_tile(snap(paused_until_t=3600.0 + 60, snoozed_until_t=3600.0 + 600)) == "paused until 10:31"
    assert alerts_tile(snap(paused_until_t=3000.0, snoozed_until_t=3500.0)) == "on"
    assert tile_values(snap(snoozed_until_t=4200.0))["alerts"] == "snoozed until 10:40"


def test_state_json_has_the_iso_times_of_a_pause_and_a_snooze_in_force():
    s = state_payload(snap(paused_until_t=3600.0 + 3600, snoozed_until_t=3600.0 + 600))
    assert s["paused_until"] == "2024-03-05T11:30:00+01:00" and s["snoozed_until"] == "2024-03-05T10:40:00+01:00"
    assert s["alerts"] == "paused until 11:30"
    over = state_payload(snap(paused_until_t=3599.0, snoozed_until_t=100.0))
    assert over["paused_until"] is None and over["snoozed_until"] is None and over["alerts"] == "on"


def test_a_pause_or_snooze_goes_out_at_once_not_after_the_state_interval():
    throttle = StateThrottle(interval_s=30.0, max_per_hour=150)
    assert throttle.offer(snap(3600.0)) is not None
    update = throttle.offer(snap(3601.0, paused_until_t=3601.0 + 3600))
    assert update is not None and update[1] == {"alerts": "paused until 11:30"}
    assert throttle.offer(snap(3602.0, paused_until_t=3601.0 + 3600)) is None  # nothing new


def test_last_command_keeps_the_answer_and_adds_the_time():
    ok = last_command_payload({"command": "snooze", "ok": True, "t": 12.0}, time_iso="2024-03-05T10:30:00+01:00")
    assert ok == {"command": "snooze", "ok": True, "t": 12.0, "time": "2024-03-05T10:30:00+01:00"}
    refused = last_command_payload({"command": "ack", "ok": False, "error": "unknown alert id 'x'"}, time_iso="T")
    assert refused["error"] == "unknown alert id 'x'" and refused["ok"] is False


def test_entities_for_the_wearers_questions():
    c = configs()
    assert c["alerts"]["state_topic"] == "sitsense/pi/alerts"
    assert c["alerts"]["json_attributes_topic"] == "sitsense/pi/state"
    assert "paused_until" in c["alerts"]["json_attributes_template"]
    assert "snoozed_until" in c["alerts"]["json_attributes_template"]
    assert c["alerts_paused"]["state_topic"] == "sitsense/pi/alerts"
    assert c["last_command"]["state_topic"] == c["last_command"]["json_attributes_topic"] == "sitsense/pi/last_command"
    assert not T.last_command.startswith(T.base + "/cmd/")  # never read back as a command


def test_postures_have_readable_names_and_durations_show_as_minutes():
    c = configs()
    assert set(POSTURE_NAMES) == set(POSTURES)
    assert c["posture"]["options"] == list(POSTURE_NAMES.values())
    assert "not_worn" in c["posture"]["value_template"] and "Not worn" in c["posture"]["value_template"]
    for obj in ("sitting_today", "current_bout", "release_today"):
        assert c[obj]["device_class"] == "duration" and c[obj]["unit_of_measurement"] == "min"
        assert c[obj]["suggested_display_precision"] == (1 if obj == "release_today" else 0)


def test_every_entity_is_announced_once():
    msgs = discovery_messages(T, "pi")
    assert len(msgs) == len(ENTITIES) == len({c["unique_id"] for _, c in msgs})
    json.dumps(msgs)
