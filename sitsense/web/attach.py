"""Starting the page from ``sitsense run``, and the addresses a phone can reach it at.

The page is optional: without aiohttp, a password, or a free port the service runs on without it,
after one warning that says what to do.
"""

from __future__ import annotations

import fcntl
import logging
import socket
import struct
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


def attach_web(service: Any, cfg: Config, *, store_path: str | Path | None = None, speed: float = 1.0):
    """Start the page for ``service`` and add its feed to the outputs; the WebServer, or None."""
    if not cfg.web.enabled:
        return None
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        log.warning("web: the phone page needs aiohttp: pip install 'sitsense[web]' (or set web.enabled = false)")
        return None
    from .auth import PasswordError, load_password
    from .feed import WebFeed
    from .server import WebServer

    try:
        password = load_password(cfg.web)
    except PasswordError as exc:
        log.warning("web: the phone page is off: %s", exc)
        return None
    if password is None:
        log.warning("web: the phone page is off until a password is set: run 'sitsense web-password' "
                    "(README, 'The phone page'), or set web.enabled = false")
        return None
    now: datetime = service.clock.wall()
    days, segments = stored_history(store_path, now.date().isoformat())
    feed = WebFeed(service, days=days, segments=segments, speed=speed)
    server = WebServer(cfg.web, feed, submit=service.submit, password=password)
    try:
        server.start()
    except OutputError as exc:
        log.warning("%s; running without the phone page", exc)
        return None
    feed.on_close = server.close
    service.outputs.append(feed)
    log.info("web: the phone page is at %s", " or ".join(page_urls(cfg.web, server.port)))
    return server
