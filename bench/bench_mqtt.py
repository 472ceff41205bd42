"""Measure the MQTT output: messages per simulated hour for a replayed day, and alert latency.

Run from the top of the repository (it starts its own Mosquitto unless --host/--port are given):

    PYTHONPATH=. python bench/bench_mqtt.py                 # a synthetic 8-hour office day
    PYTHONPATH=. python bench/bench_mqtt.py --trace examples/desk-morning.csv.gz

1. Rate: the trace is replayed through the real Service (as ``sitsense simulate --mqtt`` does)
   with the default config; a subscriber counts what reaches ``<prefix>/<device>/#`` per topic.
   Baseline: publishing every tile and the state on every posture step (what the rate limit saves).
3. Pipeline: the same trace in 1 s blocks (what the live FIFO poll delivers); each alert timed from
   the start of processing the block in which the bout crossed the limit to a subscriber's receipt.
   Live, the service asks the sensor loop for an extra read right after the step in which the
   alert falls due (``LiveSource.wake_at``): the step's last samples wait two sample periods plus
   50 ms in the FIFO, so the worst case from the crossing is that plus the measured time. Without
   that read it would be up to ``sensor.poll_interval_s``.
2. Latency: alerts handed to ``MqttOutput.handle`` while state updates flow, timed to the broker's
   PUBACK and to a subscriber's receipt. Baseline: a bare paho QoS 1 publish -> PUBACK on the same
   broker, measured in the same run; the ratio is the outbox's cost.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

# Starts with a still minute standing: the classifier takes its upright reference from it (a day
# that starts walking leaves sitting mostly unrecognised with the provisional classifier).
OFFICE_DAY = ("stand 1m, walk 10m, sit 50m, stand 5m, sit 40m, walk 5m, sit 35m, stand 3m, sit 55m, walk 30m, sit 20m, "
              "off 30m, sit 45m, walk 4m, sit 38m, stand 2m, sit 50m, walk 15m, sit 25m, walk 10m")


class Counter:
    """A paho subscriber that counts live (not retained-at-subscribe) messages and notes arrival times."""

    def __init__(self, host: str, port: int, topic: str):
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.by_topic: dict[str, int] = {}
        self.alert_arrivals: dict[str, float] = {}
        self.alerts: list[dict] = []
        self.discovery = 0
        self._ready = threading.Event()
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-{time.monotonic_ns()}")
        self.c.on_connect = lambda c, u, f, rc, p: c.subscribe([(topic, 1), ("homeassistant/#", 1)])
        self.c.on_subscribe = lambda *a: self._ready.set()
        self.c.on_message = self._on_message
        self.c.connect(host, port)
        self.c.loop_start()
        if not self._ready.wait(5):
            raise SystemExit(f"cannot subscribe at {host}:{port}")

    def _on_message(self, client, userdata, msg) -> None:
        now = time.monotonic()
        if msg.topic.startswith("homeassistant/"):
            self.discovery += 1
            return
        if msg.retain:
            return
        self.by_topic[msg.topic] = self.by_topic.get(msg.topic, 0) + 1
        if msg.topic.endswith("/alert"):
            a = json.loads(msg.payload)
            self.alerts.append(a)
            self.alert_arrivals[a["id"]] = now

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def replay_rate(trace_path: str, host: str, port: int, device: str) -> dict:
    """Replay through the Service with default settings and count messages per simulated hour."""
    from sitsense.clock import SimClock
    from sitsense.commands.simulate import start_wall
    from sitsense.config import Config
    from sitsense.outputs.base import StateSnapshot
    from sitsense.sensor.source import ReplaySource
    from sitsense.service import Service
    from sitsense.traces import read_trace
    from sitsense import wiring

    cfg = Config().with_changes("mqtt", enabled=True, host=host, port=port, device_id=device)
    trace = read_trace(trace_path)
    clock = SimClock(start_wall(None, trace.start_time, None))
    service = Service(cfg, clock=clock, source=ReplaySource(trace, clock))
    counter = Counter(host, port, f"sitsense/{device}/#")
    out = wiring.attach_mqtt(service, cfg, simulated=True, device_id=device)  # its own broker: the plain tree
    steps = {"n": 0}
    inner = out.update_state

    def counting(state: StateSnapshot) -> None:
        steps["n"] += 1
        inner(state)

    out.update_state = counting  # type: ignore[method-assign]
    out.wait_connected(5)
    produced: list[str] = []
    inner_handle = out.handle

    def noting(ev) -> None:
        if ev.type == "alert":
            produced.append(ev.id)
        inner_handle(ev)

    out.handle = noting  # type: ignore[method-assign]
    per_hour: dict[int, int] = {}  # simulated hour -> messages published under the device's topics
    inner_publish = out.client.publish
    base_topic = f"sitsense/{device}/"

    def recording(topic, payload=None, qos=0, retain=False, properties=None):
        latest = out._latest
        if topic.startswith(base_topic) and latest is not None:
            h = int(latest.t // 3600)
            per_hour[h] = per_hour.get(h, 0) + 1
        return inner_publish(topic, payload, qos=qos, retain=retain, properties=properties)

    out.client.publish = recording  # type: ignore[method-assign]
    t0 = time.monotonic()
    summary = service.run()
    wall_s = time.monotonic() - t0
    out.close()
    deadline = time.monotonic() + 5
    while len(counter.alerts) < len(produced) and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)  # let the last retained state updates arrive (counted, not asserted)
    counter.close()
    hours = float(trace.t_s[-1] - trace.t_s[0]) / 3600.0
    total = sum(counter.by_topic.values())
    base = f"sitsense/{device}/"
    return {
        "trace": trace_path, "simulated_h": round(hours, 2), "replay_wall_s": round(wall_s, 1),
        "sitting_share": round(summary.sitting_s / max(1.0, hours * 3600), 2),
        "messages": total, "per_hour": round(total / hours, 1),
        "by_topic": {k.removeprefix(base): v for k, v in sorted(counter.by_topic.items(), key=lambda kv: -kv[1])},
        "alerts_produced": len(produced), "alerts_received": len(counter.alerts),
        "alerts_in_order": [a["id"] for a in counter.alerts] == produced,
        "discovery_configs": counter.discovery,
        "baseline_every_step_per_hour": round(steps["n"] * 8 / hours, 1),
        "busiest_hour": max(per_hour.values()) if per_hour else 0,
        "per_hour_published": [per_hour.get(h, 0) for h in range(int(hours) + 1)],
    }


def pipeline_latency(trace_path: str, host: str, port: int, device: str) -> dict:
    """Replay in 1 s blocks (as the live FIFO poll delivers them) and time each alert from the start
    of processing the block in which the bout crossed the limit to its arrival at a subscriber."""
    from sitsense.clock import SimClock
    from sitsense.commands.simulate import start_wall
    from sitsense.config import Config
    from sitsense.sensor.source import ReplaySource
    from sitsense.service import Service
    from sitsense.traces import read_trace
    from sitsense import wiring

    cfg = Config().with_changes("mqtt", enabled=True, host=host, port=port, device_id=device)
    trace = read_trace(trace_path)
    clock = SimClock(start_wall(None, trace.start_time, None))
    service = Service(cfg, clock=clock, source=ReplaySource(trace, clock, block_s=1.0))
    counter = Counter(host, port, f"sitsense/{device}/alert")
    out = wiring.attach_mqtt(service, cfg, simulated=True, device_id=device)  # its own broker: the plain tree
    out.wait_connected(5)
    block_start = {"t": 0.0}
    inner_block = service.process_block

    def timed_block(t_s, accel_g):
        block_start["t"] = time.monotonic()
        inner_block(t_s, accel_g)

    service.process_block = timed_block  # type: ignore[method-assign]
    started: dict[str, float] = {}
    inner_handle = out.handle

    def noting(ev) -> None:
        if ev.type == "alert":
            started[ev.id] = block_start["t"]
        inner_handle(ev)

    out.handle = noting  # type: ignore[method-assign]
    service.run()
    out.close()
    deadline = time.monotonic() + 5
    while len(counter.alert_arrivals) < len(started) and time.monotonic() < deadline:
        time.sleep(0.01)
    counter.close()
    ms = sorted((counter.alert_arrivals[k] - t) * 1000 for k, t in started.items() if k in counter.alert_arrivals)
    from sitsense.service import ALERT_WAKE_MARGIN_S
    fifo_wait_ms = (2.0 / cfg.sensor.sample_rate_hz + ALERT_WAKE_MARGIN_S) * 1000
    return {"alerts": len(started), "received": len(ms),
            "block_to_subscriber_ms": [round(x, 2) for x in ms],
            "poll_interval_s": cfg.sensor.poll_interval_s,
            "fifo_wait_ms": round(fifo_wait_ms, 1),
            "worst_case_ms": round(fifo_wait_ms + (ms[-1] if ms else 0), 1),
            "worst_case_without_extra_read_ms": round(cfg.sensor.poll_interval_s * 1000 + (ms[-1] if ms else 0), 1)}


def latency(host: str, port: int, device: str, n: int, outbox_dir: Path) -> dict:
    """Time alerts from ``handle`` to PUBACK and to a subscriber; compare with a bare paho publish."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from sitsense.config import MqttConfig
    from sitsense.events import Alert
    from sitsense.outputs.base import StateSnapshot
    from sitsense.mqtt.client import MqttOutput

    # baseline: bare paho, QoS 1, publish -> PUBACK
    bare = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-bare-{device}")
    bare.connect(host, port)
    bare.loop_start()
    bare_s = []
    for i in range(n):
        t = time.monotonic()
        bare.publish(f"bench/{device}/bare", b"x" * 300, qos=1).wait_for_publish(5)
        bare_s.append(time.monotonic() - t)
        time.sleep(0.01)
    bare.disconnect()
    bare.loop_stop()

    counter = Counter(host, port, f"sitsense/{device}/alert")
    out = MqttOutput(MqttConfig(enabled=True, host=host, port=port, device_id=device, discovery=False),
                     outbox=outbox_dir / "latency-outbox.db")
    out.start()
    out.wait_connected(5)
    wall = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
    handed: dict[str, float] = {}
    for i in range(n):
        out.update_state(StateSnapshot(t=1800.0 + i, wall=wall, posture="sitting", p=0.9, bout_s=1800.0 + i,
                                       sitting_today_s=1800.0 + i, breaks_today=0, alerts_today=i,
                                       release_today_s=0.0))
        aid = f"{device}-{i:04d}"
        handed[aid] = time.monotonic()
        out.handle(Alert(t=1800.0 + i, id=aid, bout_s=1800.0 + i, bout_start_t=0.0, reminder=1, message="stand up",
                         time="", exercise={"id": "hk", "name": "Half-kneeling stretch", "dose": "2 x 30 s",
                                            "cue": "tuck the pelvis, squeeze the glute"}, safety="no pinching"))
        time.sleep(0.02)
    out.wait_delivered(10)
    deadline = time.monotonic() + 5
    while len(counter.alert_arrivals) < n and time.monotonic() < deadline:
        time.sleep(0.01)
    out.close()
    counter.close()
    to_sub = [counter.alert_arrivals[k] - t for k, t in handed.items() if k in counter.alert_arrivals]
    to_ack = list(out.ack_latencies_s)

    def ms(xs: list[float]) -> dict:
        xs = sorted(xs)
        return {"n": len(xs), "median_ms": round(statistics.median(xs) * 1000, 2),
                "p95_ms": round(xs[int(0.95 * (len(xs) - 1))] * 1000, 2), "max_ms": round(xs[-1] * 1000, 2)}

    res = {"bare_publish_to_puback": ms(bare_s), "handle_to_puback": ms(to_ack), "handle_to_subscriber": ms(to_sub)}
    res["ratio_handle_to_puback_vs_bare"] = round(res["handle_to_puback"]["median_ms"] /
                                                   max(1e-9, res["bare_publish_to_puback"]["median_ms"]), 2)
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trace", help="trace to replay (default: a synthetic 8-hour office day)")
    ap.add_argument("--host", help="use this broker instead of starting one")
    ap.add_argument("--port", type=int, default=1883)
    ap.add_argument("--alerts", type=int, default=200, help="alerts for the latency part")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmpd = Path(tmp)
        broker = None
        if args.host:
            host, port = args.host, args.port
        else:
            from tests.mosquitto import MOSQUITTO, Mosquitto
            if MOSQUITTO is None:
                raise SystemExit("mosquitto not installed (apt install mosquitto), or pass --host")
            broker = Mosquitto(tmpd / "broker")
            broker.start()
            host, port = broker.host, broker.port
        try:
            trace = args.trace
            if trace is None:
                from sitsense.plan import parse_plan
                from sitsense.synth import synthesize
                from sitsense.traces import write_trace
                trace = str(tmpd / "office-day.csv")
                write_trace(trace, synthesize(parse_plan(OFFICE_DAY), sample_rate_hz=25.0, seed=3,
                                              start_time="2026-03-02T08:30:00+01:00"))
            rate = replay_rate(trace, host, port, "benchday")
            lat = latency(host, port, "benchlat", args.alerts, tmpd)
            pipe = pipeline_latency(trace, host, port, "benchpipe")
        finally:
            if broker is not None:
                broker.stop()
    if args.json:
        print(json.dumps({"rate": rate, "latency": lat, "pipeline": pipe}, indent=2))
        return 0
    print(f"replay: {rate['trace']} ({rate['simulated_h']} h simulated in {rate['replay_wall_s']} s, "
          f"sitting {rate['sitting_share']:.0%})")
    print(f"  messages: {rate['messages']} = {rate['per_hour']} per simulated hour "
          f"(baseline, every tile every step: {rate['baseline_every_step_per_hour']}/h)")
    print(f"  busiest simulated hour: {rate['busiest_hour']} published; hour by hour: {rate['per_hour_published']}")
    print("  by topic: " + ", ".join(f"{k} {v}" for k, v in rate["by_topic"].items()))
    print(f"  alerts: {rate['alerts_received']}/{rate['alerts_produced']} received, in order: "
          f"{rate['alerts_in_order']}; discovery configs: {rate['discovery_configs']}")
    for name in ("bare_publish_to_puback", "handle_to_puback", "handle_to_subscriber"):
        v = lat[name]
        print(f"latency {name}: median {v['median_ms']} ms, p95 {v['p95_ms']} ms, max {v['max_ms']} ms (n={v['n']})")
    print(f"  handle->PUBACK / bare publish->PUBACK: {lat['ratio_handle_to_puback_vs_bare']}x")
    print(f"bout crossing -> subscriber, 1 s blocks: {pipe['received']}/{pipe['alerts']} alerts, from the start of "
          f"the block: {pipe['block_to_subscriber_ms']} ms; worst case with the FIFO wait before the "
          f"extra read ({pipe['fifo_wait_ms']} ms) in front: {pipe['worst_case_ms']} ms (without that read, "
          f"a {pipe['poll_interval_s']} s poll in front: {pipe['worst_case_without_extra_read_ms']} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
