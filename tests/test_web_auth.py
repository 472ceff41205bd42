"""The page's password, sessions, CSRF tokens and login limiter (pure, with injected time)."""

from __future__ import annotations

import os

import pytest

from sitsense.config import WebConfig
from sitsense.web.auth import (PASSWORD_ENV, LoginLimiter, PasswordError, PasswordHash, Sessions, csrf_ok,
                               hash_password, load_password)

FAST = dict(n=2 ** 10)  # the shipped cost (2**14) is for the Pi; the tests check the logic


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def test_a_hash_verifies_its_password_only_and_never_shows_it():
    text = hash_password("hunter2 hunter2", **FAST)
    assert text.startswith("scrypt:1024:8:4:") and "hunter2" not in text and "$" not in text
    h = PasswordHash.parse(text)
    assert h.verify("hunter2 hunter2") and not h.verify("hunter2 hunter3") and not h.verify("")
    assert "hunter" not in repr(h) and text.split(":")[-1] not in repr(h)
    assert hash_password("same password", **FAST) != hash_password("same password", **FAST)  # salted


def test_the_shipped_cost_is_2_17_blocks_in_4_mb():
    h = PasswordHash.parse(hash_password("x" * 8))
    assert h.n * h.r * h.p == 2 ** 17 and 128 * h.r * h.n == 4 * 2 ** 20


@pytest.mark.parametrize("text", ["scrypt:1024:8:1:abc", "bcrypt:$2b$...", "scrypt:1000:8:1:c2FsdA:" + "A" * 43,
                                  "scrypt:x:8:1:c2FsdA:AAAA", "scrypt:1024:8:1::" + "A" * 43])
def test_a_damaged_hash_is_refused_with_what_to_do(text):
    with pytest.raises(PasswordError, match="sitsense web-password"):
        PasswordHash.parse(text)


def test_a_plain_password_is_accepted_when_long_enough():
    assert PasswordHash.of("eight ch").verify("eight ch")
    with pytest.raises(PasswordError, match="shorter than 8 characters"):
        PasswordHash.of("short")


def test_the_environment_wins_then_the_file_then_the_credential(tmp_path):
    f = tmp_path / "pw"
    f.write_text(hash_password("from the file", **FAST) + "\n")
    f.chmod(0o600)
    cfg = WebConfig(password_file=str(f))
    assert load_password(cfg, {PASSWORD_ENV: hash_password("from the env", **FAST)}).verify("from the env")
    assert load_password(cfg, {}).verify("from the file")
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "web-password").write_text("a plain credential")
    (creds / "web-password").chmod(0o440)  # systemd hands credentials over read-only; not 0600, and fine
    assert load_password(WebConfig(), {"CREDENTIALS_DIRECTORY": str(creds)}).verify("a plain credential")
    assert load_password(WebConfig(), {}) is None


def test_a_password_file_others_can_read_or_an_empty_one_is_refused(tmp_path):
    f = tmp_path / "pw"
    f.write_text(hash_password("some password", **FAST))
    f.chmod(0o644)
    with pytest.raises(PasswordError, match=r"mode 0644 lets other users read a secret; run 'chmod 600"):
        load_password(WebConfig(password_file=str(f)), {})
    f.write_text("\n")
    f.chmod(0o600)
    with pytest.raises(PasswordError, match="the file is empty"):
        load_password(WebConfig(password_file=str(f)), {})
    with pytest.raises(PasswordError, match="cannot read it"):
        load_password(WebConfig(password_file=str(tmp_path / "missing")), {})


def test_sessions_expire_when_idle_and_the_oldest_goes_first():
    clock = Clock()
    sessions = Sessions(idle_s=100.0, max_sessions=2, now=clock)
    a = sessions.create()
    assert sessions.get(a.token) is a and sessions.get(None) is None and sessions.get("forged") is None
    clock.t += 90
    assert sessions.get(a.token) is a  # seen: the idle time starts again
    clock.t += 90
    assert sessions.get(a.token) is a
    clock.t += 101
    assert sessions.get(a.token) is None
    b, c = sessions.create(), sessions.create()
    clock.t += 1
    sessions.get(b.token)
    d = sessions.create()  # over the limit: c, the least recently seen, is dropped
    assert sessions.get(c.token) is None and sessions.get(b.token) is b and sessions.get(d.token) is d
    sessions.drop(b.token)
    assert sessions.get(b.token) is None and len(sessions) == 1
    assert a.csrf != a.token and len({b.csrf, c.csrf, d.csrf}) == 3


def test_csrf_tokens_must_match_exactly():
    s = Sessions().create()
    assert csrf_ok(s, s.csrf)
    assert not csrf_ok(s, None) and not csrf_ok(s, "") and not csrf_ok(s, s.csrf + "x") and not csrf_ok(s, s.token)


def test_the_limiter_locks_out_one_address_then_everyone_and_forgets_after_the_window():
    clock = Clock()
    lim = LoginLimiter(per_client=3, overall=5, window_s=600.0, now=clock)
    for _ in range(3):
        assert lim.retry_after_s("10.0.0.2") == 0
        lim.failed("10.0.0.2")
    assert lim.retry_after_s("10.0.0.2") == pytest.approx(600.0)
    assert lim.retry_after_s("10.0.0.3") == 0  # others may still try
    lim.failed("10.0.0.3")
    lim.failed("10.0.0.4")
    assert lim.retry_after_s("10.0.0.5") > 0  # five failures from anywhere: everyone waits
    clock.t += 601
    assert lim.retry_after_s("10.0.0.2") == 0 and lim.retry_after_s("10.0.0.5") == 0
    lim.failed("10.0.0.6")
    lim.failed("10.0.0.6")
    lim.succeeded("10.0.0.6")
    lim.failed("10.0.0.6")
    assert lim.retry_after_s("10.0.0.6") == 0  # a success cleared the count


def test_web_password_prints_a_hash_line_or_writes_a_private_file(tmp_path, capsys, monkeypatch):
    import io
    import sys

    from sitsense.cli import main

    monkeypatch.setattr(sys, "stdin", io.StringIO("a good password\n"))
    assert main(["web-password", "--stdin"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{PASSWORD_ENV}=scrypt:") and "good" not in line
    assert load_password(WebConfig(), {PASSWORD_ENV: line.split("=", 1)[1]}).verify("a good password")
    out = tmp_path / "web-password"
    monkeypatch.setattr(sys, "stdin", io.StringIO("a good password\n"))
    assert main(["web-password", "--stdin", "--output", str(out)]) == 0
    assert os.stat(out).st_mode & 0o777 == 0o600
    assert load_password(WebConfig(password_file=str(out)), {}).verify("a good password")
    monkeypatch.setattr(sys, "stdin", io.StringIO("short\n"))
    assert main(["web-password", "--stdin"]) == 78
    assert "at least 8 characters" in capsys.readouterr().err
