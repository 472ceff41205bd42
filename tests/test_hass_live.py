"""sitsense against a real Home Assistant, with a test phone, as docs/wear/mqtt.md's Home Assistant section.

Home Assistant (the release pinned in tests/hass_install.py, from its cached environment) runs on
loopback with the MQTT integration on a test Mosquitto. Two phones register through mobile_app
with local push (one says it is Android, one iOS), the blueprint is copied in, and an automation
is made from it for each phone. Then ``sitsense run`` on a fake sensor sits for 40 minutes (at 40x):
the alert and its reminder reach both phones as one notification (same tag) with the exercise, a
press on *Snooze* of the earlier notification and on *Done* of the latest reach sitsense and
succeed, and the notification is cleared when the wearer walks. The entities show what a wearer
asks about, and Home Assistant's log has no warning or error.

Alone: ``python3 tests/hass_install.py`` once (a few minutes), then
``.venv/bin/python -m pytest -q tests/test_hass_live.py`` (about two minutes).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, require
from tests.hass_install import HASS_VERSION, hass_executable
from tests.homeassistant import HomeAssistant, Phone
from tests.mosquitto import MOSQUITTO, Collector, Mosquitto, wait_until

DEVICE = "try"  # config/homeassistant/try.toml's
BASE = f"sitsense/{DEVICE}"
TRY_CONFIG = REPO / "config" / "homeassistant" / "try.toml"
BLUEPRINT = REPO / "config" / "homeassistant" / "stand-up-notify.yaml"
BLUEPRINT_PATH = "sitsense/stand-up-notify.yaml"
TAG = "sitsense-sitsense-try"
SNOOZE_MIN = 15
# The docs' try-it command: 1 min standing, then 40 min sitting: the alert at 5 min into the bout,
# one reminder a minute later, then nothing more (max_reminders 2) until the walk ends the bout. At
# 40x the sitting lasts a minute of real time after the reminder: the phones' presses take seconds.
PLAN = "stand 1m, sit 40m, walk 5m, stand 60m"
SPEED = 40
TRY_COMMAND = f'sitsense run --sensor "fake:plan:{PLAN}" --speed {SPEED} --no-state --config try.toml'

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _cli(*argv: str, log: Path) -> subprocess.Popen:
    code = "import sys; from sitsense.cli import main; sys.exit(main(sys.argv[1:]))"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-c", code, *argv], stdout=out, stderr=out, env=env)


@pytest.fixture(scope="module")
def ha(tmp_path_factory):
    exe = hass_executable()
    require(exe is not None, f"Home Assistant {HASS_VERSION} is not installed: run 'python3 tests/hass_install.py' "
                             "(once, a few minutes)")
    require(MOSQUITTO is not None, "mosquitto not installed (apt install mosquitto)")
    work = tmp_path_factory.mktemp("hass")
    broker = Mosquitto(work / "mosquitto")
    broker.start()
    hass = HomeAssistant(exe, work)
    hass.broker = broker
    try:
        hass.start()
        hass.onboard()
        hass.add_mqtt(broker)
        yield hass
    finally:
        hass.stop()
        broker.stop()


@pytest.fixture(scope="module")
def phones(ha):
    made = [Phone(ha, "Test Android", os_name="Android"), Phone(ha, "Test iPhone", os_name="iOS")]
    yield made
    for p in made:
        p.close()


@pytest.fixture(scope="module")
def sitsense_config(ha, tmp_path_factory) -> Path:
    """config/homeassistant/try.toml pointed at the test's broker."""
    text = TRY_CONFIG.read_text()
    assert 'host = "localhost"' in text and f'device_id = "{DEVICE}"' in text
    path = tmp_path_factory.mktemp("sitsense") / "try.toml"
    path.write_text(text.replace('host = "localhost"', f'host = "{ha.broker.host}"\nport = {ha.broker.port}'))
    return path


def test_the_docs_print_the_commands_this_test_runs():
    readme = (REPO / "docs" / "wear" / "mqtt.md").read_text()
    assert TRY_COMMAND in readme and TRY_COMMAND in TRY_CONFIG.read_text()
    assert "sitsense simulate examples/desk-morning.csv.gz --config my.toml --mqtt" in readme


def _registry(ws, device: str) -> dict[str, str]:
    """object id (sitsense's ENTITIES key) -> entity id, for one sitsense device."""
    prefix = f"sitsense_{device}_"
    return {e["unique_id"][len(prefix):]: e["entity_id"] for e in ws.command("config/entity_registry/list")
            if e["platform"] == "mqtt" and str(e.get("unique_id", "")).startswith(prefix)}


def _results(collector: Collector, name: str) -> list[dict]:
    return [json.loads(m.text) for m in collector.on(f"{BASE}/cmd/{name}/result")]


def test_alert_reaches_the_phones_and_their_buttons_reach_sitsense(ha, phones, sitsense_config, tmp_path):
    from sitsense.mqtt.hass import ENTITIES, POSTURE_NAMES

    android, iphone = phones
    ws = ha.websocket()
    ha.install_blueprint(BLUEPRINT, BLUEPRINT_PATH)
    watch = Collector(ha.broker, [f"{BASE}/alert", f"{BASE}/event", f"{BASE}/cmd/+/result"])
    proc = _cli("run", "--sensor", f"fake:plan:{PLAN}", "--speed", str(SPEED), "--no-state",
                "--config", str(sitsense_config), log=tmp_path / "sitsense.log")
    try:
        # discovery: every entity of sitsense's table is there, on one device
        wait_until(lambda: set(_registry(ws, DEVICE)) == set(ENTITIES), 60, "sitsense's entities in Home Assistant")
        entities = _registry(ws, DEVICE)
        alert_entity = entities["alert"]
        ha.wait_state(entities["posture"], lambda s: s["state"] == "Sitting", 120, "the posture, readable")
        ha.wait_state(entities["alerts"], lambda s: s["state"] == "On", 30, "alerts on")
        ha.wait_state(entities["alerts_paused"], lambda s: s["state"] == "off", 30, "alerts not paused")
        for phone in phones:
            ha.create_automation(f"Stand-up alerts on {phone.name}", BLUEPRINT_PATH, {
                "alert_entity": alert_entity, "notify_device": phone.ha_device_id(ws), "command_base": BASE,
                "snooze_minutes": SNOOZE_MIN, "reminders_too": True})

        first = android.wait_push(lambda p: p.title and p.title.startswith("Stand up"), 120, "the first alert")
        alerts = watch.wait_for(f"{BASE}/alert", 1)
        alert = json.loads(alerts[0].text)
        ex = alert["exercise"]
        assert first.title == f"Stand up: {round(alert['bout_min'])} min sitting"
        assert first.message.startswith(f"{ex['name']}, {ex['dose']}. {ex['cue']}")
        assert first.message.endswith("Look for a gentle pull, never pain.")  # the safety line
        assert "  " not in first.message and len(first.message) <= 240
        assert first.tag == TAG
        assert [a["title"] for a in first.actions] == [f"Snooze {SNOOZE_MIN} min", "Done"]
        iphone_first = iphone.wait_push(lambda p: p.title == first.title, 30, "the first alert on the iPhone")
        assert iphone_first.message == first.message and iphone_first.tag == TAG

        # the reminder replaces it: same tag, one notification per bout on the screen
        reminder = android.wait_push(lambda p: p.title and p.title.startswith("Still sitting"), 120, "the reminder")
        assert reminder.tag == TAG
        second = json.loads(watch.wait_for(f"{BASE}/alert", 2)[1].text)
        assert second["event_type"] == "reminder" and reminder.title == f"Still sitting: {round(second['bout_min'])} min"
        iphone_reminder = iphone.wait_push(lambda p: p.title == reminder.title, 30, "the reminder on the iPhone")

        # Snooze on the earlier notification (Android), Done on the latest (iPhone): both succeed
        android.press(first, first.action("Snooze"))
        wait_until(lambda: _results(watch, "snooze"), 60, "the snooze command's result")
        assert _results(watch, "snooze")[0]["ok"] is True
        ha.wait_state(entities["last_command"], lambda s: s["state"] == "snooze: ok", 30, "the last command: snooze")
        # the state and its attributes may land in two updates: wait for both
        snoozed = ha.wait_state(entities["alerts"], lambda s: s["state"].startswith("Snoozed until ")
                                and bool((s.get("attributes") or {}).get("snoozed_until")), 30,
                                "alerts snoozed, and until when")
        until = snoozed["attributes"]["snoozed_until"]
        assert snoozed["state"] == f"Snoozed until {until[11:16]}"  # HH:MM of the ISO time, the wearer's clock
        iphone.press(iphone_reminder, iphone_reminder.action("Done"))
        wait_until(lambda: _results(watch, "ack"), 60, "the ack command's result")
        assert _results(watch, "ack")[0]["ok"] is True, _results(watch, "ack")

        def acked() -> list[dict]:
            return [e for e in map(json.loads, (m.text for m in watch.on(f"{BASE}/event"))) if e["type"] == "acknowledged"]

        wait_until(acked, 30, "the acknowledged event")
        assert acked()[0]["alert_id"] == second["id"]
        ha.wait_state(entities["last_command"], lambda s: s["state"] == "ack: ok", 30, "the last command: ack")
        # each press was handled once (by the automation of the phone it came from)
        assert len(_results(watch, "snooze")) == 1 and len(_results(watch, "ack")) == 1

        # the wearer walks: a break, and the notification goes away on both phones
        for phone in phones:
            phone.wait_push(lambda p: p.message == "clear_notification" and p.tag == TAG, 180,
                            "the notification cleared after the break")
        assert len([p for p in android.notifications() if p.tag == TAG]) == 2  # the alert and its reminder

        # Done on a notification of a bout that is over: refused, and Home Assistant says why
        android.press(reminder, reminder.action("Done"))
        refused = ha.wait_state(entities["last_command"], lambda s: s["state"].startswith("ack: unknown alert id"),
                                60, "the refused ack")
        assert refused["attributes"]["ok"] is False and "not an alert of the current sitting bout" in refused["state"]

        # Pause 60 min and Resume, the buttons of the device page
        ha.call_service("button", "press", {"entity_id": entities["pause"]})
        ha.wait_state(entities["alerts_paused"], lambda s: s["state"] == "on", 30, "alerts paused")
        paused = ha.wait_state(entities["alerts"], lambda s: s["state"].startswith("Paused until "), 30,
                               "paused, and until when")
        assert paused["state"] == f"Paused until {paused['attributes']['paused_until'][11:16]}"
        ha.wait_state(entities["last_command"], lambda s: s["state"] == "pause: ok", 30, "the last command: pause")
        ha.call_service("button", "press", {"entity_id": entities["resume"]})
        ha.wait_state(entities["alerts_paused"], lambda s: s["state"] == "off", 30, "alerts resumed")
        ha.wait_state(entities["alerts"], lambda s: s["state"] == "On", 30, "alerts on again")

        # the tiles, as Home Assistant shows them
        ha.wait_state(entities["posture"], lambda s: s["state"] in ("Standing", "Walking"), 60, "posture after the walk")
        assert set(POSTURE_NAMES.values()) >= {"Standing", "Walking"}
        ha.wait_state(entities["alerts_today"], lambda s: s["state"] == "2", 60, "two alerts today")
        ha.wait_state(entities["breaks_today"], lambda s: s["state"] not in ("0", "unknown", "unavailable"), 60,
                      "a break today")
        sitting = ha.wait_state(entities["sitting_today"], lambda s: s["state"].isdigit() and int(s["state"]) >= 39,
                                60, "sitting today")
        assert sitting["attributes"]["unit_of_measurement"] == "min"
        # durations in minutes are shown as minutes: the frontend formats a duration as h:mm:ss unless
        # the entity has a display precision (what list_for_display hands it as "dp")
        shown = {e["ei"]: e for e in ws.command("config/entity_registry/list_for_display")["entities"]}
        for obj, dp in (("sitting_today", 0), ("current_bout", 0), ("release_today", 1)):
            assert shown[entities[obj]].get("dp") == dp, shown[entities[obj]]

        # sitsense stops: its entities go unavailable
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, (tmp_path / "sitsense.log").read_text()[-2000:]
        ha.wait_state(entities["posture"], lambda s: s["state"] == "unavailable", 60, "unavailable after SIGTERM")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        watch.close()
        ws.close()
    assert not android.errors and not iphone.errors, (android.errors, iphone.errors)


def test_a_replay_as_the_readme_prints_it_notifies_every_alert(ha, phones, tmp_path):
    """'sitsense simulate examples/desk-morning.csv.gz --config my.toml --mqtt', with an automation
    for the replay's device made beforehand: every alert of the morning reaches the phone."""
    android = phones[0]
    ws = ha.websocket()
    ha.install_blueprint(BLUEPRINT, BLUEPRINT_PATH)
    replay_base = "sitsense/demo-replay"  # the docs' example device, 'demo'
    config = tmp_path / "my.toml"
    config.write_text(f"[mqtt]\nenabled = true\nhost = \"{ha.broker.host}\"\nport = {ha.broker.port}\n"
                      'device_id = "demo"\n')
    # the entity id Home Assistant gives the replay's alert (device name + entity name)
    alert_entity = "event.sitsense_demo_replay_stand_up_alert"
    ha.create_automation("Stand-up alerts of the replay", BLUEPRINT_PATH, {
        "alert_entity": alert_entity, "notify_device": android.ha_device_id(ws), "command_base": replay_base})
    watch = Collector(ha.broker, [f"{replay_base}/alert"])
    before = len(android.pushes())
    try:
        proc = _cli("simulate", str(REPO / "examples" / "desk-morning.csv.gz"), "--config", str(config), "--mqtt",
                    log=tmp_path / "simulate.log")
        assert proc.wait(timeout=600) == 0, (tmp_path / "simulate.log").read_text()[-2000:]
        assert _registry(ws, "demo-replay")["alert"] == alert_entity
        alerts = [json.loads(m.text) for m in watch.on(f"{replay_base}/alert")]
        assert len(alerts) >= 3  # the example morning's alerts
        tag = "sitsense-" + replay_base.replace("/", "-")

        def shown() -> list:
            return [p for p in android.pushes()[before:] if p.tag == tag and p.message != "clear_notification"]

        wait_until(lambda: len(shown()) == len(alerts), 60,
                   f"a notification for each of the replay's {len(alerts)} alerts; the phone has "
                   f"{[(p.title, p.tag) for p in android.pushes()[before:]]}")
        for alert, push in zip(alerts, shown()):
            assert f"{round(alert['bout_min'])} min" in (push.title or "")
            assert push.message.startswith(alert["exercise"]["name"])
    finally:
        watch.close()
        ws.close()


def test_home_assistant_logged_no_warning_or_error(ha):
    problems = ha.log_problems()
    assert not problems, "\n".join(problems)
