"""The state database: checkpoints, resume after a restart, corruption, history."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta, timezone

import pytest

from sitsense.cli import main
from sitsense.config import TrackerConfig
from sitsense.events import Alert
from sitsense.outputs.base import StateSnapshot
from sitsense.persistence import StateKeeper
from sitsense.store import Store
from sitsense.tracker import Tracker

START = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def _feed(tracker: Tracker, keeper: StateKeeper, t0: float, posture: str, seconds: int, wall0: datetime):
    for k in range(1, seconds + 1):
        t = t0 + k
        wall = wall0 + timedelta(seconds=t)
        for ev in tracker.step(t, posture, wall):
            keeper.handle(ev)
        keeper.update_state(StateSnapshot(t, wall, posture, 1.0, tracker.bout_s(t), 0, 0, 0, 0))
    return t0 + seconds


def test_restart_resumes_the_bout_and_totals_losing_at_most_a_checkpoint(tmp_path):
    db = tmp_path / "s.db"
    store = Store(db).open()
    tracker = Tracker(TrackerConfig())
    keeper = StateKeeper(store, tracker, checkpoint_s=60)
    t = _feed(tracker, keeper, 0, "sitting", 20 * 60 + 45, START)  # killed 45 s after a checkpoint
    store.conn.close()  # no clean shutdown
    # restart 10 s later, on a new monotonic clock that starts at 5000 s
    store2 = Store(db).open()
    fresh = Tracker(TrackerConfig())
    keeper2 = StateKeeper(store2, fresh, checkpoint_s=60)
    now_wall = START + timedelta(seconds=t + 10)
    assert "resumed" in keeper2.resume(5000.0, now_wall)
    lost = 20 * 60 + 45 - fresh.today.seconds["sitting"]
    assert 0 <= lost <= 60
    assert fresh.bout_s(5000.0) == pytest.approx(20 * 60 + 55, abs=61)  # the bout goes on
    events = []
    for k in range(1, 12 * 60):
        events += fresh.step(5000.0 + k, "sitting", now_wall + timedelta(seconds=k))
    assert len([e for e in events if isinstance(e, Alert)]) == 1  # the alert still comes at 30 min


def test_long_outage_closes_the_bout(tmp_path):
    store = Store(tmp_path / "s.db").open()
    tracker = Tracker(TrackerConfig())
    keeper = StateKeeper(store, tracker)
    t = _feed(tracker, keeper, 0, "sitting", 25 * 60, START)
    keeper.close()
    fresh = Tracker(TrackerConfig())
    StateKeeper(store, fresh).resume(10.0, START + timedelta(seconds=t + 3600))
    assert fresh.bout_start_t is None
    assert fresh.today.bouts == [pytest.approx(25 * 60, abs=2)]


def test_a_new_day_stores_the_old_one_in_history(tmp_path, capsys):
    db = tmp_path / "s.db"
    store = Store(db).open()
    tracker = Tracker(TrackerConfig())
    keeper = StateKeeper(store, tracker)
    _feed(tracker, keeper, 0, "sitting", 600, START)
    keeper.close()
    fresh = Tracker(TrackerConfig())
    msg = StateKeeper(store, fresh).resume(0.0, START + timedelta(days=1))
    assert "history" in msg and fresh.today.seconds["sitting"] == 0
    store.close()
    assert main(["history", "--state", str(db), "--json"]) == 0
    day = json.loads(capsys.readouterr().out)
    assert day["date"] == "2026-03-02" and day["sitting_s"] == pytest.approx(600, abs=2)
    assert day["longest_bout_s"] == pytest.approx(600, abs=2)  # the bout open at the cut counts
    assert main(["history", "--state", str(db)]) == 0
    assert "2026-03-02" in capsys.readouterr().out


def test_corrupt_database_is_moved_aside_and_a_fresh_one_started(tmp_path, caplog):
    db = tmp_path / "s.db"
    db.write_bytes(b"this is not a database" * 100)
    store = Store(db).open()
    assert store.warnings and "moved it to" in store.warnings[0]
    assert list(tmp_path.glob("s.db.corrupt-*"))
    store.put("x", {"a": 1})
    assert store.get("x") == {"a": 1}


def test_events_are_logged_and_alerts_written_at_once(tmp_path):
    store = Store(tmp_path / "s.db").open()
    tracker = Tracker(TrackerConfig())
    keeper = StateKeeper(store, tracker, checkpoint_s=3600)
    _feed(tracker, keeper, 0, "sitting", 31 * 60, START)
    # the checkpoint interval is an hour, but the alert is already on disk
    other = sqlite3.connect(tmp_path / "s.db")
    rows = other.execute("SELECT type FROM events").fetchall()
    assert ("alert",) in rows


def test_restart_mid_bout_keeps_the_days_calibration(tmp_path):
    """Killed while sitting, the service must not take the sitting posture it wakes up in as upright."""
    import io

    from sitsense.clock import SimClock
    from sitsense.config import Config
    from sitsense.sensor.live import open_source
    from sitsense.wiring import attach_store, build_service

    cfg = Config()
    db = tmp_path / "s.db"

    def run(plan: str, start: datetime, start_mono_s: float):
        clock = SimClock(start, start_mono_s=start_mono_s)
        source = open_source(f"fake:plan:{plan}", cfg.sensor, clock, seed=3)
        out = io.StringIO()
        service = build_service(cfg, source=source, clock=clock, stream=out, json_lines=True, coach=False)
        store, keeper = attach_store(service, cfg, db)
        keeper.resume(clock.monotonic(), clock.wall())
        service.run()
        store.conn.close()  # no clean shutdown: the last checkpoint is all that is left
        return service, [json.loads(line) for line in out.getvalue().splitlines()]

    _, first = run("stand 1m, sit 20m", START, 0.0)
    assert [e["source"] for e in first if e["type"] == "calibration"] == ["still-start"]
    # back after 30 s, the wearer still sitting (the same wearer: same seed, same mount)
    service, second = run("sit 15m", START + timedelta(minutes=21, seconds=30), 5000.0)
    assert not [e for e in second if e["type"] in ("calibration", "break")]
    assert [e["posture"] for e in second if e["type"] == "posture"][:1] == ["sitting"]
    alerts = [e for e in second if e["type"] == "alert"]
    assert len(alerts) == 1 and alerts[0]["bout_s"] >= 30 * 60  # the bout went on across the restart
    assert service.tracker.today.seconds["sitting"] == pytest.approx(35 * 60, abs=120)


def test_the_time_the_service_was_down_is_not_counted_as_sitting(tmp_path):
    store = Store(tmp_path / "s.db").open()
    tracker = Tracker(TrackerConfig())
    keeper = StateKeeper(store, tracker, checkpoint_s=60)
    t = _feed(tracker, keeper, 0, "sitting", 10 * 60, START)
    keeper.close()
    fresh = Tracker(TrackerConfig())
    wall = START + timedelta(seconds=t + 120)  # down for two minutes, sitting all along
    StateKeeper(store, fresh).resume(700.0, wall)
    before = fresh.today.seconds["sitting"]
    for k in range(1, 4):
        fresh.step(700.0 + k, "sitting", wall + timedelta(seconds=k))
    assert fresh.today.seconds["sitting"] - before == pytest.approx(3.0)  # only the 3 s it saw
    assert fresh.today.seconds["unknown"] == pytest.approx(120, abs=1)
    assert fresh.bout_s(703.0) == pytest.approx(10 * 60 + 123, abs=1)  # the bout still spans the outage


def test_checkpoints_are_synced_to_the_card(tmp_path):
    """WAL with synchronous=NORMAL may roll back committed checkpoints after a real power loss."""
    store = Store(tmp_path / "s.db").open()
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_history_and_report_only_read_the_database_and_say_what_is_wrong(tmp_path, capsys):
    """A query must never rename, create or repair the wearer's data; problems are one clear line."""
    from sitsense.cli import main

    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database at all\n" * 100)
    assert main(["history", "--state", str(garbage)]) != 0
    assert "cannot read the state database" in capsys.readouterr().err
    assert main(["report", "--day", "2026-03-02", "--state", str(garbage)]) != 0
    assert garbage.read_bytes().startswith(b"not a database") and not list(tmp_path.glob("*.corrupt-*"))

    folder = tmp_path / "folder"
    (folder / "precious.txt").parent.mkdir()
    (folder / "precious.txt").write_text("keep me")
    assert main(["history", "--state", str(folder)]) == 78
    assert "is a directory" in capsys.readouterr().err
    assert (folder / "precious.txt").read_text() == "keep me"

    missing = tmp_path / "none.db"
    assert main(["history", "--state", str(missing)]) == 0
    assert "no finished days" in capsys.readouterr().out and not missing.exists()

    store = Store(tmp_path / "real.db").open()  # the service's own open still creates and migrates
    store.close()
    before = (tmp_path / "real.db").read_bytes()
    assert main(["history", "--state", str(tmp_path / "real.db")]) == 0
    assert (tmp_path / "real.db").read_bytes() == before


def test_an_old_stored_calibration_does_not_override_the_days_newer_reference(tmp_path, monkeypatch):
    """After a restart, yesterday's 'sitsense calibrate' must not replace a reference taken today."""
    from sitsense.clock import SimClock
    from sitsense.config import Config
    from sitsense.sensor.reference import measure_reference, save_reference
    from sitsense.sensor.source import ReplaySource
    from sitsense.synth import synthesize
    from sitsense.plan import parse_plan
    from sitsense.wiring import build_service, use_stored_calibration
    import numpy as np

    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path))
    still = np.tile([[0.0, 0.0, 1.0]], (125, 1))
    save_reference(measure_reference(still, 5.0, time=(START - timedelta(days=1)).isoformat()))
    clock = SimClock(START)
    trace = synthesize(parse_plan("stand 1m"), sample_rate_hz=25, seed=1)
    service = build_service(Config(), source=ReplaySource(trace, clock), clock=clock, console=False)
    midnight = START.replace(hour=0, minute=0)
    from sitsense.paths import calibration_path

    use_stored_calibration(service, calibration_path(), unless_older_than=midnight)
    assert service.classifier.reference.source != "explicit"  # the day's own reference stays
    use_stored_calibration(service, calibration_path())  # no reference of the day: the stored one is used
    assert service.classifier.reference.source == "explicit"
