"""The driver against the emulator: datasheet configuration, exact read-back, timing, and faults."""

from __future__ import annotations

import errno
import logging

import numpy as np
import pytest

from sitsense.errors import ConfigError, SensorNotFound
from sitsense.sensor.faults import BusFault
from sitsense.sensor.mpu6050 import (MPU6050, AccelRange, Bit, Dlpf, Reg, counts_to_g,
                                     rate_settings)
from tests.sensor_fakes import LSB_2G, fifo_tick_times, matched_indices, poll, rig, trace_index, wobbly_trace


# ---------------------------------------------------------------- conversions and settings

@pytest.mark.parametrize("raw, range_g, expected", [
    (b"\x40\x00\x00\x00\xc0\x00", 2, (1.0, 0.0, -1.0)),
    (b"\x7f\xff\x80\x00\x00\x01", 2, (32767 / 16384, -2.0, 1 / 16384)),
    (b"\x20\x00\xe0\x00\x10\x00", 4, (1.0, -1.0, 0.5)),
    (b"\x10\x00\x08\x00\xff\xff", 8, (1.0, 0.5, -1 / 4096)),
    (b"\x08\x00\x80\x00\x7f\xff", 16, (1.0, -16.0, 32767 / 2048)),
])
def test_counts_to_g_known_vectors(raw, range_g, expected):
    got = counts_to_g(raw, AccelRange.from_g(range_g).lsb_per_g)
    assert got.shape == (1, 3)
    np.testing.assert_allclose(got[0], expected, rtol=0, atol=1e-12)


def test_ranges_carry_their_scale():
    assert [(r.full_scale_g, r.afs_sel, r.lsb_per_g) for r in AccelRange] == \
        [(2, 0, 16384.0), (4, 1, 8192.0), (8, 2, 4096.0), (16, 3, 2048.0)]


@pytest.mark.parametrize("rate, div, dlpf", [(10, 99, Dlpf.BW_5), (25, 39, Dlpf.BW_10), (50, 19, Dlpf.BW_21),
                                             (100, 9, Dlpf.BW_44)])
def test_rate_settings_for_common_rates(rate, div, dlpf):
    assert rate_settings(rate) == (div, dlpf, float(rate))


def test_every_rate_from_10_to_100_is_close_and_low_passed_below_nyquist():
    for rate in range(10, 101):
        div, dlpf, actual = rate_settings(rate)
        assert 0 <= div <= 255
        assert abs(actual / rate - 1) < 0.05, rate
        assert dlpf.bandwidth_hz <= actual / 2, rate


@pytest.mark.parametrize("kwargs, words", [({"sample_rate_hz": 200}, "sample_rate_hz = 200: out of range"),
                                           ({"sample_rate_hz": 5}, "10..100 Hz"),
                                           ({"range_g": 3}, "range_g = 3"),
                                           ({"address": 0x50}, "0x68 (AD0 low)")])
def test_bad_settings_are_one_clear_line(kwargs, words):
    with pytest.raises(ConfigError) as info:
        MPU6050(bus=object(), **kwargs)
    assert words in str(info.value) and "\n" not in str(info.value)


def test_constructor_never_touches_the_bus():
    class Exploding:
        def __getattr__(self, name):
            raise AssertionError(f"bus used in constructor: {name}")

    MPU6050(bus=Exploding())


# ---------------------------------------------------------------- configuration

def test_configuration_writes_what_the_datasheet_asks():
    clock, emu, drv = rig()
    chip = drv.open()
    assert chip.name == "MPU-6050" and chip.genuine
    w = [(reg, value) for _, reg, value in emu.writes]
    assert w[0] == (Reg.PWR_MGMT_1, Bit.DEVICE_RESET)
    # woken (SLEEP cleared), internal oscillator, temperature sensor off
    assert emu.writes_to(Reg.PWR_MGMT_1)[-1] == 0x08
    assert emu.writes_to(Reg.PWR_MGMT_2) == [0x07]  # all three gyro axes in standby
    assert emu.writes_to(Reg.CONFIG) == [5]  # DLPF 10 Hz for 25 Hz sampling
    assert emu.writes_to(Reg.SMPLRT_DIV) == [39]  # 1 kHz / (1 + 39) = 25 Hz
    assert emu.writes_to(Reg.ACCEL_CONFIG) == [0x00]  # +-2 g
    assert emu.writes_to(Reg.INT_ENABLE) == [0x10]  # FIFO overflow flag
    # the FIFO the kernel's way: stop filling it, reset it only while USER_CTRL.FIFO_EN is 0, enable
    fifo = [(reg, value) for reg, value in w if reg in (Reg.FIFO_EN, Reg.USER_CTRL)]
    assert fifo == [(Reg.FIFO_EN, 0), (Reg.USER_CTRL, 0), (Reg.USER_CTRL, Bit.FIFO_RESET),
                    (Reg.USER_CTRL, Bit.USER_FIFO_EN), (Reg.FIFO_EN, Bit.ACCEL_FIFO_EN)]
    assert len(emu.fifo_resets) == 1
    assert Reg.ACCEL_CONFIG2 not in [r for r, _ in w]  # reserved on a genuine MPU-6050
    assert not emu.asleep and emu.sample_rate_hz == 25.0 and emu.fifo_frame_bytes == 6


def test_configuration_for_other_rate_and_range():
    clock, emu, _ = rig()
    drv = MPU6050(bus=emu, clock=clock, sample_rate_hz=50, range_g=8)
    drv.open()
    assert emu.writes_to(Reg.SMPLRT_DIV) == [19] and emu.writes_to(Reg.CONFIG) == [4]
    assert emu.writes_to(Reg.ACCEL_CONFIG) == [0x10]
    assert emu.range_g == 8


def test_powered_on_chip_is_asleep_until_configured():
    clock, emu, drv = rig()
    clock.sleep(2.0)
    assert emu.asleep and emu.read_byte_data(0x68, Reg.PWR_MGMT_1) == 0x40
    assert emu.read_i2c_block_data(0x68, Reg.ACCEL_XOUT_H, 6) == [0] * 6


@pytest.mark.parametrize("who, name, fifo, config2", [
    (0x70, "MPU-6500", 512, Dlpf.BW_10.cfg), (0x71, "MPU-9250", 512, Dlpf.BW_10.cfg),
    (0x72, "unknown clone", 512, Dlpf.BW_10.cfg), (0x73, "MPU-9255", 512, Dlpf.BW_10.cfg),
    (0x74, "MPU-6515", 512, Dlpf.BW_10.cfg), (0x78, "MPU-6880", 4096, Dlpf.BW_10.cfg),
    (0x98, "ICM-20689", 4096, 0xC0 | Dlpf.BW_10.cfg)])  # FIFO_SIZE = 3: 4 KB, as the kernel sets it
def test_siblings_and_clones_are_accepted_with_a_warning(who, name, fifo, config2, caplog):
    clock, emu, drv = rig(who_am_i=who)
    with caplog.at_level(logging.WARNING):
        chip = drv.open()
    assert not chip.genuine and chip.name == name and chip.fifo_bytes == fifo
    assert any(f"{who:#04x}" in r.getMessage() and name in r.getMessage() for r in caplog.records)
    assert emu.writes_to(Reg.ACCEL_CONFIG2)[-1] == config2
    assert emu.fifo_size >= drv.fifo_bytes  # the emulator's own datasheet figure
    t, a, events = poll(clock, drv, 3)
    assert len(t) >= 70 and events == []


def test_unknown_chip_is_sensor_not_found_naming_bus_address_and_value():
    clock, emu, drv = rig(who_am_i=0x12)
    with pytest.raises(SensorNotFound) as info:
        drv.open()
    msg = str(info.value)
    assert "0x12" in msg and "0x68 on /dev/i2c-1" in msg and "\n" not in msg


def test_nothing_at_the_address_is_sensor_not_found():
    clock, emu, drv = rig(address=0x69)
    with pytest.raises(SensorNotFound, match=r"no device answered at 0x68 on /dev/i2c-1.*sitsense doctor"):
        drv.open()


# ---------------------------------------------------------------- reading

@pytest.mark.parametrize("rate", [10, 25, 50, 100])
def test_trace_read_back_within_one_lsb_with_correct_timestamps(rate):
    trace = wobbly_trace(seconds=60, rate_hz=rate)
    clock, emu, drv = rig(trace, rate_hz=rate)
    drv.open()
    every = min(1.0, 0.6 * drv.fifo_capacity_s)
    t, a, events = poll(clock, drv, 62, every_s=every)
    assert [e for e in events if e.t < emu._origin_s + trace.t_s[-1] + 3] == []  # then the trace is over
    idx = matched_indices(trace, a)  # each within one LSB of a trace sample: quantisation only
    # nothing lost, nothing invented: every sample from the one after the FIFO started (the chip
    # ran during its start-up) to the last one the trace has
    assert (np.diff(idx) == 1).all() and idx[0] <= 0.05 * rate + 1 and idx[-1] >= len(trace) - 2
    true_t = emu._origin_s + trace.t_s[idx]  # when the chip took each sample, within a period
    sampling = true_t < true_t[-1] - every  # the last poll finds a chip that stopped: no real chip does
    assert np.abs(t - true_t)[sampling].max() <= 1.0 / rate
    assert (np.diff(t) > 0).all()


def test_bursts_over_32_bytes_use_i2c_rdwr_and_short_ones_block_reads():
    clock, emu, drv = rig()
    calls = {"rdwr": 0, "block": 0}
    real_rdwr, real_block = emu.i2c_rdwr, emu.read_i2c_block_data

    def rdwr(*msgs):
        calls["rdwr"] += 1
        return real_rdwr(*msgs)

    def block(addr, reg, length, force=None):
        if reg == Reg.FIFO_R_W:
            calls["block"] += 1
        return real_block(addr, reg, length)

    emu.i2c_rdwr, emu.read_i2c_block_data = rdwr, block
    drv.open()
    poll(clock, drv, 5, every_s=1.0)  # 25 frames = 150 bytes per read
    assert calls == {"rdwr": 5, "block": 0}
    poll(clock, drv, 1, every_s=0.1)  # 2 or 3 frames = 12 or 18 bytes per read
    assert calls == {"rdwr": 5, "block": 10}


@pytest.mark.parametrize("clock_error", [0.02, -0.03])
def test_timestamps_follow_a_chip_whose_clock_runs_fast_or_slow(clock_error):
    trace = wobbly_trace(seconds=900)
    clock, emu, drv = rig(trace, clock_error=clock_error)
    drv.open()
    t, a, events = poll(clock, drv, 600)
    assert events == []
    true_t = fifo_tick_times(emu, len(t))
    late = t > t[0] + 120  # after the loop has locked
    assert np.abs(t - true_t)[late].max() < 1.5 * emu.period_s
    assert abs(drv._timing.period_s / emu.period_s - 1) < 0.002
    naive = t[0] + np.arange(len(t)) / 25.0  # what counting at the nominal rate would give
    assert np.abs(naive - true_t)[late].max() > 5.0


# ---------------------------------------------------------------- faults

def _matches_trace(emu, drv, trace, t, a):
    """Every sample is a trace sample taken within a period of its timestamp (a misaligned frame
    would be garbage), and time only moves forward."""
    idx = trace_index(emu, drv, t)
    err = np.full(len(t), np.inf)
    for shift in (-1, 0, 1):
        k = np.clip(idx + shift, 0, len(trace) - 1)
        err = np.minimum(err, np.abs(a - trace.accel_g[k]).max(axis=1))
    assert err.max() <= LSB_2G, "a sample is misaligned or from the wrong time"
    assert (np.diff(t) > 0).all()


def test_overflow_resets_the_fifo_counts_lost_samples_and_recovers():
    trace = wobbly_trace(seconds=120)
    clock, emu, drv = rig(trace)
    drv.open()
    t1, a1, _ = poll(clock, drv, 10)
    clock.sleep(10.0)  # a stalled host: 250 frames do not fit in 1024 bytes
    t_gap, _ = drv.read()
    assert len(t_gap) == 0 and emu.overflows > 0
    assert drv.status == "fifo_overflow"
    assert [e.status for e in drv.pop_events()] == ["fifo_overflow"]
    t2, a2, events = poll(clock, drv, 10)
    assert [e.status for e in events] == ["ok"] and "fifo_overflow" in events[0].detail
    assert 240 <= events[0].lost_samples <= 260  # ten seconds at 25 Hz
    assert drv.status == "ok"
    _matches_trace(emu, drv, trace, np.concatenate([t1, t2]), np.concatenate([a1, a2]))


def test_overflow_event_is_raised_when_it_happens():
    clock, emu, drv = rig()
    drv.open()
    clock.sleep(10.0)
    drv.read()
    [ev] = drv.pop_events()
    assert ev.status == "fifo_overflow" and "1024" in ev.detail


def test_random_nacks_never_crash_and_never_misalign(caplog):
    trace = wobbly_trace(seconds=400)
    clock, emu, drv = rig(trace, seed=7)
    drv.open()
    emu.nack_probability = 0.25
    with caplog.at_level(logging.WARNING):
        t, a, events = poll(clock, drv, 300)
    assert emu.nacks > 100
    assert len(t) > 0.97 * 300 * 25  # the FIFO keeps filling while the driver backs off
    _matches_trace(emu, drv, trace, t, a)
    starts = [e for e in events if e.status == "i2c_error"]
    oks = [e for e in events if e.status == "ok"]
    assert len(starts) >= 1 and len(oks) == len(starts)  # every episode closed
    warnings = [r for r in caplog.records if "i2c_error at" in r.getMessage()]
    assert len(warnings) == len(starts)  # logged once per episode


def test_disconnect_is_one_episode_then_reinit(caplog):
    trace = wobbly_trace(seconds=120)
    clock, emu, drv = rig(trace, disconnects=[(20.0, 50.0)])
    drv.open()
    with caplog.at_level(logging.WARNING):
        t, a, events = poll(clock, drv, 100)
    assert [e.status for e in events] == ["i2c_error", "ok"]
    err, ok = events
    assert 20 <= err.t <= 22 and 50 <= ok.t <= 50 + drv.BACKOFF_MAX_S + 2
    assert 30 * 25 <= ok.lost_samples <= (30 + drv.BACKOFF_MAX_S + 2) * 25
    assert len([r for r in caplog.records if "i2c_error at" in r.getMessage()]) == 1
    assert emu.resets == 1 and not emu.asleep  # it lost power and was set up again
    _matches_trace(emu, drv, trace, t, a)
    assert t[-1] > 95


def test_spontaneous_reset_is_woken_and_reconfigured():
    trace = wobbly_trace(seconds=120)
    clock, emu, drv = rig(trace, resets_at=[30.5])
    drv.open()
    t, a, events = poll(clock, drv, 60)
    assert [e.status for e in events] == ["chip_reset", "ok"]
    assert "PWR_MGMT_1=0x40" in events[0].detail
    assert events[0].t - 30.5 <= drv.NO_DATA_S + 1.0
    assert 60 <= events[1].lost_samples <= 120
    _matches_trace(emu, drv, trace, t, a)
    assert t[-1] > 55


def test_frozen_output_is_flagged_and_cleared():
    trace = wobbly_trace(seconds=120)
    clock, emu, drv = rig(trace, frozen=[(10.0, 30.0)])
    drv.open()
    t, a, events = poll(clock, drv, 60)
    assert [e.status for e in events] == ["frozen", "ok"]
    assert 15 <= events[0].t <= 17 and 30 <= events[1].t <= 32
    assert len(t) == round((t[-1] - t[0]) * 25) + 1  # frozen data still flows, flagged
    frozen_part = a[(t > 11) & (t < 29)]
    assert (frozen_part == frozen_part[0]).all()


def test_a_chip_returning_zeros_is_reconfigured():
    clock, emu, drv = rig()
    drv.open()
    poll(clock, drv, 5)
    emu.regs[Reg.PWR_MGMT_2] |= Bit.STBY_XA | Bit.STBY_YA | Bit.STBY_ZA  # accelerometer off: zeros
    t, a, events = poll(clock, drv, 5)
    assert a.any(axis=1).all()  # no zero samples delivered
    assert [e.status for e in events] == ["no_data", "ok"]


def test_close_is_idempotent_and_puts_the_chip_to_sleep():
    clock, emu, drv = rig()
    drv.open()
    drv.close()
    drv.close()
    assert emu.asleep and drv.status == "closed"


def test_a_fifo_read_that_breaks_off_after_two_bytes_never_delivers_shifted_samples():
    """Issue 16 item 1: two bytes leave the FIFO, then EIO on a 30-byte read. A driver that repeats
    the read starts mid-frame (samples off by about 0.8 g, no event); the FIFO must be reset
    instead and the loss reported."""
    trace = wobbly_trace(seconds=30)
    clock, emu, drv = rig(trace)
    drv.open()
    t0, a0, _ = poll(clock, drv, 1, every_s=0.2)
    emu.arm(BusFault("abort", after_bytes=2, code=errno.EIO), register=Reg.FIFO_R_W)
    t1, a1, events = poll(clock, drv, 10, every_s=0.2)  # 5 frames = 30 bytes per read
    assert emu.aborts == 1 and len(t1) >= 30
    _matches_trace(emu, drv, trace, np.concatenate([t0, t1]), np.concatenate([a0, a1]))
    assert [e.status for e in events] == ["i2c_error", "ok"] and events[1].lost_samples >= 5


def test_failed_fifo_read_with_unknown_progress_resets_the_fifo():
    trace = wobbly_trace(seconds=200)
    clock, emu, drv = rig(trace, seed=3)
    drv.open()
    emu.abort_probability = 0.3  # transfers break off with EIO after a random number of bytes
    t, a, events = poll(clock, drv, 150)
    assert any(e.status == "ok" and e.lost_samples > 0 for e in events)  # the FIFO was reset at least once
    _matches_trace(emu, drv, trace, t, a)


def test_a_long_outage_without_power_loss_resumes_and_counts_what_overflowed():
    trace = wobbly_trace(seconds=120)
    clock, emu, drv = rig(trace, disconnects=[(20.0, 40.0)], disconnect_resets=False)
    drv.open()
    t, a, events = poll(clock, drv, 80)
    assert [e.status for e in events] == ["i2c_error", "fifo_overflow", "ok"]
    assert 19 * 25 <= events[-1].lost_samples <= (20 + drv.BACKOFF_MAX_S) * 25
    assert emu.resets == 0
    _matches_trace(emu, drv, trace, t, a)


# ---------------------------------------------------------------- issue 16: the real chip's edges

def test_a_fifo_within_three_frames_of_full_is_reset_like_the_kernel():
    clock, emu, drv = rig()
    drv.open()
    clock.sleep(6.75)  # 168 frames = 1008 bytes: not full, but within 3 frames (18 bytes) of 1024
    t, _ = drv.read()
    assert len(t) == 0 and emu.overflows == 0 and len(emu.fifo_resets) == 2
    assert [e.status for e in drv.pop_events()] == ["fifo_overflow"]


def test_a_count_that_is_not_whole_frames_resets_the_fifo():
    trace = wobbly_trace(seconds=30)
    clock, emu, drv = rig(trace)
    drv.open()
    t0, a0, _ = poll(clock, drv, 2)
    del emu.fifo[:2]  # two bytes went missing behind the driver's back
    t1, a1, events = poll(clock, drv, 3)
    assert [e.status for e in events] == ["fifo_overflow", "ok"] and "whole 6-byte frames" in events[0].detail
    _matches_trace(emu, drv, trace, np.concatenate([t0, t1]), np.concatenate([a0, a1]))


def test_an_overflow_while_the_host_stalls_between_count_and_burst_drops_the_block():
    trace = wobbly_trace(seconds=60)
    clock, emu, drv = rig(trace)
    drv.open()
    t0, a0, _ = poll(clock, drv, 2)
    emu.arm(BusFault("stall", 0, stall_s=6.0), register=Reg.FIFO_R_W)  # the count said ~25 frames
    t1, a1, events = poll(clock, drv, 3)
    assert emu.overflows >= 1 and [e.status for e in events] == ["fifo_overflow", "ok"]
    assert "while it was read" not in events[0].detail and "discarded" in events[0].detail
    _matches_trace(emu, drv, trace, np.concatenate([t0, t1]), np.concatenate([a0, a1]))
    assert events[1].lost_samples >= 6 * 25


@pytest.mark.parametrize("chip", ["MPU-6050", "ICM-20689"])
def test_a_brownout_between_count_and_burst_delivers_no_padding(chip):
    trace = wobbly_trace(seconds=60)
    clock, emu, drv = rig(trace, chip=chip)
    drv.open()
    t0, a0, _ = poll(clock, drv, 2)
    emu.arm(BusFault("brownout"), register=Reg.FIFO_R_W)  # the burst reads an empty, reset FIFO
    t1, a1, events = poll(clock, drv, 6)
    assert emu.resets == 1 and [e.status for e in events] == ["chip_reset", "ok"]
    _matches_trace(emu, drv, trace, np.concatenate([t0, t1]), np.concatenate([a0, a1]))


def test_a_write_that_does_not_stick_is_written_again_and_the_fifo_waits_for_the_accelerometer():
    clock, emu, drv = rig(faults={5: BusFault("drop_write")})  # PWR_MGMT_2 in the first attempt
    drv.open()
    assert emu.writes_ignored >= 1 and emu.writes_to(Reg.PWR_MGMT_2) == [0x07, 0x07]
    woke = [t for t, reg, value in emu.writes if reg == Reg.PWR_MGMT_1 and value == 0x08][-1]
    fifo_on = [t for t, reg, value in emu.writes if reg == Reg.FIFO_EN and value][-1]
    assert fifo_on - woke >= 0.020  # the MPU-6050's accelerometer start-up
    t, a, events = poll(clock, drv, 3)
    assert events == [] and a.any(axis=1).all()


def test_a_chip_that_never_keeps_a_setting_fails_open_with_one_clear_line():
    from sitsense.errors import SensorError

    # PWR_MGMT_2 in each attempt: 8 writes and 2 read-backs per attempt after WHO_AM_I
    clock, emu, drv = rig(faults={n: BusFault("drop_write") for n in (5, 15, 25)})
    with pytest.raises(SensorError) as info:
        drv.open()
    assert "PWR_MGMT_2" in str(info.value) and "3 times" in str(info.value) and "\n" not in str(info.value)
