"""A damaged checkpoint never stops the service (issue 18 item 1).

A valid database whose saved tracker snapshot lacks a key, has a wrong type, a null or a flipped
bit used to crash ``run`` on every start (systemd then restarted it forever and nothing was
counted). Now the state is checked on resume: what cannot be used is moved aside with one WARNING
naming what was wrong, and the day goes on with what could be read. Old snapshots are migrated.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pytest

from sitsense.checkpoint import VERSION, check
from sitsense.clock import SimClock
from sitsense.config import Config, TrackerConfig
from sitsense.control import Request
from sitsense.events import Alert, Event
from sitsense.outputs.base import StateSnapshot
from sitsense.persistence import StateKeeper
from sitsense.posture import PostureEstimate
from sitsense.service import Service
from sitsense.store import Store
from sitsense.tracker import Tracker

START = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
STEP_S = 10.0  # the stub classifier's step: long steps keep hundreds of mutated days fast


class ScriptedClassifier:
    """Says what ``posture_at(t)`` says, one estimate per step: the tracker's input without numpy work."""

    step_s = STEP_S

    def __init__(self, posture_at: Callable[[float], str]):
        self.posture_at = posture_at
        self._next_t: float | None = None

    def process(self, t_s: np.ndarray, accel_g: np.ndarray) -> list[PostureEstimate]:
        if not len(t_s):
            return []
        if self._next_t is None:
            self._next_t = math.floor(float(t_s[0]) / STEP_S) * STEP_S + STEP_S
        out = []
        while self._next_t <= float(t_s[-1]):
            out.append(PostureEstimate(self._next_t, self.posture_at(self._next_t), 0.9))
            self._next_t += STEP_S
        return out

    def flush(self) -> list[PostureEstimate]:
        return []

    def set_reference(self, upright_g: Any) -> None:
        pass

    def pop_events(self) -> list[Event]:
        return []


class Recording:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def handle(self, event: Event) -> None:
        self.events.append(event)

    def update_state(self, state: StateSnapshot) -> None:
        pass

    def close(self) -> None:
        pass


def _feed_tracker(tracker: Tracker, keeper: StateKeeper, plan: list[tuple[str, float]], t0: float = 0.0) -> float:
    """Step a bare tracker (1 s steps) through ``plan`` [(posture, seconds)], checkpointing as the service does."""
    t = t0
    for posture, seconds in plan:
        for _ in range(int(seconds)):
            t += 1.0
            wall = START + timedelta(seconds=t)
            for ev in tracker.step(t, posture, wall):
                keeper.handle(ev)
            keeper.update_state(StateSnapshot(t, wall, posture, 1.0, tracker.bout_s(t), 0, 0, 0, 0))
    return t


def base_checkpoints(tmp_path: Path) -> dict[str, str]:
    """Real checkpoints in two rich states, as stored text.

    ``bout``: 35 min into a bout with one alert waiting for its outcome, standing up for 30 s
    (every bout time is set). ``break``: that alert heeded by a break still in progress, paused.
    """
    out = {}
    for name, plan in {"bout": [("standing", 120), ("sitting", 35 * 60), ("standing", 30)],
                       "break": [("standing", 120), ("sitting", 35 * 60), ("walking", 200)]}.items():
        store = Store(tmp_path / f"base-{name}.db").open()
        tracker = Tracker(TrackerConfig())
        keeper = StateKeeper(store, tracker, checkpoint_s=60)
        t = _feed_tracker(tracker, keeper, plan)
        if name == "break":
            tracker.pause(t, 30)
        keeper._calibration = {"source": "still-start", "upright_g": [0.99, -0.01, -0.02]}
        keeper.checkpoint()
        out[name] = store.get_text("tracker")
        store.close()
    return out


def resume_and_live_a_day(db: Path, text: str, caplog) -> dict[str, Any]:
    """Store ``text`` as the checkpoint, resume a service from it and let it count: sit 10 min, clear
    any pause, stand 2 min, sit 45 min. Returns what a user would notice."""
    store = Store(db).open()
    with store.conn:
        store.conn.execute("INSERT OR REPLACE INTO kv (key, value, updated) VALUES ('tracker', ?, '')", (text,))
    schedule = [("sitting", 10 * 60), ("standing", 2 * 60), ("sitting", 45 * 60)]
    resume_wall = START + timedelta(minutes=38)
    t0 = 50_000.0  # a new boot: another monotonic clock

    def posture_at(t: float) -> str:
        elapsed = t - t0
        for posture, seconds in schedule:
            if elapsed <= seconds:
                return posture
            elapsed -= seconds
        return "sitting"

    clock = SimClock(resume_wall, start_mono_s=t0)
    recording = Recording()
    service = Service(Config(), clock=clock, classifier=ScriptedClassifier(posture_at), outputs=[recording])
    keeper = StateKeeper(store, service.tracker, checkpoint_s=3600)
    service.outputs.append(keeper)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        keeper.resume(t0, resume_wall)
        warnings = [r for r in caplog.records if r.levelno >= logging.WARNING and r.name == "sitsense.persistence"]
        zeros = np.zeros((60, 3))
        cleared = False
        for minute in range(58):
            t_s = t0 + minute * 60.0 + np.arange(1, 61, dtype=float)
            if minute == 10 and not cleared:
                service.execute(Request("resume", source="test"))
                cleared = True
            clock.advance_to(float(t_s[-1]))
            service.process_block(t_s, zeros)
        keeper.checkpoint()
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    final = store.get_text("tracker")
    store.close()
    late_alerts = [e for e in recording.events if isinstance(e, Alert) and e.t > t0 + 12 * 60]
    return {"warnings": warnings, "errors": errors, "late_alerts": late_alerts, "final": final,
            "today": service.tracker.today, "aside": sorted(db.parent.glob(db.name + ".damaged-*.json"))}


# ---------------------------------------------------------------------------------------------- mutations

def _paths(value: Any, path: tuple = ()) -> Iterator[tuple]:
    yield path
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, path + (i,))


def _set(doc: Any, path: tuple, value: Any, delete: bool = False) -> Any:
    doc = copy.deepcopy(doc)
    parent = doc
    for p in path[:-1]:
        parent = parent[p]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return doc


WRONG = {"null": None, "text": "x", "list": [], "object": {}, "bool": True, "negative": -1, "huge_int": 2 ** 70,
         "huge": 1e308, "nan": float("nan"), "inf": float("inf")}


def mutations(text: str, flips: int, seed: int) -> Iterator[tuple[str, str]]:
    """(description, mutated text): every key deleted, every value replaced by each wrong kind, and
    ``flips`` single-bit flips anywhere in the stored text."""
    doc = json.loads(text)
    for path in _paths(doc):
        if not path:
            continue
        where = ".".join(map(str, path))
        yield f"delete {where}", json.dumps(_set(doc, path, None, delete=True))
        for kind, value in WRONG.items():
            yield f"{where} = {kind}", json.dumps(_set(doc, path, value))
    raw = bytearray(text.encode())
    rng = random.Random(seed)
    for _ in range(flips):
        i, bit = rng.randrange(len(raw)), rng.randrange(8)
        flipped = bytearray(raw)
        flipped[i] ^= 1 << bit
        yield f"bit {bit} of byte {i} ({chr(raw[i])!r})", flipped.decode("utf-8", errors="replace")


@pytest.fixture(scope="module")
def bases(tmp_path_factory) -> dict[str, str]:
    return base_checkpoints(tmp_path_factory.mktemp("bases"))


@pytest.fixture
def memory_dir(tmp_path) -> Iterator[Path]:
    """A folder in RAM where there is one (/dev/shm): the store syncs every commit, which on a disk
    makes a thousand resumed databases take minutes; the behaviour under test is the same."""
    import shutil
    import tempfile

    if not os.access("/dev/shm", os.W_OK):
        yield tmp_path
        return
    path = Path(tempfile.mkdtemp(prefix="sitsense-test-", dir="/dev/shm"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.mark.parametrize("base", ["bout", "break"])
def test_no_mutation_of_a_checkpoint_stops_the_service_or_its_alerts(base, bases, memory_dir, caplog):
    """Hundreds of damaged checkpoints: every one resumes without an error, with one WARNING naming
    the damage (and the text moved aside) or none when nothing was wrong, the service goes on
    counting and alerting, and the checkpoint it writes next reads back clean."""
    text = bases[base]
    summary = {"cases": 0, "warned": 0, "kept_totals": 0}
    for k, (what, mutated) in enumerate(mutations(text, flips=150, seed=18 if base == "bout" else 19)):
        db = memory_dir / f"m{k}" / "s.db"
        db.parent.mkdir()
        got = resume_and_live_a_day(db, mutated, caplog)
        summary["cases"] += 1
        assert not got["errors"], f"{what}: {got['errors'][0].getMessage()}"
        assert len(got["warnings"]) <= 1, f"{what}: {[r.getMessage() for r in got['warnings']]}"
        if got["warnings"]:
            summary["warned"] += 1
            message = got["warnings"][0].getMessage()
            assert "damaged" in message and str(db) in message, f"{what}: {message}"
            assert len(got["aside"]) == 1 and got["aside"][0].read_text() == mutated, what
            assert got["aside"][0].name in message, what
        else:
            assert not got["aside"], what
        assert got["late_alerts"], f"{what}: no alert after 45 min of sitting"
        assert all(math.isfinite(v) and v >= 0 for v in got["today"].seconds.values()), what
        if got["today"].seconds["sitting"] > 45 * 60 + 20 * 60:
            summary["kept_totals"] += 1
        final = check(json.loads(got["final"]))
        assert final.problems == [] and final.resumable, f"{what}: {final.problems}"
    print(base, summary)
    assert summary["warned"] >= summary["cases"] // 2  # most mutations are damage, and said so
    assert summary["kept_totals"] >= summary["cases"] // 2  # most damage still keeps the morning's sitting


def test_the_damage_the_issue_found_is_named_in_one_warning(bases, tmp_path, caplog):
    doc = json.loads(bases["bout"])
    del doc["snapshot"]["snoozed_until_t"]
    doc["snapshot"]["reminders"] = None
    got = resume_and_live_a_day(tmp_path / "s.db", json.dumps(doc), caplog)
    [warning] = got["warnings"]
    message = warning.getMessage()
    assert "snapshot.snoozed_until_t: missing" in message and "snapshot.reminders: null" in message
    assert "kept its day's totals" in message
    assert got["today"].seconds["sitting"] >= (35 + 10 + 45) * 60 - 60  # the morning's sitting was kept


# ---------------------------------------------------------------------------------------------- real states

def test_every_state_a_tracker_reaches_reads_back_unchanged(tmp_path):
    """No false alarms: snapshots along random days (with snoozes, pauses, acknowledgements and
    resumes) are never reported damaged, and come back exactly as saved."""
    rng = random.Random(5)
    postures = ["sitting", "standing", "walking", "lying", "not_worn", "unknown"]
    for day in range(12):
        tracker = Tracker(TrackerConfig(sit_limit_min=5, snooze_min=2, break_s=30))
        t, checked = 0.0, 0
        while t < 6 * 3600:
            posture = rng.choices(postures, weights=[8, 3, 2, 2, 1, 1])[0]
            for _ in range(int(rng.expovariate(1 / 300)) + 1):
                t += 1.0
                tracker.step(t, posture, START + timedelta(seconds=t))
            action = rng.random()
            if action < 0.1:
                tracker.snooze(t, rng.choice([1, 10, 120]))
            elif action < 0.15:
                tracker.pause(t, rng.choice([1, 60, 1440]))
            elif action < 0.2:
                tracker.resume(t)
            elif action < 0.3 and tracker.bout_alerts:
                tracker.acknowledge(t, rng.choice(tracker.bout_alerts))
            state = {"version": VERSION, "snapshot": tracker.snapshot(),
                     "wall": (START + timedelta(seconds=t)).isoformat(), "t": t}
            result = check(json.loads(json.dumps(state)))
            assert result.problems == [], (day, t, result.problems)
            assert result.resumable and result.state["snapshot"] == tracker.snapshot()
            checked += 1
        assert checked > 20


def test_a_version_1_snapshot_is_migrated_and_its_bout_goes_on(tmp_path, caplog):
    """The first format had no version, no prompts waiting for an outcome and no alert ids."""
    v1 = {"snapshot": {"posture": "sitting", "last_t": 1500.0, "bout_start_t": 120.0, "reminders": 0,
                       "next_alert_t": 1920.0, "active_since_t": None, "break_start_t": None,
                       "paused_until_t": None, "snoozed_until_t": None,
                       "today": {"day": "2026-03-02", "seconds": {"sitting": 1380.0, "standing": 120.0, "walking": 0.0,
                                                                  "lying": 0.0, "not_worn": 0.0, "unknown": 0.0},
                                 "bouts": [], "breaks": 0, "alerts": 0, "heeded": 0, "release_s": 0.0}},
          "wall": (START + timedelta(seconds=1500)).isoformat(), "t": 1500.0}
    store = Store(tmp_path / "s.db").open()
    store.put("tracker", v1)
    tracker = Tracker(TrackerConfig())
    keeper = StateKeeper(store, tracker)
    with caplog.at_level(logging.INFO):
        assert keeper.resume(10.0, START + timedelta(seconds=1510)).startswith("resumed")
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and r.name == "sitsense.persistence"]
    assert any("migrated the checkpoint from version 1" in r.getMessage() for r in caplog.records)
    events = []
    for k in range(1, 8 * 60):
        t, wall = 10.0 + k, START + timedelta(seconds=1510 + k)
        events += tracker.step(t, "sitting", wall)
        keeper.update_state(StateSnapshot(t, wall, "sitting", 1.0, tracker.bout_s(t), 0, 0, 0, 0))
    [alert] = [e for e in events if isinstance(e, Alert)]
    assert alert.bout_s == pytest.approx(30 * 60, abs=15)  # the bout from before the restart counts
    assert store.get("tracker")["version"] == VERSION


def test_run_starts_on_a_damaged_checkpoint_instead_of_crashing_on_every_start(tmp_path, caplog):
    """The issue's crash loop, end to end: 'sitsense run' exits 0, says what was wrong once, and the
    next start finds a clean checkpoint."""
    from sitsense.cli import main

    db = tmp_path / "s.db"
    assert main(["run", "--sensor", "fake:plan:stand 1m, sit 10m", "--speed", "0", "--state", str(db)]) == 0
    store = Store(db).open()
    doc = json.loads(store.get_text("tracker"))
    del doc["snapshot"]["snoozed_until_t"]
    doc["snapshot"]["today"]["alerts"] = None
    store.conn.execute("UPDATE kv SET value = ? WHERE key = 'tracker'", (json.dumps(doc),))
    store.close()
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert main(["run", "--sensor", "fake:plan:sit 25m", "--speed", "0", "--state", str(db)]) == 0
    [warning] = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING
                 and r.name == "sitsense.persistence"]
    assert "snoozed_until_t: missing" in warning and "today.alerts" in warning
    assert len(list(tmp_path.glob("s.db.damaged-*.json"))) == 1
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert main(["run", "--sensor", "fake:plan:sit 1m", "--speed", "0", "--state", str(db)]) == 0
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and r.name == "sitsense.persistence"]
