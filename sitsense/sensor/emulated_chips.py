"""What the emulator knows about each part: registers and behaviour, from datasheets and register maps.

This is a second, independent transcription on purpose. The driver (``mpu6050.py``) has its own
register map and chip table; the emulator must not import them, or a wrong address, bit or FIFO
size in the driver would be copied into the emulator and every test would agree with the mistake.
So the register addresses and bits stand twice, the same numbers in the same order (``duplicates``
lists the pair): that copy is kept on purpose, and neither module may import the other.

Sources, by key:

* ``PS-6000``: InvenSense PS-MPU-6000A-00 rev 3.4 (MPU-6000/6050 product specification): 1024-byte
  FIFO; start-up time for register read/write up to 100 ms (section 6.4); internal relaxation
  oscillator with the gyros off (section 7.15).
* ``RM-6000``: RM-MPU-6000A-00 rev 4.2 (MPU-6000/6050 register map): reset values (PWR_MGMT_1 0x40,
  WHO_AM_I 0x68, all others 0); FIFO_RESET acts only "while FIFO_EN equals 0" (USER_CTRL bit 6);
  the FIFO cannot be written or read while USER_CTRL.FIFO_EN is 0; on overflow the oldest data is
  lost; an empty FIFO reads back the last byte read.
* ``RM-9250``: RM-MPU-9250A-00 rev 1.4 (the MPU-6500 family's map): PWR_MGMT_1 resets to 0x01
  (awake); CONFIG bit 6 FIFO_MODE (1: a full FIFO drops new data); USER_CTRL.FIFO_EN only gates
  serial access, writes into the FIFO follow the FIFO_EN register; FIFO_RST is asynchronous; an
  empty FIFO reads back the last byte read; ACCEL_CONFIG2 (0x1D) low-passes the accelerometer.
* ``ICM``: the ICM-206xx register maps: ACCEL_CONFIG2 bits 7:6 FIFO_SIZE (0: 512 B, 1: 1 KB,
  2: 2 KB, 3: 4 KB); PWR_MGMT_1 resets to 0x41 (asleep); an empty FIFO reads 0xFF.
* ``Linux``: drivers/iio/imu/inv_mpu6050 (inv_mpu_core.c ``hw_info``, inv_mpu_iio.h): WHO_AM_I
  values, FIFO sizes, accelerometer start-up 20 ms (MPU-6050) and 30 ms (MPU-6500 family).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# ---------------------------------------------------------------- register map (RM-6000, RM-9250)

SMPLRT_DIV = 0x19
CONFIG = 0x1A
ACCEL_CONFIG = 0x1C
ACCEL_CONFIG2 = 0x1D  # reserved on the MPU-6050
FIFO_EN = 0x23
INT_ENABLE = 0x38
INT_STATUS = 0x3A
ACCEL_XOUT_H = 0x3B  # six bytes X, Y, Z big-endian; then TEMP_OUT (2) and GYRO (6) up to 0x48
DATA_LAST = 0x48
SIGNAL_PATH_RESET = 0x68
USER_CTRL = 0x6A
PWR_MGMT_1 = 0x6B
PWR_MGMT_2 = 0x6C
FIFO_COUNTH = 0x72
FIFO_COUNTL = 0x73
FIFO_R_W = 0x74
WHO_AM_I = 0x75

# PWR_MGMT_1
DEVICE_RESET = 0x80
SLEEP = 0x40
# PWR_MGMT_2: accelerometer standby bits (X, Y, Z)
STBY_ACCEL = (0x20, 0x10, 0x08)
# USER_CTRL
USER_FIFO_EN = 0x40
FIFO_RESET = 0x04
USER_CTRL_SELF_CLEARING = 0x04 | 0x02 | 0x01  # FIFO_RESET, I2C_MST_RESET, SIG_COND_RESET
# FIFO_EN register: what goes into the FIFO, in register order
FIFO_TEMP, FIFO_XG, FIFO_YG, FIFO_ZG, FIFO_ACCEL = 0x80, 0x40, 0x20, 0x10, 0x08
# INT_ENABLE / INT_STATUS
FIFO_OFLOW = 0x10
DATA_RDY = 0x01
# CONFIG
DLPF_CFG = 0x07
FIFO_MODE = 0x40  # MPU-6500 family only
# ACCEL_CONFIG
AFS_SEL_SHIFT, AFS_SEL_MASK = 3, 0x18
# ACCEL_CONFIG2 (ICM-206xx)
FIFO_SIZE_SHIFT = 6

READ_ONLY = frozenset({WHO_AM_I, INT_STATUS, FIFO_COUNTH, FIFO_COUNTL, *range(ACCEL_XOUT_H, DATA_LAST + 1)})


@dataclass(frozen=True)
class ChipModel:
    """One part as the emulator plays it."""

    name: str
    who_am_i: int
    fifo_bytes: int  # fixed size, or the size at power-on when ``fifo_size_field``
    power_on_pwr_mgmt_1: int
    accel_startup_s: float  # samples taken this soon after waking read zero
    mpu6500_family: bool  # ACCEL_CONFIG2 and FIFO_MODE exist; USER_CTRL.FIFO_EN gates only serial access
    fifo_size_field: bool = False  # ACCEL_CONFIG2 bits 7:6 choose 512 B .. 4 KB
    empty_fifo_byte: int | None = None  # None: an empty FIFO repeats the last byte read
    register_startup_s: float = 0.1  # after power-on or DEVICE_RESET, writes do not stick this long
    sources: str = ""

    def fifo_size(self, accel_config2: int) -> int:
        if self.fifo_size_field:
            return 512 << ((accel_config2 >> FIFO_SIZE_SHIFT) & 0x03)
        return self.fifo_bytes


_6500: dict[str, Any] = dict(power_on_pwr_mgmt_1=0x01, accel_startup_s=0.030, mpu6500_family=True)

MODELS: dict[str, ChipModel] = {m.name: m for m in (
    ChipModel("MPU-6050", 0x68, 1024, 0x40, 0.020, False, sources="PS-6000, RM-6000, Linux"),
    ChipModel("MPU-6500", 0x70, 512, **_6500, sources="RM-9250 (same family), Linux"),
    ChipModel("MPU-9250", 0x71, 512, **_6500, sources="RM-9250, Linux"),
    ChipModel("MPU-9255", 0x73, 512, **_6500, sources="RM-9250 (same family), Linux"),
    ChipModel("MPU-6515", 0x74, 512, **_6500, sources="Linux; family behaviour from RM-9250"),
    ChipModel("MPU-6880", 0x78, 4096, **_6500, sources="Linux; family behaviour from RM-9250"),
    ChipModel("ICM-20689", 0x98, 512, power_on_pwr_mgmt_1=0x41, accel_startup_s=0.030, mpu6500_family=True,
              fifo_size_field=True, empty_fifo_byte=0xFF, sources="ICM, Linux"),
    # No datasheet exists for this clone; it is played as an MPU-6050 copy that answers 0x72.
    ChipModel("clone 0x72", 0x72, 1024, 0x40, 0.020, False, sources="none: assumed an MPU-6050 copy"),
)}

BY_WHO_AM_I: dict[int, ChipModel] = {m.who_am_i: m for m in MODELS.values()}


def model_for(chip: str | int) -> ChipModel:
    """A model by name or WHO_AM_I; an unknown WHO_AM_I gives an MPU-6050 answering that value."""
    if isinstance(chip, str):
        try:
            return MODELS[chip]
        except KeyError:
            raise ValueError(f"unknown chip {chip!r} (known: {', '.join(MODELS)})") from None
    if chip in BY_WHO_AM_I:
        return BY_WHO_AM_I[chip]
    base = MODELS["MPU-6050"]
    return ChipModel(f"unknown part 0x{chip:02x}", chip, base.fifo_bytes, base.power_on_pwr_mgmt_1,
                     base.accel_startup_s, False, sources="none")
