"""Who may use the page: the password (scrypt hash), sessions, CSRF tokens and the login limiter.

The password is never stored in the clear by sitsense: ``sitsense web-password`` prints its scrypt
hash (``scrypt:<n>:<r>:<p>:<salt>:<hash>``, url-safe base64, no ``$`` so a systemd
EnvironmentFile keeps it intact). A plain password is accepted too (a systemd credential, say) and
hashed in memory at start.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

from ..config import CREDENTIALS_ROOT, WebConfig, _readable_by_others
from ..errors import OutputError

PASSWORD_ENV = "SITSENSE_WEB_PASSWORD"
CREDENTIAL_NAME = "web-password"  # LoadCredential=web-password:/etc/sitsense/web-password
# The work of N = 2^14, r = 8 (scrypt's usual interactive setting) in 4 MB instead of 16: p = 4
# passes over N = 2^12 run one after the other, so the service's memory peak during a login stays
# small on a Pi Zero 2 W (512 MB; the unit's MemoryMax is 128 MB) for the same CPU cost per guess.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2 ** 12, 8, 4
MIN_PASSWORD_CHARS = 8
SESSION_IDLE_S = 30 * 24 * 3600.0
MAX_SESSIONS = 32


class PasswordError(OutputError):
    """Error raised when the page's password cannot be read or is not usable."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str, *, salt: bytes | None = None, n: int = SCRYPT_N, r: int = SCRYPT_R,
                  p: int = SCRYPT_P) -> str:
    """The stored form of ``password``: ``scrypt:n:r:p:salt:hash``."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=64 * 1024 * 1024, dklen=32)
    return f"scrypt:{n}:{r}:{p}:{_b64(salt)}:{_b64(digest)}"


def is_hash(text: str) -> bool:
    return text.startswith("scrypt:")


@dataclass(frozen=True)
class PasswordHash:
    """A parsed ``scrypt:`` hash; ``verify`` takes about as long whatever it is given."""

    n: int
    r: int
    p: int
    salt: bytes
    digest: bytes

    @classmethod
    def parse(cls, text: str, where: str = "the password hash") -> "PasswordHash":
        parts = text.strip().split(":")
        try:
            if len(parts) != 6 or parts[0] != "scrypt":
                raise ValueError
            n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
            salt, digest = _unb64(parts[4]), _unb64(parts[5])
            if n < 2 ** 10 or n & (n - 1) or not (1 <= r <= 32 and 1 <= p <= 16) or len(digest) != 32 or not salt:
                raise ValueError
        except ValueError:
            raise PasswordError(f"{where} is not a hash made by 'sitsense web-password' "
                                "(expected scrypt:N:r:p:salt:hash); make a new one") from None
        return cls(n, r, p, salt, digest)

    @classmethod
    def of(cls, secret: str, where: str = "the password") -> "PasswordHash":
        """From a stored hash, or from a plain password (hashed now)."""
        secret = secret.strip("\r\n")
        if is_hash(secret):
            return cls.parse(secret, where)
        if len(secret) < MIN_PASSWORD_CHARS:
            raise PasswordError(f"{where} is shorter than {MIN_PASSWORD_CHARS} characters; choose a longer one")
        return cls.parse(hash_password(secret), where)

    def verify(self, password: str) -> bool:
        try:
            got = hashlib.scrypt(password.encode("utf-8"), salt=self.salt, n=self.n, r=self.r, p=self.p,
                                 maxmem=64 * 1024 * 1024, dklen=32)
        except (ValueError, MemoryError):
            return False
        return hmac.compare_digest(got, self.digest)

    def __repr__(self) -> str:
        return "PasswordHash(***)"


def load_password(cfg: WebConfig, environ: Mapping[str, str] | None = None) -> PasswordHash | None:
    """The page's password: ``SITSENSE_WEB_PASSWORD``, else ``web.password_file``, else the systemd
    credential ``web-password``; None when none is set (the page then stays off)."""
    env = os.environ if environ is None else environ
    if env.get(PASSWORD_ENV):
        return PasswordHash.of(env[PASSWORD_ENV], PASSWORD_ENV)
    path = None
    if cfg.password_file:
        path = Path(cfg.password_file).expanduser()
    elif env.get("CREDENTIALS_DIRECTORY"):
        cred = Path(env["CREDENTIALS_DIRECTORY"]) / CREDENTIAL_NAME
        if cred.exists():
            path = cred
    if path is None:
        return None
    where = f"web.password_file = {str(path)!r}"
    try:
        st = path.stat()
        credential = str(path).startswith(CREDENTIALS_ROOT) or (
            env.get("CREDENTIALS_DIRECTORY") and str(path).startswith(env["CREDENTIALS_DIRECTORY"]))
        shared = None if credential else _readable_by_others(st.st_mode, path)
        if shared:
            raise PasswordError(f"{where}: {shared}")
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise PasswordError(f"{where}: cannot read it ({exc.strerror})") from None
    if not text:
        raise PasswordError(f"{where}: the file is empty; put the line from 'sitsense web-password' in it")
    return PasswordHash.of(text.splitlines()[0], where)


@dataclass
class Session:
    """One logged-in browser: its cookie token and its CSRF token."""

    token: str
    csrf: str
    created_s: float
    seen_s: float


@dataclass
class Sessions:
    """Logged-in browsers, in memory (a restart asks for the password again). ``now`` is injectable."""

    idle_s: float = SESSION_IDLE_S
    max_sessions: int = MAX_SESSIONS
    now: Callable[[], float] = time.monotonic
    _by_token: dict[str, Session] = field(default_factory=dict)

    def create(self) -> Session:
        now = self.now()
        s = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), now, now)
        self._by_token[s.token] = s
        self._prune(now)
        return s

    def get(self, token: str | None) -> Session | None:
        """The live session of a cookie value, or None (unknown, or idle too long)."""
        if not token:
            return None
        s = self._by_token.get(token)
        now = self.now()
        if s is None or now - s.seen_s > self.idle_s:
            if s is not None:
                del self._by_token[token]
            return None
        s.seen_s = now
        return s

    def drop(self, token: str | None) -> None:
        if token:
            self._by_token.pop(token, None)

    def __len__(self) -> int:
        return len(self._by_token)

    def _prune(self, now: float) -> None:
        for tok in [t for t, s in self._by_token.items() if now - s.seen_s > self.idle_s]:
            del self._by_token[tok]
        while len(self._by_token) > self.max_sessions:  # the least recently seen goes first
            oldest = min(self._by_token.values(), key=lambda s: s.seen_s)
            del self._by_token[oldest.token]


def csrf_ok(session: Session, presented: str | None) -> bool:
    """The request carries this session's CSRF token (compared in constant time)."""
    return bool(presented) and hmac.compare_digest(session.csrf.encode(), str(presented).encode())


@dataclass
class LoginLimiter:
    """Slows password guessing: ``per_client`` failures in ``window_s`` lock that address out for the
    rest of the window, and ``overall`` failures from everyone together lock out everyone (a guesser
    with many addresses). A success clears the address's count."""

    per_client: int = 5
    overall: int = 30
    window_s: float = 15 * 60.0
    now: Callable[[], float] = time.monotonic
    _fails: dict[str, deque] = field(default_factory=dict)
    _all: deque = field(default_factory=deque)

    def retry_after_s(self, client: str) -> float:
        """0 if ``client`` may try now, else the seconds until it may."""
        now = self.now()
        self._expire(now)
        waits = []
        mine = self._fails.get(client)
        if mine and len(mine) >= self.per_client:
            waits.append(mine[0] + self.window_s - now)
        if len(self._all) >= self.overall:
            waits.append(self._all[0] + self.window_s - now)
        return max(waits, default=0.0)

    def failed(self, client: str) -> None:
        now = self.now()
        self._fails.setdefault(client, deque()).append(now)
        self._all.append(now)
        while len(self._fails) > 1024:  # bounded memory whatever arrives
            self._fails.pop(next(iter(self._fails)))

    def succeeded(self, client: str) -> None:
        self._fails.pop(client, None)

    def _expire(self, now: float) -> None:
        for q in (self._all, *self._fails.values()):
            while q and q[0] <= now - self.window_s:
                q.popleft()
        for k in [k for k, q in self._fails.items() if not q]:
            del self._fails[k]
