"""LiveSource and open_source: polling, stopping, events, clear errors for bad specs."""

from __future__ import annotations

import numpy as np
import pytest

from sitsense.clock import ScaledClock, SimClock
from sitsense.config import SensorConfig
from sitsense.errors import ConfigError, SensorNotFound
from sitsense.sensor.live import LiveSource, open_source, parse_spec
from sitsense.traces import write_trace
from tests.sensor_fakes import LSB_2G, START, rig, wobbly_trace


@pytest.fixture
def trace_file(tmp_path):
    trace = wobbly_trace(seconds=120, rate_hz=50)
    trace.metadata["start_time"] = "2026-03-02T09:00:00+01:00"
    path = tmp_path / "t.csv"
    write_trace(path, trace, decimals=6)
    return path, trace


def collect(source):
    ts, accs = [], []
    for t, a in source.blocks():
        ts.append(t)
        accs.append(a)
    return np.concatenate(ts), np.concatenate(accs)


def test_fake_source_plays_the_whole_trace_and_stops_by_itself(trace_file):
    path, trace = trace_file
    source = open_source(f"fake:{path}", SensorConfig(), SimClock(START))
    assert source.sample_rate_hz == 50  # a fake sensor samples at its trace's rate
    t, a = collect(source)
    assert len(t) == len(trace)
    assert np.abs(a - trace.accel_g).max() <= LSB_2G
    assert source.polls <= 120 / 1.0 + 3  # one wake-up per poll interval, never one per sample
    assert source.emulator.exhausted and source.driver.status == "closed"


def test_seconds_stops_after_that_much_sensor_time(trace_file):
    path, _ = trace_file
    source = open_source(f"fake:{path}", SensorConfig(), SimClock(START), seconds=30)
    t, _ = collect(source)
    assert t[-1] <= source.start_s + 30 and t[-1] > source.start_s + 29
    # plus the last poll's own bus time: 50 frames take about 28 ms at 100 kHz
    assert source.clock.monotonic() - source.start_s == pytest.approx(30.03, abs=0.01)


def test_speed_uses_a_scaled_clock_from_the_traces_start(trace_file):
    path, trace = trace_file
    source = open_source(f"fake:{path}", SensorConfig(), speed=50, seconds=20)
    assert isinstance(source.clock, ScaledClock) and source.clock.speed == 50
    assert source.clock.wall_at(0.0).isoformat() == "2026-03-02T09:00:00+01:00"
    t, a = collect(source)
    # a real (scaled) clock: the last poll (1 s) may land past the 20 s mark, and at 50x a 20 ms
    # scheduling delay adds another second; a loaded machine may also lose the first samples
    # (more delay than the FIFO holds): the run must reach the 20 s mark and stop there.
    assert 15 < t[-1] <= 22.0 and len(t) <= 22 * 50
    assert (np.diff(t) > 0).all()


def test_speed_zero_runs_as_fast_as_possible(trace_file):
    path, _ = trace_file
    source = open_source(f"fake:{path}", SensorConfig(), speed=0)
    assert isinstance(source.clock, SimClock)


def test_faults_arrive_as_events_and_never_end_the_stream(trace_file):
    path, trace = trace_file
    source = open_source(f"fake:{path}", SensorConfig(), SimClock(START), disconnects=[(30, 40)],
                         resets_at=[70.5], frozen=[(90, 100)])
    statuses = []
    n = 0
    for t, a in source.blocks():
        n += len(t)
        statuses += [e.status for e in source.pop_events()]
    statuses += [e.status for e in source.pop_events()]
    assert statuses == ["i2c_error", "ok", "chip_reset", "ok", "frozen", "ok"]
    assert n > 0.8 * len(trace)


def test_poll_interval_is_shortened_when_the_fifo_would_overflow():
    clock, emu, drv = rig(wobbly_trace(seconds=60, rate_hz=100), rate_hz=100)
    source = LiveSource(drv, clock=clock, poll_interval_s=5.0, stop_after_s=30)
    t, _ = collect(source)
    assert source.poll_interval_s == pytest.approx(0.6 * 170 / 100)
    assert source.pop_events() == [] and emu.overflows == 0
    assert len(t) > 29 * 100


def test_close_stops_the_stream():
    clock, emu, drv = rig()
    source = LiveSource(drv, clock=clock)
    blocks = 0
    for _ in source.blocks():
        blocks += 1
        if blocks == 3:
            source.close()
    assert blocks == 3 and emu.asleep
    source.close()


@pytest.mark.parametrize("spec", ["", "fake:", "mpu6051", "FAKE:x.csv", "i2c:1"])
def test_unknown_spec_is_one_clear_line(spec):
    with pytest.raises(ConfigError) as info:
        parse_spec(spec)
    assert "unknown sensor" in str(info.value) and "\n" not in str(info.value)


def test_missing_bus_is_sensor_not_found_in_one_line():
    with pytest.raises(SensorNotFound) as info:
        open_source("mpu6050", SensorConfig(i2c_bus=19))
    msg = str(info.value)
    assert "/dev/i2c-19 does not exist" in msg and "raspi-config" in msg and "\n" not in msg


def test_speed_is_refused_for_the_real_chip():
    with pytest.raises(ConfigError, match="only applies to fake sensors"):
        open_source("mpu6050", SensorConfig(), speed=60)


def test_missing_trace_is_one_line(tmp_path):
    from sitsense.errors import TraceError

    with pytest.raises(TraceError, match="no such trace file"):
        open_source(f"fake:{tmp_path / 'nope.csv'}", SensorConfig())


def test_a_posture_script_drives_the_emulator():
    source = open_source("fake:plan:stand 10s, sit 20s", SensorConfig(), SimClock(START))
    t, a = collect(source)
    assert 29 * 25 <= len(t) <= 30 * 25 + 1
    assert np.abs(np.linalg.norm(a, axis=1) - 1).mean() < 0.05


def test_a_bad_posture_script_is_one_line():
    from sitsense.errors import PlanError

    with pytest.raises(PlanError) as info:
        open_source("fake:plan:dance 5m", SensorConfig(), SimClock(START))
    assert "\n" not in str(info.value)


def test_a_slow_start_after_opening_does_not_overflow_the_fifo(trace_file):
    """Commands open the sensor, then start the outputs; the FIFO must not overflow meanwhile."""
    path, _ = trace_file
    clock = SimClock(START)
    source = open_source(f"fake:{path}", SensorConfig(), clock, seconds=20)
    clock.sleep(30)  # e.g. a slow integrity check of the state database on an SD card
    statuses = []
    for _ in source.blocks():
        statuses += [e.status for e in source.pop_events()]
    assert "fifo_overflow" not in statuses


def test_a_stall_longer_than_the_fifo_overflows_it_once(trace_file):
    path, _ = trace_file
    source = open_source(f"fake:{path}", SensorConfig(), SimClock(START), stalls=[(40, 10)])
    statuses = []
    for _ in source.blocks():
        statuses += [e.status for e in source.pop_events()]
    assert statuses == ["fifo_overflow", "ok"] and source.emulator.stalled_s == 10


def test_an_epoch_joins_the_trace_where_it_is_now(trace_file):
    import time

    path, trace = trace_file
    source = open_source(f"fake:{path}", SensorConfig(), speed=100, epoch=time.monotonic() - 0.5, seconds=5)
    t, _ = collect(source)
    assert 45 <= t[0] <= 55  # half a real second at 100x: 50 s into the trace
    assert source.clock.wall_at(t[0]).isoformat().startswith("2026-03-02T09:00:5")


def test_parse_faults():
    from sitsense.sensor.faults import parse_faults

    opts = parse_faults("nack=0.01, disconnect=2h+5m, disconnect=100+50, reset=5h, stall=3h+20s, frozen=60+1m")
    assert opts["nack_probability"] == 0.01 and opts["disconnects"] == [(7200, 7500), (100, 150)]
    assert opts["resets_at"] == [18000] and opts["stalls"] == [(10800, 20)] and opts["frozen"] == [(60, 120)]
    for bad in ("nack=2", "disconnect=100", "boom=1", "reset=soon", "stall=10+0"):
        with pytest.raises(ConfigError):
            parse_faults(bad)


@pytest.mark.parametrize("bad", ["stall=10+inf", "stall=inf+10", "disconnect=nan+5", "reset=nan", "reset=-5",
                                 "frozen=-10+20", "disconnect=10+-5", "nack=nan", "reset=1e400"])
def test_fault_times_must_be_finite_and_not_negative(bad):
    """Each was a traceback (inf) or silently accepted (nan, negative) before: now one line naming the item."""
    from sitsense.sensor.faults import parse_faults

    with pytest.raises(ConfigError) as exc:
        parse_faults(bad)
    assert repr(bad) in str(exc.value) and "\n" not in str(exc.value)


def test_an_infinite_stall_on_the_command_line_is_one_line(tmp_path, capsys):
    from sitsense.cli import main

    code = main(["run", "--sensor", "fake:plan:stand 1m", "--speed", "0", "--no-state", "--faults", "stall=10+inf"])
    err = capsys.readouterr().err
    assert code == ConfigError.exit_code and "stall=10+inf" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_the_real_sensor_keeps_the_wearers_time_zone():
    """tracker.timezone sets days and active hours on the chip too, not only on fake sensors."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo("America/New_York")
    source = open_source("mpu6050", SensorConfig(i2c_bus=19), connect=False, tz=zone)
    wall = source.clock.wall()
    assert wall.utcoffset() == wall.astimezone(zone).utcoffset() and wall.tzinfo is zone
