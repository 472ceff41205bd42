"""The local control socket on its own: every line gets an answer, a bad one ``{"ok": false, ...}``."""

from __future__ import annotations

import socket
from datetime import datetime, timezone

from sitsense.clock import SimClock
from sitsense.config import Config
from sitsense.control_socket import ControlServer, ask
from sitsense.events import Calibrated
from sitsense.service import Service


def served(tmp_path):
    service = Service(Config(), clock=SimClock(datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)))

    def submit(request):  # the service runs it between blocks; here at once
        request.reply(service.execute(request))

    return service, ControlServer(tmp_path / "s.db.sock", submit).start()


def raw(path, data: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(5)
        conn.connect(str(path))
        conn.sendall(data)
        return conn.recv(4096)


def test_requests_are_answered_and_bad_ones_refused(tmp_path):
    service, server = served(tmp_path)
    try:
        assert ask(server.path, "snooze", {"minutes": 5}) == {"ok": True, "command": "snooze", "t": 0.0}
        assert ask(server.path, "reboot")["error"].startswith("unknown command 'reboot'")
        assert "out of range" in ask(server.path, "pause", {"minutes": 0})["error"]
        assert b'"ok":false' in raw(server.path, b"not json\n")
        assert b'"ok":false' in raw(server.path, b'["calibrate"]\n')
    finally:
        server.close()
    assert not server.path.exists()


def test_calibrate_answers_twice_the_second_time_with_the_new_reference(tmp_path):
    service, server = served(tmp_path)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(5)
            conn.connect(str(server.path))
            conn.sendall(b'{"command": "calibrate"}\n')
            first = conn.recv(4096)
            assert b'"ok":true' in first and b'"command":"calibrate"' in first
            server.handle(Calibrated(12.0, "still-start", (0.0, 0.1, 0.99)))  # as the service emits it
            second = b""
            while not second.endswith(b"\n"):
                second += conn.recv(4096)
            assert b'"source":"still-start"' in second and b"0.99" in second
            assert conn.recv(4096) == b""  # then it hangs up
    finally:
        server.close()
