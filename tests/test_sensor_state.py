"""The live state shows a sensor fault while it lasts, though no posture comes out of it."""

from __future__ import annotations

from sitsense.clock import SimClock
from sitsense.config import Config
from sitsense.sensor.live import open_source
from sitsense.wiring import build_service
from tests.sensor_fakes import START


class StateRecorder:
    def __init__(self, clock):
        self.clock = clock
        self.states = []  # (clock time when given, state)
        self.events = []

    def handle(self, ev):
        self.events.append(ev)

    def update_state(self, state):
        self.states.append((self.clock.monotonic(), state))

    def close(self):
        pass


def _run(disconnects):
    clock = SimClock(START)
    source = open_source("fake:plan:stand 1m, sit 3m", Config().sensor, clock, seed=2, disconnects=disconnects)
    service = build_service(Config(), source=source, clock=clock, console=False, coach=False)
    rec = StateRecorder(clock)
    service.outputs.append(rec)
    service.run()
    return service, rec


def test_the_sensor_tile_shows_an_i2c_outage_at_once_and_ok_after_it():
    service, rec = _run([(60, 180)])  # two minutes without the chip
    assert [e.status for e in rec.events if e.type == "sensor"] == ["i2c_error", "ok"]
    faulty = [(when, s) for when, s in rec.states if s.sensor != "ok"]
    assert faulty, "no state showed the fault"
    first_when, first = faulty[0]
    assert 60 <= first.t <= 62 and first_when <= 62  # given at once, not at the next posture
    assert all(s.sensor == "i2c_error" for _, s in faulty)
    # refreshed while it lasts (rate-limited outputs get their chance), each state newer than the last
    assert len([1 for when, _ in faulty if 90 <= when <= 170]) >= 60
    ts = [s.t for _, s in rec.states]
    assert ts == sorted(ts)
    after = [s for when, s in rec.states if when > 185]
    assert after and all(s.sensor == "ok" for s in after)
    assert rec.states[-1][1].sensor == "ok" and service.sensor_status == "ok"


def test_no_extra_states_when_the_sensor_is_fine():
    _, rec = _run([])
    ts = [s.t for _, s in rec.states]
    assert all(s.sensor == "ok" for _, s in rec.states)
    assert len(ts) == len(set(ts))  # one state per posture step, as before
