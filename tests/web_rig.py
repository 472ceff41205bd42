"""Test rig for the phone page: ``sitsense run`` on a fake sensor with the page on, and headless
Chromium from Debian driven by Selenium (never a downloaded browser)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from .conftest import REPO, require

CHROMIUM = os.environ.get("SITSENSE_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("SITSENSE_CHROMEDRIVER", "/usr/bin/chromedriver")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--hide-scrollbars", "--lang=en-GB")
PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True}
PASSWORD = "correct horse battery"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServiceProcess:
    """``sitsense run`` in a subprocess; ``events`` collects its JSON Lines as they come."""

    def __init__(self, proc: subprocess.Popen, url: str, stderr_path: Path):
        self.proc = proc
        self.url = url
        self.stderr_path = stderr_path
        self.events: list[dict] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                self.events.append(json.loads(line))
            except ValueError:
                pass

    def types(self) -> list[str]:
        return [e.get("type") for e in list(self.events)]

    def wait_for(self, predicate, timeout_s: float = 60.0, what: str = "an event"):
        """The first collected event matching ``predicate`` (polls; a bound, not a timed assertion)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for e in list(self.events):
                if predicate(e):
                    return e
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"no {what}; events: {self.types()}; stderr: {self.stderr()[-2000:]}")

    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text()
        except OSError:
            return ""


@contextmanager
def running_service(tmp_path: Path, *, plan: str, speed: float, seconds: float, extra_config: str = "",
                    password: str = PASSWORD):
    """Start the service with the page on a free loopback port; stop it (SIGTERM) afterwards."""
    from sitsense.web.auth import hash_password

    port = free_port()
    cfg = tmp_path / "web.toml"
    cfg.write_text(f"[tracker]\nsit_limit_min = 5\n[buzzer]\nenabled = false\n"
                   f"[web]\nbind = \"127.0.0.1\"\nport = {port}\n{extra_config}")
    env = dict(os.environ, SITSENSE_WEB_PASSWORD=hash_password(password), STATE_DIRECTORY=str(tmp_path / "state"),
               PYTHONUNBUFFERED="1")
    stderr_path = tmp_path / "service.err"
    with open(stderr_path, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "sitsense.cli", "-v", "run", "--config", str(cfg),
                                 "--sensor", f"fake:plan:{plan}", "--speed", str(speed), "--seconds", str(seconds),
                                 "--json"], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=err, text=True)
    svc = ServiceProcess(proc, f"http://127.0.0.1:{port}/", stderr_path)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(svc.url + "healthz", timeout=2) as r:
                    if json.load(r).get("app") == "sitsense":
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the page did not come up: {svc.stderr()[-2000:]}")
            time.sleep(0.1)
        yield svc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def chromium_available() -> bool:
    return os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)


@contextmanager
def phone_browser():
    """Headless Chromium at 390x844 (a phone), fresh profile, no network but loopback."""
    require(chromium_available(), f"Chromium not found at {CHROMIUM} with its driver {CHROMEDRIVER} "
                                  "(apt-get install chromium chromium-driver)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        require(False, "selenium not installed (pip install -e '.[dev]')")
    profile = tempfile.mkdtemp(prefix="sitsense-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS + (f"--user-data-dir={profile}", "--window-size=390,844"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", PHONE)
        driver.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": True})
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
