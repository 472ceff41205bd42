"""The sd_notify client against a real datagram socket, as systemd would listen."""

from __future__ import annotations

import os
import socket

from sitsense.sdnotify import Notifier


def _listener(tmp_path):
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(2)
    return sock, path


def test_ready_watchdog_and_status_reach_the_socket(tmp_path):
    sock, path = _listener(tmp_path)
    n = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())})
    assert n.enabled and n.watchdog_interval_s == 15.0
    assert n.ready("sensor ok")
    assert sock.recv(256) == b"READY=1\nSTATUS=sensor ok"
    assert n.watchdog()
    assert sock.recv(256) == b"WATCHDOG=1"
    assert n.status("sitting 31 min")
    assert sock.recv(256) == b"STATUS=sitting 31 min"
    n.close()
    sock.close()


def test_abstract_socket_names_are_supported():
    name = f"sitsense-test-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(2)
    n = Notifier({"NOTIFY_SOCKET": "@" + name})
    assert n.ready()
    assert sock.recv(64) == b"READY=1"
    sock.close()


def test_without_systemd_it_is_a_no_op_and_a_vanished_socket_is_not_fatal(tmp_path):
    n = Notifier({})
    assert not n.enabled and not n.ready() and n.watchdog_interval_s is None
    gone = Notifier({"NOTIFY_SOCKET": str(tmp_path / "missing.sock")})
    assert gone.watchdog() is False


def test_watchdog_meant_for_another_process_is_ignored(tmp_path):
    n = Notifier({"NOTIFY_SOCKET": str(tmp_path / "x"), "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"})
    assert n.watchdog_interval_s is None or os.getpid() == 1
