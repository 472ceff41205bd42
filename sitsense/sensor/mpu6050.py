"""MPU-6050 accelerometer driver over the smbus2 API: register map, configuration, FIFO reads, faults.

The chip samples on its own clock into its FIFO (1024 bytes on the MPU-6050; siblings and clones
differ, see ``KNOWN_CHIPS``); we read whole 6-byte accelerometer frames about once a second, so
the Pi sleeps in between. Timestamps come from the sample count, bracketed by the monotonic clock
at each poll, with the period learned within the internal oscillator's tolerance (-15 %..+10 %).
A block is delivered only when no byte of it can have gone missing: a FIFO read that breaks off,
a count that is not whole frames, a FIFO near full or flagged as overflowed all reset the FIFO,
as the Linux driver does, and the time lost is reported. Bus errors, overflows, brown-outs and a
frozen chip are reported as ``SensorStatus`` events; none of them raises out of ``read()``.

Register names and bits follow the InvenSense "MPU-6000 and MPU-6050 Register Map and Descriptions"
(RM-MPU-6000A-00, rev 4.2). One module on purpose, though long: the register map, the set-up, the
FIFO reader, the timestamps and the fault episodes share the chip's state and are read together
against the datasheet.
"""

from __future__ import annotations

import enum
import errno
import logging
import math
from dataclasses import dataclass

import numpy as np

from ..clock import Clock, SystemClock
from ..errors import ConfigError, SensorAccessDenied, SensorError, SensorNotFound
from ..events import SensorStatus

log = logging.getLogger(__name__)


class Reg(enum.IntEnum):
    """Register addresses by their datasheet names."""

    SMPLRT_DIV = 0x19
    CONFIG = 0x1A
    GYRO_CONFIG = 0x1B
    ACCEL_CONFIG = 0x1C
    ACCEL_CONFIG2 = 0x1D  # MPU-6500 family only (accelerometer low-pass); reserved on the MPU-6050
    FIFO_EN = 0x23
    INT_ENABLE = 0x38
    INT_STATUS = 0x3A
    ACCEL_XOUT_H = 0x3B
    TEMP_OUT_H = 0x41
    GYRO_XOUT_H = 0x43
    SIGNAL_PATH_RESET = 0x68
    USER_CTRL = 0x6A
    PWR_MGMT_1 = 0x6B
    PWR_MGMT_2 = 0x6C
    FIFO_COUNTH = 0x72
    FIFO_COUNTL = 0x73
    FIFO_R_W = 0x74
    WHO_AM_I = 0x75


class Bit:
    """Bit fields used by the driver, grouped by register."""

    # PWR_MGMT_1
    DEVICE_RESET = 0x80
    SLEEP = 0x40
    CYCLE = 0x20
    TEMP_DIS = 0x08
    CLKSEL_INTERNAL_8MHZ = 0x00
    # PWR_MGMT_2 (standby bits)
    STBY_XA, STBY_YA, STBY_ZA = 0x20, 0x10, 0x08
    STBY_XG, STBY_YG, STBY_ZG = 0x04, 0x02, 0x01
    # USER_CTRL
    USER_FIFO_EN = 0x40
    FIFO_RESET = 0x04
    # FIFO_EN
    TEMP_FIFO_EN = 0x80
    XG_FIFO_EN, YG_FIFO_EN, ZG_FIFO_EN = 0x40, 0x20, 0x10
    ACCEL_FIFO_EN = 0x08
    # INT_ENABLE / INT_STATUS
    FIFO_OFLOW = 0x10
    DATA_RDY = 0x01
    # SIGNAL_PATH_RESET
    ACCEL_RESET, TEMP_RESET, GYRO_RESET = 0x02, 0x01, 0x04
    # CONFIG
    DLPF_CFG_MASK = 0x07
    # ACCEL_CONFIG
    AFS_SEL_SHIFT = 3
    AFS_SEL_MASK = 0x18
    # ACCEL_CONFIG2 (MPU-6500 family; bits 7:6 on the ICM-20689 choose the FIFO size: 512 B << code)
    FIFO_SIZE_SHIFT = 6


FRAME_BYTES = 6  # one accelerometer sample in the FIFO: XH XL YH YL ZH ZL
SMBUS_BLOCK_MAX = 32  # an SMBus block read carries at most 32 bytes; longer reads use i2c_rdwr
DLPF_ON_GYRO_RATE_HZ = 1000.0  # "Sample Rate = Gyroscope Output Rate / (1 + SMPLRT_DIV)"
MIN_RATE_HZ, MAX_RATE_HZ = 10.0, 100.0


class AccelRange(enum.Enum):
    """Full-scale ranges: (AFS_SEL value, LSB per g)."""

    G2 = (0, 16384.0)
    G4 = (1, 8192.0)
    G8 = (2, 4096.0)
    G16 = (3, 2048.0)

    @property
    def afs_sel(self) -> int:
        return self.value[0]

    @property
    def lsb_per_g(self) -> float:
        return self.value[1]

    @property
    def full_scale_g(self) -> int:
        return 2 << self.afs_sel

    @classmethod
    def from_g(cls, range_g: int) -> "AccelRange":
        for r in cls:
            if r.full_scale_g == range_g:
                return r
        raise ConfigError(f"range_g = {range_g!r}: not a range of the MPU-6050 (allowed: 2, 4, 8, 16 g)")

    @classmethod
    def from_afs_sel(cls, afs_sel: int) -> "AccelRange":
        return next(r for r in cls if r.afs_sel == afs_sel)


class Dlpf(enum.Enum):
    """Digital low-pass settings (CONFIG.DLPF_CFG) with the accelerometer bandwidth in Hz."""

    BW_184 = (1, 184.0)
    BW_94 = (2, 94.0)
    BW_44 = (3, 44.0)
    BW_21 = (4, 21.0)
    BW_10 = (5, 10.0)
    BW_5 = (6, 5.0)

    @property
    def cfg(self) -> int:
        return self.value[0]

    @property
    def bandwidth_hz(self) -> float:
        return self.value[1]

    @classmethod
    def for_rate(cls, sample_rate_hz: float) -> "Dlpf":
        """The widest bandwidth below the Nyquist frequency of the sample rate (anti-aliasing)."""
        fitting = [d for d in cls if d.bandwidth_hz <= sample_rate_hz / 2]
        return max(fitting, key=lambda d: d.bandwidth_hz) if fitting else cls.BW_5


@dataclass(frozen=True)
class Chip:
    """What answered on the bus, and how to set it up: FIFO size, accelerometer low-pass register, start-up.

    ``checked_against`` says where each figure comes from (hardware.md lists them). ``known`` is
    False for a clone no reference describes: its FIFO size is then an assumption on the safe side.
    """

    who_am_i: int
    name: str
    fifo_bytes: int
    accel_config2: bool = False  # MPU-6500 family: ACCEL_CONFIG2 low-passes the accelerometer
    fifo_size_code: int | None = None  # ICM-20689: ACCEL_CONFIG2 bits 7:6 choose the FIFO size
    accel_startup_s: float = 0.030
    known: bool = True
    checked_against: str = ""

    @property
    def genuine(self) -> bool:
        return self.who_am_i == 0x68

    def describe(self) -> str:
        """One line for logs and ``doctor``: name, WHO_AM_I and FIFO size."""
        fifo = f"{self.fifo_bytes}-byte FIFO" if self.known else f"FIFO size unknown, {self.fifo_bytes} bytes assumed"
        return f"{self.name} (WHO_AM_I {self.who_am_i:#04x}, {fifo})"


_LINUX = "Linux drivers/iio/imu/inv_mpu6050 (hw_info)"
_RM_9250 = "RM-MPU-9250A rev 1.4 (the MPU-6500 family's register map)"

# Boards sold as "MPU-6050" (GY-521) often carry a later sibling or a clone. FIFO sizes and
# WHO_AM_I values follow the Linux driver's table; the ICM-20689 starts with a 512-byte FIFO and
# is switched to 4 KB as the kernel does (FIFO_SIZE = 3 in ACCEL_CONFIG2).
KNOWN_CHIPS: dict[int, Chip] = {c.who_am_i: c for c in (
    Chip(0x68, "MPU-6050", 1024, accel_startup_s=0.020,
         checked_against=f"PS-MPU-6000A rev 3.4, RM-MPU-6000A rev 4.2, {_LINUX}"),
    Chip(0x70, "MPU-6500", 512, accel_config2=True, checked_against=f"{_LINUX}; {_RM_9250}"),
    Chip(0x71, "MPU-9250", 512, accel_config2=True, checked_against=f"RM-MPU-9250A rev 1.4, {_LINUX}"),
    Chip(0x73, "MPU-9255", 512, accel_config2=True, checked_against=f"{_LINUX}; {_RM_9250}"),
    Chip(0x74, "MPU-6515", 512, accel_config2=True, checked_against=f"{_LINUX}; {_RM_9250}"),
    Chip(0x78, "MPU-6880", 4096, accel_config2=True, checked_against=f"{_LINUX}; {_RM_9250}"),
    Chip(0x98, "ICM-20689", 4096, accel_config2=True, fifo_size_code=3,
         checked_against=f"{_LINUX} (FIFO_SIZE bits in ACCEL_CONFIG2); ICM-206xx register map"),
    Chip(0x72, "unknown clone", 512, accel_config2=True, known=False,
         checked_against="nothing: no datasheet; 512 bytes is the smallest FIFO of the family"),
)}

# PS-MPU-6000A rev 3.4, section 6.6 (internal clock source): with the gyros in standby the chip
# runs on its internal relaxation oscillator (section 7.15), which may be 15 % slow to 10 % fast
# over temperature (5 % at 25 C); only the gyro PLL holds 2 %, and running a gyro costs 3.6 mA.
# The sample rate can be off by as much, so timestamps and 'doctor' accept exactly this range.
RATE_ERROR_MIN, RATE_ERROR_MAX = -0.15, 0.10


def rate_settings(sample_rate_hz: float) -> tuple[int, Dlpf, float]:
    """(SMPLRT_DIV, DLPF, actual rate in Hz) for a wanted rate; the low-pass stays on (1 kHz base).

    The divider only reaches 1000/n Hz, so rates that do not divide 1000 come out up to ~5 % off
    (e.g. 95 -> 90.9 Hz); the driver reports and timestamps the actual rate.
    """
    if not (MIN_RATE_HZ <= sample_rate_hz <= MAX_RATE_HZ):
        raise ConfigError(f"sample_rate_hz = {sample_rate_hz!r}: out of range (allowed: "
                          f"{MIN_RATE_HZ:g}..{MAX_RATE_HZ:g} Hz)")
    ratio = DLPF_ON_GYRO_RATE_HZ / sample_rate_hz
    div = min((int(ratio) - 1, int(ratio)), key=lambda d: abs(DLPF_ON_GYRO_RATE_HZ / (1 + d) / sample_rate_hz - 1))
    actual = DLPF_ON_GYRO_RATE_HZ / (1 + div)
    return div, Dlpf.for_rate(actual), actual


def counts_to_g(data: bytes | bytearray, lsb_per_g: float) -> np.ndarray:
    """Big-endian signed 16-bit X, Y, Z frames -> (n, 3) acceleration in g."""
    counts = np.frombuffer(bytes(data), dtype=">i2").reshape(-1, 3)
    return counts.astype(np.float64) / lsb_per_g


# An address NACK (EREMOTEIO from most adapters, ENXIO from i2c-gpio) means the chip never took
# part, so nothing left its FIFO: only then is repeating a FIFO read safe. Any other error (EIO,
# ETIMEDOUT, ...) may come after some bytes moved, and the kernel driver resets the FIFO then.
NOTHING_MOVED_ERRNOS = frozenset({errno.EREMOTEIO, errno.ENXIO})
OVERFLOW_MARGIN_FRAMES = 3  # reset this close to full, as the kernel does ("3 data set free remaining")


class _BusDown(Exception):
    """Internal: a transaction kept failing (``reason``, ``errno``); the driver backs off and re-initialises later."""

    def __init__(self, reason: str, code: int | None):
        super().__init__(reason, code)
        self.reason, self.code = reason, code

    @property
    def nothing_moved(self) -> bool:
        return self.code in NOTHING_MOVED_ERRNOS


class MPU6050:
    """The accelerometer of an MPU-6050 (or a known sibling or clone), read through its FIFO.

    ``bus`` is anything with the smbus2 methods used here (``smbus2.SMBus``, or the emulator);
    without it ``open()`` opens ``/dev/i2c-<bus_number>``. The constructor never touches the bus.
    """

    RETRIES = 3  # immediate attempts per transaction before the bus counts as down
    BACKOFF_FIRST_S = 0.5
    BACKOFF_MAX_S = 8.0
    RESET_WAIT_S = 0.1  # after DEVICE_RESET and SIGNAL_PATH_RESET (register access: up to 100 ms)
    WAKE_SETTLE_S = 0.01  # after waking, before the next writes (the kernel waits 5-10 ms)
    CONFIGURE_ATTEMPTS = 3  # a setting that does not stick is written again this often
    NO_DATA_S = 3.0  # an awake, configured chip that delivers nothing this long is re-initialised

    def __init__(self, *, bus=None, bus_number: int = 1, address: int = 0x68, sample_rate_hz: float = 25,
                 range_g: int = 2, clock: Clock | None = None, frozen_after_s: float = 5.0):
        if address not in (0x68, 0x69):
            raise ConfigError(f"address = {address!r}: the MPU-6050 answers at 0x68 (AD0 low) or 0x69 (AD0 high)")
        self.smplrt_div, self.dlpf, self.sample_rate_hz = rate_settings(sample_rate_hz)
        self.range = AccelRange.from_g(range_g)
        self.requested_rate_hz = float(sample_rate_hz)
        self.bus = bus
        self.bus_number = bus_number
        self.address = address
        self.clock = clock or SystemClock()
        self.frozen_after_s = frozen_after_s
        self.chip: Chip | None = None
        self._closed = True
        self._lost_at_start = 0
        self._own_bus = bus is None
        self._events: list[SensorStatus] = []
        self._fault: str | None = None  # the open fault episode, if any
        self._fault_since = 0.0
        self._retry_at: float | None = None  # set while the bus is down
        self._fifo_suspect = False  # a FIFO read failed midway and the FIFO could not be reset yet
        self._backoff_s = self.BACKOFF_FIRST_S
        self._last_data_at = 0.0
        self.fifo_reset_s = 0.0  # monotonic time of the last FIFO reset
        self.last_read_s = 0.0  # monotonic time of the last FIFO count read
        self.frames_read = 0  # frames that passed every check since open(), whatever their timestamps
        self._timing = _Timestamper(self.sample_rate_hz)
        self._last_frame: bytes | None = None
        self._same_since_t: float | None = None
        self._frozen = False

    @property
    def where(self) -> str:
        return f"{self.address:#04x} on /dev/i2c-{self.bus_number}"

    @property
    def fifo_bytes(self) -> int:
        return self.chip.fifo_bytes if self.chip else 1024

    @property
    def fifo_capacity_s(self) -> float:
        """How long the FIFO holds before it overflows."""
        return (self.fifo_bytes // FRAME_BYTES) / self.sample_rate_hz

    # ------------------------------------------------------------------ lifecycle

    def open(self) -> Chip:
        """Open the bus if needed, find the chip and configure it; raises SensorNotFound if absent."""
        if self.bus is None:
            self.bus = open_bus(self.bus_number)
        if self.sample_rate_hz != self.requested_rate_hz:
            log.info("sample rate %.4g Hz requested; the chip's divider gives %.4g Hz",
                     self.requested_rate_hz, self.sample_rate_hz)
        try:
            self.chip = self.probe()
            self.configure()
        except (_BusDown, SensorError) as exc:
            if self._own_bus:
                self.bus.close()
                self.bus = None
            if isinstance(exc, SensorError):
                raise
            raise SensorNotFound(f"no device answered at {self.where} ({exc.reason}); check wiring "
                                 "(hardware.md) or run 'sitsense doctor'") from None
        self._closed = False
        return self.chip

    def close(self) -> None:
        """Put the chip to sleep (best effort) and close a bus we opened; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self.bus is None:
            return
        try:
            self.bus.write_byte_data(self.address, Reg.PWR_MGMT_1, Bit.SLEEP)
        except OSError:
            pass
        if self._own_bus:
            self.bus.close()
            self.bus = None

    def probe(self) -> Chip:
        """Read WHO_AM_I; accept the MPU-6050 and the siblings and clones in KNOWN_CHIPS (with a warning)."""
        who = self._read_byte(Reg.WHO_AM_I, retries=self.RETRIES)
        chip = KNOWN_CHIPS.get(who)
        if chip is None:
            raise SensorNotFound(f"the device at {self.where} answered WHO_AM_I={who:#04x}, which is not an "
                                 "MPU-6050 or a known sibling; check the address (0x68, or 0x69 with AD0 high) "
                                 "and the board (hardware.md)")
        if not chip.genuine:
            log.warning("found %s at %s, not a genuine MPU-6050; using it the same way", chip.describe(), self.where)
        return chip

    def configure(self) -> None:
        """Reset, wake, accelerometer only, low-pass and rate, range; then a fresh FIFO of accelerometer frames.

        A setting that reads back wrong is written again (up to CONFIGURE_ATTEMPTS times); the FIFO
        starts only once the accelerometer's start-up time since waking has passed.
        """
        chip = self.chip or KNOWN_CHIPS[0x68]
        for attempt in range(1, self.CONFIGURE_ATTEMPTS + 1):
            woke_at = self._write_settings(chip)
            wrong = self._wrong_setting(chip)
            if not wrong:
                break
            if attempt == self.CONFIGURE_ATTEMPTS:
                raise SensorError(f"{wrong} at {self.where}, {attempt} times; the chip does not keep its "
                                  "settings (power or wiring problem?)")
            log.info("%s at %s; setting the chip up again", wrong, self.where)
        left_s = chip.accel_startup_s - (self.clock.monotonic() - woke_at)
        if left_s > 0:
            self.clock.sleep(left_s)
        self.reset_fifo()

    def _accel_config2(self, chip: Chip) -> int:
        size = (chip.fifo_size_code or 0) << Bit.FIFO_SIZE_SHIFT
        return size | self.dlpf.cfg  # ACCEL_FCHOICE_B = 0: the low-pass is on

    def _write_settings(self, chip: Chip) -> float:
        """The configuration writes; returns when the chip woke (its start-up counts from there)."""
        w = self._write
        w(Reg.PWR_MGMT_1, Bit.DEVICE_RESET)
        self.clock.sleep(self.RESET_WAIT_S)
        w(Reg.SIGNAL_PATH_RESET, Bit.GYRO_RESET | Bit.ACCEL_RESET | Bit.TEMP_RESET)
        self.clock.sleep(self.RESET_WAIT_S)
        # Waking clears SLEEP; the gyro is in standby so it cannot serve as the clock: use the internal one.
        w(Reg.PWR_MGMT_1, Bit.CLKSEL_INTERNAL_8MHZ | Bit.TEMP_DIS)
        woke_at = self.clock.monotonic()
        self.clock.sleep(self.WAKE_SETTLE_S)
        w(Reg.PWR_MGMT_2, Bit.STBY_XG | Bit.STBY_YG | Bit.STBY_ZG)
        w(Reg.CONFIG, self.dlpf.cfg)
        w(Reg.SMPLRT_DIV, self.smplrt_div)
        w(Reg.ACCEL_CONFIG, self.range.afs_sel << Bit.AFS_SEL_SHIFT)
        if chip.accel_config2:
            w(Reg.ACCEL_CONFIG2, self._accel_config2(chip))  # the 6500 family low-passes the accelerometer here
        w(Reg.INT_ENABLE, Bit.FIFO_OFLOW)
        return woke_at

    def _wrong_setting(self, chip: Chip) -> str:
        """The first register that does not read back what was written, described; '' if all did."""
        expected = [(Reg.PWR_MGMT_1, Bit.TEMP_DIS, 0xFF), (Reg.PWR_MGMT_2, Bit.STBY_XG | Bit.STBY_YG | Bit.STBY_ZG, 0xFF),
                    (Reg.CONFIG, self.dlpf.cfg, Bit.DLPF_CFG_MASK), (Reg.SMPLRT_DIV, self.smplrt_div, 0xFF),
                    (Reg.ACCEL_CONFIG, self.range.afs_sel << Bit.AFS_SEL_SHIFT, Bit.AFS_SEL_MASK),
                    (Reg.INT_ENABLE, Bit.FIFO_OFLOW, Bit.FIFO_OFLOW)]
        if chip.accel_config2 and chip.known:
            expected.append((Reg.ACCEL_CONFIG2, self._accel_config2(chip), 0xCF))
        for reg, want, mask in expected:
            got = self._read_byte(reg)
            if got & mask != want & mask:
                return f"{reg.name} reads {got:#04x} after writing {want:#04x}"
        return ""

    def reset_fifo(self) -> None:
        """Empty the FIFO the kernel's way: stop filling it, reset it while disabled (the MPU-6050 resets
        only then), clear a stale overflow flag, and enable it again; checked (empty, then enabled),
        as a lost write would leave old frames in it or a FIFO that fills but reads as padding."""
        w = self._write
        for attempt in range(1, self.CONFIGURE_ATTEMPTS + 1):
            w(Reg.FIFO_EN, 0)
            w(Reg.USER_CTRL, 0)
            w(Reg.USER_CTRL, Bit.FIFO_RESET)
            w(Reg.USER_CTRL, Bit.USER_FIFO_EN)
            self._read_byte(Reg.INT_STATUS)
            left = self._fifo_count()  # nothing is filling it yet: 0 unless the reset was lost
            enabled_at = self.clock.monotonic()
            w(Reg.FIFO_EN, Bit.ACCEL_FIFO_EN)
            user, fifo_en = self._read_byte(Reg.USER_CTRL), self._read_byte(Reg.FIFO_EN)
            if left == 0 and user & Bit.USER_FIFO_EN and fifo_en == Bit.ACCEL_FIFO_EN:
                break
            if attempt == self.CONFIGURE_ATTEMPTS:
                raise SensorError(f"the FIFO at {self.where} does not reset and stay enabled ({left} bytes "
                                  f"left, USER_CTRL={user:#04x}, FIFO_EN={fifo_en:#04x}); power or wiring problem?")
        self._timing.restart(enabled_at, counts_as_loss=self._fault is not None)
        self.fifo_reset_s = self._last_data_at = self.clock.monotonic()

    # ------------------------------------------------------------------ reading

    def read(self) -> tuple[np.ndarray, np.ndarray]:
        """Drain the FIFO: ``(t_s (n,), accel_g (n, 3))``; faults are handled and reported, never raised.

        Three transactions: the count, the frames it promises, then INT_ENABLE..INT_STATUS. A block
        comes out only if no byte could have gone missing: the count is whole frames below the
        overflow margin, the read did not break off, the FIFO did not overflow meanwhile and the
        chip was not reset meanwhile.
        """
        now = self.clock.monotonic()
        if self._retry_at is not None:
            if now < self._retry_at:
                return _empty()
            if not self._reinitialise(now):
                return _empty()
        stage = "count"
        try:
            t_before = self.clock.monotonic()
            count = self._fifo_count()
            t_count = self.last_read_s = self.clock.monotonic()
            if count >= self.fifo_bytes - OVERFLOW_MARGIN_FRAMES * FRAME_BYTES:
                self._overflow(t_count, f"FIFO at {count} of {self.fifo_bytes} bytes: reads came too late")
                return _empty()
            if count % FRAME_BYTES:
                self._overflow(t_count, f"FIFO count {count} is not whole {FRAME_BYTES}-byte frames (bytes "
                                        "went missing)")
                return _empty()
            n = count // FRAME_BYTES
            if n == 0:
                self._check_alive(t_count)
                return _empty()
            stage = "fifo"
            data = self._read_fifo(n * FRAME_BYTES)
            stage = "status"
            # INT_ENABLE to INT_STATUS in one read: INT_ENABLE is 0 after a power-on reset, so it
            # tells a brown-out during the block (an empty FIFO then reads 0xFF or its last byte).
            # Reading clears INT_STATUS, so it too is repeated only after an address NACK.
            int_enable, _, status = self._attempt(
                lambda: self.bus.read_i2c_block_data(self.address, Reg.INT_ENABLE, 3),
                retry_errnos=NOTHING_MOVED_ERRNOS)
        except _BusDown as exc:
            if stage == "count" or (stage == "fifo" and exc.nothing_moved):
                self._bus_down(now, exc.reason)
            else:  # bytes may have left the FIFO mid-frame, or the block cannot be checked: start afresh
                self._flush(now, f"{exc.reason} {'during' if stage == 'fifo' else 'after'} the FIFO read")
            return _empty()
        if int_enable != Bit.FIFO_OFLOW:
            self._check_alive(t_count, force=True)  # the block may be padding from a reset chip: dropped
            return _empty()
        if status & Bit.FIFO_OFLOW:
            self._overflow(t_count, "FIFO overflowed before the block was read (the host was late); "
                                    "block discarded")
            return _empty()
        t_s = self._timing.place(n, t_before, t_count)
        self.frames_read += n
        accel_g = counts_to_g(data, self.range.lsb_per_g)
        zeros = ~accel_g.any(axis=1)
        if zeros.all():
            # A woken-but-unconfigured or browned-out chip produces exact zeros; no body reads 0 g.
            self._check_alive(t_count, force=True)
            return _empty()
        self._last_data_at = t_count
        self._recovered(t_count)
        self._check_frozen(data, t_s)
        if zeros.any():
            keep = ~zeros
            return t_s[keep], accel_g[keep]
        return t_s, accel_g

    def pop_events(self) -> list[SensorStatus]:
        """Status changes since the last call."""
        out, self._events = self._events, []
        return out

    def _fifo_count(self) -> int:
        hi, lo = self._read_block(Reg.FIFO_COUNTH, 2)  # the high byte first latches the count
        return ((hi & 0x1F) << 8) | lo

    def _read_fifo(self, nbytes: int) -> bytes:
        """One transfer of ``nbytes`` from FIFO_R_W, repeated only after an address NACK."""
        if nbytes <= SMBUS_BLOCK_MAX:
            return bytes(self._attempt(lambda: self.bus.read_i2c_block_data(self.address, Reg.FIFO_R_W, nbytes),
                                       retry_errnos=NOTHING_MOVED_ERRNOS))
        from smbus2 import i2c_msg

        def xfer():
            wr = i2c_msg.write(self.address, [Reg.FIFO_R_W])
            rd = i2c_msg.read(self.address, nbytes)
            self.bus.i2c_rdwr(wr, rd)
            return bytes(rd)

        return self._attempt(xfer, retry_errnos=NOTHING_MOVED_ERRNOS)

    # ------------------------------------------------------------------ faults

    def _overflow(self, now: float, detail: str) -> None:
        self._fault_event("fifo_overflow", now, f"{detail}; FIFO reset")
        self._reset_or_back_off(now)

    def _flush(self, now: float, reason: str) -> None:
        """A FIFO read went wrong after bytes may have moved: frame alignment is unknown, so reset it."""
        self._fault_event("i2c_error", now, f"{reason}: frames may be cut; FIFO reset")
        self._reset_or_back_off(now)

    def _reset_or_back_off(self, now: float) -> None:
        try:
            self.reset_fifo()
        except (_BusDown, SensorError) as exc:
            self._fifo_suspect = True  # reset on recovery, before anything is read
            self._bus_down(now, exc.reason if isinstance(exc, _BusDown) else str(exc))

    def _check_alive(self, now: float, force: bool = False) -> None:
        """No data: was the chip reset or put to sleep (brown-out), or has it stopped sampling?"""
        if not force and now - self._last_data_at < max(self.NO_DATA_S, 3.0 / self.sample_rate_hz):
            return
        try:
            pwr = self._read_byte(Reg.PWR_MGMT_1)
            user = self._read_byte(Reg.USER_CTRL)
            fifo_en = self._read_byte(Reg.FIFO_EN)
        except _BusDown as exc:
            self._bus_down(now, exc.reason)
            return
        if pwr & Bit.SLEEP or not user & Bit.USER_FIFO_EN or not fifo_en & Bit.ACCEL_FIFO_EN:
            kind, detail = "chip_reset", (f"the chip was reset or fell asleep (PWR_MGMT_1={pwr:#04x}, "
                                          f"USER_CTRL={user:#04x}); woken and reconfigured")
        else:
            kind, detail = "no_data", f"no samples for {now - self._last_data_at:.1f} s; reconfigured"
        self._fault_event(kind, now, detail)  # first, so the samples the reset discards count as lost
        try:
            self.configure()
        except _BusDown as exc:
            self._bus_down(now, exc.reason)
        except SensorError as exc:
            self._bus_down(now, str(exc))

    def _bus_down(self, now: float, reason: str) -> None:
        if self._fault != "i2c_error":
            self._backoff_s = self.BACKOFF_FIRST_S
            self._fault_event("i2c_error", now, f"{reason}; retrying with backoff")
        else:
            self._backoff_s = min(self.BACKOFF_MAX_S, self._backoff_s * 2)
            log.debug("bus still down at %s: %s; next try in %.1f s", self.where, reason, self._backoff_s)
        self._retry_at = now + self._backoff_s

    def _reinitialise(self, now: float) -> bool:
        """After bus errors: resume if the chip kept its settings (the FIFO kept filling), else set it up
        again; a FIFO whose alignment is in doubt is reset first."""
        try:
            if not self._still_configured():
                self.chip = self.probe()
                self.configure()
            elif self._fifo_suspect:
                self.reset_fifo()
            self._fifo_suspect = False
        except (_BusDown, SensorError) as exc:
            self._bus_down(now, exc.reason if isinstance(exc, _BusDown) else str(exc))
            return False
        self._retry_at = None
        return True

    def _still_configured(self) -> bool:
        return (self._read_byte(Reg.PWR_MGMT_1) == Bit.TEMP_DIS
                and self._read_byte(Reg.SMPLRT_DIV) == self.smplrt_div
                and self._read_byte(Reg.FIFO_EN) == Bit.ACCEL_FIFO_EN
                and bool(self._read_byte(Reg.USER_CTRL) & Bit.USER_FIFO_EN))

    def _check_frozen(self, data: bytes, t_s: np.ndarray) -> None:
        frames = np.frombuffer(data, dtype=np.uint8).reshape(-1, FRAME_BYTES)
        changed = np.flatnonzero((frames[1:] != frames[:-1]).any(axis=1)) + 1
        if self._last_frame is None or frames[0].tobytes() != self._last_frame:
            self._same_since_t = float(t_s[0])
        if len(changed):
            self._same_since_t = float(t_s[changed[-1]])
        self._last_frame = frames[-1].tobytes()
        assert self._same_since_t is not None  # set above on the first frame
        still_s = float(t_s[-1]) - self._same_since_t
        if still_s >= self.frozen_after_s and not self._frozen:
            self._frozen = True
            detail = f"identical samples for {still_s:.1f} s: the chip may have hung"
            log.warning("sensor frozen at %s: %s", self.where, detail)
            self._events.append(SensorStatus(t=float(t_s[-1]), status="frozen", detail=detail))
        elif still_s < self.frozen_after_s and self._frozen:
            self._frozen = False
            log.warning("sensor at %s: samples vary again", self.where)
            self._events.append(SensorStatus(t=float(t_s[-1]), status="ok", detail="samples vary again"))

    @property
    def status(self) -> str:
        """'ok', 'closed', or the current fault: i2c_error, fifo_overflow, chip_reset, no_data, frozen."""
        if self._closed:
            return "closed"
        return "frozen" if self._frozen else (self._fault or "ok")

    def _fault_event(self, kind: str, now: float, detail: str) -> None:
        """Start (or continue) a fault episode: log and report only when it starts."""
        if self._fault == kind:
            log.debug("%s continues at %s: %s", kind, self.where, detail)
            return
        if self._fault is None:  # chained faults (a long outage, then an overflow) share one tally
            self._fault_since, self._lost_at_start = now, self._timing.lost_samples
        self._fault = kind
        log.warning("sensor %s at %s: %s", kind, self.where, detail)
        self._events.append(SensorStatus(t=now, status=kind, detail=detail))

    def _recovered(self, now: float) -> None:
        """First good block after a fault episode: report it closed, with the samples (and time) it cost."""
        if self._fault is None:
            return
        kind = self._fault
        lost = self._timing.lost_samples - self._lost_at_start
        detail = (f"recovered from {kind} after {now - self._fault_since:.1f} s; {lost} samples "
                  f"({lost * self._timing.period_s:.1f} s) lost")
        log.warning("sensor at %s %s", self.where, detail)
        self._events.append(SensorStatus(t=now, status="ok", detail=detail, lost_samples=lost))
        self._fault, self._backoff_s = None, self.BACKOFF_FIRST_S

    # ------------------------------------------------------------------ bus access

    def _attempt(self, op, retries: int = RETRIES, retry_errnos: frozenset[int] | None = None):
        """Run one transaction, retrying at once on failure; ``retry_errnos`` limits retries to errors
        after which a repeat is safe."""
        last: OSError | None = None
        for i in range(retries):
            try:
                return op()
            except OSError as exc:
                if isinstance(exc, SensorError):
                    raise
                last = exc
                if retry_errnos is not None and exc.errno not in retry_errnos:
                    break
                if i + 1 < retries:
                    self.clock.sleep(0.002)
        reason = (f"{last.strerror or last} ({errno.errorcode.get(last.errno, last.errno)})"
                  if last and last.errno else str(last))
        raise _BusDown(reason, last.errno if last else None)

    def _read_byte(self, reg: int, retries: int = RETRIES) -> int:
        return self._attempt(lambda: self.bus.read_byte_data(self.address, reg), retries)

    def _read_block(self, reg: int, length: int) -> list[int]:
        return self._attempt(lambda: self.bus.read_i2c_block_data(self.address, reg, length))

    def _write(self, reg: int, value: int) -> None:
        self._attempt(lambda: self.bus.write_byte_data(self.address, reg, value))


def _empty() -> tuple[np.ndarray, np.ndarray]:
    return np.empty(0), np.empty((0, 3))


class _Timestamper:
    """Sample times from the sample count, the host clock, and the chip's period learned within its tolerance.

    Between FIFO resets every sample is counted, so sample i was taken at t0 + i * P for some t0
    and a period P inside the oscillator's tolerance. Each poll brackets the newest sample: taken
    before the count read ended, and less than one period before it began. The brackets of a
    session narrow down P; each block continues from the last timestamp at that period and is
    pulled back into the bracket when it drifts out, every step staying within the tolerance.
    So times only move forward, their spacing never implies a rate the chip cannot have, and the
    error stays within about one bracket. After a reset the next block is placed in its bracket
    afresh, and the time since the last delivered sample is counted as lost samples.
    """

    def __init__(self, sample_rate_hz: float):
        self.nominal_s = 1.0 / sample_rate_hz
        self.step_min_s = self.nominal_s / (1 + RATE_ERROR_MAX)  # the fastest chip's period
        self.step_max_s = self.nominal_s / (1 + RATE_ERROR_MIN)  # the slowest chip's period
        self.period_s = self.nominal_s
        self.last_t: float | None = None
        self.lost_samples = 0  # running total of samples never delivered (gaps after resets)
        self._loss_from: float | None = None  # before the first delivery: where the stream began
        self._enabled_at = -math.inf
        self._ref: tuple[int, float, float] | None = None  # (sample index, bracket) of the session's best poll
        self._p_lo, self._p_hi = self.step_min_s, self.step_max_s  # periods consistent with the session
        self._newest = -1  # index of the newest sample placed in this session

    def restart(self, enabled_at: float, counts_as_loss: bool = False) -> None:
        """The FIFO was reset and filling again from ``enabled_at``: the next block starts a new session.

        Before anything was delivered the stream starts here, unless the reset ends a fault, whose
        samples count as lost from where the stream began.
        """
        self._enabled_at = enabled_at
        self._ref, self._newest = None, -1
        self._p_lo, self._p_hi = self.step_min_s, self.step_max_s
        if self.last_t is None and (self._loss_from is None or not counts_as_loss):
            self._loss_from = enabled_at - 0.5 * self.period_s  # a virtual sample just before the first

    def place(self, n: int, read_began: float, read_ended: float) -> np.ndarray:
        """Times of ``n`` frames just read; the count that announced them was read between the two times."""
        lo, hi = read_began - self._p_hi, read_ended  # where the newest frame was sampled
        newest = self._newest + n
        if self._ref is None:
            t = 0.5 * (lo + hi) - self.period_s * np.arange(n - 1, -1, -1)
            floor = self._enabled_at if self.last_t is None else max(self._enabled_at, self.last_t + self.step_min_s)
            t = np.maximum(t, floor + self.step_min_s * np.arange(n))  # after the reset and the last sample
            since = self.last_t if self.last_t is not None else self._loss_from
            if since is not None:
                self.lost_samples += max(0, int(round((t[0] - since) / self.period_s)) - 1)
            self._ref = (newest, lo, hi)
        else:
            assert self.last_t is not None  # a reference is taken with the first frames placed
            i0, lo0, hi0 = self._ref
            span = newest - i0
            p_lo, p_hi = max(self._p_lo, (lo - hi0) / span), min(self._p_hi, (hi - lo0) / span)
            if p_lo <= p_hi:
                self._p_lo, self._p_hi = p_lo, p_hi
                self.period_s = min(max(self.period_s, p_lo), p_hi)
            else:  # brackets that cannot all hold: trust only the newest from here on
                self._p_lo, self._p_hi = self.step_min_s, self.step_max_s
                self._ref = (newest, lo, hi)
            predicted = self.last_t + n * self.period_s
            target = min(max(predicted, lo), hi)
            step = min(max((target - self.last_t) / n, self.step_min_s), self.step_max_s)
            t = self.last_t + step * np.arange(1, n + 1)
            if hi - lo < self._ref[2] - self._ref[1]:
                self._ref = (newest, lo, hi)  # a tighter bracket makes a better reference
        self._newest = newest
        self.last_t = float(t[-1])
        return t


def open_bus(bus_number: int):
    """Open /dev/i2c-N with smbus2, turning the usual failures into one clear line."""
    dev = f"/dev/i2c-{bus_number}"
    try:
        from smbus2 import SMBus

        return SMBus(bus_number)
    except FileNotFoundError:
        raise SensorNotFound(f"{dev} does not exist: I2C is not enabled (run 'sudo raspi-config nonint "
                             "do_i2c 0' and reboot) or sensor.i2c_bus is wrong; see hardware.md") from None
    except PermissionError:
        raise SensorAccessDenied(f"permission denied on {dev}: add this user to the i2c group ('sudo adduser "
                                 "$USER i2c', then log in again)") from None
    except OSError as exc:
        raise SensorNotFound(f"cannot open {dev}: {exc.strerror or exc}") from None
