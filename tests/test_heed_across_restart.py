"""A prompt's heed window survives a restart, and stopping the service does not close it.

The service is restarted for every upgrade (SIGTERM) and may lose power at any time; the prompt
it gave just before is still waiting for the wearer's break. Its outcome must be reported by the
resumed service, heeded if the break comes in time, never "not heeded" because the process ended.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from sitsense.config import Config, TrackerConfig
from sitsense.events import Alert, AlertOutcome, BreakEnded
from sitsense.persistence import StateKeeper
from sitsense.store import Store
from sitsense.tracker import Tracker
from tests.test_tracker import START, Day

REPO = Path(__file__).resolve().parent.parent


def _continue(tracker: Tracker, t0: float, wall0: datetime, plan: list[tuple[str, int]]) -> list:
    events, t = [], t0
    for posture, seconds in plan:
        for _ in range(seconds):
            t += 1.0
            events += tracker.step(t, posture, wall0 + timedelta(seconds=t - t0))
    return events


# ---------------------------------------------------------------------------------------------
# (a) the tracker's snapshot keeps the prompts still waiting for a break


def test_a_restore_mid_heed_window_then_a_break_reports_the_prompt_heeded():
    d = Day().do("sitting", 33 * 60)  # the alert came at 30 min: its window is open
    [alert] = d.of(Alert)
    snap = json.loads(json.dumps(d.tracker.snapshot()))  # as the store keeps it
    fresh = Tracker(TrackerConfig())
    fresh.restore(snap, shift_t=5000.0)  # a new process, its monotonic clock elsewhere
    events = _continue(fresh, d.t + 5000.0, d.wall(), [("walking", 3 * 60), ("sitting", 30)])
    [outcome] = [e for e in events if isinstance(e, AlertOutcome)]
    assert outcome.alert_id == alert.id and outcome.heeded
    assert outcome.break_s == pytest.approx(3 * 60, abs=2)
    assert fresh.today.heeded == 1


def test_a_restore_mid_break_reports_the_whole_break():
    d = Day().do("sitting", 32 * 60).do("walking", 2 * 60)  # a confirmed break after the prompt
    assert not d.of(AlertOutcome)  # reported once the break ends
    fresh = Tracker(TrackerConfig())
    fresh.restore(json.loads(json.dumps(d.tracker.snapshot())), shift_t=-100.0)
    events = _continue(fresh, d.t - 100.0, d.wall(), [("walking", 60), ("sitting", 10)])
    [outcome] = [e for e in events if isinstance(e, AlertOutcome)]
    assert outcome.heeded and outcome.break_s == pytest.approx(3 * 60, abs=2)


def test_a_restore_after_the_window_closed_reports_not_heeded_once():
    d = Day().do("sitting", 33 * 60)
    fresh = Tracker(TrackerConfig(max_reminders=1))
    fresh.restore(d.tracker.snapshot())
    events = _continue(fresh, d.t, d.wall(), [("sitting", 10 * 60), ("walking", 3 * 60)])
    outcomes = [e for e in events if isinstance(e, AlertOutcome)]
    assert [o.heeded for o in outcomes] == [False]


def test_a_snapshot_without_pending_prompts_still_restores():
    d = Day().do("sitting", 20 * 60)
    snap = d.tracker.snapshot()
    del snap["pending"], snap["bout_alerts"]  # written by an older version
    fresh = Tracker(TrackerConfig())
    fresh.restore(snap)
    assert fresh.pending == [] and fresh.bout_s(d.t) == pytest.approx(20 * 60, abs=2)


def test_a_long_outage_ends_the_break_in_progress_and_reports_its_prompt():
    d = Day().do("sitting", 32 * 60).do("walking", 2 * 60)
    fresh = Tracker(TrackerConfig())
    fresh.restore(d.tracker.snapshot())
    fresh.close_bout(d.t)  # what the resume does after an outage longer than 5 min
    events = _continue(fresh, d.t + 3600, d.wall() + timedelta(hours=1), [("sitting", 5)])
    assert [type(e) for e in events[:2]] == [BreakEnded, AlertOutcome]
    assert events[1].heeded and events[1].break_s == pytest.approx(120, abs=2)
    assert fresh.today.heeded == 1


# ---------------------------------------------------------------------------------------------
# (b) through the store: killed with a prompt waiting, the resumed service hears the answer


def _service_run(cfg: Config, db: Path, plan: str, start: datetime, start_mono_s: float, *, crash: bool):
    """One run of the service on a fake sensor with the state database, as ``sitsense run`` wires it."""
    from sitsense.clock import SimClock
    from sitsense.sensor.live import open_source
    from sitsense.wiring import attach_store, build_service, close_outputs

    clock = SimClock(start, start_mono_s=start_mono_s)
    source = open_source(f"fake:plan:{plan}", cfg.sensor, clock, seed=3)
    out = io.StringIO()
    service = build_service(cfg, source=source, clock=clock, stream=out, json_lines=True)
    store, keeper = attach_store(service, cfg, db)
    keeper.resume(clock.monotonic(), clock.wall())
    service.resumable = True
    service.run()
    if crash:
        store.conn.close()  # a power cut: the last checkpoint is all that is left
    else:
        close_outputs(service)
        store.close()
    return service, [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_prompt_answered_after_a_power_cut_counts_as_heeded_in_the_stored_day(tmp_path):
    cfg = Config()
    db = tmp_path / "s.db"
    _, first = _service_run(cfg, db, "stand 1m, sit 34m", START, 0.0, crash=True)
    [alert] = [e for e in first if e["type"] == "alert"]
    # back 30 s later; the wearer gets up 4 min after the prompt
    service, second = _service_run(cfg, db, "walk 3m, sit 2m", START + timedelta(minutes=35, seconds=30),
                                   9000.0, crash=False)
    outcomes = [e for e in second if e["type"] == "outcome"]
    assert [(o["alert_id"], o["heeded"]) for o in outcomes] == [(alert["id"], True)]
    assert outcomes[0]["break_s"] == pytest.approx(3 * 60, abs=15)
    assert service.tracker.today.heeded == 1
    # the next morning the day goes into the history with the prompt heeded
    store = Store(db).open()
    assert "history" in StateKeeper(store, Tracker(cfg.tracker)).resume(0.0, START + timedelta(days=1))
    [day] = store.days()
    assert day["date"] == "2026-03-02" and day["alerts"] == 1 and day["heeded"] == 1
    logged = store.events(types=["outcome"])
    assert [(e["alert_id"], e["heeded"]) for e in logged] == [(alert["id"], True)]
    store.close()


def test_prompts_waiting_when_the_day_ended_are_settled_in_its_history(tmp_path):
    """Stopped during a break after a prompt, started again the next day: that day knows the outcome."""
    store = Store(tmp_path / "s.db").open()
    d = Day().do("sitting", 32 * 60).do("walking", 2 * 60)
    keeper = StateKeeper(store, d.tracker)
    from sitsense.outputs.base import StateSnapshot
    keeper.update_state(StateSnapshot(d.t, d.wall(), "walking", 1.0, 0.0, 0, 0, 0, 0))
    keeper.close()
    fresh = Tracker(TrackerConfig())
    keeper2 = StateKeeper(store, fresh)
    assert "history" in keeper2.resume(0.0, START + timedelta(days=1))
    assert store.days()[0]["heeded"] == 1
    keeper2.update_state(StateSnapshot(1.0, START + timedelta(days=1, seconds=1), "sitting", 1.0, 0.0, 0, 0, 0, 0))
    [outcome] = store.events(types=["outcome"])
    assert outcome["heeded"] and outcome["break_s"] == pytest.approx(120, abs=2)
    assert outcome["wall"].startswith("2026-03-02")  # logged on the day it belongs to
    store.close()


# ---------------------------------------------------------------------------------------------
# (c) `sitsense run` stopped by SIGTERM keeps the window open for the next start


def _sitsense(*args: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("NOTIFY_SOCKET", None)
    return subprocess.Popen([sys.executable, "-m", "sitsense.cli", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def test_sigterm_writes_no_not_heeded_outcome_and_the_restarted_service_reports_it(tmp_path):
    db = tmp_path / "s.db"
    proc = _sitsense("run", "--sensor", "fake:plan:stand 1m, sit 40m", "--speed", "120", "--json",
                     "--state", str(db))
    try:
        alert = None
        deadline = time.monotonic() + 60
        while alert is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            ev = json.loads(line)
            if ev["type"] == "alert":
                alert = ev
        assert alert is not None, proc.stderr.read()
        time.sleep(0.5)  # a minute of the wearer's time, still sitting in the heed window
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert not [json.loads(line) for line in out.splitlines() if '"outcome"' in line]
    store = Store(db).open(read_only=True)
    assert store.events(types=["outcome"]) == []
    assert [p["id"] for p in store.get("tracker")["snapshot"]["pending"]] == [alert["id"]]
    store.close()
    # started again (its fake clock begins at 09:00 again: a quick restart), the wearer walks now
    second = _sitsense("run", "--sensor", "fake:plan:walk 3m, sit 1m", "--speed", "0", "--json", "--state", str(db))
    out, err = second.communicate(timeout=60)
    assert second.returncode == 0, err
    outcomes = [json.loads(line) for line in out.splitlines() if '"outcome"' in line]
    assert [(o["alert_id"], o["heeded"]) for o in outcomes] == [(alert["id"], True)]
