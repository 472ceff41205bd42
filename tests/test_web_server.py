"""Every handler of the page's server, over real HTTP on loopback (the server in its own thread).

Commands go to a recording ``submit`` here; ``test_web_feed.py`` runs them through a real Service.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
import time
from datetime import datetime, timezone

import pytest

pytest.importorskip("aiohttp")

from sitsense.clock import SimClock  # noqa: E402
from sitsense.config import Config, WebConfig  # noqa: E402
from sitsense.errors import OutputError  # noqa: E402
from sitsense.events import Snoozed  # noqa: E402
from sitsense.service import Service  # noqa: E402
from sitsense.web.auth import LoginLimiter, PasswordHash, hash_password  # noqa: E402
from sitsense.web.feed import WebFeed  # noqa: E402
from sitsense.web.server import MAX_BODY_BYTES, MAX_STREAMS, WebServer  # noqa: E402

PASSWORD = "a long enough password"
START = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


class Submitted:
    """A stand-in for ``service.submit``: records commands and answers them (or not) like the loop."""

    def __init__(self):
        self.commands = []
        self.answer = {"ok": True, "t": 12.0}
        self.silent = False

    def __call__(self, command):
        self.commands.append(command)
        if not self.silent:
            threading.Thread(target=command.reply, args=({**self.answer, "command": command.name},)).start()


@pytest.fixture
def served():
    service = Service(Config(), clock=SimClock(START))
    feed = WebFeed(service)
    submit = Submitted()
    server = WebServer(WebConfig(bind="127.0.0.1", port=0), feed, submit=submit,
                       password=PasswordHash.of(hash_password(PASSWORD, n=2 ** 10)),
                       limiter=LoginLimiter(per_client=3, overall=100), command_wait_s=1.0)
    server.start()
    try:
        yield server, submit, service, feed
    finally:
        server.close()


def request(server, method, path, body=None, headers=None, cookie=None, raw=None):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    h = dict(headers or {})
    if cookie:
        h["Cookie"] = cookie
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    if data is not None:
        h.setdefault("Content-Type", "application/json")
    conn.request(method, path, body=data, headers=h)
    resp = conn.getresponse()
    payload = resp.read()
    conn.close()
    try:
        parsed = json.loads(payload)
    except ValueError:
        parsed = payload
    return resp.status, dict(resp.getheaders()), parsed


def login(server):
    status, headers, body = request(server, "POST", "/api/login", {"password": PASSWORD})
    assert status == 200, body
    cookie = headers["Set-Cookie"].split(";")[0]
    return cookie, body["csrf"]


# ---------------------------------------------------------------- public

def test_the_page_its_files_and_healthz_are_public_and_carry_no_data(served):
    server, *_ = served
    status, headers, body = request(server, "GET", "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert b"/static/vendor/chart.umd.min.js" in body and b"http" not in body.split(b"<body>")[1].lower()
    assert "default-src 'self'" in headers["Content-Security-Policy"] and headers["X-Frame-Options"] == "DENY"
    status, headers, body = request(server, "GET", "/manifest.webmanifest")
    assert status == 200 and headers["Content-Type"].startswith("application/manifest+json")
    assert {i["sizes"] for i in body["icons"]} >= {"192x192", "512x512"}
    for icon in body["icons"]:
        assert request(server, "GET", icon["src"])[0] == 200
    status, headers, _ = request(server, "GET", "/static/vendor/chart.umd.min.js")
    assert status == 200 and "javascript" in headers["Content-Type"]
    assert request(server, "GET", "/static/vendor/chart.js-LICENSE.md")[0] == 200
    status, _, body = request(server, "GET", "/healthz")
    assert status == 200 and body["app"] == "sitsense" and set(body) == {"app", "version", "ok"}


def test_nothing_else_answers_without_a_session(served):
    server, submit, *_ = served
    assert request(server, "GET", "/api/state")[0] == 401
    assert request(server, "GET", "/api/events")[0] == 401
    status, _, body = request(server, "POST", "/api/cmd/snooze", {})
    assert status == 401 and body == {"ok": False, "error": "log in first"}
    assert request(server, "POST", "/api/logout", {})[0] == 401
    assert request(server, "GET", "/api/state", cookie="sitsense_session=forged")[0] == 401
    assert submit.commands == []


# ---------------------------------------------------------------- login

def test_login_sets_a_strict_http_only_session_cookie_and_state_needs_it(served):
    server, *_ = served
    status, headers, body = request(server, "POST", "/api/login", {"password": PASSWORD})
    assert status == 200 and body["ok"] is True and len(body["csrf"]) > 30
    cookie = headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie and "Secure" not in cookie
    status, headers, state = request(server, "GET", "/api/state", cookie=cookie.split(";")[0])
    assert status == 200 and state["csrf"] == body["csrf"] and headers["Cache-Control"] == "no-store"
    assert {"state", "alert", "release", "timeline", "week", "speed"} <= set(state)


def test_wrong_passwords_are_refused_then_the_address_is_locked_out(served):
    server, *_ = served
    for _ in range(3):
        status, _, body = request(server, "POST", "/api/login", {"password": "guess"})
        assert status == 401 and body["error"] == "wrong password"
    status, headers, body = request(server, "POST", "/api/login", {"password": PASSWORD})
    assert status == 429 and int(headers["Retry-After"]) > 0 and "too many wrong passwords" in body["error"]
    assert server.stats["login_failures"] == 3 and server.stats["logins"] == 0


@pytest.mark.parametrize("raw, why", [
    (b"password=x", "the body is not JSON"),
    (b"[1, 2]", 'send {"password": "..."}'),
    (b'{"pass": "x"}', 'send {"password": "..."}'),
    (b'{"password": 7}', 'send {"password": "..."}'),
    (b"\xff\xfe", "the body is not JSON"),
    (b'{"password": NaN}', "the body is not JSON"),
])
def test_malformed_logins_get_a_clear_400(served, raw, why):
    server, *_ = served
    status, _, body = request(server, "POST", "/api/login", raw=raw)
    assert status == 400 and body == {"ok": False, "error": why}


def test_a_login_posted_from_another_site_is_refused(served):
    server, *_ = served
    status, _, body = request(server, "POST", "/api/login", {"password": PASSWORD},
                              headers={"Origin": "http://evil.example"})
    assert status == 403 and "cross-site" in body["error"]


def test_logout_ends_the_session(served):
    server, *_ = served
    cookie, csrf = login(server)
    assert request(server, "POST", "/api/logout", {}, cookie=cookie)[0] == 403  # CSRF needed here too
    status, headers, _ = request(server, "POST", "/api/logout", {}, cookie=cookie, headers={"X-CSRF-Token": csrf})
    assert status == 200 and "sitsense_session=" in headers["Set-Cookie"]
    assert request(server, "GET", "/api/state", cookie=cookie)[0] == 401


# ---------------------------------------------------------------- commands

def test_a_command_without_the_csrf_token_is_refused_and_never_submitted(served):
    server, submit, *_ = served
    cookie, csrf = login(server)
    status, _, body = request(server, "POST", "/api/cmd/snooze", {}, cookie=cookie)
    assert status == 403 and "CSRF" in body["error"]
    status, _, _ = request(server, "POST", "/api/cmd/snooze", {}, cookie=cookie, headers={"X-CSRF-Token": csrf[:-1]})
    assert status == 403
    other_cookie, other_csrf = login(server)
    assert request(server, "POST", "/api/cmd/snooze", {}, cookie=cookie, headers={"X-CSRF-Token": other_csrf})[0] == 403
    assert submit.commands == []


def test_a_valid_command_is_submitted_and_answered(served):
    server, submit, *_ = served
    cookie, csrf = login(server)
    status, _, body = request(server, "POST", "/api/cmd/pause", {"minutes": 60}, cookie=cookie,
                              headers={"X-CSRF-Token": csrf})
    assert status == 200 and body["ok"] is True and body["command"] == "pause"
    (cmd,) = submit.commands
    assert (cmd.name, cmd.args, cmd.source) == ("pause", {"minutes": 60.0}, "web")
    status, _, body = request(server, "POST", "/api/cmd/resume", raw=b"", cookie=cookie,
                              headers={"X-CSRF-Token": csrf})
    assert status == 200 and submit.commands[-1].args == {}


def test_a_command_the_service_refuses_is_a_409_with_its_reason(served):
    server, submit, *_ = served
    cookie, csrf = login(server)
    submit.answer = {"ok": False, "error": "unknown alert id 'x': not an alert of the current sitting bout"}
    status, _, body = request(server, "POST", "/api/cmd/ack", {"id": "x"}, cookie=cookie, headers={"X-CSRF-Token": csrf})
    assert status == 409 and "unknown alert id" in body["error"]


def test_a_command_the_loop_has_not_answered_yet_is_a_202(served):
    server, submit, *_ = served
    cookie, csrf = login(server)
    submit.silent = True
    status, _, body = request(server, "POST", "/api/cmd/calibrate", {}, cookie=cookie, headers={"X-CSRF-Token": csrf})
    assert status == 202 and body["pending"] is True
    submit.commands[-1].reply({"ok": True})  # a late answer is harmless


@pytest.mark.parametrize("path, raw, status, why", [
    ("/api/cmd/reboot", b"{}", 404, "unknown command 'reboot'"),
    ("/api/cmd/snooze", b"{\"minutes\": 0}", 400, "snooze.minutes = 0: out of range (1..120)"),
    ("/api/cmd/snooze", b"{\"minutes\": \"5\"}", 400, "snooze.minutes: must be a number"),
    ("/api/cmd/snooze", b"{\"minutes\": true}", 400, "snooze.minutes: must be a number"),
    ("/api/cmd/snooze", b"{\"hours\": 1}", 400, "snooze: unknown field 'hours' (allowed: minutes)"),
    ("/api/cmd/pause", b"[60]", 400, "pause: the body must be a JSON object"),
    ("/api/cmd/pause", b"sixty", 400, "the body is not JSON"),
    ("/api/cmd/ack", b"{}", 400, "ack: missing field 'id'"),
    ("/api/cmd/ack", b"{\"id\": 5}", 400, "ack.id: must be a string"),
    ("/api/cmd/snooze", b"{\"minutes\": 1e999}", 400, "snooze.minutes: must be a number"),
])
def test_bad_commands_get_a_clear_4xx_and_are_never_submitted(served, path, raw, status, why):
    server, submit, *_ = served
    cookie, csrf = login(server)
    got, _, body = request(server, "POST", path, raw=raw, cookie=cookie, headers={"X-CSRF-Token": csrf})
    assert got == status and why in body["error"] and body["ok"] is False
    assert submit.commands == []


def test_an_oversized_body_is_a_413(served):
    server, submit, *_ = served
    cookie, csrf = login(server)
    raw = json.dumps({"id": "x" * (MAX_BODY_BYTES + 10)}).encode()
    status, _, body = request(server, "POST", "/api/cmd/ack", raw=raw, cookie=cookie, headers={"X-CSRF-Token": csrf})
    assert status == 413 and "over" in body["error"]
    assert request(server, "POST", "/api/login", raw=raw)[0] == 413
    assert submit.commands == []


# ---------------------------------------------------------------- errors

def test_unknown_paths_wrong_methods_and_escapes_get_a_4xx(served):
    server, *_ = served
    status, _, body = request(server, "GET", "/nothing/here")
    assert status == 404 and body["ok"] is False
    status, headers, body = request(server, "GET", "/api/login")
    assert status == 405 and "POST" in headers["Allow"]
    assert request(server, "DELETE", "/api/state")[0] == 405
    assert request(server, "GET", "/static/../server.py")[0] in (403, 404)
    assert request(server, "GET", "/static/%2e%2e/server.py")[0] in (403, 404)
    assert request(server, "GET", "/static/")[0] in (403, 404)


def test_garbage_on_the_socket_gets_a_400_and_the_server_goes_on(served):
    server, *_ = served
    for garbage in (b"\x16\x03\x01 a TLS hello on the plain port\r\n\r\n", b"GET /\x00\x01 HTTP/9\r\n\r\n",
                    b"POST /api/login HTTP/1.1\r\nContent-Length: nine\r\n\r\n"):
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
            s.sendall(garbage)
            answer = s.recv(4096)
        status_line = answer.split(b"\r\n")[0]
        assert status_line.startswith(b"HTTP/1.") and b" 400 " in status_line, answer
        assert b"Traceback" not in answer
    assert request(server, "GET", "/healthz")[0] == 200


def test_a_bug_in_a_handler_is_a_500_without_a_traceback(served, caplog):
    server, *_ = served
    cookie, _ = login(server)
    feed, server.feed = server.feed, None  # /api/state now fails inside the handler
    try:
        status, _, body = request(server, "GET", "/api/state", cookie=cookie)
    finally:
        server.feed = feed
    assert status == 500 and body == {"ok": False, "error": "internal error (logged)"}
    assert "Traceback" in caplog.text  # in the log, not in the answer


def test_a_taken_port_is_reported_in_one_line(served):
    server, *_ = served
    other = WebServer(WebConfig(bind="127.0.0.1", port=server.port), server.feed, submit=lambda c: None,
                      password=server.password)
    with pytest.raises(OutputError, match=rf"cannot listen on 127.0.0.1:{server.port} .*set web.port"):
        other.start()


# ---------------------------------------------------------------- live updates

def _read_events(resp, n):
    """The next ``n`` Server-Sent Events as (event, data) pairs."""
    out, event, data = [], None, None
    while len(out) < n:
        line = resp.fp.readline().decode().rstrip("\n")
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            data = json.loads(line[6:])
        elif line == "" and event:
            out.append((event, data))
            event = data = None
    return out


def test_the_event_stream_sends_the_page_then_each_change_and_notice(served):
    server, _, service, feed = served
    cookie, _ = login(server)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("GET", "/api/events", headers={"Cookie": cookie})
    resp = conn.getresponse()
    assert resp.status == 200 and resp.getheader("Content-Type") == "text/event-stream"
    (first,) = _read_events(resp, 1)
    assert first[0] == "page" and first[1]["version"] == feed.version
    feed.handle(Snoozed(30.0, 630.0))  # as the service's thread would
    got = _read_events(resp, 2)
    assert got[0][0] == "notice" and got[0][1]["kind"] == "snooze" and "Snoozed" in got[0][1]["text"]
    assert got[1][0] == "page" and got[1][1]["version"] == feed.version
    conn.close()


def test_at_most_max_streams_pages_follow_at_once(served):
    server, *_ = served
    cookie, _ = login(server)
    conns = []
    try:
        for _ in range(MAX_STREAMS):
            c = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            c.request("GET", "/api/events", headers={"Cookie": cookie})
            r = c.getresponse()
            assert r.status == 200
            _read_events(r, 1)
            conns.append(c)
        status, _, body = request(server, "GET", "/api/events", cookie=cookie)
        assert status == 503 and "pages are open" in body["error"]
    finally:
        for c in conns:
            c.close()
    deadline = time.monotonic() + 10  # closed streams are noticed when written to; the heartbeat does that
    while len(server._streams) and time.monotonic() < deadline:
        server.feed.handle(Snoozed(1.0, 2.0))
        time.sleep(0.3)
    assert request(server, "GET", "/healthz")[0] == 200


# ---------------------------------------------------------------- TLS

def test_tls_serves_https_with_a_secure_cookie(tmp_path):
    from tests.test_mqtt_tls import Pki

    pki = Pki(tmp_path / "pki")
    ca = pki.ca("test-ca")
    pair = pki.issue(ca, "pi", "server")
    service = Service(Config(), clock=SimClock(START))
    server = WebServer(WebConfig(bind="127.0.0.1", port=0, tls_cert=str(pair.crt), tls_key=str(pair.key)),
                       WebFeed(service), submit=lambda c: None,
                       password=PasswordHash.of(hash_password(PASSWORD, n=2 ** 10)))
    url = server.start()
    try:
        assert url.startswith("https://")
        ctx = ssl.create_default_context(cafile=str(ca.crt))
        ctx.check_hostname = False
        conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=ctx, timeout=10)
        conn.request("POST", "/api/login", body=json.dumps({"password": PASSWORD}),
                     headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 200 and "Secure" in resp.getheader("Set-Cookie")
        conn.close()
        plain = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        with pytest.raises((http.client.HTTPException, ConnectionError, OSError)):
            plain.request("GET", "/healthz")
            plain.getresponse().read()
    finally:
        server.close()


def test_a_bad_certificate_is_reported_before_anything_listens(tmp_path):
    bad = tmp_path / "cert.pem"
    bad.write_text("not a certificate")
    service = Service(Config(), clock=SimClock(START))
    server = WebServer(WebConfig(bind="127.0.0.1", port=0, tls_cert=str(bad), tls_key=str(bad)),
                       WebFeed(service), submit=lambda c: None, password=PasswordHash.of(PASSWORD))
    with pytest.raises(OutputError, match="web.tls_cert / web.tls_key: cannot load"):
        server.start()
