"""The release loop end to end: a synthetic day through the Service with the Coach wired in."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from sitsense.clock import SimClock
from sitsense.catalogue import exercise
from sitsense.coach import Coach, hold_schedule
from sitsense.config import Config
from sitsense.events import Alert, AlertOutcome, HoldCue
from sitsense.plan import parse_plan
from sitsense.sensor.source import ReplaySource
from sitsense.service import Service
from sitsense.synth import synthesize
from tests.recording import Recorder

# bout 1 heeded at once, bout 2 ignored (the walk comes 15 min after the prompt), bout 3 heeded
PLAN = "stand 1m, sit 31m, walk 4m, sit 45m, walk 3m, sit 32m, stand 4m, sit 5m"


@pytest.fixture(scope="module")
def day():
    cfg = Config().with_changes("tracker", max_reminders=1)
    cfg = cfg.with_changes("coach", seed=3)
    trace = synthesize(parse_plan(PLAN), sample_rate_hz=25, seed=2)
    clock = SimClock(datetime(2024, 5, 6, 9, 0, tzinfo=timezone.utc))
    rec = Recorder()
    coach = Coach(cfg.coach, heed_window_s=cfg.tracker.heed_window_min * 60)
    service = Service(cfg, clock=clock, source=ReplaySource(trace, clock), coach=coach, outputs=[rec])
    summary = service.run()
    return rec.events, summary, coach


def test_three_bouts_three_different_exercises_in_the_alerts(day):
    events, _, _ = day
    alerts = [e for e in events if isinstance(e, Alert)]
    assert len(alerts) == 3
    assert len({a.exercise["id"] for a in alerts}) == 3
    for a in alerts:
        assert a.safety and a.exercise["cue"] and a.exercise["dose"]
        assert f"{int(a.bout_s // 60)} min" in a.message


def test_guided_holds_follow_the_stand_up_after_heeded_prompts_only(day):
    events, _, _ = day
    alerts = [e for e in events if isinstance(e, Alert)]
    cues = [e for e in events if isinstance(e, HoldCue)]
    for k in (0, 2):
        ex_id = alerts[k].exercise["id"]
        seq = [c for c in cues if c.exercise_id == ex_id and c.t > alerts[k].t]
        want = [(c.cue, c.hold) for c in hold_schedule(exercise(ex_id))]
        assert [(c.cue, c.hold) for c in seq] == want
        # the wearer stands up 118 s after the prompt (sit 32m ends 2 min after it); the trained
        # classifier confirms standing a few seconds after the 2.5 s synthetic transition
        assert 0 < seq[0].t - alerts[k].t < 130
    assert not [c for c in cues if c.exercise_id == alerts[1].exercise["id"] and c.t > alerts[1].t]


def test_outcomes_and_release_minutes_in_the_summary(day):
    events, summary, coach = day
    alerts = [e for e in events if isinstance(e, Alert)]
    outcomes = {o.alert_id: o for o in events if isinstance(o, AlertOutcome)}
    assert [outcomes[a.id].heeded for a in alerts] == [True, False, True]
    doses = [exercise(a.exercise["id"]).dose.work_s for a in alerts]
    assert [outcomes[a.id].release_s for a in alerts] == pytest.approx([doses[0], 0.0, doses[2]])
    assert summary.release_s == pytest.approx(doses[0] + doses[2]) == coach.release_today_s
    assert summary.heeded == 2


def test_each_prompt_has_exactly_one_outcome_event(day):
    events, _, _ = day
    ids = [o.alert_id for o in events if isinstance(o, AlertOutcome)]
    assert sorted(ids) == sorted({a.id for a in events if isinstance(a, Alert)})
    assert all(o.exercise_id for o in events if isinstance(o, AlertOutcome))


def run_day(plan: str, start: datetime, seed: int = 1, **tracker) -> list[Alert]:
    cfg = Config().with_changes("tracker", timezone="UTC", **tracker)
    trace = synthesize(parse_plan(plan), sample_rate_hz=25, seed=seed)
    clock = SimClock(start)
    rec = Recorder()
    coach = Coach(cfg.coach, heed_window_s=cfg.tracker.heed_window_min * 60)
    Service(cfg, clock=clock, source=ReplaySource(trace, clock), coach=coach, outputs=[rec]).run()
    return [e for e in rec.events if isinstance(e, Alert)]


@pytest.mark.parametrize("seed", [1, 2])
def test_long_bouts_under_a_high_sit_limit_reach_a_static_stretch_by_reminder_3(seed):
    # sit_limit_min = 50: every alert fires in a bout that counts as long
    alerts = run_day("stand 1m, sit 75m, walk 5m, sit 75m, walk 5m, sit 75m", datetime(2024, 5, 6, 9, 0, tzinfo=timezone.utc),
                     seed, sit_limit_min=50)
    bouts: dict[float, list[Alert]] = {}
    for a in alerts:
        bouts.setdefault(a.bout_start_t, []).append(a)
    assert [[a.reminder for a in b] for b in bouts.values()] == [[1, 2, 3]] * 3
    first, *later = [[a.exercise["id"] for a in b] for b in bouts.values()]
    assert first == ["kneeling_hip_flexor"] * 3  # already long at 50 min, reminders keep it
    for ids in later:  # the previous bout just used the stretch: two others, then back to it
        assert len(set(ids)) == 3 and ids[2] == "kneeling_hip_flexor"


def test_first_alert_held_back_by_active_hours_is_a_static_stretch():
    # sitting from 07:02; the alert due at 07:32 waits for the active hours (08:00), 58 min into the bout
    for seed in (1, 2, 3):
        alerts = run_day("stand 1m, sit 62m, walk 5m", datetime(2024, 5, 6, 7, 1, tzinfo=timezone.utc), seed)
        assert len(alerts) == 1 and 57 * 60 <= alerts[0].bout_s <= 59 * 60
        assert exercise(alerts[0].exercise["id"]).hip_flexor_static
