"""The state throttle and the outbox sender on their own: no client, no broker."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timezone

from sitsense.mqtt.outbox import Outbox
from sitsense.mqtt.sender import SEND_WINDOW, OutboxSender
from sitsense.mqtt.throttle import StateThrottle
from sitsense.mqtt.topics import TILES
from sitsense.outputs.base import StateSnapshot

WALL = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def state(t: float, posture: str = "sitting", sensor: str = "ok", breaks: int = 0) -> StateSnapshot:
    return StateSnapshot(t=t, wall=WALL, posture=posture, p=0.9, bout_s=t, sitting_today_s=t, breaks_today=breaks,
                         alerts_today=0, release_today_s=0.0, sensor=sensor)


def test_changes_go_out_at_most_once_per_interval_and_minute_counters_once_a_minute():
    th = StateThrottle(interval_s=30.0, max_per_hour=10_000)
    sent = [t for t in range(0, 600) if th.offer(state(float(t), breaks=t // 45))]
    # a break counter changing every 45 s: published when it changes, never twice within 30 s
    assert all(b - a >= 30 for a, b in zip(sent, sent[1:]))
    th2 = StateThrottle(interval_s=30.0, max_per_hour=10_000)
    minutes = [t for t in range(0, 600) if th2.offer(state(float(t)))]
    assert all(b - a >= 60 for a, b in zip(minutes, minutes[1:])) and len(minutes) >= 9


def test_a_posture_must_last_the_interval_before_it_is_shown():
    th = StateThrottle(interval_s=30.0, max_per_hour=10_000)
    shown = []
    for t in range(0, 300):
        update = th.offer(state(float(t), posture="standing" if t % 20 < 5 else "sitting"))
        if update and "posture" in update[1]:
            shown.append(update[1]["posture"])
    assert shown == ["standing"]  # the first posture; the 5 s stand-ups never lasted 30 s


def test_a_sensor_fault_is_urgent_and_the_budget_holds_in_every_hour():
    th = StateThrottle(interval_s=1.0, max_per_hour=60)
    messages = []  # (t, messages sent: changed tiles + the JSON state)
    for t in range(0, 4 * 3600):
        update = th.offer(state(float(t), breaks=t // 10))
        if update:
            messages.append((t, len(update[1]) + 1))
    for start in range(0, 3 * 3600, 600):
        assert sum(n for t, n in messages if start <= t < start + 3600) <= 60
    assert th.deferred > 0
    th2 = StateThrottle(interval_s=30.0, max_per_hour=10_000)
    assert th2.offer(state(0.0))
    update = th2.offer(state(1.0, sensor="i2c_error"))
    assert update is not None and update[1]["sensor"] == "i2c_error"


def test_offline_nothing_goes_out_then_everything_on_connect_and_the_rest_at_shutdown():
    th = StateThrottle(interval_s=30.0, max_per_hour=10_000)
    assert th.offer(state(0.0), connected=False) is None
    assert th.latest is not None and th.latest.t == 0.0
    latest, tiles = th.everything()
    assert set(tiles) == set(TILES)
    assert th.offer(state(5.0, breaks=1)) is None  # within the interval
    latest, held = th.held_back()
    assert held == {"today/breaks": "1"} and latest.t == 5.0
    assert th.held_back() is None  # nothing left


@dataclass
class Info:
    mid: int
    rc: int = 0


class Paho:
    """Hands out message ids; the test acknowledges them."""

    def __init__(self):
        self.sent: list[tuple[int, bytes]] = []
        self.lock = threading.Lock()
        self.got = threading.Event()

    def publish(self, topic: str, payload: bytes, qos: int) -> Info:
        with self.lock:
            mid = len(self.sent) + 1
            self.sent.append((mid, payload))
        self.got.set()
        return Info(mid)


def wait(cond, timeout_s: float = 5.0) -> None:
    ev = threading.Event()
    for _ in range(int(timeout_s / 0.01)):
        if cond():
            return
        ev.wait(0.01)
    raise AssertionError("condition not met")


def test_the_sender_keeps_order_a_window_and_deletes_only_what_was_acknowledged(tmp_path):
    box = Outbox(tmp_path / "o.db")
    paho = Paho()
    sender = OutboxSender(box, paho.publish)
    sender.start()
    try:
        for i in range(SEND_WINDOW + 5):
            sender.queued(box.add("t", str(i).encode()))
        assert not paho.got.wait(0.2)  # offline: nothing is handed over
        sender.connected()
        wait(lambda: len(paho.sent) == SEND_WINDOW)  # a window's worth, no more until acknowledged
        assert [p for _, p in paho.sent] == [str(i).encode() for i in range(SEND_WINDOW)]
        for mid, _ in paho.sent[:3]:
            sender.acknowledged(mid)
        wait(lambda: len(paho.sent) == SEND_WINDOW + 3)
        assert len(box) == SEND_WINDOW + 2
        sender.disconnected()
        sender.connected()  # paho resends what was in flight itself; new messages wait for those
        sender.queued(box.add("t", b"new"))
        for mid, _ in list(paho.sent)[3:]:
            sender.acknowledged(mid)
        wait(lambda: len(paho.sent) == SEND_WINDOW + 6)
        for mid, _ in list(paho.sent)[SEND_WINDOW + 3:]:
            sender.acknowledged(mid)
        assert sender.wait_delivered(5) and len(box) == 0
        assert [p for _, p in paho.sent][-3:] == [str(SEND_WINDOW + 3).encode(), str(SEND_WINDOW + 4).encode(),
                                                  b"new"]
        assert len(sender.ack_latencies_s) == SEND_WINDOW + 6
    finally:
        sender.stop()
        box.close()
