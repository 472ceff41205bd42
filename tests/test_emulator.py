"""The emulator behaves like the chips at register level, from their datasheets (not from the driver)."""

from __future__ import annotations

import ast
import errno
import inspect

import numpy as np
import pytest
from smbus2 import i2c_msg

from sitsense.clock import SimClock
from sitsense.sensor import emulated_chips, emulator
from sitsense.sensor.emulator import MPU6050Emulator
from sitsense.sensor.faults import BusFault
from sitsense.sensor.mpu6050 import KNOWN_CHIPS, Bit, Reg
from sitsense.traces import Trace
from tests.sensor_fakes import START, fifo_tick_times, wobbly_trace

A = 0x68


def constant(accel_g, seconds=100.0, rate_hz=25.0) -> Trace:
    n = int(seconds * rate_hz)
    return Trace(np.arange(n) / rate_hz, np.tile(np.asarray(accel_g, float), (n, 1)))


def ramp(n=2500, rate_hz=25.0) -> Trace:
    """X counts 0, 1, 2, ... at +-2 g: every frame tells which sample it is."""
    return Trace(np.arange(n) / rate_hz, np.column_stack([np.arange(n) / 16384, np.zeros(n), np.ones(n)]))


def running(emu, div=39, dlpf=5, fifo=True, afs=0, config2=None):
    """Minimal bring-up by hand once registers take writes: wake, rate, range, FIFO of accelerometer frames."""
    emu.clock.sleep(0.1)  # registers ignore writes for up to 100 ms after power-on
    emu.write_byte_data(A, Reg.PWR_MGMT_1, 0x00)
    emu.write_byte_data(A, Reg.CONFIG, dlpf)
    emu.write_byte_data(A, Reg.SMPLRT_DIV, div)
    emu.write_byte_data(A, Reg.ACCEL_CONFIG, afs << 3)
    if config2 is not None:
        emu.write_byte_data(A, Reg.ACCEL_CONFIG2, config2)
    if fifo:
        emu.write_byte_data(A, Reg.USER_CTRL, Bit.USER_FIFO_EN)
        emu.write_byte_data(A, Reg.FIFO_EN, Bit.ACCEL_FIFO_EN)
    return emu


def count(emu) -> int:
    hi, lo = emu.read_i2c_block_data(A, Reg.FIFO_COUNTH, 2)
    return hi << 8 | lo


def read_fifo(emu, n) -> bytes:
    wr, rd = i2c_msg.write(A, [Reg.FIFO_R_W]), i2c_msg.read(A, n)
    emu.i2c_rdwr(wr, rd)
    return bytes(rd)


@pytest.fixture
def clock():
    return SimClock(START)


# ---------------------------------------------------------------- its own chip descriptions

def test_the_emulator_does_not_borrow_the_drivers_tables():
    for module in (emulator, emulated_chips):
        tree = ast.parse(inspect.getsource(module))
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert not any(m and m.endswith("mpu6050") for m in imported), module.__name__


def test_every_chip_the_driver_accepts_has_an_independent_description_that_agrees():
    for who, chip in KNOWN_CHIPS.items():
        model = emulated_chips.BY_WHO_AM_I[who]
        largest = model.fifo_size(0xC0) if model.fifo_size_field else model.fifo_bytes
        assert chip.fifo_bytes <= largest, chip.name  # the driver never assumes more FIFO than there is
        if chip.known:
            assert chip.fifo_bytes == largest, chip.name
        assert chip.accel_startup_s >= model.accel_startup_s, chip.name


def test_power_on_state_is_asleep_with_zero_data(clock):
    emu = MPU6050Emulator(clock=clock, trace=constant([0, 0, 1]))
    clock.sleep(5)
    assert emu.read_byte_data(A, Reg.PWR_MGMT_1) == 0x40
    assert emu.read_byte_data(A, Reg.WHO_AM_I) == 0x68
    assert emu.read_i2c_block_data(A, Reg.ACCEL_XOUT_H, 6) == [0] * 6
    assert count(emu) == 0 and emu.samples_taken == 0


@pytest.mark.parametrize("chip, who, pwr", [("MPU-6050", 0x68, 0x40), ("MPU-6500", 0x70, 0x01),
                                            ("MPU-9250", 0x71, 0x01), ("ICM-20689", 0x98, 0x41)])
def test_each_part_answers_its_who_am_i_and_reset_value(clock, chip, who, pwr):
    emu = MPU6050Emulator(clock=clock, chip=chip)
    assert emu.read_byte_data(A, Reg.WHO_AM_I) == who and emu.read_byte_data(A, Reg.PWR_MGMT_1) == pwr
    assert MPU6050Emulator(clock=clock, who_am_i=who).model.name == chip


def test_writes_do_not_stick_while_the_registers_start_up(clock):
    emu = MPU6050Emulator(clock=clock)
    emu.write_byte_data(A, Reg.SMPLRT_DIV, 39)
    assert emu.read_byte_data(A, Reg.SMPLRT_DIV) == 0 and emu.writes_ignored == 1
    clock.sleep(0.1)
    emu.write_byte_data(A, Reg.SMPLRT_DIV, 39)
    assert emu.read_byte_data(A, Reg.SMPLRT_DIV) == 39
    emu.write_byte_data(A, Reg.PWR_MGMT_1, Bit.DEVICE_RESET)  # and again after DEVICE_RESET
    emu.write_byte_data(A, Reg.SMPLRT_DIV, 9)
    assert emu.read_byte_data(A, Reg.SMPLRT_DIV) == 0


@pytest.mark.parametrize("div, dlpf, rate", [(39, 5, 25.0), (19, 4, 50.0), (9, 3, 100.0), (99, 6, 10.0),
                                             (199, 0, 40.0)])
def test_sample_rate_follows_smplrt_div_and_config(clock, div, dlpf, rate):
    emu = running(MPU6050Emulator(clock=clock, trace=constant([0, 0, 1])), div=div, dlpf=dlpf)
    assert emu.sample_rate_hz == rate
    clock.sleep(1.0)
    assert count(emu) in (6 * int(rate), 1024)  # 1 s of frames (capped by the FIFO)


def test_accelerometer_reads_zero_until_it_has_started_up(clock):
    emu = running(MPU6050Emulator(clock=clock, trace=constant([0, 0, 1])), div=4)  # 200 Hz: 5 ms apart
    clock.sleep(0.1)
    frames = np.frombuffer(read_fifo(emu, count(emu)), ">i2").reshape(-1, 3)
    woke = emu.writes[-6][0]  # the PWR_MGMT_1 write
    assert woke == pytest.approx(0.1, abs=0.01)
    started = np.flatnonzero(frames[:, 2])[0]
    assert (frames[:started] == 0).all() and 3 <= started <= 5  # 20 ms at 200 Hz, give or take a tick
    assert (frames[started:, 2] == 16384).all()


def test_fifo_fills_only_when_enabled(clock):
    emu = running(MPU6050Emulator(clock=clock, trace=constant([0, 0, 1])), fifo=False)
    clock.sleep(1.0)
    assert count(emu) == 0
    assert emu.read_i2c_block_data(A, Reg.ACCEL_XOUT_H + 4, 2) == [0x40, 0x00]  # Z = 1 g = 16384


def test_mpu6050_fifo_needs_user_ctrl_fifo_en_but_the_6500_family_only_fifo_en(clock):
    for chip, fills in (("MPU-6050", False), ("MPU-6500", True)):
        emu = running(MPU6050Emulator(clock=SimClock(START), chip=chip, trace=constant([0, 0, 1])), fifo=False)
        emu.write_byte_data(A, Reg.FIFO_EN, Bit.ACCEL_FIFO_EN)
        emu.clock.sleep(1.0)
        assert (count(emu) > 0) == fills, chip


@pytest.mark.parametrize("afs, accel, counts", [
    (0, [0.5, -1 / 3, 1.0], [8192, -5461, 16384]),
    (1, [0.5, -1 / 3, 1.0], [4096, -2731, 8192]),
    (0, [2.5, -2.5, 0.0], [32767, -32768, 0]),  # the ADC saturates
])
def test_quantisation_to_the_range(clock, afs, accel, counts):
    emu = running(MPU6050Emulator(clock=clock, trace=constant(accel)), afs=afs)
    clock.sleep(0.2)
    raw = bytes(emu.read_i2c_block_data(A, Reg.FIFO_R_W, 6))
    assert np.frombuffer(raw, ">i2").tolist() == counts


# ---------------------------------------------------------------- the FIFO's edges

def test_overflow_keeps_the_newest_1024_bytes_and_sets_int_status_if_enabled(clock):
    emu = running(MPU6050Emulator(clock=clock, trace=ramp()))
    clock.sleep(20.0)  # 500 frames = 3000 bytes into a 1024-byte FIFO
    assert count(emu) == 1024 and not emu.read_byte_data(A, Reg.INT_STATUS) & Bit.FIFO_OFLOW  # not enabled
    emu.write_byte_data(A, Reg.INT_ENABLE, Bit.FIFO_OFLOW)
    clock.sleep(1.0)
    assert emu.read_byte_data(A, Reg.INT_STATUS) & Bit.FIFO_OFLOW
    assert not emu.read_byte_data(A, Reg.INT_STATUS) & Bit.FIFO_OFLOW  # cleared by reading
    data = read_fifo(emu, 1024)
    # frames cut mid-way at the front (1024 is not a multiple of 6): Y and Z of the oldest survivor
    # first, then 170 whole frames of consecutive samples
    assert data[:4] == bytes([0, 0, 0x40, 0])
    frames = np.frombuffer(data[4:], ">i2").reshape(-1, 3)
    assert len(frames) == 170 and (np.diff(frames[:, 0]) == 1).all() and (frames[:, 2] == 16384).all()
    assert count(emu) == 12  # the two frames taken during the 92 ms read


def test_icm20689_fifo_size_is_chosen_by_accel_config2(clock):
    emu = running(MPU6050Emulator(clock=clock, chip="ICM-20689", trace=constant([0, 0, 1])))
    clock.sleep(30.0)
    assert count(emu) == 512  # FIFO_SIZE 0 at reset
    emu.write_byte_data(A, Reg.ACCEL_CONFIG2, 0xC0 | 5)  # FIFO_SIZE 3, as the kernel writes it
    clock.sleep(30.0)
    assert emu.fifo_size == 4096 and count(emu) == 4096


@pytest.mark.parametrize("chip, pad", [("MPU-6050", 0x00), ("MPU-9250", 0x00), ("ICM-20689", 0xFF)])
def test_an_empty_fifo_reads_the_last_byte_or_0xff(clock, chip, pad):
    emu = running(MPU6050Emulator(clock=clock, chip=chip, trace=constant([0.5, 0.25, -1 / 16384])))
    clock.sleep(0.1)
    n = count(emu)
    data = read_fifo(emu, n + 4)
    last = data[n - 1]  # 0xFF: the low byte of -1 LSB
    assert data[n:] == bytes([last if chip != "ICM-20689" else pad] * 4)


def test_fifo_reset_on_the_mpu6050_only_while_user_ctrl_fifo_en_is_0(clock):
    emu = running(MPU6050Emulator(clock=clock, trace=constant([0, 0, 1])))
    clock.sleep(1.0)
    emu.write_byte_data(A, Reg.USER_CTRL, Bit.USER_FIFO_EN | Bit.FIFO_RESET)
    assert count(emu) > 0 and emu.fifo_resets == []  # ignored: the FIFO is enabled
    emu.write_byte_data(A, Reg.USER_CTRL, 0)
    emu.write_byte_data(A, Reg.USER_CTRL, Bit.FIFO_RESET)
    assert count(emu) == 0 and len(emu.fifo_resets) == 1
    assert emu.read_byte_data(A, Reg.USER_CTRL) == 0  # the reset bit clears itself


def test_fifo_reset_on_the_6500_family_acts_at_once(clock):
    emu = running(MPU6050Emulator(clock=clock, chip="MPU-6500", trace=constant([0, 0, 1])))
    clock.sleep(1.0)
    emu.write_byte_data(A, Reg.USER_CTRL, Bit.USER_FIFO_EN | Bit.FIFO_RESET)
    assert count(emu) == 0


def test_block_reads_are_smbus_sized_and_fifo_reads_do_not_advance(clock):
    emu = running(MPU6050Emulator(clock=clock, trace=constant([0, 0, 1])))
    with pytest.raises(ValueError):
        emu.read_i2c_block_data(A, Reg.FIFO_R_W, 33)
    clock.sleep(1.0)
    first = emu.read_i2c_block_data(A, Reg.FIFO_R_W, 12)
    assert first == [0, 0, 0, 0, 0x40, 0] * 2 and count(emu) == 150 - 12


def test_device_reset_restores_power_on_state(clock):
    emu = running(MPU6050Emulator(clock=clock, trace=constant([0, 0, 1])))
    clock.sleep(1.0)
    emu.write_byte_data(A, Reg.PWR_MGMT_1, Bit.DEVICE_RESET)
    assert emu.asleep and count(emu) == 0 and emu.read_byte_data(A, Reg.SMPLRT_DIV) == 0
    clock.sleep(1.0)
    assert count(emu) == 0


# ---------------------------------------------------------------- transfers take time

@pytest.mark.parametrize("bus_hz, expect_ms", [(100_000, 90.3), (400_000, 22.6)])
def test_a_long_read_takes_its_bits_time_and_samples_arrive_meanwhile(clock, bus_hz, expect_ms):
    emu = running(MPU6050Emulator(clock=clock, trace=ramp(rate_hz=100.0), bus_hz=bus_hz), div=9)  # 100 Hz
    clock.sleep(1.65)  # 165 frames: 990 bytes
    n = count(emu)
    before, t0 = emu.samples_taken, clock.monotonic()
    data = read_fifo(emu, n)
    took_s = clock.monotonic() - t0
    assert took_s * 1000 == pytest.approx((29 + 9 * n) / bus_hz * 1000, abs=0.01)
    assert abs(took_s * 1000 - expect_ms * n / 1000) < 1  # about 90 ms per 1000 bytes at 100 kHz
    arrived = emu.samples_taken - before
    assert arrived == pytest.approx(took_s * 100, abs=1)
    assert count(emu) == 6 * arrived  # what came in during the read waits in the FIFO
    frames = np.frombuffer(data, ">i2").reshape(-1, 3)
    xs = frames[frames[:, 2] != 0, 0]  # (the first frame or two are from the accelerometer's start-up)
    assert len(xs) >= n // 6 - 2 and (np.diff(xs) == 1).all()  # and the block itself is whole


def test_a_transfer_that_breaks_off_has_taken_its_bytes(clock):
    emu = running(MPU6050Emulator(clock=clock, trace=ramp()))
    clock.sleep(1.0)
    n = count(emu)
    emu.arm(BusFault("abort", after_bytes=2, code=errno.EIO), register=Reg.FIFO_R_W)
    with pytest.raises(OSError) as info:
        emu.read_i2c_block_data(A, Reg.FIFO_R_W, 30)
    assert info.value.errno == errno.EIO and count(emu) == n - 2  # now mid-frame
    assert emu.read_i2c_block_data(A, Reg.FIFO_R_W, 4) == [0, 0, 0x40, 0]  # Y and Z of frame 0


def test_a_nack_moves_nothing(clock):
    emu = running(MPU6050Emulator(clock=clock, trace=ramp(), faults={}))
    clock.sleep(1.0)
    n = count(emu)
    emu.arm(BusFault("nack"))
    with pytest.raises(OSError) as info:
        emu.read_i2c_block_data(A, Reg.FIFO_R_W, 30)
    assert info.value.errno == errno.EREMOTEIO and count(emu) == n


def test_faults_by_transaction_number_and_a_stall_inside_a_transfer(clock):
    emu = running(MPU6050Emulator(clock=clock, trace=ramp(), faults={9: BusFault("stall", 6, stall_s=0.5)}))
    clock.sleep(1.0)
    assert emu.transactions == 6
    count(emu)  # 7
    count(emu)  # 8
    t0 = clock.monotonic()
    data = read_fifo(emu, 60)  # 9: the host freezes after one frame
    assert clock.monotonic() - t0 > 0.5 and emu.stalled_s == 0.5
    assert (np.diff(np.frombuffer(data, ">i2").reshape(-1, 3)[:, 0]) == 1).all()


def test_a_dropped_write_is_acknowledged_but_does_not_stick(clock):
    emu = MPU6050Emulator(clock=clock, faults={1: BusFault("drop_write")})
    clock.sleep(0.1)
    emu.write_byte_data(A, Reg.SMPLRT_DIV, 39)
    assert emu.read_byte_data(A, Reg.SMPLRT_DIV) == 0


# ---------------------------------------------------------------- faults over time

def test_nacks_are_seeded_and_repeatable(clock):
    def pattern(seed):
        emu = MPU6050Emulator(clock=SimClock(START), nack_probability=0.3, seed=seed)
        out = []
        for _ in range(200):
            try:
                emu.read_byte_data(A, Reg.WHO_AM_I)
                out.append(0)
            except OSError as exc:
                assert exc.errno == errno.EREMOTEIO
                out.append(1)
        return out

    assert pattern(1) == pattern(1) != pattern(2)
    assert 40 <= sum(pattern(1)) <= 80


def test_wrong_address_and_disconnect_windows_do_not_answer(clock):
    emu = running(MPU6050Emulator(clock=clock, trace=constant([0, 0, 1]), disconnects=[(10, 20)]))
    with pytest.raises(OSError) as info:
        emu.read_byte_data(0x69, Reg.WHO_AM_I)
    assert info.value.errno == errno.EREMOTEIO
    clock.sleep(12)
    with pytest.raises(OSError):
        emu.read_byte_data(A, Reg.WHO_AM_I)
    clock.sleep(10)
    assert emu.read_byte_data(A, Reg.WHO_AM_I) == 0x68
    assert emu.asleep and emu.resets == 1  # the power went with the wires


def test_spontaneous_reset(clock):
    emu = running(MPU6050Emulator(clock=clock, trace=constant([0, 0, 1]), resets_at=[5.0]))
    clock.sleep(3.0)
    assert count(emu) == 6 * 75
    clock.sleep(2.0)
    assert emu.read_byte_data(A, Reg.PWR_MGMT_1) == 0x40 and count(emu) == 0


def test_frozen_output_repeats_the_last_sample(clock):
    emu = running(MPU6050Emulator(clock=clock, trace=wobbly_trace(), frozen=[(2.0, 4.0)]))
    clock.sleep(4.9)
    frames = np.frombuffer(read_fifo(emu, count(emu)), ">i2").reshape(-1, 3)
    t = fifo_tick_times(emu, len(frames))  # when each was taken
    inside = frames[(t >= 2.0) & (t < 4.0)]
    before = frames[t < 2.0][-1]
    assert len(inside) == 50 and (inside == before).all() and (frames[t >= 4.0][0] != before).any()


def test_trace_ends_and_the_emulator_says_so(clock):
    emu = running(MPU6050Emulator(clock=clock, trace=constant([0, 0, 1], seconds=4)))
    clock.sleep(10)
    n = count(emu)
    assert n >= 6 * 97 and not emu.exhausted  # the samples taken before the FIFO started are not in it
    emu.read_i2c_block_data(A, Reg.FIFO_R_W, 32)
    read_fifo(emu, n - 32)
    assert emu.exhausted


def test_close(clock):
    emu = MPU6050Emulator(clock=clock)
    emu.close()
    with pytest.raises(OSError):
        emu.read_byte_data(A, Reg.WHO_AM_I)
