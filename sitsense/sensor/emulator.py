"""A register-level MPU-6050 (or sibling) behind the smbus2 methods the driver uses, for tests and ``fake:`` sensors.

Like gpiozero's ``MockFactory`` it ships in the package, so anyone can exercise the live path
without hardware. It plays one of the parts in ``emulated_chips`` (the MPU-6050 by default; its
own transcription of the datasheets, never the driver's tables) and models what matters to a
driver: the power-on state and the 100 ms before registers take writes, WHO_AM_I, the sample
rate from SMPLRT_DIV and CONFIG on an oscillator that may be off (``clock_error``), the
accelerometer's start-up after waking, a FIFO that fills at that rate with the part's size
(fixed, or chosen by ACCEL_CONFIG2 on the ICM-20689), overflow the part's way (the MPU-6050 drops
the oldest bytes, so frames lose their alignment; INT_STATUS flags it if enabled), FIFO_RESET
only where the register map lets it act, and what an empty FIFO reads back (the last byte, or
0xFF). Gyro and temperature read as zero.

Every transfer takes the time its bits need at ``bus_hz`` (100 kHz by default, as on a Pi); the
clock advances by it and samples that fall due meanwhile enter the FIFO while it is being read.
Faults: address NACKs with a seeded probability, transfers that break after some bytes moved
(``abort_probability``, or scripted per transaction with ``faults={n: BusFault(...)}`` and
``arm()``), host stalls before or inside a transfer, writes that do not stick, disconnect
windows (with power loss unless ``disconnect_resets=False``), spontaneous resets (brown-outs)
and frozen output.

What it plays is a trace (sample-and-hold at the chip's rate, starting with the first sample that
enters the FIFO, so a driver that starts at once reads all of it) or any function of time. Times given for faults are seconds after the emulator was made.
With ``origin_s`` the trace and the fault times are instead anchored at that clock time, so an
emulator made later (a restarted service) joins the same simulated day where it is now.
A stall (``stalls``) holds one bus transaction for a while, as a host that froze mid-read:
the FIFO keeps filling meanwhile and overflows if the stall is longer than it holds. The faults'
vocabulary and the ``--faults`` syntax are in ``faults``.

One module on purpose, though long: the registers, the sampling into the FIFO and the timed bus
transfers are one chip's state read against one datasheet, and a FIFO read interleaves its bytes
with the samples falling due meanwhile, so none of them can change without the others.
"""

from __future__ import annotations

import ctypes
import errno
import heapq
import math
import os
import random
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

from ..traces import Trace
from .playback import TracePlayer
from . import emulated_chips as R
from .emulated_chips import ChipModel, model_for
from .faults import BusFault

Signal = Callable[[np.ndarray], np.ndarray]  # seconds since the first sample -> (n, 3) g

SMBUS_BLOCK_MAX = 32  # smbus2's limit for one block transfer
I2C_M_RD = 0x0001
BITS_PER_BYTE = 9  # eight data bits and the acknowledge
HEADER_BITS = 29  # START, address, register, repeated START, address again: before the first data byte
GYRO_RATE_HZ, GYRO_RATE_NO_DLPF_HZ = 1000.0, 8000.0  # "Sample Rate = Gyroscope Output Rate / (1 + SMPLRT_DIV)"


def _bus_error(what: str, code: int = errno.EREMOTEIO) -> OSError:
    return OSError(code, f"{os.strerror(code)} ({what})")


class MPU6050Emulator:
    """An MPU-6050 (or ``chip=`` another part) on an emulated I2C bus; pass it as ``bus=`` to the driver.

    ``writes`` records every register write on the bus as ``(t, register, value)`` (like
    MockPin.states), including writes the chip ignored, so tests can check the configuration
    sequence against the datasheet. ``fifo_resets`` holds the times the FIFO was really emptied.
    """

    def __init__(self, *, clock, trace: Trace | TracePlayer | None = None, signal: Signal | None = None,
                 address: int = 0x68, chip: str | int | None = None, who_am_i: int | None = None,
                 bus_hz: float | None = 100_000.0, clock_error: float = 0.0, noise_g: float = 0.0, seed: int = 0,
                 nack_probability: float = 0.0, abort_probability: float = 0.0, abort_errno: int = errno.EIO,
                 faults: Mapping[int, BusFault] | None = None,
                 disconnects: Iterable[tuple[float, float]] = (), disconnect_resets: bool = True,
                 resets_at: Iterable[float] = (), frozen: Iterable[tuple[float, float]] = (),
                 stalls: Iterable[tuple[float, float]] = (), origin_s: float | None = None, end: str = "stop"):
        if trace is not None and signal is not None:
            raise ValueError("give a trace or a signal, not both")
        if chip is not None and who_am_i is not None:
            raise ValueError("give a chip or a who_am_i, not both")
        if end not in ("stop", "hold"):
            raise ValueError("end must be 'stop' (no samples after the trace) or 'hold' (repeat the last)")
        self.model: ChipModel = model_for(chip if chip is not None else who_am_i if who_am_i is not None else "MPU-6050")
        self.clock = clock
        self.trace = trace
        self.signal = signal
        self.address = address
        self.bus_hz = bus_hz
        self.clock_error = clock_error
        self.noise_g = noise_g
        self.nack_probability = nack_probability
        self.abort_probability = abort_probability
        self.abort_errno = abort_errno
        self.end = end
        self.writes: list[tuple[float, int, int]] = []
        self.writes_ignored = 0
        self.fifo_resets: list[float] = []
        self.transactions = 0
        self.nacks = 0
        self.aborts = 0
        self.samples_taken = 0
        self.overflows = 0
        self.resets = 0
        self._scripted: dict[int, BusFault] = dict(faults or {})
        self._armed: list[tuple[int | None, BusFault]] = []
        self._rng = random.Random(seed)
        self._noise_rng = np.random.default_rng(seed)
        self.created_s = clock.monotonic()
        base = self.created_s if origin_s is None else float(origin_s)
        self._disconnects = [(base + a, base + b) for a, b in disconnects]
        self._frozen = [(base + a, base + b) for a, b in frozen]
        self._stalls = sorted((base + a, float(d)) for a, d in stalls if base + a + d > self.created_s)
        self.stalled_s = 0.0
        pending = [(base + t, "reset") for t in resets_at if base + t >= self.created_s]
        if disconnect_resets:  # the power goes with the wires and comes back with them
            pending += [(a, "off") for a, _ in self._disconnects if a >= self.created_s]
            pending += [(b, "on") for a, b in self._disconnects if a >= self.created_s]
        self._pending = [(t, i, kind) for i, (t, kind) in enumerate(sorted(pending))]
        heapq.heapify(self._pending)
        self._closed = False
        self._pointer = 0
        # host time of trace time zero: the first sample into the FIFO, unless anchored by ``origin_s``
        self._origin_s: float | None = None if origin_s is None else float(origin_s)
        # what it plays: a Trace in memory, or a TracePlayer streaming one (sitsense.sensor.playback)
        if isinstance(trace, TracePlayer):
            self._player: TracePlayer | None = trace
        else:
            self._player = TracePlayer.of(trace) if trace is not None and len(trace) else None
        self._power_on(self.created_s)

    # ------------------------------------------------------------------ chip state

    def _power_on(self, t: float) -> None:
        """Power-on (or DEVICE_RESET): reset values, FIFO empty, registers deaf for a while."""
        self.powered = True
        self.regs = bytearray(256)
        self.regs[R.PWR_MGMT_1] = self.model.power_on_pwr_mgmt_1
        self.fifo = bytearray()
        self.latest_counts = np.zeros(3, dtype=np.int16)
        self._count_latch = 0
        self._last_fifo_byte = 0
        self._registers_ready_at = t + self.model.register_startup_s
        self._accel_ready_at = math.inf
        self._anchor_s, self._next_k = t, 1
        if not self.asleep:  # the MPU-6500 family comes up awake
            self._woken(t)

    def _woken(self, t: float) -> None:
        self._anchor_s, self._next_k = t, 1
        self._accel_ready_at = t + self.model.accel_startup_s

    def power_on_reset(self) -> None:
        """What a brown-out does: every register back to its reset value, FIFO empty."""
        now = self.clock.monotonic()
        self._advance_to(now)
        self._power_on(now)
        self.resets += 1

    @property
    def asleep(self) -> bool:
        return bool(self.regs[R.PWR_MGMT_1] & R.SLEEP)

    @property
    def sample_rate_hz(self) -> float:
        """The nominal rate: gyro output rate (8 kHz without the low-pass, 1 kHz with) / (1 + SMPLRT_DIV)."""
        dlpf = self.regs[R.CONFIG] & R.DLPF_CFG
        base = GYRO_RATE_NO_DLPF_HZ if dlpf in (0, 7) else GYRO_RATE_HZ
        return base / (1 + self.regs[R.SMPLRT_DIV])

    @property
    def period_s(self) -> float:
        """The real sample period, including the oscillator's error."""
        return 1.0 / (self.sample_rate_hz * (1.0 + self.clock_error))

    @property
    def range_g(self) -> int:
        return 2 << ((self.regs[R.ACCEL_CONFIG] & R.AFS_SEL_MASK) >> R.AFS_SEL_SHIFT)

    @property
    def lsb_per_g(self) -> float:
        return 32768.0 / self.range_g

    @property
    def fifo_size(self) -> int:
        return self.model.fifo_size(self.regs[R.ACCEL_CONFIG2])

    @property
    def fifo_frame_bytes(self) -> int:
        en = self.regs[R.FIFO_EN]
        return (6 if en & R.FIFO_ACCEL else 0) + (2 if en & R.FIFO_TEMP else 0) + \
            2 * sum(bool(en & b) for b in (R.FIFO_XG, R.FIFO_YG, R.FIFO_ZG))

    @property
    def _fifo_writable(self) -> bool:
        """The MPU-6050 writes the FIFO only with USER_CTRL.FIFO_EN set; the 6500 family follows FIFO_EN alone."""
        return self.model.mpu6500_family or bool(self.regs[R.USER_CTRL] & R.USER_FIFO_EN)

    @property
    def world_s(self) -> float | None:
        """Seconds since the first sample into the FIFO (the position in the trace), or None before it."""
        if self._origin_s is None:
            return None
        return self.clock.monotonic() - self._origin_s

    @property
    def exhausted(self) -> bool:
        """The whole trace has been sampled and the FIFO holds no complete frame."""
        self._advance_to(self.clock.monotonic())
        w = self.world_s
        return (w is not None and w > self._trace_end_s and self.end == "stop"
                and len(self.fifo) < max(6, self.fifo_frame_bytes))

    # ------------------------------------------------------------------ time passing

    def _advance_to(self, t: float) -> None:
        """Let the chip live until host time ``t``: power events, then every sample due."""
        while self._pending and self._pending[0][0] <= t:
            t_ev, _, kind = heapq.heappop(self._pending)
            self._sample_until(t_ev)
            if kind == "off":
                self.powered = False
                self.fifo.clear()
            else:  # "on" after a disconnect, or a spontaneous "reset"
                self._power_on(t_ev)
                self.resets += 1
        self._sample_until(t)

    @property
    def _trace_end_s(self) -> float:
        """The trace's last sample, in seconds from its first (inf: no trace, or its end not read yet)."""
        return self._player.end_s if self._player is not None else math.inf

    def _k_stop(self, until_s: float) -> float:
        """The last tick with trace left to play (inf if none ends before ``until_s``)."""
        if self._player is None or self.end != "stop" or self._origin_s is None:
            return math.inf
        self._player.look_ahead(until_s - self._origin_s)  # a streamed trace's end is known once read
        if math.isinf(self._trace_end_s):
            return math.inf
        return math.floor((self._origin_s + self._trace_end_s + 1e-6 - self._anchor_s) / self.period_s + 1e-9)

    def _sample_until(self, until_s: float, into_fifo: bool = True):
        """Take every sample due up to ``until_s``: data registers, and the FIFO if enabled.

        With ``into_fifo=False`` the FIFO's share is returned instead, as (times, frames), for a
        transfer that interleaves them with the bytes it takes out.
        """
        if not self.powered or self.asleep:
            return None
        period = self.period_s
        k_end = math.floor((until_s - self._anchor_s) / period + 1e-6)  # slack: float error in tick times
        if k_end < self._next_k:
            return None
        k_first, self._next_k = self._next_k, k_end + 1
        frame = self.fifo_frame_bytes
        fifo_on = frame > 0 and self._fifo_writable
        if self._origin_s is None and fifo_on:  # the trace starts with the first sample the FIFO gets
            self._origin_s = float(self._anchor_s + k_first * period)
        stop = self._k_stop(until_s)
        if stop < k_end:  # no samples once the trace is over
            k_end = int(stop)
        if k_end < k_first:
            return None
        n = k_end - k_first + 1
        if not fifo_on:
            keep = 1
        elif not into_fifo:
            keep = n
        else:
            keep = min(n, self.fifo_size // frame + 2)  # older ones would be overwritten anyway
        first = k_first if (not into_fifo or (fifo_on and self._keeps_oldest)) else k_end - keep + 1
        times = self._anchor_s + np.arange(first, first + keep) * period
        w = times - self._origin_s if self._origin_s is not None else np.zeros(keep)
        counts = self._counts_at(w, times)
        self.latest_counts = counts[-1].copy()
        self.samples_taken += n
        if self.regs[R.INT_ENABLE] & R.DATA_RDY:
            self.regs[R.INT_STATUS] |= R.DATA_RDY
        if not fifo_on:
            return None
        if not into_fifo:
            return times, self._frames(counts, frame)
        self._push(self._frames(counts, frame).tobytes(), n, frame)
        return None

    @property
    def _keeps_oldest(self) -> bool:
        return self.model.mpu6500_family and bool(self.regs[R.CONFIG] & R.FIFO_MODE)

    def _counts_at(self, w: np.ndarray, times: np.ndarray) -> np.ndarray:
        if self._player is not None:
            accel_g = self._player.accel_at(w)
        elif self.signal is not None:
            accel_g = np.asarray(self.signal(w), dtype=np.float64).reshape(-1, 3)
        else:
            accel_g = np.tile([0.0, 0.0, 1.0], (len(w), 1))
        if self.noise_g:
            accel_g = accel_g + self._noise_rng.normal(0.0, self.noise_g, accel_g.shape)
        counts = np.clip(np.rint(accel_g * self.lsb_per_g), -32768, 32767).astype(np.int16)
        stby = self.regs[R.PWR_MGMT_2]
        for axis, bit in enumerate(R.STBY_ACCEL):
            if stby & bit:
                counts[:, axis] = 0
        if times[0] < self._accel_ready_at:  # still starting up: the data registers hold zeros
            counts[times < self._accel_ready_at] = 0
        frozen = np.zeros(len(times), dtype=bool)
        for a, b in self._frozen:
            frozen |= (times >= a) & (times < b)
        if frozen.any():
            src = np.maximum.accumulate(np.where(frozen, -1, np.arange(len(times))))
            held = np.where((src < 0)[:, None], self.latest_counts[None, :], counts[np.maximum(src, 0)])
            counts = held.astype(np.int16)
        return counts

    def _frames(self, counts: np.ndarray, frame: int) -> np.ndarray:
        """(n, frame) bytes as the FIFO stores them: accelerometer big-endian, then zeros for the rest."""
        accel = counts.astype(">i2").view(np.uint8).reshape(len(counts), 6)
        if self.regs[R.FIFO_EN] & R.FIFO_ACCEL:
            if frame == 6:
                return accel
            return np.hstack([accel, np.zeros((len(counts), frame - 6), dtype=np.uint8)])
        return np.zeros((len(counts), frame), dtype=np.uint8)  # temperature and gyro read as zero

    def _push(self, data: bytes, n_taken: int, frame: int) -> None:
        size = self.fifo_size
        total = len(self.fifo) + n_taken * frame
        if self._keeps_oldest:  # FIFO_MODE: a full FIFO takes no more bytes
            self.fifo += data[:max(0, size - len(self.fifo))]
        else:  # the oldest bytes are lost, whatever the frame boundaries
            self.fifo += data
            if len(self.fifo) > size:
                del self.fifo[:len(self.fifo) - size]
        if total > size:
            self.overflows += 1
            if self.regs[R.INT_ENABLE] & R.FIFO_OFLOW:
                self.regs[R.INT_STATUS] |= R.FIFO_OFLOW

    # ------------------------------------------------------------------ registers

    def _empty_byte(self) -> int:
        b = self.model.empty_fifo_byte
        return self._last_fifo_byte if b is None else b

    def _pop(self, k: int) -> bytes:
        """``k`` bytes from FIFO_R_W: the oldest data, then what an empty (or disabled) FIFO reads."""
        if k <= 0:
            return b""
        if not self.regs[R.USER_CTRL] & R.USER_FIFO_EN:  # no serial access to the FIFO
            return bytes([self._empty_byte()]) * k
        take = bytes(self.fifo[:k])
        del self.fifo[:k]
        if take:
            self._last_fifo_byte = take[-1]
        return take + bytes([self._empty_byte()]) * (k - len(take))

    def _read_reg(self, reg: int) -> int:
        if reg == R.WHO_AM_I:
            return self.model.who_am_i
        if reg == R.INT_STATUS:
            value = self.regs[reg]
            self.regs[reg] = 0  # cleared by reading
            return value
        if reg == R.FIFO_COUNTH:  # reading the high byte latches both
            self._count_latch = len(self.fifo)
            return (self._count_latch >> 8) & 0xFF
        if reg == R.FIFO_COUNTL:
            return self._count_latch & 0xFF
        if R.ACCEL_XOUT_H <= reg < R.ACCEL_XOUT_H + 6:
            return self.latest_counts.astype(">i2").tobytes()[reg - R.ACCEL_XOUT_H]
        if R.ACCEL_XOUT_H + 6 <= reg <= R.DATA_LAST:
            return 0
        if reg == R.ACCEL_CONFIG2 and not self.model.mpu6500_family:
            return 0  # reserved
        return self.regs[reg]

    def _read_regs(self, reg: int, length: int) -> bytes:
        """Consecutive registers (the pointer auto-increments; FIFO_R_W stays and drains)."""
        out = bytearray()
        while len(out) < length:
            if reg == R.FIFO_R_W:
                out += self._pop(length - len(out))
                break
            out.append(self._read_reg(reg))
            reg = (reg + 1) & 0xFF
        self._pointer = reg
        return bytes(out)

    def _write_reg(self, reg: int, value: int, t: float) -> None:
        value &= 0xFF
        self.writes.append((t, reg, value))
        if not self.powered or t < self._registers_ready_at:
            self.writes_ignored += 1  # still starting up after power-on or DEVICE_RESET
            return
        if reg in R.READ_ONLY or reg == R.FIFO_R_W:
            return
        if reg == R.PWR_MGMT_1:
            if value & R.DEVICE_RESET:
                self._power_on(t)
                return
            was_asleep = self.asleep
            self.regs[reg] = value
            if was_asleep and not self.asleep:
                self._woken(t)
            return
        if reg == R.PWR_MGMT_2:
            accel_on = ~value & self.regs[reg] & sum(R.STBY_ACCEL)
            self.regs[reg] = value
            if accel_on:
                self._accel_ready_at = t + self.model.accel_startup_s
            return
        if reg == R.USER_CTRL:
            if value & R.FIFO_RESET and (self.model.mpu6500_family or
                                        not (value | self.regs[reg]) & R.USER_FIFO_EN):
                self.fifo.clear()  # the MPU-6050 resets only "while FIFO_EN equals 0"
                self.fifo_resets.append(t)
            self.regs[reg] = value & ~R.USER_CTRL_SELF_CLEARING & 0xFF
            return
        if reg == R.ACCEL_CONFIG2:
            if not self.model.mpu6500_family:
                return  # reserved on the MPU-6050
            if self.model.fifo_size(value) != self.fifo_size:
                self.fifo.clear()
        if reg == R.SIGNAL_PATH_RESET:
            return  # resets the signal paths; the data registers keep their values
        self.regs[reg] = value
        if reg in (R.SMPLRT_DIV, R.CONFIG) and not self.asleep:
            self._anchor_s, self._next_k = t, 1

    # ------------------------------------------------------------------ the bus

    @property
    def _bit_s(self) -> float:
        return 1.0 / self.bus_hz if self.bus_hz else 0.0

    def arm(self, fault: BusFault, register: int | None = None) -> None:
        """Give ``fault`` to the next transaction that addresses ``register`` (any, if None)."""
        self._armed.append((register, fault))

    def _sleep_until(self, t: float) -> None:
        """Let the clock reach ``t``: a simulated clock is moved on; a real-time one passes by itself
        while we compute, so it is waited on only when the OS can sleep that briefly (1 ms)."""
        dt = t - self.clock.monotonic()
        if dt <= 0:
            return
        if hasattr(self.clock, "advance_to") or dt / (getattr(self.clock, "speed", None) or 1.0) >= 0.001:
            self.clock.sleep(dt)

    def _begin(self, addr: int, reg: int | None) -> BusFault | None:
        """Every transaction: time passes, then the faults decide whether the chip answers."""
        if self._closed:
            raise OSError(errno.EBADF, "Bad file descriptor (bus closed)")
        self.transactions += 1
        fault = self._scripted.pop(self.transactions, None)
        if fault is None:
            for i, (r, f) in enumerate(self._armed):
                if r is None or r == reg:
                    fault = self._armed.pop(i)[1]
                    break
        now = self.clock.monotonic()
        if self._stalls and self._stalls[0][0] <= now:
            _, stall_s = self._stalls.pop(0)
            self._advance_to(now)
            self.clock.sleep(stall_s)  # the host is frozen before this transaction; the chip samples on
            self.stalled_s += stall_s
            now = self.clock.monotonic()
        if fault is not None and fault.kind == "stall" and fault.after_bytes <= 0:
            self._advance_to(now)
            self.clock.sleep(fault.stall_s)
            self.stalled_s += fault.stall_s
            now = self.clock.monotonic()
            fault = None
        self._advance_to(now)
        if fault is not None and fault.kind == "brownout":
            self._power_on(now)
            self.resets += 1
            fault = None
        answering = addr == self.address and self.powered and not any(a <= now < b for a, b in self._disconnects)
        if not answering or (fault is not None and fault.kind == "nack") or \
                (self.nack_probability and self._rng.random() < self.nack_probability):
            self.nacks += 1
            self._sleep_until(now + 10 * self._bit_s)
            what = ("no device at this address" if addr != self.address else
                    "injected fault" if answering else "disconnected")
            raise _bus_error(what)
        if self.abort_probability and self._rng.random() < self.abort_probability:
            fault = BusFault("abort", after_bytes=self._rng.randint(0, 64), code=self.abort_errno)
        return fault

    def _finish(self, t_end: float, fault: BusFault | None) -> None:
        self._advance_to(t_end)
        self._sleep_until(t_end)
        if fault is not None and fault.kind == "abort":
            self.aborts += 1
            raise _bus_error("transfer broke off", fault.code)

    def _read(self, reg: int, length: int, fault: BusFault | None) -> bytes:
        """One read transfer from ``reg``: the header, then ``length`` bytes (fewer if it aborts)."""
        bit_s = self._bit_s
        t = self.clock.monotonic() + HEADER_BITS * bit_s
        n = min(length, fault.after_bytes) if fault is not None and fault.kind == "abort" else length
        stall_at = fault.after_bytes if fault is not None and fault.kind == "stall" else None
        stall_s = fault.stall_s if fault is not None and stall_at is not None else 0.0
        if reg == R.FIFO_R_W:
            out, t = self._drain(n, t, BITS_PER_BYTE * bit_s, stall_at, stall_s)
        else:
            self._advance_to(t)
            out = self._read_regs(reg, n)
            t += n * BITS_PER_BYTE * bit_s + stall_s
            self.stalled_s += stall_s
        if reg == R.FIFO_R_W:
            self._pointer = reg  # it does not advance past the FIFO
        self._finish(t, fault)
        return out

    def _drain(self, n: int, t: float, byte_s: float, stall_at: int | None, stall_s: float) -> tuple[bytes, float]:
        """Read ``n`` FIFO bytes, the first starting at host time ``t``, one every ``byte_s``; samples
        due meanwhile are pushed in between the bytes (all those of a stretch computed at once)."""
        out = bytearray()
        i = 0
        if stall_at is not None:
            stall_at = min(stall_at, n)  # a stall past the last byte comes at the end
        while i < n or stall_at is not None:
            if stall_at is not None and i >= stall_at:  # the host freezes here; the chip samples on
                t += stall_s
                self.stalled_s += stall_s
                stall_at = None
                continue
            end = n if stall_at is None else min(n, stall_at)
            if byte_s <= 0:
                self._advance_to(t)
                out += self._pop(end - i)
                i = end
                continue
            last = t + (end - i - 1) * byte_s  # when the stretch's last byte starts
            pending = self._pending[0][0] if self._pending else math.inf
            horizon = min(last, pending)
            due = self._sample_until(horizon, into_fifo=False)
            if due is not None:
                frame = self.fifo_frame_bytes
                for t_sample, data in zip(due[0], due[1]):
                    k = min(end - i, max(0, math.ceil((t_sample - t) / byte_s)))
                    out += self._pop(k)
                    i += k
                    t += k * byte_s
                    self._push(data.tobytes(), 1, frame)
            if pending <= last:  # a power event inside the stretch: the bytes before it, then the event
                k = min(end - i, max(0, math.ceil((pending - t) / byte_s)))
                out += self._pop(k)
                i += k
                t += k * byte_s
                self._advance_to(pending)
                continue
            out += self._pop(end - i)
            t += (end - i) * byte_s
            i = end
        return bytes(out), t

    def _write(self, reg: int, values: Sequence[int], fault: BusFault | None) -> None:
        bit_s = self._bit_s
        t = self.clock.monotonic() + (HEADER_BITS - BITS_PER_BYTE) * bit_s
        n = min(len(values), fault.after_bytes) if fault is not None and fault.kind == "abort" else len(values)
        for i, value in enumerate(values[:n]):
            t += BITS_PER_BYTE * bit_s
            self._advance_to(t)
            if fault is not None and fault.kind == "drop_write":
                self.writes.append((t, (reg + i) & 0xFF, value & 0xFF))
                self.writes_ignored += 1
            else:
                self._write_reg((reg + i) & 0xFF, value, t)
        if fault is not None and fault.kind == "stall":
            t += fault.stall_s
            self.stalled_s += fault.stall_s
        self._finish(t, fault)

    def read_byte_data(self, i2c_addr: int, register: int, force=None) -> int:
        fault = self._begin(i2c_addr, register)
        return self._read(register, 1, fault)[0]

    def write_byte_data(self, i2c_addr: int, register: int, value: int, force=None) -> None:
        fault = self._begin(i2c_addr, register)
        self._write(register, [value], fault)

    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int, force=None) -> list[int]:
        if length > SMBUS_BLOCK_MAX:
            raise ValueError(f"Desired block length over {SMBUS_BLOCK_MAX} bytes")
        fault = self._begin(i2c_addr, register)
        return list(self._read(register, length, fault))

    def write_i2c_block_data(self, i2c_addr: int, register: int, data: Sequence[int], force=None) -> None:
        if len(data) > SMBUS_BLOCK_MAX:
            raise ValueError(f"Data length cannot exceed {SMBUS_BLOCK_MAX} bytes")
        fault = self._begin(i2c_addr, register)
        self._write(register, list(data), fault)

    def i2c_rdwr(self, *i2c_msgs) -> None:
        """Combined transfer: a write sets the register pointer (and writes any further bytes),
        a read fills the message's buffer from the pointer."""
        if not i2c_msgs:
            return
        first_write = next((bytes(m) for m in i2c_msgs if not m.flags & I2C_M_RD and m.len), b"")
        fault = self._begin(i2c_msgs[0].addr, first_write[0] if first_write else self._pointer)
        for msg in i2c_msgs:
            if msg.addr != self.address:
                raise _bus_error("no device at this address")
            if msg.flags & I2C_M_RD:
                data = self._read(self._pointer, msg.len, fault)
                ctypes.memmove(msg.buf, data, len(data))
            else:
                payload = bytes(msg)
                if not payload:
                    continue
                self._pointer = payload[0]
                if len(payload) > 1:
                    self._write(payload[0], list(payload[1:]), fault)

    def close(self) -> None:
        self._closed = True

    def __enter__(self) -> "MPU6050Emulator":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ inspection for tests

    def writes_to(self, reg: int) -> list[int]:
        """Every value written to one register, in order."""
        return [v for _, r, v in self.writes if r == reg]
