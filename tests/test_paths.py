"""Where state lives (one rule for every file) and wall time across a DST change (one rule too)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from sitsense.clock import SimClock
from sitsense.config import Config, MqttConfig
from sitsense.outputs.base import StateSnapshot
from sitsense.mqtt.client import MqttOutput
from sitsense.mqtt.fake import FakeMqttClient
from sitsense.sensor.reference import Reference, save_reference
from sitsense.paths import db_path
from sitsense.store import Store


def test_xdg_state_home_holds_the_database_the_outbox_and_the_calibration(tmp_path, monkeypatch):
    """Outside systemd, with XDG_STATE_HOME set, every state file goes to $XDG_STATE_HOME/sitsense
    (the outbox and the calibration used to go to ~/.local/state/sitsense, apart from the database)."""
    monkeypatch.delenv("STATE_DIRECTORY")
    monkeypatch.setattr("os.geteuid", lambda: 1000)  # a user (root's state is the service's)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    want = tmp_path / "xdg" / "sitsense"
    cfg = Config()
    store = Store(db_path(cfg)).open()
    store.close()
    out = MqttOutput.from_config(cfg.with_changes("mqtt", enabled=True), client=FakeMqttClient())
    out.close()
    saved = save_reference(Reference((0.0, 0.0, 1.0), 1.0, 0.01, 125, 5.0))
    assert {p.name for p in want.iterdir()} >= {"sitsense.db", "mqtt-outbox.db", "calibration.json"}
    assert saved.parent == want
    assert not (tmp_path / "home").exists()


def test_bout_start_across_the_end_of_summer_time_is_the_real_start():
    """A 3 h bout that began at 00:30 CEST on 2026-10-25 (the clocks go back at 03:00 CEST) is
    published as beginning at 00:30+02:00, not at 23:30 the day before."""
    berlin = ZoneInfo("Europe/Berlin")
    clock = SimClock(datetime(2026, 10, 25, 0, 30, tzinfo=berlin), tz=berlin)
    wall = clock.wall_at(3 * 3600.0)
    assert wall.isoformat() == "2026-10-25T02:30:00+01:00"  # three hours later, in winter time
    fake = FakeMqttClient()
    out = MqttOutput(MqttConfig(device_id="pi", discovery=False), client=fake, outbox=":memory:", clock=clock)
    out.start()
    try:
        out.update_state(StateSnapshot(t=3 * 3600.0, wall=wall, posture="sitting", p=0.9, bout_s=3 * 3600.0,
                                       sitting_today_s=3 * 3600.0, breaks_today=0, alerts_today=1,
                                       release_today_s=0.0, paused_until_t=4 * 3600.0))
        state = json.loads(fake.on("sitsense/pi/state")[-1].payload)
    finally:
        out.close()
    assert state["time"] == "2026-10-25T02:30:00+01:00"
    assert state["bout_start"] == "2026-10-25T00:30:00+02:00"
    assert state["paused_until"] == "2026-10-25T03:30:00+01:00"
    assert datetime.fromisoformat(state["bout_start"]).astimezone(timezone.utc) == datetime(
        2026, 10, 24, 22, 30, tzinfo=timezone.utc)
