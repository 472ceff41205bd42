"""A full or read-only state folder never stops the counting or the alerts (issue 18 item 2).

With the state on a full file system, queuing an alert in the on-disk outbox failed and nothing
published it (0 of 3 alerts reached a connected broker); full at start, 'run' exited 74 without
naming the path; read-only, it exited 1 on every start. Now the outbox and the database carry on
in memory, alerts go out, and the state folder's trouble is loud and periodic: a WARNING when it
starts and then every 10 minutes, the ``storage`` tile (Home Assistant's *State storage*) and a
``doctor`` line.

The file-system tests mount a small tmpfs, which needs root (CI runs as root); elsewhere they skip.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from sitsense.storage import FULL, OK, READ_ONLY, StorageHealth, probe
from tests.conftest import REPO
from tests.mosquitto import Collector, Mosquitto, wait_until
from tests.tmpfs import Tmpfs, TmpfsUnavailable

DAY = "stand 2m, sit 31m, stand 3m, sit 31m"  # two alerts, at 09:32 and 10:06


@pytest.fixture
def tmpfs(tmp_path) -> Iterator[Tmpfs]:
    try:
        fs = Tmpfs(tmp_path / "state", 1024)
    except TmpfsUnavailable as exc:
        pytest.skip(str(exc))
    yield fs
    fs.unmount()


@pytest.fixture
def broker(tmp_path) -> Iterator[Mosquitto]:
    b = Mosquitto(tmp_path / "mosquitto")
    b.start()
    yield b
    b.stop()


def run_service(tmp_path: Path, state: Path, broker: Mosquitto, plan: str = DAY,
                device: str = "disk") -> tuple[int, str, list[dict]]:
    """'sitsense run' on a fake sensor (as fast as it goes), state in ``state`` (a fake sensor keeps state
    only where --state says), MQTT to ``broker``."""
    from sitsense.config import SECTIONS

    conf = tmp_path / f"{device}.toml"
    conf.write_text(f'[mqtt]\nenabled = true\nhost = "{broker.host}"\nport = {broker.port}\ndevice_id = "{device}"\n'
                    "discovery = false\nreconnect_max_s = 1\nstate_interval_s = 1\n[buzzer]\nenabled = false\n"
                    + ("[web]\nenabled = false\n" if "web" in SECTIONS else ""))
    env = dict(os.environ, STATE_DIRECTORY=str(state), PYTHONPATH=str(REPO))
    # --state: a fake sensor keeps state only where it is told (docs/wear/calibrate.md, "Where state lives")
    done = subprocess.run([sys.executable, "-m", "sitsense.cli", "-v", "run", "--config", str(conf), "--sensor",
                           f"fake:plan:{plan}", "--speed", "0", "--json", "--state", str(state / "sitsense.db")],
                          capture_output=True, text=True, env=env, timeout=300)
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return done.returncode, done.stderr, events


def _warnings(log_text: str) -> list[str]:
    return [line for line in log_text.splitlines() if " WARNING " in line and "sitsense.storage" in line]


# ---------------------------------------------------------------------------------------------- in a real run

def test_alerts_reach_the_broker_when_the_state_folder_fills_up(tmp_path, tmpfs, broker):
    """The database and the outbox exist (an earlier start), then the card fills: the issue's case."""
    sub = Collector(broker, ["sitsense/disk/alert", "sitsense/disk/storage"])
    try:
        code, log_text, _ = run_service(tmp_path, tmpfs.path, broker, plan="stand 1m")
        assert code == 0 and (tmpfs.path / "sitsense.db").exists() and (tmpfs.path / "mqtt-outbox.db").exists()
        tmpfs.fill()
        code, log_text, events = run_service(tmp_path, tmpfs.path, broker)
        assert code == 0, log_text[-2000:]
        produced = [e["id"] for e in events if e["type"] == "alert"]
        assert len(produced) == 2
        wait_until(lambda: len(sub.on("sitsense/disk/alert")) >= 2, 10, "both alerts at the broker")
        assert [json.loads(m.payload)["id"] for m in sub.on("sitsense/disk/alert")] == produced
        warned = _warnings(log_text)
        assert warned and all(str(tmpfs.path) in w and "full" in w for w in warned), log_text[-3000:]
        assert len(warned) <= 2  # once for the database, once for the outbox: not once per write
        sub.wait_value("sitsense/disk/storage", FULL)  # the Home Assistant tile
        assert "Traceback" not in log_text
    finally:
        sub.close()


def test_a_full_folder_at_start_is_no_exit_74(tmp_path, tmpfs, broker):
    """Nothing there yet, and not a byte free: it used to exit 74 ('No space left on device')."""
    tmpfs.fill()
    sub = Collector(broker, ["sitsense/fullstart/alert"])
    try:
        code, log_text, events = run_service(tmp_path, tmpfs.path, broker, device="fullstart")
        assert code == 0, log_text[-2000:]
        produced = [e["id"] for e in events if e["type"] == "alert"]
        wait_until(lambda: len(sub.on("sitsense/fullstart/alert")) >= len(produced) == 2, 10, "the alerts")
        assert any(str(tmpfs.path) in w for w in _warnings(log_text))
    finally:
        sub.close()


def test_a_read_only_folder_resumes_the_day_and_starts_every_time(tmp_path, tmpfs, broker):
    """It used to exit 1 on every start ('cannot create the lock file ...: Read-only file system')."""
    code, log_text, first = run_service(tmp_path, tmpfs.path, broker, plan="stand 2m, sit 20m", device="ro")
    assert code == 0
    sat = sum(e["sitting_s"] for e in first if e["type"] == "summary")
    tmpfs.read_only()
    sub = Collector(broker, ["sitsense/ro/alert", "sitsense/ro/storage"])
    try:
        for _ in range(2):  # and again: no restart loop
            code, log_text, events = run_service(tmp_path, tmpfs.path, broker, plan="sit 12m", device="ro")
            assert code == 0, log_text[-2000:]
            assert any("read-only" in w and str(tmpfs.path) in w for w in _warnings(log_text)), log_text[-2000:]
            assert "resumed from a checkpoint" in log_text  # read from the file it cannot write
        alerts = [e["id"] for e in events if e["type"] == "alert"]
        assert alerts  # the bout from before the restart goes on: 20 + 12 min
        wait_until(lambda: alerts[0] in {json.loads(m.payload)["id"] for m in sub.on("sitsense/ro/alert")}, 10,
                   "the alert of the read-only run")
        sub.wait_value("sitsense/ro/storage", READ_ONLY)
        assert sat > 15 * 60
    finally:
        sub.close()


# ---------------------------------------------------------------------------------------------- the parts

def test_the_database_goes_back_to_the_disk_when_it_takes_writes_again(tmp_path, tmpfs, caplog, monkeypatch):
    from datetime import datetime, timedelta, timezone

    import sitsense.persistence as persistence
    from sitsense.config import TrackerConfig
    from sitsense.outputs.base import StateSnapshot
    from sitsense.persistence import StateKeeper
    from sitsense.store import Store
    from sitsense.tracker import Tracker

    monkeypatch.setattr(persistence, "DISK_RETRY_S", 0.0)
    start = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
    db = tmpfs.path / "s.db"
    tmpfs.read_only()  # at start: the database lives in memory
    storage = StorageHealth(tmpfs.path)
    store = Store(db).open()
    assert store.in_memory
    tracker = Tracker(TrackerConfig())
    keeper = StateKeeper(store, tracker, checkpoint_s=60, storage=storage)
    assert storage.status == READ_ONLY

    def feed(t0: int, n: int) -> None:
        for t in range(t0, t0 + n):
            wall = start + timedelta(seconds=t)
            for ev in tracker.step(float(t), "sitting", wall):
                keeper.handle(ev)
            keeper.update_state(StateSnapshot(float(t), wall, "sitting", 1.0, tracker.bout_s(t), 0, 0, 0, 0))

    feed(1, 600)
    tmpfs.read_only(False)
    with caplog.at_level(logging.WARNING):
        feed(601, 120)
    assert storage.status == OK and not store.in_memory
    assert any("takes writes again" in r.getMessage() for r in caplog.records)
    tmpfs.fill()  # and now it fills up while the file is open; the alert of minute 30 comes meanwhile
    feed(721, 1200)
    assert storage.status == FULL and tracker.today.alerts == 1
    tmpfs.free()
    feed(1921, 120)
    assert storage.status == OK
    keeper.close()
    store.close()
    saved = Store(db).open()
    assert saved.get("tracker")["snapshot"]["today"]["seconds"]["sitting"] >= 2039
    assert len(saved.events(types=["alert"])) == 1  # logged after all


def test_the_outbox_keeps_its_order_in_memory_and_goes_back_to_disk(tmp_path, tmpfs, monkeypatch):
    import sitsense.mqtt.outbox as outbox_module
    from sitsense.mqtt.outbox import Outbox

    storage = StorageHealth(tmpfs.path)
    box = Outbox(tmpfs.path / "o.db", storage=storage)
    first = [box.add("t", f"m{k}".encode()) for k in range(5)]
    box.remove(first[:3])  # acknowledged: the sequence counter is past them
    tmpfs.fill()
    more = [box.add("t", f"big{k}".encode() * 2000) for k in range(50)]
    assert box.in_memory and storage.status == FULL
    assert more[0] > first[-1] and more == sorted(more)  # the sender's cursor stays valid
    assert [r.seq for r in box.take(first[-1], 100)] == more
    box.remove(more[:10])
    tmpfs.free()
    monkeypatch.setattr(outbox_module, "RETRY_DISK_S", 0.0)
    box._retry_at = 0.0
    last = box.add("t", b"after")
    assert not box.in_memory and storage.status == OK and last > more[-1]
    box.close()
    again = Outbox(tmpfs.path / "o.db")
    assert [r.seq for r in again.take(0, 1000)] == first[3:] + more[10:] + [last]


def test_the_trouble_is_said_once_then_every_ten_minutes_with_what_waits(tmp_path, caplog):
    clock = [0.0]
    storage = StorageHealth(tmp_path, monotonic=lambda: clock[0])
    storage.notes["database"] = lambda: "7 event(s) wait to be written"
    with caplog.at_level(logging.WARNING, logger="sitsense.storage"):
        storage.failed("database", OSError(28, "No space left on device"))
        for _ in range(100):
            storage.failed("database", OSError(28, "No space left on device"))
            clock[0] += 5.0
            storage.remind()  # 500 s: nothing more yet
        assert len(caplog.records) == 1 and str(tmp_path) in caplog.records[0].getMessage()
        clock[0] += 200.0
        storage.remind()
        storage.remind()
        assert len(caplog.records) == 2 and "7 event(s) wait" in caplog.records[1].getMessage()
        assert "101 failed write(s)" in caplog.records[1].getMessage()
        storage.succeeded("database")
    assert storage.status == OK and "takes writes again" in caplog.records[-1].getMessage()


def test_doctor_names_a_full_or_read_only_state_folder(tmp_path, tmpfs):
    assert probe(tmpfs.path)[0] == OK
    tmpfs.fill()
    status, detail = probe(tmpfs.path)
    assert status == FULL and str(tmpfs.path) in detail
    tmpfs.free()
    tmpfs.read_only()
    assert probe(tmpfs.path)[0] == READ_ONLY
