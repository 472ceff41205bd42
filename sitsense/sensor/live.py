"""The live sample source: the driver polled about once a second, for the real chip or a fake one.

``open_source(spec, cfg)`` is what commands use: ``mpu6050`` is the chip on ``/dev/i2c-N``;
``fake:TRACE`` is the register emulator playing a trace file through the very same driver, on a
clock that can run faster than real time (``speed``) and that stops by itself at the trace's end;
``fake:plan:stand 1m, sit 35m`` plays a posture script through the synthetic wearer instead.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime, tzinfo
from typing import Callable, Iterator

import numpy as np

from ..clock import Clock, ScaledClock, SimClock, SystemClock, today_at_nine
from ..config import SensorConfig
from ..errors import ConfigError
from ..events import SensorStatus
from .mpu6050 import MAX_RATE_HZ, MIN_RATE_HZ, MPU6050, Chip

log = logging.getLogger(__name__)

FIFO_MARGIN = 0.6  # poll before the FIFO is 60 % full, so a late wake-up does not overflow it


class LiveSource:
    """A SampleSource over an MPU6050 driver: sleep on the clock, drain the FIFO, yield the block.

    One wake-up per ``poll_interval_s`` (never one per sample). ``stop_after_s`` ends the
    stream after that much clock time; ``exhausted`` (a callable) ends it when a fake sensor's
    trace is used up. Sensor faults never end it: they arrive as events from ``pop_events()``.
    With ``yield_empty`` a poll that brought nothing (the sensor is faulty) still yields an empty
    block, so the consumer keeps running: it sees the status events and can ping a watchdog.
    ``wake_at(t)`` asks for one extra poll at clock time ``t`` (the service uses it so an alert
    goes out when it falls due, not up to a poll interval later).
    """

    def __init__(self, driver: MPU6050, *, clock: Clock | None = None, poll_interval_s: float = 1.0,
                 stop_after_s: float | None = None, exhausted: Callable[[], bool] | None = None,
                 spec: str = "mpu6050", emulator=None, yield_empty: bool = True):
        self.driver = driver
        self.clock = clock or driver.clock
        self.requested_poll_s = poll_interval_s
        self.poll_interval_s = poll_interval_s
        self.stop_after_s = stop_after_s
        self.spec = spec
        self.emulator = emulator
        self.yield_empty = yield_empty
        self.polls = 0
        self.start_s: float | None = None
        self._exhausted = exhausted
        self._opened = False
        self._closed = False
        self._running = False
        self._extra_wake_s: float | None = None

    def wake_at(self, t_s: float) -> None:
        """Poll once more at clock time ``t_s`` if that comes before the next regular poll."""
        self._extra_wake_s = t_s

    @property
    def sample_rate_hz(self) -> float:
        return self.driver.sample_rate_hz

    @property
    def chip(self) -> Chip | None:
        return self.driver.chip

    def open(self) -> Chip:
        """Find and configure the chip (raises SensorNotFound with a hint if it is not there)."""
        if not self._opened:
            self.driver.open()
            self._opened = True
            limit_s = FIFO_MARGIN * self.driver.fifo_capacity_s
            if self.requested_poll_s > limit_s:
                log.warning("poll interval %.2f s would overflow the %d-byte FIFO at %.4g Hz; polling every "
                            "%.2f s instead", self.requested_poll_s, self.driver.fifo_bytes,
                            self.sample_rate_hz, limit_s)
                self.poll_interval_s = limit_s
        return self.driver.chip  # type: ignore[return-value]

    def blocks(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        if self._opened:
            # opened earlier (commands open first to fail fast); what the FIFO gathered while the
            # rest of the service started may exceed what it holds: start the stream afresh
            try:
                self.driver.reset_fifo()
            except Exception as exc:  # a bus fault here is found and handled by the first read
                log.debug("could not reset the FIFO before the first poll: %s", exc)
        self.open()
        clock = self.clock
        self._running = True
        try:
            self.start_s = start = clock.monotonic()
            end_s = start + self.stop_after_s if self.stop_after_s is not None else math.inf
            next_poll = start + self.poll_interval_s
            while not self._closed:
                now = clock.monotonic()
                extra = self._extra_wake_s
                if extra is not None and extra <= now:
                    extra = self._extra_wake_s = None  # already past: the coming poll covers it
                wake = min(next_poll, end_s, extra if extra is not None else math.inf)
                if wake > now:
                    clock.sleep(wake - now)
                if self._closed:
                    return
                now = clock.monotonic()
                if extra is not None and wake == extra and extra < next_poll:
                    self._extra_wake_s = None  # an extra poll: the regular schedule stays as it was
                else:
                    next_poll += self.poll_interval_s
                    if next_poll <= now:  # we overslept (a stalled host): do not try to catch up in a burst
                        next_poll = now + self.poll_interval_s
                t_s, accel_g = self.driver.read()
                self.polls += 1
                if len(t_s) and t_s[-1] > end_s:
                    keep = t_s <= end_s
                    t_s, accel_g = t_s[keep], accel_g[keep]
                if len(t_s) or self.yield_empty:
                    yield t_s, accel_g
                if clock.monotonic() >= end_s or (self._exhausted is not None and self._exhausted()):
                    return
        finally:
            self._running = False
            self.driver.close()

    def pop_events(self) -> list[SensorStatus]:
        """Sensor status changes (faults and recoveries) since the last call."""
        return self.driver.pop_events()

    def close(self) -> None:
        """Stop after the current poll; idempotent. The chip is put to sleep when the loop ends."""
        self._closed = True
        if not self._running:
            self.driver.close()


def parse_spec(spec: str) -> tuple[str, str]:
    """'mpu6050' -> ('mpu6050', ''); 'fake:PATH' -> ('fake', PATH); anything else is one clear line."""
    spec = spec.strip()
    if spec == "mpu6050":
        return "mpu6050", ""
    if spec.startswith("fake:") and len(spec) > 5:
        return "fake", spec[5:]
    raise ConfigError(f"sensor {spec!r}: unknown sensor (use 'mpu6050' for the chip on I2C, "
                      "'fake:TRACE.csv' for the emulator replaying a trace, or 'fake:plan:sit 30m, walk 2m')")


def fake_clock(start_wall: datetime | None, speed: float | None, start_mono_s: float = 0.0,
               tz: tzinfo | None = None, real0: float | None = None) -> Clock:
    """The clock of a fake sensor: real time x ``speed`` (default 1); ``speed`` 0 means as fast as possible.

    Wall time starts at ``start_wall`` (a trace's start_time), else at 09:00 today, as ``simulate``
    does, so a fake run and a simulation of the same trace see the same active hours.
    """
    if speed is not None and (speed < 0 or not math.isfinite(speed)):
        raise ConfigError(f"--speed {speed!r}: must be a positive number (0: as fast as possible)")
    if start_wall is None:
        start_wall = today_at_nine(tz)
    if speed == 0:
        if real0 is not None:
            raise ConfigError("--epoch needs a real-time clock: give --speed X (X > 0), not 0")
        return SimClock(start_wall, start_mono_s=start_mono_s, tz=tz)
    return ScaledClock(speed or 1.0, start_wall=start_wall, start_mono_s=start_mono_s, tz=tz, real0=real0)


def open_source(spec: str | None, cfg: SensorConfig, clock: Clock | None = None, speed: float | None = None,
                *, seconds: float | None = None, connect: bool = True, tz: tzinfo | None = None,
                epoch: float | None = None, **emulator_options) -> LiveSource:
    """Build (and by default open) the source named by ``spec`` (or ``cfg.source``).

    ``clock`` defaults to the system clock for the chip, and for ``fake:`` to a clock running
    ``speed`` times real time (0: as fast as possible) from the trace's start (its ``start_time``,
    else 09:00 today in ``tz``); the source's ``clock`` attribute is the one to give the Service. ``seconds`` stops after that
    much sensor time. ``emulator_options`` go to MPU6050Emulator (fault injection).

    ``epoch`` (fake sensors, with ``speed``): the system's ``time.monotonic()`` at which the
    trace began. The fake clock and the trace (and fault times) are anchored there, so a service
    started later, or restarted after a kill, reads the trace where the wearer is now.
    """
    kind, path = parse_spec(spec or cfg.source)
    if seconds is not None and not seconds > 0:
        raise ConfigError(f"--seconds {seconds!r}: must be positive")
    if kind == "mpu6050":
        if speed not in (None, 1, 1.0):
            raise ConfigError("--speed only applies to fake sensors (fake:TRACE); the real chip runs in real time")
        if epoch is not None or emulator_options:
            raise ConfigError("--epoch and --faults only apply to fake sensors (fake:TRACE)")
        clock = clock or SystemClock(tz)  # the wearer's zone (tracker.timezone) for days and active hours
        driver = MPU6050(bus_number=cfg.i2c_bus, address=cfg.address, sample_rate_hz=cfg.sample_rate_hz,
                         range_g=cfg.range_g, clock=clock)
        source = LiveSource(driver, clock=clock, poll_interval_s=cfg.poll_interval_s, stop_after_s=seconds,
                            spec="mpu6050")
    else:
        from .emulator import MPU6050Emulator

        player, rate_hz, start_time = _fake_trace(path, cfg, seed=int(emulator_options.pop("seed", 0)))
        if not (MIN_RATE_HZ <= rate_hz <= MAX_RATE_HZ):
            log.info("trace rate %.4g Hz is outside the chip's %g-%g Hz; sampling it at %d Hz",
                     rate_hz, MIN_RATE_HZ, MAX_RATE_HZ, cfg.sample_rate_hz)
            rate_hz = cfg.sample_rate_hz
        if epoch is not None:
            if clock is not None:
                raise ValueError("give a clock or an epoch, not both")
            emulator_options["origin_s"] = player.first_t_s
        if clock is None:
            clock = fake_clock(start_time, speed, start_mono_s=player.first_t_s, tz=tz, real0=epoch)
        if epoch is not None and clock.monotonic() < player.first_t_s:
            clock.sleep(player.first_t_s - clock.monotonic())  # started early: wait for the day to begin
        if epoch is not None:  # joining the day late: read up to where it is before the chip starts
            player.skip_to(clock.monotonic() - player.first_t_s)
        emulator = MPU6050Emulator(clock=clock, trace=player, address=cfg.address, **emulator_options)
        driver = MPU6050(bus=emulator, bus_number=cfg.i2c_bus, address=cfg.address, sample_rate_hz=rate_hz,
                         range_g=cfg.range_g, clock=clock)
        # It stops once the trace is played out, or (should the FIFO never drain) a little past its end.
        slack_s = cfg.poll_interval_s + 1.0

        def played_out() -> bool:
            return emulator.exhausted or (emulator.world_s or 0.0) > player.end_s + slack_s

        source = LiveSource(driver, clock=clock, poll_interval_s=cfg.poll_interval_s, stop_after_s=seconds,
                            exhausted=played_out, spec=f"fake:{path}", emulator=emulator)
    if connect:
        source.open()
    return source


def _fake_trace(path: str, cfg: SensorConfig, *, seed: int = 0):
    """(a TracePlayer, its sample rate, its start_time) for ``fake:PATH`` or ``fake:plan:...``.

    Both are streamed, so a fake sensor holds a chunk of its trace, not the whole, and starts at
    once (a restarted service joins its day without reading it first); a bad line of the file
    stops the command, named, when the chip gets to it.
    """
    from .playback import TracePlayer

    if path.startswith("plan:"):  # a posture script played by the synthetic wearer
        from ..plan import parse_plan
        from ..synth import synth_chunks

        plan = parse_plan(path[5:])
        rate_hz = cfg.sample_rate_hz
        n = int(round(sum(s for _, s in plan) * rate_hz))
        chunks = synth_chunks(plan, sample_rate_hz=rate_hz, seed=seed)
        return TracePlayer(chunks, first_t_s=0.0, last_t_s=(n - 1) / rate_hz), rate_hz, None
    from ..trace_reader import TraceReader

    reader = TraceReader(path)
    return TracePlayer(reader.chunks()), reader.sample_rate_hz, reader.start_time
