"""The phone page in a real browser (headless Chromium from Debian, Selenium) against ``sitsense run``
on a fake sensor at 20x: log in, watch the posture change and an alert arrive without reloading,
follow the guided release's timer, press Snooze and see the service act, and check that a wrong
password and a command without its CSRF token are refused. Screenshots at 390x844 are checked for
the elements a wearer needs (present, visible, inside the screen, thumb-sized buttons).

``SITSENSE_UPDATE_SCREENSHOTS=1`` also writes the screenshots to ``docs/`` (the README and docs/wear/phone-page.md show one).
"""

from __future__ import annotations

import os
import re
import struct
from pathlib import Path

import pytest

from .conftest import REPO
from .web_rig import PASSWORD, PHONE, phone_browser, running_service


PLAN = "stand 3m, sit 7m, walk 4m, sit 6m"  # alert at 8 min (sit_limit_min = 5), release from 10 min


def _by(driver, css):
    from selenium.webdriver.common.by import By
    return driver.find_element(By.CSS_SELECTOR, css)


def _wait(driver, timeout_s: float = 90.0):
    from selenium.webdriver.support.ui import WebDriverWait
    return WebDriverWait(driver, timeout_s, poll_frequency=0.2)


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


def _check_screen(driver, path: Path, must_show: list[str]) -> None:
    """A phone-sized screenshot in which every listed element is shown, on screen and not cut off."""
    driver.save_screenshot(str(path))
    assert _png_size(path) == (PHONE["width"], PHONE["height"])
    assert driver.execute_script("return document.documentElement.scrollWidth") <= PHONE["width"], \
        "the page scrolls sideways at 390 px"
    bar_top = _by(driver, "#controls").rect["y"]
    for css in must_show:
        el = _by(driver, css)
        assert el.is_displayed(), f"{css} is not shown"
        r = el.rect
        assert r["width"] > 0 and r["height"] > 0, f"{css} has no size"
        assert r["x"] >= 0 and r["x"] + r["width"] <= PHONE["width"] + 0.5, f"{css} sticks out sideways: {r}"
        if not css.startswith(("#controls", "[data-cmd")):  # above the button bar, without scrolling
            assert r["y"] >= 0 and r["y"] + r["height"] <= bar_top + 0.5, f"{css} is off screen: {r}"
    if os.environ.get("SITSENSE_UPDATE_SCREENSHOTS"):
        (REPO / "docs").mkdir(exist_ok=True)
        (REPO / "docs" / path.name).write_bytes(path.read_bytes())


def _fetch(driver, path: str, headers: dict | None = None, body: str = "{}"):
    """POST from inside the logged-in page (same cookies), as a forged request would be."""
    return driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0], {method: 'POST', headers: arguments[1], body: arguments[2]})"
        ".then(r => r.json().then(j => done([r.status, j]))).catch(e => done([0, String(e)]));",
        path, headers or {"Content-Type": "application/json"}, body)


def test_phone_page_follows_the_service_and_its_buttons_act(tmp_path):
    with phone_browser() as driver, running_service(tmp_path, plan=PLAN, speed=20, seconds=1200) as svc:
        wait = _wait(driver)
        driver.get(svc.url)
        wait.until(lambda d: _by(d, "#password").is_displayed())
        assert not _by(driver, "#app").is_displayed() and not _by(driver, "#controls").is_displayed()
        bar_hidden_top = PHONE["height"]
        assert bar_hidden_top  # the login screen has no button bar
        driver.save_screenshot(str(tmp_path / "phone-login.png"))
        assert _png_size(tmp_path / "phone-login.png") == (PHONE["width"], PHONE["height"])
        for css in ("#password", "#login-button"):
            r = _by(driver, css).rect
            assert _by(driver, css).is_displayed() and r["y"] + r["height"] <= PHONE["height"] and r["width"] >= 44

        # a wrong password is refused, and nothing is shown
        _by(driver, "#password").send_keys("not the password")
        _by(driver, "#login-button").click()
        wait.until(lambda d: _by(d, "#login-error").text)
        assert _by(driver, "#login-error").text == "wrong password"
        assert not _by(driver, "#app").is_displayed()

        _by(driver, "#password").send_keys(PASSWORD)
        _by(driver, "#login-button").click()
        wait.until(lambda d: _by(d, "#app").is_displayed() and _by(d, "#posture").text not in ("", "…"))
        wait.until(lambda d: _by(d, "#link").text == "live")
        driver.execute_script("window.__sameDocument = 42")  # gone if the page reloads
        first = _by(driver, "#posture").text
        assert first in ("Standing", "Unknown"), first

        # the posture changes and the alert arrives while the page stays open
        wait.until(lambda d: _by(d, "#posture").text == "Sitting")
        wait.until(lambda d: _by(d, "#alert").is_displayed())
        assert driver.execute_script("return window.__sameDocument") == 42, "the page was reloaded"
        alert = svc.wait_for(lambda e: e.get("type") == "alert", what="alert from the service")
        assert _by(driver, "#alert-message").text == alert["message"]
        assert _by(driver, "#ex-name").text == alert["exercise"]["name"]
        assert _by(driver, "#ex-dose").text == alert["exercise"]["dose"]
        assert len(driver.find_elements("css selector", "#ex-steps li")) == len(alert["exercise"]["steps"])
        assert not _by(driver, "#ex-steps").is_displayed()  # folded, one tap away
        _by(driver, "#ex-how summary").click()
        assert _by(driver, "#ex-steps").is_displayed()
        _by(driver, "#ex-how summary").click()
        assert "never pain" in _by(driver, "#alert-safety").text
        assert "Stand up" in driver.title
        assert _by(driver, "#f-heeded").text.endswith("/1")
        _check_screen(driver, tmp_path / "phone-page.png",
                      ["#alert-message", "#ex-name", "#ex-dose", "#posture", "#bout", "#f-sitting", "#f-release",
                       "#controls", "[data-cmd=snooze]", "[data-cmd=pause]", "[data-cmd=resume]",
                       "[data-cmd=ack]", "[data-cmd=calibrate]"])
        for button in driver.find_elements("css selector", "#controls button"):
            r = button.rect
            assert r["height"] >= 44 and r["width"] >= 44, f"{button.text!r} is too small for a thumb: {r}"
            assert r["y"] + r["height"] <= PHONE["height"], f"{button.text!r} is off the bottom of the screen"

        # a command without the CSRF token is refused, and the service does nothing
        status, body = _fetch(driver, "/api/cmd/snooze")
        assert status == 403 and "CSRF" in body["error"]
        status, body = _fetch(driver, "/api/cmd/snooze", {"Content-Type": "application/json",
                                                          "X-CSRF-Token": "forged"})
        assert status == 403
        assert "snooze" not in svc.types()

        # Snooze: the service snoozes, and the page says so
        _by(driver, "[data-cmd=snooze]").click()
        snoozed = svc.wait_for(lambda e: e.get("type") == "snooze", what="snooze from the page")
        assert snoozed["until_t"] > alert["t"]
        wait.until(lambda d: "Snoozed: next reminder at" in _by(d, "#notices").text)  # also flashed as a toast
        wait.until(lambda d: "Next reminder not before" in _by(d, "#modes").text)

        # standing up starts the guided release: the page's timer follows the buzzer's cues
        start = svc.wait_for(lambda e: e.get("type") == "hold" and e.get("cue") == "start", what="hold start")
        wait.until(lambda d: _by(d, "#release").is_displayed())
        assert _by(driver, "#rel-name").text == alert["exercise"]["name"] or start["exercise_id"]
        assert re.fullmatch(r"\d+:\d\d|✓", _by(driver, "#rel-timer").text)
        wait.until(lambda d: _by(d, "#posture").text in ("Walking", "Standing"))
        _check_screen(driver, tmp_path / "phone-release.png", ["#release", "#rel-timer", "#rel-label", "#posture"])
        assert driver.execute_script("return window.__sameDocument") == 42

        # one-handed at 360 px: nothing scrolls sideways, every button whole and thumb-sized
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {**PHONE, "width": 360, "height": 740})
        wait.until(lambda d: d.execute_script("return innerWidth") == 360)
        assert driver.execute_script("return document.documentElement.scrollWidth") <= 360
        for button in driver.find_elements("css selector", "#controls button"):
            r = button.rect
            assert r["height"] >= 44 and r["width"] >= 44 and r["x"] >= 0 and r["x"] + r["width"] <= 360, r
        # dark mode follows the phone's setting
        light = driver.execute_script("return getComputedStyle(document.body).backgroundColor")
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia",
                               {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
        wait.until(lambda d: d.execute_script("return getComputedStyle(document.body).backgroundColor") != light)
        dark = driver.execute_script("return getComputedStyle(document.body).backgroundColor")
        assert sum(int(x) for x in re.findall(r"\d+", dark)[:3]) < 100 < sum(int(x) for x in re.findall(r"\d+", light)[:3])
