"""Starting the page from ``sitsense run``, and the addresses a phone can reach it at.

The page is optional: without aiohttp, a password, or a free port the service runs on without it,
after one warning that says what to do.
"""

from __future__ import annotations

import fcntl
import logging
import socket
import struct
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from ..config import Config, WebConfig
from ..errors import OutputError

log = logging.getLogger(__name__)

SIOCGIFADDR = 0x8915


def lan_addresses() -> list[str]:
    """This machine's IPv4 addresses other than loopback (Linux: read per interface, no traffic)."""
    out: list[str] = []
    try:
        names = [name for _, name in socket.if_nameindex()]
    except OSError:
        return out
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for name in names:
            try:
                packed = fcntl.ioctl(s.fileno(), SIOCGIFADDR, struct.pack("256s", name[:15].encode()))
            except OSError:
                continue  # no IPv4 address on it
            addr = socket.inet_ntoa(packed[20:24])
            if not addr.startswith("127.") and addr not in out:
                out.append(addr)
    return out


def page_urls(cfg: WebConfig, port: int | None = None) -> list[str]:
    """Where a phone finds the page: each LAN address (or the bound one) and ``<host>.local``."""
    scheme = "https" if cfg.tls_cert else "http"
    port = port or cfg.port
    if cfg.bind in ("0.0.0.0", "::", ""):
        hosts = lan_addresses() + [f"{socket.gethostname().split('.')[0]}.local"]
    else:
        hosts = [f"[{cfg.bind}]" if ":" in cfg.bind else cfg.bind]
    return [f"{scheme}://{h}:{port}/" for h in hosts]


def stored_history(store_path: str | Path | None, today: str) -> tuple[list[dict[str, Any]], list]:
    """The last finished days and today's posture segments from the state database, read-only
    (empty when there is none or it cannot be read: the page then starts from this run)."""
    if store_path is None or not Path(store_path).exists():
        return [], []
    from ..report import from_store
    from ..store import Store

    store = Store(store_path)
    try:
        store.open(read_only=True)
        days = [d for d in store.days(8) if d.get("date") != today][-6:]
        reports = from_store(store, [today])
        segments = reports[0].segments if reports else []
        return days, segments
    except Exception as exc:  # the page's history must never stop the service
        log.warning("web: cannot read the history for the page (%s); it starts from now", exc)
        return [], []
    finally:
        store.close()


class PageStarter:
    """Starts the page in a thread of its own, so ``run`` never waits for it: importing aiohttp,
    hashing a plain password and reading the history take a moment on a Pi Zero, and a fake sensor
    at speed would lose samples meanwhile. ``wait()`` gives the WebServer (or None: it is off)."""

    def __init__(self, service: Any, cfg: Config, feed: Any, store_path: str | Path | None):
        self.service, self.cfg, self.feed, self.store_path = service, cfg, feed, store_path
        self.server = None
        self._closed = False
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._start, name="sitsense-web-start", daemon=True)

    def begin(self) -> "PageStarter":
        self._thread.start()
        return self

    def wait(self, timeout_s: float = 30.0):
        self._done.wait(timeout_s)
        return self.server

    def close(self) -> None:
        self._closed = True
        self._done.wait(15.0)
        if self.server is not None:
            self.server.close()

    def _start(self) -> None:
        try:
            self.server = self._open()
        except Exception:  # the page must never take the service down
            log.exception("web: the phone page could not start")
        finally:
            if self._closed and self.server is not None:
                self.server.close()
            self._done.set()

    def _open(self):
        web = self.cfg.web
        from .auth import PasswordError, load_password

        try:
            password = load_password(web)
        except PasswordError as exc:
            log.warning("web: the phone page is off: %s", exc)
            return None
        if password is None:  # not set up: a normal state, not a fault (doctor shows it)
            log.info("web: the phone page is off until a password is set: run 'sitsense web-password' "
                     "(docs/wear/phone-page.md), or set web.enabled = false")
            return None
        try:
            import aiohttp  # noqa: F401
        except ImportError:
            log.warning("web: the phone page needs aiohttp: pip install 'sitsense[web]' (or set web.enabled = false)")
            return None
        from .server import WebServer
        today = self.service.clock.wall().date().isoformat()
        self.feed.seed(*stored_history(self.store_path, today))
        server = WebServer(web, self.feed, submit=self.service.submit, password=password)
        try:
            server.start()
        except OutputError as exc:
            log.warning("%s; running without the phone page", exc)
            return None
        log.info("web: the phone page is at %s", " or ".join(page_urls(web, server.port)))
        return server


def attach_web(service: Any, cfg: Config, *, store_path: str | Path | None = None,
               speed: float = 1.0) -> PageStarter | None:
    """Add the page's output to ``service`` and start the page in the background (see PageStarter);
    None when ``web.enabled`` is false."""
    if not cfg.web.enabled:
        return None
    from .feed import WebFeed

    feed = WebFeed(service, speed=speed)
    starter = PageStarter(service, cfg, feed, store_path)
    feed.on_close = starter.close
    service.outputs.append(feed)
    return starter.begin()
