"""The phone page under the shipped unit, verbatim, in a throwaway systemd (tests/systemd_box.py):
its sandbox (no capabilities, @system-service syscalls, AF_UNIX/INET/INET6 only, read-only file
system) still lets the page listen, log in and answer with the live state."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from .conftest import REPO, require
from .test_systemd_unit import LGPIO_PROBE, UNIT, _stand_in

pytest.importorskip("aiohttp")

PASSWORD = "a password for the box"

CLIENT = r'''
import http.cookiejar, json, sys, time, urllib.request
base = "http://127.0.0.1:8080"
jar = http.cookiejar.CookieJar()
web = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
for _ in range(100):  # the page starts beside the loop, a moment after READY=1
    try:
        health = json.load(web.open(base + "/healthz", timeout=2)); break
    except OSError:
        time.sleep(0.2)
login = urllib.request.Request(base + "/api/login", data=json.dumps({"password": sys.argv[1]}).encode(),
                               headers={"Content-Type": "application/json"})
csrf = json.load(web.open(login, timeout=10))["csrf"]
for _ in range(100):
    state = json.load(web.open(base + "/api/state", timeout=5))
    if state["state"]:
        break
    time.sleep(0.2)
cmd = urllib.request.Request(base + "/api/cmd/snooze", data=b"{}", headers={"Content-Type": "application/json",
                                                                          "X-CSRF-Token": csrf})
answer = json.load(web.open(cmd, timeout=15))
print(json.dumps({"health": health, "posture": state["state"]["posture"], "snooze": answer}))
'''


def test_the_page_serves_under_the_units_hardening(tmp_path):
    from sitsense.web.auth import hash_password

    from . import systemd_box

    reason = systemd_box.available()
    require(reason is None, f"cannot run a throwaway systemd here: {reason}")
    box = systemd_box.SystemdBox(tmp_path / "box")
    box.add_groups("i2c", "gpio")
    box.add_unit("sitsense.service", UNIT.read_text())
    box.add_bind(REPO, "/opt/sitsense/src")
    box.add_bind(Path(sys.prefix), "/opt/sitsense/testenv")
    box.add_bind(Path(sys.base_prefix), "/opt/sitsense/python")
    box.add_file("/opt/sitsense/lgpio_probe.py", LGPIO_PROBE)
    box.add_file("/opt/sitsense/venv/bin/sitsense", _stand_in(), 0o755)
    box.add_file("/opt/sitsense/client.py", CLIENT)
    box.add_file("/etc/sitsense/sitsense.toml", '[sensor]\nsource = "fake:/opt/sitsense/src/examples/desk-morning.csv.gz"\n'
                 '[web]\nbind = "127.0.0.1"\n')
    box.add_file("/etc/sitsense/environment", f"SITSENSE_WEB_PASSWORD={hash_password(PASSWORD)}\n", 0o600)
    try:
        box.start()
        start = box.systemctl("start", "sitsense.service", check=False)
        status = box.systemctl("status", "sitsense.service", check=False).stdout
        assert start.returncode == 0, start.stderr + status
        python = "/opt/sitsense/python/" + str(Path(sys.executable).resolve().relative_to(Path(sys.base_prefix).resolve()))
        got = box.run("env", "LD_LIBRARY_PATH=/opt/sitsense/python/lib", python, "/opt/sitsense/client.py", PASSWORD,
                      check=False, timeout_s=120)
        log = box.run("journalctl", "-u", "sitsense.service", "--no-pager", check=False).stdout
        assert got.returncode == 0, got.stderr[-2000:] + log[-3000:]
        out = json.loads(got.stdout.strip().splitlines()[-1])
        assert out["health"]["app"] == "sitsense"
        assert out["posture"] in ("sitting", "standing", "walking", "lying", "not_worn", "unknown")
        assert out["snooze"]["ok"] is True and out["snooze"]["command"] == "snooze"
        assert box.show("sitsense.service", "ActiveState")["ActiveState"] == "active"
        assert "Traceback" not in log
    finally:
        box.close()
