"""``doctor`` names the chip it found with its FIFO in one line, and judges the rate by the oscillator's tolerance."""

from __future__ import annotations

import numpy as np
import pytest

from sitsense.clock import SimClock
from sitsense.config import SensorConfig
from sitsense.doctor import check_samples, check_sensor
from sitsense.sensor.live import open_source
from sitsense.traces import Trace, write_trace
from tests.sensor_fakes import START


@pytest.fixture
def still_file(tmp_path):
    t = np.arange(25 * 30) / 25
    trace = Trace(t, np.tile([0.0, 0.0, 1.0], (len(t), 1)) + 1e-3 * np.sin(t)[:, None],
                  metadata={"sample_rate_hz": "25"})
    path = tmp_path / "still.csv"
    write_trace(path, trace)
    return path


@pytest.mark.parametrize("chip, line", [
    ("MPU-6050", "MPU-6050 (WHO_AM_I 0x68, 1024-byte FIFO) at 0x68 on /dev/i2c-1"),
    ("ICM-20689", "ICM-20689 (WHO_AM_I 0x98, 4096-byte FIFO) at 0x68 on /dev/i2c-1; a sibling or clone"),
    ("clone 0x72", "unknown clone (WHO_AM_I 0x72, FIFO size unknown, 512 bytes assumed) at 0x68"),
])
def test_the_sensor_line_names_the_chip_and_its_fifo(still_file, chip, line):
    source = open_source(f"fake:{still_file}", SensorConfig(), SimClock(START), connect=False, chip=chip)
    check = check_sensor(source)
    source.close()
    assert check.status == "pass" and check.detail.startswith(line) and "\n" not in check.detail


@pytest.mark.parametrize("clock_error, status", [(-0.14, "pass"), (0.09, "pass"), (-0.17, "fail"), (0.12, "fail")])
def test_the_rate_check_accepts_what_the_internal_oscillator_may_do_and_no_more(still_file, clock_error, status):
    """PS-MPU-6000A: -15 % to +10 % over temperature with the gyros off; a genuine chip at the edge passes."""
    source = open_source(f"fake:{still_file}", SensorConfig(), SimClock(START), seconds=8, connect=False,
                         clock_error=clock_error)
    assert check_sensor(source).status == "pass"
    rate = {c.name: c for c in check_samples(source, 8)}["sample rate"]
    assert rate.status == status, rate.detail
