"""Every rule of the sedentary tracker, driven by posture sequences at 1 Hz."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from sitsense.config import TrackerConfig
from sitsense.events import Alert, AlertOutcome, BreakEnded, BreakTaken, DaySummary, Paused, Resumed
from sitsense.tracker import Tracker

START = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)  # a Monday


class Day:
    """Feeds a tracker one step per second and keeps every event."""

    def __init__(self, cfg: TrackerConfig | None = None, start: datetime = START):
        self.tracker = Tracker(cfg or TrackerConfig())
        self.start = start
        self.t = 0.0
        self.events: list = []
        self.wall_offset_s = 0.0

    def wall(self) -> datetime:
        elapsed = timedelta(seconds=self.t + self.wall_offset_s)  # added in UTC, so DST-correct
        return (self.start.astimezone(timezone.utc) + elapsed).astimezone(self.start.tzinfo)

    def do(self, posture: str, seconds: float) -> "Day":
        for _ in range(int(seconds)):
            self.t += 1.0
            self.events += self.tracker.step(self.t, posture, self.wall())
        return self

    def of(self, cls):
        return [e for e in self.events if isinstance(e, cls)]


def test_bout_starts_with_sitting_and_alerts_at_the_limit():
    d = Day().do("standing", 60).do("sitting", 35 * 60)
    alerts = d.of(Alert)
    assert len(alerts) == 1
    assert alerts[0].reminder == 1
    assert alerts[0].bout_s == pytest.approx(30 * 60, abs=1)
    assert alerts[0].t == pytest.approx(60 + 30 * 60, abs=1)


def test_lying_counts_as_sedentary():
    d = Day().do("lying", 31 * 60)
    assert len(d.of(Alert)) == 1
    assert d.tracker.today.seconds["lying"] == pytest.approx(31 * 60, abs=1)


def test_reminders_repeat_every_snooze_interval_up_to_the_maximum():
    d = Day(TrackerConfig(snooze_min=10, max_reminders=3)).do("sitting", 90 * 60)
    alerts = d.of(Alert)
    assert [a.reminder for a in alerts] == [1, 2, 3]
    assert [round(a.bout_s / 60) for a in alerts] == [30, 40, 50]
    assert len({a.id for a in alerts}) == 3  # each one can be answered (ack) on its own


def test_short_stand_up_does_not_end_the_bout():
    d = Day().do("sitting", 20 * 60).do("standing", 40).do("sitting", 11 * 60)
    assert not d.of(BreakTaken)
    alerts = d.of(Alert)
    assert len(alerts) == 1
    assert alerts[0].bout_s == pytest.approx(30 * 60, abs=1)  # elapsed time, the stand-up included


def test_a_break_of_break_s_ends_the_bout_and_restarts_the_count():
    d = Day().do("sitting", 20 * 60).do("walking", 60).do("sitting", 25 * 60)
    breaks = d.of(BreakTaken)
    assert len(breaks) == 1
    assert breaks[0].start_t == pytest.approx(20 * 60, abs=1)
    assert not d.of(Alert)  # neither 20 nor 25 minutes reached the limit
    assert d.tracker.today.bouts == [pytest.approx(20 * 60, abs=1)]


def test_break_length_is_configurable():
    d = Day(TrackerConfig(break_s=120)).do("sitting", 20 * 60).do("standing", 90).do("sitting", 15 * 60)
    assert not d.of(BreakTaken)
    assert len(d.of(Alert)) == 1


@pytest.mark.parametrize("posture", ["not_worn", "unknown"])
def test_not_worn_and_unknown_never_count_as_sitting_nor_alert(posture):
    d = Day().do(posture, 2 * 3600)
    assert d.tracker.today.seconds["sitting"] == 0
    assert d.tracker.today.seconds[posture] == pytest.approx(2 * 3600, abs=2)
    assert not d.of(Alert)


def test_no_alerts_outside_active_hours_but_time_is_counted():
    d = Day(start=datetime(2026, 3, 2, 20, 30, tzinfo=timezone.utc)).do("sitting", 60 * 60)
    assert not d.of(Alert)
    assert d.tracker.today.seconds["sitting"] == pytest.approx(3600, abs=1)


def test_active_hours_may_wrap_past_midnight():
    cfg = TrackerConfig(active_hours="22:00-06:00")
    d = Day(cfg, start=datetime(2026, 3, 2, 23, 0, tzinfo=timezone.utc)).do("sitting", 31 * 60)
    assert len(d.of(Alert)) == 1


def test_no_alerts_on_inactive_days():
    cfg = TrackerConfig(active_days=["mon", "tue", "wed", "thu", "fri"])
    saturday = datetime(2026, 3, 7, 10, 0, tzinfo=timezone.utc)
    assert not Day(cfg, start=saturday).do("sitting", 40 * 60).of(Alert)
    assert Day(cfg).do("sitting", 40 * 60).of(Alert)  # Monday


def test_pause_holds_alerts_until_it_ends_and_resume_lifts_it():
    d = Day().do("sitting", 60)
    d.events += d.tracker.pause(d.t, 45)
    d.do("sitting", 40 * 60)
    assert d.of(Paused) and not d.of(Alert)
    d.do("sitting", 6 * 60)  # the pause ends 46 minutes in
    assert len(d.of(Alert)) == 1 and d.of(Resumed)
    e = Day().do("sitting", 60)
    e.tracker.pause(e.t, 120)
    e.events += e.tracker.resume(e.t + 1)
    e.do("sitting", 30 * 60)
    assert len(e.of(Alert)) == 1


def test_snooze_delays_the_next_reminder():
    d = Day().do("sitting", 31 * 60)
    d.events += d.tracker.snooze(d.t, 20)
    d.do("sitting", 15 * 60)
    assert len(d.of(Alert)) == 1  # the 40-minute reminder was held back
    d.do("sitting", 6 * 60)
    assert len(d.of(Alert)) == 2


def test_alert_followed_by_a_break_within_ten_minutes_is_heeded():
    d = Day().do("sitting", 32 * 60).do("walking", 3 * 60).do("sitting", 60)
    outcomes = d.of(AlertOutcome)
    assert len(outcomes) == 1 and outcomes[0].heeded
    assert outcomes[0].break_s == pytest.approx(3 * 60, abs=2)
    assert d.tracker.today.heeded == 1


def test_alert_ignored_is_not_heeded():
    d = Day(TrackerConfig(max_reminders=1)).do("sitting", 45 * 60).do("walking", 3 * 60)
    outcomes = d.of(AlertOutcome)
    assert len(outcomes) == 1 and not outcomes[0].heeded
    assert d.tracker.today.heeded == 0


def test_day_statistics_roll_over_at_local_midnight():
    d = Day(start=datetime(2026, 3, 2, 23, 0, tzinfo=timezone.utc))
    d.do("sitting", 40 * 60).do("walking", 5 * 60).do("sitting", 30 * 60)
    days = [e for e in d.events if type(e) is DaySummary]
    assert len(days) == 1
    first = days[0]
    assert first.date == "2026-03-02"
    assert first.sitting_s == pytest.approx(55 * 60, abs=2)  # 23:00-23:40 and 23:45-24:00
    assert first.walking_s == pytest.approx(5 * 60, abs=2)
    assert first.breaks == 1
    assert first.longest_bout_s == pytest.approx(40 * 60, abs=2)
    assert d.tracker.today.day == "2026-03-03"
    assert d.tracker.today.seconds["sitting"] == pytest.approx(15 * 60, abs=2)


def test_local_midnight_follows_the_wall_clock_zone():
    from zoneinfo import ZoneInfo
    berlin = datetime(2026, 3, 2, 23, 30, tzinfo=ZoneInfo("Europe/Berlin"))  # 22:30 UTC
    d = Day(start=berlin).do("standing", 40 * 60)
    assert [e.date for e in d.events if type(e) is DaySummary] == ["2026-03-02"]


def test_a_day_with_a_daylight_saving_change_rolls_over_at_its_own_midnight():
    from zoneinfo import ZoneInfo
    from sitsense.clock import SimClock
    berlin = ZoneInfo("Europe/Berlin")
    # 2026-03-29 is 23 hours long in Berlin (02:00 -> 03:00); a clock on it must agree
    start = datetime(2026, 3, 28, 23, 30, tzinfo=berlin)
    assert SimClock(start).wall_at(4 * 3600).strftime("%H:%M %Z") == "04:30 CEST"
    d = Day(start=start).do("standing", 30 * 60 + 23 * 3600 + 10 * 60)
    days = [e for e in d.events if type(e) is DaySummary]
    assert [e.date for e in days] == ["2026-03-28", "2026-03-29"]
    assert days[1].standing_s == pytest.approx(23 * 3600, abs=2)
    assert d.tracker.today.day == "2026-03-30"


def test_a_wall_clock_jump_forward_past_midnight_starts_a_new_day_without_losing_time():
    d = Day(start=datetime(2026, 3, 2, 22, 0, tzinfo=timezone.utc)).do("sitting", 20 * 60)
    d.wall_offset_s = 3 * 3600  # the clock is set three hours ahead: now past midnight
    d.do("sitting", 10 * 60)
    days = [e for e in d.events if type(e) is DaySummary]
    assert [e.date for e in days] == ["2026-03-02"]
    assert days[0].sitting_s + d.tracker.today.seconds["sitting"] == pytest.approx(30 * 60, abs=2)


def test_a_wall_clock_jump_neither_creates_nor_erases_sitting_time():
    d = Day().do("sitting", 10 * 60)
    d.wall_offset_s = 3 * 3600  # NTP corrects the clock by three hours
    d.do("sitting", 10 * 60)
    d.wall_offset_s = -5 * 3600  # and someone sets it far back
    d.do("sitting", 10 * 60)
    assert d.tracker.today.seconds["sitting"] == pytest.approx(30 * 60, abs=2)
    assert d.tracker.today.day == "2026-03-02"
    assert not [e for e in d.events if type(e) is DaySummary]


def test_backdated_not_worn_takes_back_sitting_time_and_the_bout():
    d = Day().do("standing", 60).do("lying", 10 * 60)  # really the sensor on a table
    d.t += 1
    d.events += d.tracker.step(d.t, "not_worn", d.wall(), since_t=60)
    d.do("not_worn", 50 * 60)
    assert d.tracker.today.seconds["lying"] == pytest.approx(0, abs=2)
    assert d.tracker.today.seconds["not_worn"] == pytest.approx(60 * 60, abs=3)
    assert d.tracker.bout_s(d.t) == 0 and not d.of(Alert)
    assert d.tracker.today.bouts == []


def test_break_ends_when_sitting_again():
    d = Day().do("sitting", 10 * 60).do("walking", 5 * 60).do("sitting", 10)
    ended = d.of(BreakEnded)
    assert len(ended) == 1 and ended[0].duration_s == pytest.approx(300, abs=2)


def test_snapshot_and_restore_resume_the_bout_and_totals():
    d = Day().do("sitting", 20 * 60)
    snap = d.tracker.snapshot()
    fresh = Tracker(TrackerConfig())
    fresh.restore(snap, shift_t=1000.0)  # the new process's monotonic clock starts elsewhere
    assert fresh.bout_s(d.t + 1000.0) == pytest.approx(20 * 60, abs=2)
    assert fresh.today.seconds["sitting"] == pytest.approx(20 * 60, abs=2)
    events = []
    for k in range(1, 11 * 60):
        events += fresh.step(d.t + 1000.0 + k, "sitting", START + timedelta(seconds=d.t + k))
    assert [e.reminder for e in events if isinstance(e, Alert)] == [1]
