"""``cmd/ack`` (the phone's *Done*): the wearer acknowledged the alert, no more reminders in this bout."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from sitsense.clock import SimClock
from sitsense.config import Config, TrackerConfig
from sitsense.events import Acknowledged, Alert, AlertOutcome
from sitsense.control import Request
from sitsense.plan import parse_plan
from sitsense.sensor.source import ReplaySource
from sitsense.service import Service
from sitsense.synth import synthesize
from tests.recording import Recorder
from tests.test_tracker import Day

START = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def _day(plan: str, on_alert=None):
    """Replay ``plan`` block by block; ``on_alert(service, alert, rec)`` runs when an alert arrives."""
    trace = synthesize(parse_plan(plan), sample_rate_hz=10, seed=4)
    clock = SimClock(START)
    source = ReplaySource(trace, clock, block_s=1.0)
    service = Service(Config(), clock=clock, source=source)
    rec = Recorder()
    service.outputs.append(rec)
    seen = 0
    for t, a in source.blocks():
        service.process_block(t, a)
        alerts = rec.of(Alert)
        if on_alert is not None and len(alerts) > seen:
            seen = len(alerts)
            on_alert(service, alerts[-1], rec)
    service.finish()
    return service, rec


PLAN = "stand 1m, sit 45m, walk 3m, sit 33m"


def test_without_ack_the_reminders_come():
    _, rec = _day(PLAN)
    assert [a.reminder for a in rec.of(Alert)] == [1, 2, 1]


def test_ack_through_the_command_queue_stops_the_reminders_of_that_bout_only():
    results = []

    def ack_first(service, alert, rec):
        if alert.reminder == 1 and not results:
            service.submit(Request("ack", {"id": alert.id}, source="mqtt", reply=results.append))

    service, rec = _day(PLAN, ack_first)
    alerts = rec.of(Alert)
    assert [a.reminder for a in alerts] == [1, 1]  # no reminder at 40 min; the next bout alerts again
    assert results[0]["ok"] is True and results[0]["id"] == alerts[0].id
    assert "no more reminders" in results[0]["detail"]
    [ack] = rec.of(Acknowledged)
    assert ack.alert_id == alerts[0].id and ack.reminder == 1 and ack.bout_s >= 30 * 60
    assert ack.to_dict()["type"] == "acknowledged"


def test_unknown_and_old_ids_are_refused():
    answers = {}

    def ack(service, alert, rec):
        if len(rec.of(Alert)) == 2:  # the second bout's alert: the first bout's id is old now
            first = rec.of(Alert)[0]
            answers["old"] = service.execute(Request("ack", {"id": first.id}))
            answers["unknown"] = service.execute(Request("ack", {"id": "nope-1"}))
            answers["empty"] = service.execute(Request("ack", {}))
            answers["current"] = service.execute(Request("ack", {"id": alert.id}))
            answers["again"] = service.execute(Request("ack", {"id": alert.id}))

    _, rec = _day("stand 1m, sit 32m, walk 3m, sit 45m", ack)
    assert answers["old"]["ok"] is False and answers["old"]["error"].startswith("unknown alert id")
    assert answers["unknown"] == {"ok": False, "command": "ack", "error": answers["unknown"]["error"]}
    assert "unknown alert id 'nope-1'" in answers["unknown"]["error"]
    assert answers["empty"]["ok"] is False and "id" in answers["empty"]["error"]
    assert answers["current"]["ok"] is True and answers["again"]["ok"] is True
    assert "already" in answers["again"]["detail"]
    assert len(rec.of(Acknowledged)) == 1  # the repeat changes nothing
    assert [a.reminder for a in rec.of(Alert)] == [1, 1]


def test_an_acknowledged_prompt_is_still_heeded_by_a_real_break():
    d = Day(TrackerConfig()).do("sitting", 31 * 60)
    [alert] = d.of(Alert)
    [ev] = d.tracker.acknowledge(d.t, alert.id)
    assert isinstance(ev, Acknowledged)
    d.do("sitting", 2 * 60).do("walking", 3 * 60).do("sitting", 30)
    [outcome] = d.of(AlertOutcome)
    assert outcome.heeded and outcome.break_s == pytest.approx(180, abs=2)


def test_an_acknowledgement_survives_a_restart():
    from sitsense.tracker import Tracker

    d = Day(TrackerConfig()).do("sitting", 31 * 60)
    d.tracker.acknowledge(d.t, d.of(Alert)[0].id)
    fresh = Tracker(TrackerConfig())
    fresh.restore(d.tracker.snapshot())
    d.tracker = fresh
    d.do("sitting", 30 * 60)
    assert len(d.of(Alert)) == 1
