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
