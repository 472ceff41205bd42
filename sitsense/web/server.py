"""The page's web server: aiohttp on its own thread and event loop, beside the service's loop.

The service's thread only ever calls ``WebFeed`` (which builds a new page dict and pokes this
server with ``call_soon_threadsafe``); commands go the other way through ``service.submit`` and
come back through the command's ``reply``. Nothing here can make the sensor loop wait.

Routes: ``/`` and ``/static/*`` (the page, public: it holds no data), ``/healthz`` (public, for
``sitsense doctor``), ``/api/login`` and ``/api/logout``, and behind the session cookie
``/api/state`` (everything the page shows, with the CSRF token), ``/api/events`` (Server-Sent
Events) and ``POST /api/cmd/<name>`` (CSRF token in ``X-CSRF-Token``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import ssl
import threading
from pathlib import Path
from typing import Any

from aiohttp import web

from .. import __version__
from ..config import WebConfig
from ..errors import OutputError
from ..control import CONTROLS, Request, RequestRejected, Submit, check_args
from .auth import LoginLimiter, PasswordHash, Session, Sessions, csrf_ok
from .feed import WebFeed

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
COOKIE = "sitsense_session"
MAX_BODY_BYTES = 4096
MAX_STREAMS = 8  # open pages at once
PUSH_MIN_INTERVAL_S = 0.25  # the page is never sent more than four updates a second
HEARTBEAT_S = 20.0
COMMAND_WAIT_S = 10.0
STREAM_QUEUE = 64

class BadRequest(web.HTTPBadRequest):
    """A request the page would never send: its reason goes back as JSON."""


def request_for(name: str, body: Any) -> dict[str, Any]:
    """The checked arguments of control ``name`` from a JSON body (``sitsense.control``'s one schema,
    as MQTT uses); raises ``RequestRejected`` with the reason."""
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise RequestRejected(f"{name}: the body must be a JSON object, not {type(body).__name__}")
    return check_args(name, body)


def _sse(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'), default=str)}\n\n".encode()


class WebServer:
    """The page's server. ``start()`` runs it in a thread and returns its URL (or raises OutputError:
    port taken, bad certificate); ``close()`` stops it. ``submit`` takes control Requests (the
    service's ``submit``, as MQTT and the button use)."""

    def __init__(self, cfg: WebConfig, feed: WebFeed, *, submit: Submit,
                 password: PasswordHash, sessions: Sessions | None = None, limiter: LoginLimiter | None = None,
                 command_wait_s: float = COMMAND_WAIT_S):
        self.cfg = cfg
        self.feed = feed
        self.submit = submit
        self.password = password
        self.sessions = sessions or Sessions()
        self.limiter = limiter or LoginLimiter()
        self.command_wait_s = command_wait_s
        self.tls = bool(cfg.tls_cert)
        self.port: int | None = None
        self.stats = {"logins": 0, "login_failures": 0, "commands": 0, "rejected": 0, "pushes": 0}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stop: asyncio.Event | None = None
        self._streams: set[asyncio.Queue] = set()
        self._wake_pending = False
        self._last_push = 0.0
        self._last_timeline: Any = None
        self._check_lock: asyncio.Lock | None = None

    # ------------------------------------------------------------------ life cycle

    @property
    def url(self) -> str:
        host = self.cfg.bind
        host = "127.0.0.1" if host in ("0.0.0.0", "") else ("[::1]" if host == "::" else host)
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}/"

    def start(self, timeout_s: float = 10.0) -> str:
        ssl_ctx = self._ssl_context()  # certificate problems are reported here, in the caller's thread
        self._thread = threading.Thread(target=self._run, args=(ssl_ctx,), name="sitsense-web", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_s):
            raise OutputError(f"web: the page did not start within {timeout_s:g} s")
        if self._error is not None:
            err = self._error
            self._thread.join(timeout=2.0)
            if isinstance(err, OSError):
                raise OutputError(f"web: cannot listen on {self.cfg.bind}:{self.cfg.port} ({err.strerror or err}); "
                                  "another program may use the port: set web.port") from None
            raise OutputError(f"web: {err}") from None
        self.feed.notify = self._wake
        return self.url

    def close(self) -> None:
        """Stop serving (open pages see the stream end and retry); idempotent."""
        self.feed.notify = lambda: None
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(stop.set)
            except RuntimeError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None

    def _ssl_context(self) -> ssl.SSLContext | None:
        if not self.tls:
            return None
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            ctx.load_cert_chain(self.cfg.tls_cert, self.cfg.tls_key)
        except (OSError, ssl.SSLError) as exc:
            raise OutputError(f"web.tls_cert / web.tls_key: cannot load {self.cfg.tls_cert} with "
                              f"{self.cfg.tls_key} ({getattr(exc, 'strerror', None) or exc})") from None
        return ctx

    def _run(self, ssl_ctx: ssl.SSLContext | None) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve(ssl_ctx))
        except BaseException as exc:  # noqa: BLE001 - reported to start(); the service goes on
            if not self._ready.is_set():
                self._error = exc
                self._ready.set()
            else:
                log.exception("web: the page's server stopped")
        finally:
            loop.close()

    async def _serve(self, ssl_ctx: ssl.SSLContext | None) -> None:
        self._stop = asyncio.Event()
        self._check_lock = asyncio.Lock()
        runner = web.AppRunner(self.make_app(), access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.cfg.bind, self.cfg.port, ssl_context=ssl_ctx, reuse_address=True)
            await site.start()
            self.port = runner.addresses[0][1]
            self._ready.set()
            await self._stop.wait()
            for q in list(self._streams):
                q.put_nowait(None)
        finally:
            await runner.cleanup()

    # ------------------------------------------------------------------ the app

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[self._errors, self._headers])
        app.router.add_get("/", self.index)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/manifest.webmanifest", self.manifest)
        app.router.add_static("/static/", STATIC_DIR, show_index=False, follow_symlinks=False)
        app.router.add_post("/api/login", self.login)
        app.router.add_post("/api/logout", self.logout)
        app.router.add_get("/api/state", self.state)
        app.router.add_get("/api/events", self.events)
        app.router.add_post("/api/cmd/{name}", self.command)
        return app

    @web.middleware
    async def _errors(self, request: web.Request, handler):
        """Every failure is a short JSON answer: a clear 4xx for bad requests, never a traceback."""
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400 or exc.content_type == "application/json":
                raise
            reason = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else exc.reason
            if exc.status == 413:
                reason = f"request body over {MAX_BODY_BYTES} bytes"
            return web.json_response({"ok": False, "error": reason}, status=exc.status,
                                     headers={k: v for k, v in exc.headers.items() if k in ("Allow", "Retry-After")})
        except (asyncio.CancelledError, ConnectionResetError):
            raise
        except Exception:
            log.exception("web: %s %s failed", request.method, request.path)
            return web.json_response({"ok": False, "error": "internal error (logged)"}, status=500)

    @web.middleware
    async def _headers(self, request: web.Request, handler):
        resp = await handler(request)
        h = resp.headers
        h.setdefault("X-Content-Type-Options", "nosniff")
        h.setdefault("Referrer-Policy", "no-referrer")
        h.setdefault("X-Frame-Options", "DENY")
        h.setdefault("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                     "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
                     "form-action 'self'")
        if request.path.startswith("/api/"):
            h.setdefault("Cache-Control", "no-store")
        elif request.path.startswith("/static/"):
            h.setdefault("Cache-Control", "public, max-age=3600")
        return resp

    # -- public -------------------------------------------------------------------------------

    async def index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    async def manifest(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC_DIR / "manifest.webmanifest",
                                headers={"Content-Type": "application/manifest+json"})

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"app": "sitsense", "version": __version__, "ok": True})

    # -- sessions -----------------------------------------------------------------------------

    def _client(self, request: web.Request) -> str:
        return request.remote or "?"

    def _session(self, request: web.Request) -> Session:
        session = self.sessions.get(request.cookies.get(COOKIE))
        if session is None:
            raise web.HTTPUnauthorized(text="log in first")
        return session

    def _same_origin(self, request: web.Request) -> None:
        """Refuse a form posted from another site (a browser always sends Origin on a POST)."""
        origin = request.headers.get("Origin")
        if origin and origin != "null" and origin.split("://", 1)[-1] != request.host:
            raise web.HTTPForbidden(text=f"cross-site request refused (Origin {origin})")

    async def _json_body(self, request: web.Request) -> Any:
        if request.content_length and request.content_length > MAX_BODY_BYTES:
            raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY_BYTES, actual_size=request.content_length)
        raw = await request.read()
        if not raw.strip():
            return None
        try:
            return json.loads(raw.decode("utf-8"), parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
        except (UnicodeDecodeError, ValueError):
            raise BadRequest(text="the body is not JSON") from None

    async def login(self, request: web.Request) -> web.Response:
        self._same_origin(request)
        client = self._client(request)
        wait_s = self.limiter.retry_after_s(client)
        if wait_s > 0:
            raise web.HTTPTooManyRequests(text=f"too many wrong passwords: try again in {math.ceil(wait_s / 60)} min",
                                          headers={"Retry-After": str(math.ceil(wait_s))})
        body = await self._json_body(request)
        password = body.get("password") if isinstance(body, dict) else None
        if not isinstance(password, str) or not password or len(password) > 1024:
            raise BadRequest(text='send {"password": "..."}')
        assert self._check_lock is not None
        async with self._check_lock:  # one scrypt at a time: a login flood cannot take the CPU
            ok = await asyncio.get_running_loop().run_in_executor(None, self.password.verify, password)
        if not ok:
            self.limiter.failed(client)
            self.stats["login_failures"] += 1
            log.warning("web: wrong password from %s", client)
            raise web.HTTPUnauthorized(text="wrong password")
        self.limiter.succeeded(client)
        self.stats["logins"] += 1
        session = self.sessions.create()
        resp = web.json_response({"ok": True, "csrf": session.csrf})
        resp.set_cookie(COOKIE, session.token, httponly=True, samesite="Strict", secure=self.tls, path="/",
                        max_age=int(self.sessions.idle_s))
        log.info("web: %s logged in", client)
        return resp

    async def logout(self, request: web.Request) -> web.Response:
        session = self._session(request)
        self._require_csrf(request, session)
        self.sessions.drop(session.token)
        resp = web.json_response({"ok": True})
        resp.del_cookie(COOKIE, path="/")
        return resp

    def _require_csrf(self, request: web.Request, session: Session) -> None:
        if not csrf_ok(session, request.headers.get("X-CSRF-Token")):
            self.stats["rejected"] += 1
            raise web.HTTPForbidden(text="missing or wrong CSRF token (X-CSRF-Token); reload the page")

    # -- data ---------------------------------------------------------------------------------

    async def state(self, request: web.Request) -> web.Response:
        session = self._session(request)
        return web.json_response({**self.feed.page, "csrf": session.csrf, "version_app": __version__})

    async def events(self, request: web.Request) -> web.StreamResponse:
        self._session(request)
        if len(self._streams) >= MAX_STREAMS:
            raise web.HTTPServiceUnavailable(text=f"{MAX_STREAMS} pages are open already; close one")
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                           "X-Accel-Buffering": "no"})
        await resp.prepare(request)
        queue: asyncio.Queue = asyncio.Queue(maxsize=STREAM_QUEUE)
        self._streams.add(queue)
        try:
            await resp.write(b"retry: 3000\n\n" + _sse("page", self.feed.page))
            while True:
                try:
                    chunk = await asyncio.wait_for(queue.get(), HEARTBEAT_S)
                except asyncio.TimeoutError:
                    chunk = b": ping\n\n"
                if chunk is None:  # shutting down, or this page fell behind: it reconnects
                    break
                await resp.write(chunk)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self._streams.discard(queue)
        return resp

    def _wake(self) -> None:
        """From the service's thread: a new page is ready. Never blocks."""
        if self._wake_pending or self._loop is None:
            return
        self._wake_pending = True
        try:
            self._loop.call_soon_threadsafe(self._schedule_push)
        except RuntimeError:  # the loop is closed: the page is gone
            pass

    def _schedule_push(self) -> None:
        loop = asyncio.get_running_loop()
        delay = self._last_push + PUSH_MIN_INTERVAL_S - loop.time()
        if delay > 0:
            loop.call_later(delay, self._push)
        else:
            self._push()

    def _push(self) -> None:
        self._wake_pending = False  # first: a change made while pushing schedules another push
        self._last_push = asyncio.get_running_loop().time()
        page = self.feed.page
        chunks = []
        notices = []
        while self.feed.notices:
            notices.append(self.feed.notices.popleft())
        for n in notices:
            chunks.append(_sse("notice", n))
        update = {k: v for k, v in page.items() if k != "timeline"}
        if page["timeline"] is not self._last_timeline:
            update["timeline"] = page["timeline"]
            self._last_timeline = page["timeline"]
        chunks.append(_sse("page", update))
        data = b"".join(chunks)
        self.stats["pushes"] += 1
        for q in list(self._streams):
            try:
                q.put_nowait(data)
            except asyncio.QueueFull:  # this page fell behind: end its stream, it reconnects and catches up
                self._streams.discard(q)
                while not q.empty():
                    q.get_nowait()
                q.put_nowait(None)

    # -- commands -----------------------------------------------------------------------------

    async def command(self, request: web.Request) -> web.Response:
        session = self._session(request)
        self._require_csrf(request, session)
        name = request.match_info["name"]
        if name not in CONTROLS:
            raise web.HTTPNotFound(text=f"unknown command {name!r} (known: {', '.join(CONTROLS)})")
        try:
            args = request_for(name, await self._json_body(request))
        except RequestRejected as exc:
            self.stats["rejected"] += 1
            raise BadRequest(text=str(exc)) from None
        loop = asyncio.get_running_loop()
        answer: asyncio.Future = loop.create_future()

        def settle(result: dict[str, Any]) -> None:
            if not answer.done():
                answer.set_result(result)

        def reply(result: dict[str, Any]) -> None:  # on the service's thread
            try:
                loop.call_soon_threadsafe(settle, result)
            except RuntimeError:
                pass

        self.stats["commands"] += 1
        log.info("web: command %s %s", name, args)
        self.submit(Request(name=name, args=args, source="web", reply=reply))
        try:
            result = await asyncio.wait_for(asyncio.shield(answer), self.command_wait_s)
        except asyncio.TimeoutError:
            return web.json_response({"ok": None, "command": name, "pending": True,
                                      "detail": "sent; the service has not answered yet"}, status=202)
        return web.json_response({"command": name, **result}, status=200 if result.get("ok") else 409)
