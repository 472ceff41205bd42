"""What the page shows, built from a real Service (replayed synthetic days), and the command path
shared with MQTT: the page's buttons go through ``Service.submit`` and the loop, as MQTT's do."""

from __future__ import annotations

import http.client
import json
import logging
import threading
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from sitsense.clock import SimClock
from sitsense.coach import Coach, exercise
from sitsense.config import Config, WebConfig
from sitsense.events import Alert, AlertOutcome, DaySummary, HoldCue, Snoozed
from sitsense.outputs.base import StateSnapshot
from sitsense.plan import parse_plan
from sitsense.sensor.source import ReplaySource
from sitsense.service import Service
from sitsense.synth import synthesize
from sitsense.web.feed import WebFeed
from sitsense.web.views import release_view, week_view
from tests.recording import Recorder

START = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def _replay(plan: str, cfg: Config | None = None):
    cfg = cfg or Config().with_changes("tracker", sit_limit_min=20.0)
    trace = synthesize(parse_plan(plan), sample_rate_hz=10, seed=3)
    clock = SimClock(START)
    source = ReplaySource(trace, clock, block_s=1.0)
    service = Service(cfg, clock=clock, source=source, coach=Coach(cfg.coach))
    service.classifier.set_reference(trace.accel_g[:50].mean(axis=0))  # calibrated at clip-on, as docs/wear/calibrate.md asks
    feed = WebFeed(service)
    pages = []
    feed.notify = lambda: pages.append(feed.page)
    rec = Recorder()
    service.outputs += [feed, rec]
    return service, feed, rec, pages, source


def test_the_page_follows_a_day_posture_alert_release_and_outcome():
    service, feed, rec, pages, source = _replay("stand 2m, sit 25m, walk 6m, sit 3m")
    alert_page = release_page = None
    for t, a in source.blocks():
        service.process_block(t, a)
        page = feed.page
        if alert_page is None and page["alert"]:
            alert_page = page
        if release_page is None and page["release"] and page["release"]["phase"] == "hold":
            release_page = page
    (alert,) = rec.of(Alert)
    a = alert_page["alert"]
    assert a["id"] == alert.id and a["message"] == alert.message and a["exercise"]["name"] == alert.exercise["name"]
    assert a["exercise"]["steps"] == alert.exercise["steps"] and "never pain" in a["safety"]
    assert alert_page["state"]["posture"] == "sitting" and alert_page["state"]["bout_s"] >= 20 * 60
    r = release_page["release"]
    assert r["exercise"]["id"] == alert.exercise["id"] and 0 < r["ends_in_s"] <= r["phase_s"]
    outcome = rec.of(AlertOutcome)[0]
    assert outcome.heeded
    final = feed.page
    assert final["alert"] is None  # its outcome is in: the card goes
    assert final["state"]["today"]["heeded"] == 1 and final["state"]["today"]["alerts"] == 1
    assert final["state"]["today"]["release_s"] == pytest.approx(service.tracker.today.release_s, abs=0.1)
    kinds = [seg[2] for seg in final["timeline"]["segments"]] + [final["timeline"]["open"][1]]
    assert kinds[:2] == ["standing", "sitting"] and "walking" in kinds and kinds[-1] == "sitting"
    sitting_h = sum(b - a for a, b, p in final["timeline"]["segments"] if p == "sitting")
    assert 9.0 < final["timeline"]["segments"][0][0] < 9.1 and sitting_h == pytest.approx(25 / 60, abs=0.02)
    assert final["week"][-1]["date"] == "2026-03-02" and final["week"][-1]["alerts"] == 1
    assert len(pages) == feed.version and pages[-1] is final


def test_the_hold_timer_follows_each_cue_of_the_schedule():
    kneel = exercise("kneeling_hip_flexor")  # 2 x 30 s per side
    v = release_view(HoldCue(100.0, "start", kneel.id, 1))
    assert (v["label"], v["phase"], v["phase_s"], v["holds"]) == ("Hold 1 of 4: first side", "hold", 30.0, 4)
    v = release_view(HoldCue(130.0, "switch", kneel.id, 2))
    assert (v["label"], v["phase_s"]) == ("Hold 2 of 4: second side", 30.0)
    lunges = exercise("walking_lunges")  # 2 sets of 16 alternating, 15 s rest
    v = release_view(HoldCue(48.0, "switch", lunges.id, 2))
    assert (v["label"], v["phase"], v["phase_s"]) == ("Rest, then set 2 of 2", "rest", 15.0)
    v = release_view(HoldCue(63.0, "start", lunges.id, 2))
    assert (v["label"], v["phase"], v["phase_s"]) == ("Set 2 of 2", "hold", 48.0)
    assert release_view(HoldCue(1.0, "done", lunges.id, 2))["phase"] == "done"
    assert release_view(HoldCue(1.0, "cancel", lunges.id, 0))["label"].startswith("Release stopped")
    assert release_view(HoldCue(1.0, "start", "no_such_exercise", 1)) is None


def _state(t: float, wall: datetime, posture: str = "sitting") -> StateSnapshot:
    return StateSnapshot(t=t, wall=wall, posture=posture, p=1.0, bout_s=0.0, sitting_today_s=0.0, breaks_today=0,
                         alerts_today=0, release_today_s=0.0)


def test_midnight_starts_a_new_timeline_and_the_finished_day_joins_the_week():
    from sitsense.events import PostureChanged

    clock = SimClock(datetime(2026, 3, 2, 23, 0, tzinfo=timezone.utc))
    service = Service(Config(), clock=clock)
    stored = [{"date": f"2026-02-{d:02d}", "sitting_s": 3600.0 * d / 4} for d in range(20, 28)]
    feed = WebFeed(service, days=stored)
    feed.update_state(_state(0.0, clock.wall_at(0.0)))
    feed.handle(PostureChanged(10.0, "sitting", 1.0, "unknown", 0.0))
    assert feed.page["timeline"]["open"] == [23.0, "sitting"]
    feed.handle(DaySummary(3600.0, "2026-03-02", 3600.0, 0, 0, 0, 0, 0, 3600.0))
    feed.update_state(_state(3700.0, clock.wall_at(3700.0)))
    tl = feed.page["timeline"]
    assert tl["day_start"] == "2026-03-03T00:00:00+00:00" and tl["open"] == [0.0, "sitting"] and tl["segments"] == []
    week = feed.page["week"]
    assert len(week) == 7 and week[-1]["date"] == "2026-03-03" and week[-2]["date"] == "2026-03-02"
    assert week[-2]["hours"]["sitting"] == 1.0


def test_week_view_keeps_seven_days_and_the_live_day_wins():
    days = [{"date": f"2026-03-{d:02d}", "sitting_s": 7200.0, "alerts": 1} for d in range(1, 10)]
    week = week_view(days, {"date": "2026-03-09", "sitting_s": 1800.0, "alerts": 3})
    assert [d["date"][-2:] for d in week] == ["03", "04", "05", "06", "07", "08", "09"]
    assert week[-1]["hours"]["sitting"] == 0.5 and week[-1]["alerts"] == 3 and week[0]["hours"]["sitting"] == 2.0


def test_a_failing_notify_never_reaches_the_loop(caplog):
    service = Service(Config(), clock=SimClock(START))
    feed = WebFeed(service)

    def broken():
        raise RuntimeError("page gone")

    feed.notify = broken
    with caplog.at_level(logging.ERROR):
        feed.handle(Snoozed(1.0, 601.0))
        feed.update_state(_state(2.0, START))
    assert "notify failed" in caplog.text and feed.page["state"]["posture"] == "sitting"


# ---------------------------------------------------------------- through the server and the loop

pytest.importorskip("aiohttp")


class Loop(threading.Thread):
    """Plays the service's loop: an empty block every 50 ms (as a live source's empty polls)."""

    def __init__(self, service):
        super().__init__(daemon=True)
        self.service = service
        self.stop = threading.Event()

    def run(self):
        while not self.stop.wait(0.05):
            self.service.process_block(np.empty(0), np.empty((0, 3)))


def test_the_buttons_go_through_the_services_command_path_and_every_output_sees_the_result():
    from sitsense.web.auth import PasswordHash, hash_password
    from sitsense.web.server import WebServer

    service = Service(Config(), clock=SimClock(START))
    feed = WebFeed(service)
    rec = Recorder()  # stands for the MQTT output: it sees what the page sees
    service.outputs += [feed, rec]
    server = WebServer(WebConfig(bind="127.0.0.1", port=0), feed, submit=service.submit,
                       password=PasswordHash.of(hash_password("password 1", n=2 ** 10)))
    server.start()
    loop = Loop(service)
    loop.start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        conn.request("POST", "/api/login", body=json.dumps({"password": "password 1"}),
                      headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        csrf = json.loads(resp.read())["csrf"]
        cookie = resp.getheader("Set-Cookie").split(";")[0]
        headers = {"Content-Type": "application/json", "X-CSRF-Token": csrf, "Cookie": cookie}
        conn.request("POST", "/api/cmd/snooze", body=json.dumps({"minutes": 15}), headers=headers)
        resp = conn.getresponse()
        body = json.loads(resp.read())
        assert resp.status == 200 and body["ok"] is True and body["command"] == "snooze"
        (snoozed,) = rec.of(Snoozed)
        assert snoozed.until_t - snoozed.t == pytest.approx(15 * 60)
        assert service.tracker.snoozed_until_t == snoozed.until_t
        conn.request("POST", "/api/cmd/ack", body=json.dumps({"id": "20260302T093000-1"}), headers=headers)
        resp = conn.getresponse()
        body = json.loads(resp.read())
        assert resp.status == 409 and "unknown alert id" in body["error"]  # the service's own answer
        conn.close()
    finally:
        loop.stop.set()
        loop.join()
        server.close()


def test_the_loop_never_waits_for_a_stuck_page():
    from sitsense.web.auth import PasswordHash
    from sitsense.web.server import WebServer

    service = Service(Config(), clock=SimClock(START))
    feed = WebFeed(service)
    server = WebServer(WebConfig(bind="127.0.0.1", port=0), feed, submit=service.submit,
                       password=PasswordHash.of("password 1"))
    server.start()
    stuck = threading.Event()
    server._loop.call_soon_threadsafe(stuck.wait)  # the page's thread hangs (a bug, a slow SD card)
    try:
        for i in range(5000):  # more pokes than any pipe buffer holds
            feed.update_state(_state(float(i), START + timedelta(seconds=i)))
            feed.handle(Snoozed(float(i), float(i) + 60))
        assert feed.version == 10000
    finally:
        stuck.set()
        server.close()


def test_attach_web_starts_the_page_in_the_background_only_with_a_password(tmp_path, monkeypatch, caplog):
    from sitsense.web.attach import attach_web
    from sitsense.web.auth import hash_password

    cfg = Config().with_changes("web", bind="127.0.0.1", port=_free_port())
    service = Service(cfg, clock=SimClock(START))
    assert attach_web(service, cfg.with_changes("web", enabled=False)) is None and service.outputs == []
    with caplog.at_level(logging.INFO):
        starter = attach_web(service, cfg)
        assert starter.wait() is None
    assert "off until a password is set: run 'sitsense web-password'" in caplog.text
    service.outputs.pop().close()  # the feed stays harmless without a server; closing it is fine
    monkeypatch.setenv("SITSENSE_WEB_PASSWORD", hash_password("password 1", n=2 ** 10))
    starter = attach_web(service, cfg)
    server = starter.wait()
    try:
        assert server is not None and isinstance(service.outputs[-1], WebFeed)
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        conn.request("GET", "/healthz")
        assert conn.getresponse().status == 200
    finally:
        service.outputs[-1].close()  # closing the output stops the server
    with pytest.raises(OSError):
        http.client.HTTPConnection("127.0.0.1", server.port, timeout=2).request("GET", "/healthz")


def test_stored_history_joins_the_page_before_what_this_run_saw():
    service = Service(Config(), clock=SimClock(START))
    feed = WebFeed(service)
    from sitsense.events import PostureChanged

    feed.handle(PostureChanged(600.0, "standing", 1.0, "unknown", 600.0))  # this run: from 09:10
    stored = [(START - timedelta(hours=1), START - timedelta(minutes=30), "sitting"),
              (START - timedelta(minutes=30), START + timedelta(minutes=20), "walking")]  # ran past the restart
    feed.seed([{"date": "2026-03-01", "sitting_s": 3600.0}], stored)
    feed.update_state(_state(700.0, START + timedelta(seconds=700), "standing"))
    tl = feed.page["timeline"]
    assert tl["segments"] == [[8.0, 8.5, "sitting"], [8.5, 9.1667, "walking"]] and tl["open"] == [9.1667, "standing"]
    assert [d["date"] for d in feed.page["week"]] == ["2026-03-01", "2026-03-02"]


def test_the_page_starts_with_the_days_and_todays_postures_from_the_store(tmp_path):
    from sitsense.persistence import StateKeeper
    from sitsense.store import Store
    from sitsense.web.attach import stored_history

    db = tmp_path / "s.db"
    cfg = Config().with_changes("tracker", sit_limit_min=20.0)
    store = Store(db).open()
    store.save_day(DaySummary(0.0, "2026-03-01", 5 * 3600.0, 3600.0, 1800.0, 0.0, 0.0, 0.0, 3600.0, alerts=4))
    trace = synthesize(parse_plan("stand 2m, sit 10m, walk 2m"), sample_rate_hz=10, seed=3)
    clock = SimClock(START)
    service = Service(cfg, clock=clock, source=ReplaySource(trace, clock, block_s=1.0))
    service.classifier.set_reference(trace.accel_g[:50].mean(axis=0))  # calibrated at clip-on
    service.outputs.append(StateKeeper(store, service.tracker, checkpoint_s=30.0))
    service.run()
    service.outputs[0].close()
    store.close()
    days, segments = stored_history(db, "2026-03-02")
    assert [d["date"] for d in days] == ["2026-03-01"] and days[0]["alerts"] == 4
    postures = [p for _, _, p in segments]
    assert postures[:2] == ["standing", "sitting"] and segments[0][0].hour == 9
    assert stored_history(tmp_path / "none.db", "2026-03-02") == ([], [])


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- doctor

def test_doctor_sees_the_password_in_the_units_environment_file(tmp_path, monkeypatch):
    from sitsense.doctor import _web_password_known

    env = tmp_path / "environment"
    assert _web_password_known(WebConfig(), str(env)) is False  # no file
    env.write_text("SITSENSE_MQTT_PASSWORD=x\n")
    assert _web_password_known(WebConfig(), str(env)) is False
    env.write_text("SITSENSE_MQTT_PASSWORD=x\nSITSENSE_WEB_PASSWORD=scrypt:16384:8:1:abc:def\n")
    assert _web_password_known(WebConfig(), str(env)) is True
    assert _web_password_known(WebConfig(), str(tmp_path)) is None  # cannot be read (here: a folder)
    monkeypatch.setenv("SITSENSE_WEB_PASSWORD", "password 1")
    assert _web_password_known(WebConfig(), str(tmp_path / "none")) is True


def test_doctor_finds_the_page_and_prints_its_addresses(monkeypatch):
    from sitsense.doctor import check_web
    from sitsense.web.auth import PasswordHash
    from sitsense.web.server import WebServer

    port = _free_port()
    cfg = Config().with_changes("web", port=port)
    fake = check_web(cfg, fake=True)
    assert fake.status == "skip" and f"nothing answers on port {port}" in fake.detail and f":{port}/" in fake.detail
    import sitsense.doctor as doctor

    monkeypatch.setattr(doctor, "SERVICE_ENVIRONMENT", "/nonexistent/environment")
    unset = check_web(cfg)  # no password yet: the page is off by design, not broken
    assert unset.status == "skip" and "sitsense web-password" in unset.detail
    monkeypatch.setenv("SITSENSE_WEB_PASSWORD", "password 1")
    real = check_web(cfg)  # a password, and nothing answers: the service is not running
    assert real.status == "fail" and "systemctl start sitsense" in real.fix and f":{port}/" in real.detail
    assert check_web(cfg.with_changes("web", enabled=False)).status == "skip"
    service = Service(Config(), clock=SimClock(START))
    server = WebServer(WebConfig(bind="0.0.0.0", port=port), WebFeed(service), submit=service.submit,
                       password=PasswordHash.of("password 1"))
    server.start()
    try:
        ok = check_web(cfg)
        assert ok.status == "pass" and f".local:{port}/" in ok.detail and ok.detail.startswith("answers at http://")
    finally:
        server.close()
    import http.server
    other = http.server.ThreadingHTTPServer(("127.0.0.1", port), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        taken = check_web(cfg)
        assert taken.status == "fail" and "another program" in taken.fix
    finally:
        other.shutdown()
        other.server_close()
