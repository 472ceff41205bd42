"""What batching posture decisions must never delay: the alert itself and the state a power cut keeps."""

from __future__ import annotations

from datetime import datetime, timezone

from sitsense.clock import SimClock
from sitsense.config import Config, PostureConfig
from sitsense.events import Alert
from sitsense.plan import parse_plan
from sitsense.service import Service
from sitsense.sensor.source import ReplaySource
from sitsense.synth import synthesize


class Recorder:
    """An output that notes the sensor time of the block being processed when each alert arrives."""

    def __init__(self):
        self.block_end_t = 0.0
        self.alerts: list[tuple[float, float]] = []  # (alert t, block end t when it was emitted)

    def handle(self, ev):
        if isinstance(ev, Alert):
            self.alerts.append((ev.t, self.block_end_t))

    def update_state(self, state):
        pass

    def close(self):
        pass


def alerts_with_arrival(decide_every_s: float) -> list[tuple[float, float]]:
    trace = synthesize(parse_plan("stand 1m, sit 45m"), sample_rate_hz=25, seed=7)
    clock = SimClock(datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc))
    cfg = Config(posture=PostureConfig(decide_every_s=decide_every_s))
    source = ReplaySource(trace, clock, block_s=1.0)  # what the live service reads each second
    service = Service(cfg, clock=clock, source=source)
    rec = Recorder()
    service.outputs.append(rec)

    for t, a in source.blocks():
        rec.block_end_t = float(t[-1]) if len(t) else rec.block_end_t
        service.process_block(t, a)
    service.finish()
    return rec.alerts


def test_alerts_are_not_delayed_by_batched_posture_decisions():
    batched = alerts_with_arrival(10.0)
    unbatched = alerts_with_arrival(0.0)
    assert [round(t) for t, _ in batched] == [round(t) for t, _ in unbatched]  # same alerts, same times
    assert len(batched) == 2  # at 30 and 40 minutes into the bout
    for alert_t, arrived_at in batched:
        assert arrived_at - alert_t <= 1.0, (alert_t, arrived_at)  # within the block it fell due in


class WithoutWakeups:
    """The same live source, but one that cannot be asked for an extra poll (no ``wake_at``)."""

    def __init__(self, source):
        self._source = source
        self.sample_rate_hz = source.sample_rate_hz

    def blocks(self):
        return self._source.blocks()

    def pop_events(self):
        return self._source.pop_events()

    def close(self):
        self._source.close()


def alert_delays_on_a_live_source(wake_for_alerts: bool) -> list[float]:
    """Clock time between an alert's step and its arrival at the outputs, on the emulated sensor."""
    from sitsense.config import SensorConfig
    from sitsense.sensor.live import open_source
    from sitsense.wiring import build_service

    clock = SimClock(datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc), start_mono_s=100.37)
    source = open_source("fake:plan:stand 1m, sit 42m", SensorConfig(), clock, seed=3)
    if not wake_for_alerts:
        source = WithoutWakeups(source)
    service = build_service(Config(), source=source, clock=clock, console=False, coach=False)
    delays: list[float] = []

    class Timer(Recorder):
        def handle(self, ev):
            if isinstance(ev, Alert):
                delays.append(clock.monotonic() - ev.t)

    service.outputs.append(Timer())
    service.run()
    return delays


def test_on_the_live_path_an_alert_goes_out_right_after_its_step_not_a_poll_later():
    delays = alert_delays_on_a_live_source(True)
    assert len(delays) == 2 and all(0 <= d <= 0.2 for d in delays), delays
    # the regular 1 s polls alone would leave it waiting for most of a poll interval
    assert max(alert_delays_on_a_live_source(False)) > 0.3
