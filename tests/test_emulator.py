"""The emulator behaves like the chip at register level (what the driver relies on)."""

from __future__ import annotations

import errno

import numpy as np
import pytest
from smbus2 import i2c_msg

from sitsense.clock import SimClock
from sitsense.sensor.emulator import MPU6050Emulator
from sitsense.sensor.mpu6050 import Bit, Reg
from sitsense.traces import Trace
from tests.sensor_fakes import START, wobbly_trace

A = 0x68


def constant(accel_g, seconds=100.0, rate_hz=25.0) -> Trace:
    n = int(seconds * rate_hz)
    return Trace(np.arange(n) / rate_hz, np.tile(np.asarray(accel_g, float), (n, 1)))


def running(emu, div=39, dlpf=5, fifo=True, afs=0):
    """Minimal bring-up by hand: wake, rate, range, FIFO of accelerometer frames."""
    emu.write_byte_data(A, Reg.PWR_MGMT_1, 0x00)
    emu.write_byte_data(A, Reg.CONFIG, dlpf)
    emu.write_byte_data(A, Reg.SMPLRT_DIV, div)
    emu.write_byte_data(A, Reg.ACCEL_CONFIG, afs << 3)
    if fifo:
        emu.write_byte_data(A, Reg.FIFO_EN, Bit.ACCEL_FIFO_EN)
        emu.write_byte_data(A, Reg.USER_CTRL, Bit.USER_FIFO_EN)
    return emu


def count(emu) -> int:
    hi, lo = emu.read_i2c_block_data(A, Reg.FIFO_COUNTH, 2)
    return hi << 8 | lo


@pytest.fixture
def clock():
    return SimClock(START)


def test_power_on_state_is_asleep_with_zero_data(clock):
    emu = MPU6050Emulator(clock=clock, trace=constant([0, 0, 1]))
    clock.sleep(5)
    assert emu.read_byte_data(A, Reg.PWR_MGMT_1) == 0x40
    assert emu.read_byte_data(A, Reg.WHO_AM_I) == 0x68
    assert emu.read_i2c_block_data(A, Reg.ACCEL_XOUT_H, 6) == [0] * 6
    assert count(emu) == 0 and emu.samples_taken == 0


@pytest.mark.parametrize("who", [0x68, 0x70, 0x98])
def test_who_am_i_is_settable(clock, who):
    assert MPU6050Emulator(clock=clock, who_am_i=who).read_byte_data(A, Reg.WHO_AM_I) == who


@pytest.mark.parametrize("div, dlpf, rate", [(39, 5, 25.0), (19, 4, 50.0), (9, 3, 100.0), (99, 6, 10.0),
                                             (199, 0, 40.0)])
def test_sample_rate_follows_smplrt_div_and_config(clock, div, dlpf, rate):
    emu = running(MPU6050Emulator(clock=clock, trace=constant([0, 0, 1])), div=div, dlpf=dlpf)
    assert emu.sample_rate_hz == rate
    clock.sleep(1.0)
    assert count(emu) == 6 * int(rate) or count(emu) == 1024  # 1 s of frames (capped by the FIFO)


def test_fifo_fills_only_when_enabled(clock):
    emu = running(MPU6050Emulator(clock=clock, trace=constant([0, 0, 1])), fifo=False)
    clock.sleep(1.0)
    assert count(emu) == 0
    assert emu.read_i2c_block_data(A, Reg.ACCEL_XOUT_H + 4, 2) == [0x40, 0x00]  # Z = 1 g = 16384


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


def test_overflow_keeps_the_newest_1024_bytes_and_sets_int_status(clock):
    t = np.arange(2500) / 25.0
    ramp = Trace(t, np.column_stack([np.arange(2500) / 16384, np.zeros(2500), np.ones(2500)]))
    emu = running(MPU6050Emulator(clock=clock, trace=ramp))
    clock.sleep(20.0)  # 500 frames = 3000 bytes into a 1024-byte FIFO
    assert count(emu) == 1024
    status = emu.read_byte_data(A, Reg.INT_STATUS)
    assert status & Bit.FIFO_OFLOW
    assert not emu.read_byte_data(A, Reg.INT_STATUS) & Bit.FIFO_OFLOW  # cleared by reading
    wr, rd = i2c_msg.write(A, [Reg.FIFO_R_W]), i2c_msg.read(A, 1024)
    emu.i2c_rdwr(wr, rd)
    data = bytes(rd)
    stream = np.column_stack([np.arange(500), np.zeros(500), 16384 * np.ones(500)]).astype(">i2").tobytes()
    assert data == stream[-1024:]  # frames cut mid-way at the front: 1024 is not a multiple of 6
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


def test_fifo_reset(clock):
    emu = running(MPU6050Emulator(clock=clock, trace=constant([0, 0, 1])))
    clock.sleep(1.0)
    emu.write_byte_data(A, Reg.USER_CTRL, 0)
    emu.write_byte_data(A, Reg.USER_CTRL, Bit.FIFO_RESET)
    assert count(emu) == 0 and emu.read_byte_data(A, Reg.USER_CTRL) == 0  # the reset bit clears itself


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
    clock.sleep(4.0)
    assert count(emu) == 600
    clock.sleep(2.0)
    assert emu.read_byte_data(A, Reg.PWR_MGMT_1) == 0x40 and count(emu) == 0


def test_frozen_output_repeats_the_last_sample(clock):
    emu = running(MPU6050Emulator(clock=clock, trace=wobbly_trace(), frozen=[(2.0, 4.0)]))
    clock.sleep(5.0)
    wr, rd = i2c_msg.write(A, [Reg.FIFO_R_W]), i2c_msg.read(A, count(emu))
    emu.i2c_rdwr(wr, rd)
    frames = np.frombuffer(bytes(rd), ">i2").reshape(-1, 3)
    assert len(frames) == 125
    inside = frames[50:99]  # samples 50..98 were taken in [2, 4) s
    assert (inside == frames[49]).all() and (frames[99] != frames[49]).any()


def test_trace_ends_and_the_emulator_says_so(clock):
    emu = running(MPU6050Emulator(clock=clock, trace=constant([0, 0, 1], seconds=4)))
    clock.sleep(10)
    assert count(emu) == 600 and not emu.exhausted
    emu.read_i2c_block_data(A, Reg.FIFO_R_W, 32)
    emu.i2c_rdwr(i2c_msg.write(A, [Reg.FIFO_R_W]), i2c_msg.read(A, 568))
    assert emu.exhausted


def test_close(clock):
    emu = MPU6050Emulator(clock=clock)
    emu.close()
    with pytest.raises(OSError):
        emu.read_byte_data(A, Reg.WHO_AM_I)
