"""The local control channel: a Unix socket beside the state database, for commands from this machine.

``sitsense calibrate`` asks the running service through it, instead of opening the I2C bus a
second time. One JSON object per line: the client sends ``{"command": "calibrate", "args": {}}``
(any control of ``sitsense.control``); the service answers with the request's result
(``{"ok": true, ...}`` or ``{"ok": false, "error": ...}``) and, after ``calibrate``, with the
``calibration`` event once the new reference is taken. The socket is made under the service's
umask (0600 under the shipped unit): its own user and root may use it.
"""

from __future__ import annotations

import json
import logging
import os
import selectors
import socket
import threading
import time
from pathlib import Path
from typing import Any

from .control import Request, RequestRejected, Submit, check_args
from .errors import OutputError, SitsenseError
from .events import Calibrated, Event
from .outputs.base import StateSnapshot

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 4096
READ_TIMEOUT_S = 2.0  # a client that connects says what it wants at once
MAX_WAITING = 8  # clients waiting for a calibration at once


class ServiceUnreachable(SitsenseError, ConnectionError):
    """Error raised when no service answers on the control socket (none runs, or it has none)."""

    exit_code = 69  # EX_UNAVAILABLE


class ControlServer:
    """Listens on ``path`` and turns each line into a Request for ``submit``; an output (``handle``)
    so it can pass the next calibration on to the clients that asked for one. ``start()`` binds (an
    OutputError if it cannot), ``close()`` stops at once and removes the socket."""

    def __init__(self, path: str | os.PathLike[str], submit: Submit):
        self.path = Path(path)
        self._submit = submit
        self._lock = threading.Lock()
        self._waiting: list[socket.socket] = []  # answered 'calibrate': they get the next calibration
        self._listener: socket.socket | None = None
        self._wake_r, self._wake_w = -1, -1
        self._thread: threading.Thread | None = None
        self._closed = False

    def start(self) -> "ControlServer":
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._remove_stale()
            listener.bind(str(self.path))
            listener.listen(4)
        except OSError as exc:
            listener.close()
            raise OutputError(f"control socket {self.path}: {exc.strerror or exc}") from None
        listener.setblocking(False)
        self._listener = listener
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._serve, name="sitsense-control", daemon=True)
        self._thread.start()
        log.info("control socket: %s", self.path)
        return self

    def _remove_stale(self) -> None:
        """A socket file left by a service that died: nobody listens on it any more (the state lock
        says this is the only service on this database)."""
        if self.path.is_socket():
            self.path.unlink()

    # -- Output -----------------------------------------------------------------------------

    def handle(self, event: Event) -> None:
        if not isinstance(event, Calibrated):
            return
        with self._lock:
            waiting, self._waiting = self._waiting, []
        line = _line({"event": event.to_dict()})
        for conn in waiting:
            _send_and_close(conn, line)

    def update_state(self, state: StateSnapshot) -> None:
        pass

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._wake_w >= 0:
            os.write(self._wake_w, b"x")
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        with self._lock:
            waiting, self._waiting = self._waiting, []
        for conn in waiting:
            _send_and_close(conn, _line({"ok": False, "error": "the service stopped before a reference was taken"}))
        if self._listener is not None:
            self._listener.close()
            try:
                self.path.unlink()
            except OSError:
                pass
        for fd in (self._wake_r, self._wake_w):
            if fd >= 0:
                os.close(fd)

    # -- the thread ---------------------------------------------------------------------------

    def _serve(self) -> None:
        assert self._listener is not None
        with selectors.DefaultSelector() as sel:
            sel.register(self._listener, selectors.EVENT_READ)
            sel.register(self._wake_r, selectors.EVENT_READ)
            while not self._closed:
                for key, _ in sel.select():
                    if key.fileobj is self._listener and not self._closed:
                        self._accept()

    def _accept(self) -> None:
        assert self._listener is not None
        try:
            conn, _ = self._listener.accept()
        except OSError:
            return
        try:
            self._take(conn)
        except Exception as exc:  # whatever a client sends must never stop the channel
            log.warning("control socket: %s", exc)
            _send_and_close(conn, _line({"ok": False, "error": str(exc)}))

    def _take(self, conn: socket.socket) -> None:
        conn.settimeout(READ_TIMEOUT_S)
        data = b""
        while b"\n" not in data and len(data) <= MAX_REQUEST_BYTES:
            chunk = conn.recv(MAX_REQUEST_BYTES)
            if not chunk:
                break
            data += chunk
        if len(data) > MAX_REQUEST_BYTES:
            raise RequestRejected(f"request over {MAX_REQUEST_BYTES} bytes")
        try:
            body = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise RequestRejected("not a JSON object on one line") from None
        if not isinstance(body, dict) or not isinstance(body.get("command"), str):
            raise RequestRejected('expected {"command": "<name>", "args": {...}}')
        name = body["command"]
        args = body.get("args") or {}
        if not isinstance(args, dict):
            raise RequestRejected(f"{name}: args must be a JSON object")
        request = Request(name, check_args(name, args), source="socket",
                          reply=lambda result: self._reply(conn, name, result))
        conn.setblocking(False)  # the reply comes from the service's loop, which must never wait on us
        log.info("control socket: %s %s", name, request.args)
        self._submit(request)

    def _reply(self, conn: socket.socket, name: str, result: dict[str, Any]) -> None:
        line = _line(result)
        if name == "calibrate" and result.get("ok"):
            with self._lock:
                if not self._closed and len(self._waiting) < MAX_WAITING:
                    _send(conn, line)
                    self._waiting.append(conn)
                    return
        _send_and_close(conn, line)


def _line(body: dict[str, Any]) -> bytes:
    return (json.dumps(body, separators=(",", ":")) + "\n").encode()


def _send(conn: socket.socket, line: bytes) -> None:
    try:
        conn.send(line)  # a line of JSON fits the socket's buffer; a client that went away is dropped
    except OSError:
        pass


def _send_and_close(conn: socket.socket, line: bytes) -> None:
    _send(conn, line)
    conn.close()


def ask(path: str | os.PathLike[str], name: str, args: dict[str, Any] | None = None, *,
        timeout_s: float = 5.0) -> dict[str, Any]:
    """Send one request to the service listening at ``path``; its result. ServiceUnreachable if
    nothing listens there, TimeoutError if it does not answer within ``timeout_s``."""
    with _connect(path, timeout_s) as conn:
        conn.sendall(_line({"command": name, "args": args or {}}))
        return _Lines(conn).next(time.monotonic() + timeout_s)


def calibrate_through(path: str | os.PathLike[str], *, answer_timeout_s: float = 5.0,
                      reference_timeout_s: float = 60.0) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Ask the running service to take a new upright reference: (the request's result, the
    ``calibration`` event, or None when none came within ``reference_timeout_s``)."""
    with _connect(path, answer_timeout_s) as conn:
        conn.sendall(_line({"command": "calibrate", "args": {}}))
        lines = _Lines(conn)
        result = lines.next(time.monotonic() + answer_timeout_s)
        if not result.get("ok"):
            return result, None
        try:
            answer = lines.next(time.monotonic() + reference_timeout_s)
        except TimeoutError:
            return result, None
        event = answer.get("event")
        return result, event if isinstance(event, dict) else None


def _connect(path: str | os.PathLike[str], timeout_s: float) -> socket.socket:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(timeout_s)
    try:
        conn.connect(str(path))
    except (FileNotFoundError, ConnectionRefusedError) as exc:
        conn.close()
        raise ServiceUnreachable(f"no service answers on {path} ({exc.strerror})") from None
    except PermissionError:
        conn.close()
        raise ServiceUnreachable(f"{path}: permission denied (the service's control socket is for its own "
                                 "user and root: try sudo)") from None
    return conn


class _Lines:
    """JSON objects, one per line, as they arrive on a connection."""

    def __init__(self, conn: socket.socket):
        self._conn = conn
        self._buf = b""

    def next(self, deadline: float) -> dict[str, Any]:
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer from the service")
            self._conn.settimeout(left)
            try:
                chunk = self._conn.recv(65536)
            except socket.timeout:
                raise TimeoutError("no answer from the service") from None
            if not chunk:
                raise ServiceUnreachable("the service closed the control socket without answering")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        try:
            body = json.loads(line)
        except ValueError:
            body = None
        return body if isinstance(body, dict) else {"ok": False, "error": "unexpected answer from the service"}
