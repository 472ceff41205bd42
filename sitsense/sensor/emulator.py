"""A register-level MPU-6050 behind the smbus2 methods the driver uses, for tests and ``fake:`` sensors.

Like gpiozero's ``MockFactory`` it ships in the package, so anyone can exercise the live path
without hardware. It models what matters to a driver: the power-on state (asleep, data registers
zero), WHO_AM_I (settable, for clones), the sample rate from SMPLRT_DIV and CONFIG, a FIFO that
fills at that rate as the clock advances, quantisation to the range's LSB, overflow the chip's
way (the oldest bytes are overwritten, so frames lose their alignment, and INT_STATUS bit 4 is
set), and injected faults: NACKs with a seeded probability, disconnect windows, spontaneous
resets (brown-outs) and frozen output. Gyro and temperature read as zero.

What it plays is a trace (sample-and-hold at the chip's rate, starting with the chip's first
sample) or any function of time. Times given for faults are seconds after the emulator was made.
With ``origin_s`` the trace and the fault times are instead anchored at that clock time, so an
emulator made later (a restarted service) joins the same simulated day where it is now.
A stall (``stalls``) holds one bus transaction for a while, as a host that froze mid-read:
the FIFO keeps filling meanwhile and overflows if the stall is longer than it holds.
"""

from __future__ import annotations

import ctypes
import errno
import os
import heapq
import math
import random
from typing import Callable, Iterable, Sequence

import numpy as np

from ..traces import Trace
from .mpu6050 import (DLPF_OFF_GYRO_RATE_HZ, DLPF_ON_GYRO_RATE_HZ, FRAME_BYTES, KNOWN_CHIPS,
                      POWER_ON_PWR_MGMT_1, SMBUS_BLOCK_MAX, AccelRange, Bit, Reg, g_to_counts)

Signal = Callable[[np.ndarray], np.ndarray]  # seconds since the first sample -> (n, 3) g

_SELF_CLEARING = {Reg.USER_CTRL: Bit.FIFO_RESET | 0x02 | 0x01, Reg.SIGNAL_PATH_RESET: 0x07}
_READ_ONLY = {Reg.WHO_AM_I, Reg.INT_STATUS, Reg.FIFO_COUNTH, Reg.FIFO_COUNTL} | set(range(0x3B, 0x49))


def _nack(what: str = "no acknowledge", code: int = errno.EREMOTEIO) -> OSError:
    return OSError(code, f"{os.strerror(code)} ({what})")


class MPU6050Emulator:
    """An MPU-6050 on an emulated I2C bus; pass it as ``bus=`` to the driver.

    ``writes`` records every register write as ``(t, register, value)`` (like MockPin.states),
    so tests can check the configuration sequence against the datasheet.
    """

    def __init__(self, *, clock, trace: Trace | None = None, signal: Signal | None = None,
                 address: int = 0x68, who_am_i: int = 0x68, fifo_bytes: int | None = None,
                 clock_error: float = 0.0, noise_g: float = 0.0, seed: int = 0,
                 nack_probability: float = 0.0, fault_errno: int = errno.EREMOTEIO, disconnects: Iterable[tuple[float, float]] = (),
                 disconnect_resets: bool = True, resets_at: Iterable[float] = (),
                 frozen: Iterable[tuple[float, float]] = (), stalls: Iterable[tuple[float, float]] = (),
                 origin_s: float | None = None, end: str = "stop"):
        if trace is not None and signal is not None:
            raise ValueError("give a trace or a signal, not both")
        if end not in ("stop", "hold"):
            raise ValueError("end must be 'stop' (no samples after the trace) or 'hold' (repeat the last)")
        self.clock = clock
        self.trace = trace
        self.signal = signal
        self.address = address
        self.who_am_i = who_am_i
        self.fifo_bytes = fifo_bytes or KNOWN_CHIPS.get(who_am_i, ("", 1024))[1]
        self.clock_error = clock_error
        self.noise_g = noise_g
        self.nack_probability = nack_probability
        self.fault_errno = fault_errno
        self.end = end
        self.writes: list[tuple[float, int, int]] = []
        self.transactions = 0
        self.nacks = 0
        self.samples_taken = 0
        self.overflows = 0
        self.resets = 0
        self._rng = random.Random(seed)
        self._noise_rng = np.random.default_rng(seed)
        self.created_s = clock.monotonic()
        base = self.created_s if origin_s is None else float(origin_s)
        self._disconnects = [(base + a, base + b) for a, b in disconnects]
        self._frozen = [(base + a, base + b) for a, b in frozen]
        self._stalls = sorted((base + a, float(d)) for a, d in stalls if base + a + d > self.created_s)
        self.stalled_s = 0.0
        self._pending: list[tuple[float, str]] = [(base + t, "reset") for t in resets_at if base + t >= self.created_s]
        if disconnect_resets:
            self._pending += [(a, "reset") for a, _ in self._disconnects if a >= self.created_s]
        heapq.heapify(self._pending)
        self._closed = False
        self._pointer = 0
        # host time of trace time zero: the chip's first sample, unless anchored by ``origin_s``
        self._origin_s: float | None = None if origin_s is None else float(origin_s)
        if trace is not None and len(trace):
            self._trace_t = trace.t_s - trace.t_s[0]
            self._trace_end_s = float(self._trace_t[-1])
        else:
            self._trace_t = None
            self._trace_end_s = math.inf
        self._power_on()
        self._advanced_to = self.created_s

    @classmethod
    def from_plan(cls, plan: str, *, clock, sample_rate_hz: float = 50.0, seed: int = 0, **options):
        """An emulator playing a posture script such as ``"stand 1m, sit 35m, walk 3m"`` (synthetic wearer)."""
        from ..plan import parse_plan
        from ..synth import synthesize

        return cls(clock=clock, trace=synthesize(parse_plan(plan), sample_rate_hz=sample_rate_hz, seed=seed),
                   **options)

    # ------------------------------------------------------------------ chip state

    def _power_on(self) -> None:
        self.regs = bytearray(256)
        self.regs[Reg.PWR_MGMT_1] = POWER_ON_PWR_MGMT_1
        self.fifo = bytearray()
        self.latest_counts = np.zeros(3, dtype=np.int16)
        self._anchor_s = 0.0
        self._next_k = 1

    def power_on_reset(self) -> None:
        """What a brown-out does: every register back to its reset value, asleep, FIFO empty."""
        self._advance()
        self._power_on()
        self.resets += 1

    @property
    def asleep(self) -> bool:
        return bool(self.regs[Reg.PWR_MGMT_1] & Bit.SLEEP)

    @property
    def sample_rate_hz(self) -> float:
        """The nominal rate: gyro output rate (8 kHz without the low-pass, 1 kHz with) / (1 + SMPLRT_DIV)."""
        dlpf = self.regs[Reg.CONFIG] & Bit.DLPF_CFG_MASK
        base = DLPF_OFF_GYRO_RATE_HZ if dlpf in (0, 7) else DLPF_ON_GYRO_RATE_HZ
        return base / (1 + self.regs[Reg.SMPLRT_DIV])

    @property
    def period_s(self) -> float:
        """The real sample period, including the oscillator's error."""
        return 1.0 / (self.sample_rate_hz * (1.0 + self.clock_error))

    @property
    def range(self) -> AccelRange:
        return AccelRange.from_afs_sel((self.regs[Reg.ACCEL_CONFIG] & Bit.AFS_SEL_MASK) >> Bit.AFS_SEL_SHIFT)

    @property
    def fifo_frame_bytes(self) -> int:
        en = self.regs[Reg.FIFO_EN]
        return (6 if en & Bit.ACCEL_FIFO_EN else 0) + (2 if en & Bit.TEMP_FIFO_EN else 0) + \
            2 * sum(bool(en & b) for b in (Bit.XG_FIFO_EN, Bit.YG_FIFO_EN, Bit.ZG_FIFO_EN))

    @property
    def world_s(self) -> float | None:
        """Seconds since the chip's first sample (the position in the trace), or None before it."""
        if self._origin_s is None:
            return None
        return self.clock.monotonic() - self._origin_s

    @property
    def exhausted(self) -> bool:
        """The whole trace has been sampled and the FIFO holds no complete frame."""
        self._advance()
        w = self.world_s
        return (w is not None and w > self._trace_end_s and self.end == "stop"
                and len(self.fifo) < max(FRAME_BYTES, self.fifo_frame_bytes))

    def _restart_ticks(self, now: float) -> None:
        self._anchor_s = now
        self._next_k = 1

    # ------------------------------------------------------------------ time passing

    def _advance(self) -> None:
        now = self.clock.monotonic()
        while self._pending and self._pending[0][0] <= now:
            t_ev, kind = heapq.heappop(self._pending)
            self._sample_until(t_ev)
            if kind == "reset":
                self._power_on()
                self.resets += 1
        self._sample_until(now)

    def _sample_until(self, until_s: float) -> None:
        """Take every sample due up to ``until_s``: data registers, and the FIFO if enabled."""
        if self.asleep:
            return
        period = self.period_s
        k_end = math.floor((until_s - self._anchor_s) / period + 1e-9)
        if k_end < self._next_k:
            return
        k_first, self._next_k = self._next_k, k_end + 1
        if self._origin_s is None:
            self._origin_s = float(self._anchor_s + k_first * period)
        if self._trace_t is not None and self.end == "stop":  # no samples once the trace is over
            k_stop = math.floor((self._origin_s + self._trace_end_s + 1e-6 - self._anchor_s) / period + 1e-9)
            k_end = min(k_end, k_stop)
            if k_end < k_first:
                return
        n = k_end - k_first + 1
        frame = self.fifo_frame_bytes
        fifo_on = bool(self.regs[Reg.USER_CTRL] & Bit.USER_FIFO_EN) and frame > 0
        keep = min(n, self.fifo_bytes // max(frame, 1) + 2)  # older samples would be overwritten anyway
        times = self._anchor_s + np.arange(k_end - keep + 1, k_end + 1) * period
        w = times - self._origin_s
        counts = self._counts_at(w, times)
        self.latest_counts = counts[-1].copy()
        self.samples_taken += n
        self.regs[Reg.INT_STATUS] |= Bit.DATA_RDY
        if fifo_on:
            self._push(counts, n, frame)

    def _counts_at(self, w: np.ndarray, times: np.ndarray) -> np.ndarray:
        if self._trace_t is not None:
            idx = np.clip(np.searchsorted(self._trace_t, w + 1e-6, side="right") - 1, 0, len(self._trace_t) - 1)
            accel_g = self.trace.accel_g[idx]
        elif self.signal is not None:
            accel_g = np.asarray(self.signal(w), dtype=np.float64).reshape(-1, 3)
        else:
            accel_g = np.tile([0.0, 0.0, 1.0], (len(w), 1))
        if self.noise_g:
            accel_g = accel_g + self._noise_rng.normal(0.0, self.noise_g, accel_g.shape)
        counts = g_to_counts(accel_g, self.range.lsb_per_g)
        stby = self.regs[Reg.PWR_MGMT_2]
        for axis, bit in enumerate((Bit.STBY_XA, Bit.STBY_YA, Bit.STBY_ZA)):
            if stby & bit:
                counts[:, axis] = 0
        frozen = np.zeros(len(times), dtype=bool)
        for a, b in self._frozen:
            frozen |= (times >= a) & (times < b)
        if frozen.any():
            src = np.maximum.accumulate(np.where(frozen, -1, np.arange(len(times))))
            held = np.where((src < 0)[:, None], self.latest_counts[None, :], counts[np.maximum(src, 0)])
            counts = held.astype(np.int16)
        return counts

    def _push(self, counts: np.ndarray, n_taken: int, frame: int) -> None:
        en = self.regs[Reg.FIFO_EN]
        parts = []
        if en & Bit.ACCEL_FIFO_EN:
            parts.append(counts.astype(">i2").view(np.uint8).reshape(len(counts), 6))
        extra = frame - (6 if en & Bit.ACCEL_FIFO_EN else 0)
        if extra:
            parts.append(np.zeros((len(counts), extra), dtype=np.uint8))  # temperature and gyro: zero
        data = np.hstack(parts).tobytes()
        total = len(self.fifo) + n_taken * frame
        self.fifo += data
        if total > self.fifo_bytes:
            # The MPU-6050 keeps writing and the oldest bytes are lost, whatever the frame boundaries.
            del self.fifo[:len(self.fifo) - self.fifo_bytes]
            self.regs[Reg.INT_STATUS] |= Bit.FIFO_OFLOW
            self.overflows += 1

    # ------------------------------------------------------------------ registers

    def _read_reg(self, reg: int) -> int:
        if reg == Reg.WHO_AM_I:
            return self.who_am_i
        if reg == Reg.INT_STATUS:
            value = self.regs[reg]
            self.regs[reg] = 0  # cleared by reading
            return value
        if reg == Reg.FIFO_COUNTH:
            return (len(self.fifo) >> 8) & 0xFF
        if reg == Reg.FIFO_COUNTL:
            return len(self.fifo) & 0xFF
        if Reg.ACCEL_XOUT_H <= reg < Reg.ACCEL_XOUT_H + 6:
            return self.latest_counts.astype(">i2").tobytes()[reg - Reg.ACCEL_XOUT_H]
        if Reg.TEMP_OUT_H <= reg <= 0x48:
            return 0
        return self.regs[reg]

    def _read_seq(self, reg: int, length: int) -> bytes:
        """Consecutive reads; the pointer auto-increments except on FIFO_R_W, which drains the FIFO."""
        out = bytearray()
        while len(out) < length:
            if reg == Reg.FIFO_R_W:
                take = length - len(out)
                chunk = self.fifo[:take]
                del self.fifo[:take]
                out += chunk + bytes(take - len(chunk))  # an empty FIFO reads as zeros here
                break
            if reg == Reg.FIFO_COUNTH and length - len(out) >= 2:
                count = len(self.fifo)  # reading the high byte latches both
                out += bytes([(count >> 8) & 0xFF, count & 0xFF])
                reg += 2
                continue
            out.append(self._read_reg(reg))
            reg = (reg + 1) & 0xFF
        self._pointer = reg
        return bytes(out)

    def _write_reg(self, reg: int, value: int) -> None:
        value &= 0xFF
        now = self.clock.monotonic()
        self.writes.append((now, reg, value))
        if reg == Reg.PWR_MGMT_1:
            if value & Bit.DEVICE_RESET:
                self._power_on()
                return
            was_asleep = self.asleep
            self.regs[reg] = value
            if was_asleep and not self.asleep:
                self._restart_ticks(now)
            return
        if reg == Reg.USER_CTRL and value & Bit.FIFO_RESET:
            self.fifo.clear()
        if reg == Reg.FIFO_R_W:
            return
        if reg in _READ_ONLY:
            return
        self.regs[reg] = value & ~_SELF_CLEARING.get(reg, 0) & 0xFF
        if reg in (Reg.SMPLRT_DIV, Reg.CONFIG) and not self.asleep:
            self._restart_ticks(now)

    # ------------------------------------------------------------------ the bus

    def _begin(self, addr: int) -> None:
        """Every transaction: time passes, then the faults decide whether the chip answers."""
        if self._closed:
            raise OSError(errno.EBADF, "Bad file descriptor (bus closed)")
        self.transactions += 1
        self._advance()
        now = self.clock.monotonic()
        if self._stalls and self._stalls[0][0] <= now:
            _, stall_s = self._stalls.pop(0)
            self.clock.sleep(stall_s)  # the host is frozen mid-transaction; the chip samples on
            self.stalled_s += stall_s
            self._advance()
            now = self.clock.monotonic()
        if addr != self.address or any(a <= now < b for a, b in self._disconnects):
            self.nacks += 1
            raise _nack("no device at this address" if addr != self.address else "disconnected")
        if self.nack_probability and self._rng.random() < self.nack_probability:
            self.nacks += 1
            raise _nack("injected fault", self.fault_errno)

    def read_byte_data(self, i2c_addr: int, register: int, force=None) -> int:
        self._begin(i2c_addr)
        return self._read_seq(register, 1)[0]

    def write_byte_data(self, i2c_addr: int, register: int, value: int, force=None) -> None:
        self._begin(i2c_addr)
        self._write_reg(register, value)

    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int, force=None) -> list[int]:
        if length > SMBUS_BLOCK_MAX:
            raise ValueError(f"Desired block length over {SMBUS_BLOCK_MAX} bytes")
        self._begin(i2c_addr)
        return list(self._read_seq(register, length))

    def write_i2c_block_data(self, i2c_addr: int, register: int, data: Sequence[int], force=None) -> None:
        if len(data) > SMBUS_BLOCK_MAX:
            raise ValueError(f"Data length cannot exceed {SMBUS_BLOCK_MAX} bytes")
        self._begin(i2c_addr)
        for i, value in enumerate(data):
            self._write_reg((register + i) & 0xFF, value)

    def i2c_rdwr(self, *i2c_msgs) -> None:
        """Combined transfer: a write sets the register pointer (and writes any further bytes),
        a read fills the message's buffer from the pointer."""
        if not i2c_msgs:
            return
        self._begin(i2c_msgs[0].addr)
        for msg in i2c_msgs:
            if msg.addr != self.address:
                raise _nack("no device at this address")
            if msg.flags & 0x0001:  # I2C_M_RD
                data = self._read_seq(self._pointer, msg.len)
                ctypes.memmove(msg.buf, data, msg.len)
            else:
                payload = bytes(msg)
                if not payload:
                    continue
                self._pointer = payload[0]
                for i, value in enumerate(payload[1:]):
                    self._write_reg((self._pointer + i) & 0xFF, value)

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


MAX_FAULT_TIME_S = 1e9  # about 31 years, the longest a trace can last


def parse_faults(text: str) -> dict:
    """``'nack=0.01, disconnect=2h+5m, reset=5h, stall=3h+20s, frozen=4h+1m'`` -> emulator options.

    Times are seconds (``3600``) or durations (``1h30m``), counted like the emulator's own
    (from its creation, or from ``origin_s``); ``+`` gives a window's length. Repeat a key for
    several windows. Raises ConfigError naming the bad item.
    """
    from ..errors import ConfigError
    from ..plan import parse_duration_s

    def seconds(item: str, value: str) -> float:
        try:
            s = float(value)
        except ValueError:
            try:
                s = parse_duration_s(value)
            except Exception:
                raise ConfigError(f"fault {item!r}: {value!r} is not a time (use 3600, 90s, 1h30m)") from None
        if not 0.0 <= s <= MAX_FAULT_TIME_S:  # also refuses nan and inf
            raise ConfigError(f"fault {item!r}: {value!r} must be a time from 0 to {MAX_FAULT_TIME_S:.0e} s "
                              "(use 3600, 90s, 1h30m)")
        return s

    def window(item: str, value: str) -> tuple[float, float]:
        if "+" not in value:
            raise ConfigError(f"fault {item!r}: expected START+LENGTH, e.g. 2h+5m")
        a, d = value.split("+", 1)
        start, length = seconds(item, a), seconds(item, d)
        if length <= 0:
            raise ConfigError(f"fault {item!r}: the length must be positive")
        return start, length

    opts: dict = {"disconnects": [], "resets_at": [], "stalls": [], "frozen": []}
    for item in (p.strip() for p in text.split(",")):
        if not item:
            continue
        key, _, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if key == "nack":
            try:
                p = float(value)
            except ValueError:
                p = -1.0
            if not 0.0 <= p < 1.0:
                raise ConfigError(f"fault {item!r}: nack needs a probability from 0 to below 1, e.g. nack=0.01")
            opts["nack_probability"] = p
        elif key == "disconnect":
            a, d = window(item, value)
            opts["disconnects"].append((a, a + d))
        elif key == "frozen":
            a, d = window(item, value)
            opts["frozen"].append((a, a + d))
        elif key == "stall":
            opts["stalls"].append(window(item, value))
        elif key == "reset":
            opts["resets_at"].append(seconds(item, value))
        else:
            raise ConfigError(f"fault {item!r}: unknown fault (known: nack=P, disconnect=AT+LEN, reset=AT, "
                              "stall=AT+LEN, frozen=AT+LEN)")
    return opts
