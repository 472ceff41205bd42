"""The checks behind ``sitsense doctor``: each one passes or fails and says how to fix it."""

from __future__ import annotations

import grp
import os
import socket
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import Config
from .errors import SitsenseError
from .sensor.mpu6050 import RATE_ERROR_MAX, RATE_ERROR_MIN  # the internal oscillator's tolerance

GRAVITY_TOLERANCE_G = 0.1


@dataclass(frozen=True)
class Check:
    """One line of the report: ``status`` is 'pass', 'fail', 'skip' or 'note' (works, but worth knowing)."""

    name: str
    status: str
    detail: str
    fix: str = ""


def check_i2c_device(bus_number: int) -> Check:
    dev = f"/dev/i2c-{bus_number}"
    if os.path.exists(dev):
        return Check("I2C enabled", "pass", f"{dev} exists")
    return Check("I2C enabled", "fail", f"{dev} does not exist",
                 "enable I2C: 'sudo raspi-config nonint do_i2c 0' (or dtparam=i2c_arm=on in "
                 "/boot/firmware/config.txt), then reboot; check sensor.i2c_bus")


def check_i2c_access(bus_number: int) -> Check:
    dev = f"/dev/i2c-{bus_number}"
    if not os.path.exists(dev):
        return Check("I2C access", "skip", f"{dev} missing")
    if os.access(dev, os.R_OK | os.W_OK):
        return Check("I2C access", "pass", f"this user may read and write {dev}")
    try:
        group = grp.getgrgid(os.stat(dev).st_gid).gr_name
    except (KeyError, OSError):
        group = "i2c"
    return Check("I2C access", "fail", f"permission denied on {dev} (owned by group {group})",
                 f"'sudo adduser $USER {group}', then log out and in again")


def check_gpio(cfg: Config) -> Check:
    if not (cfg.buzzer.enabled or cfg.buzzer.button_enabled):
        return Check("GPIO pin factory", "skip", "buzzer and button disabled")
    try:
        from gpiozero import Device

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            Device.ensure_pin_factory()
        name = type(Device.pin_factory).__name__
    except Exception as exc:  # gpiozero raises many kinds here (BadPinFactory, ImportError, ...)
        return Check("GPIO pin factory", "fail", f"gpiozero cannot drive pins: {exc}",
                     "on a Raspberry Pi: 'sudo apt install python3-lgpio' (Bookworm) or pip install lgpio; "
                     "elsewhere set GPIOZERO_PIN_FACTORY=mock, or buzzer.enabled = false")
    note = " (simulated pins, nothing will buzz)" if "Mock" in name else ""
    return Check("GPIO pin factory", "pass", f"{name} for GPIO{cfg.buzzer.pin}{note}")


def check_mqtt(cfg: Config, timeout_s: float = 3.0) -> Check:
    m = cfg.mqtt
    if not m.enabled:
        return Check("MQTT broker", "skip", "mqtt.enabled = false")
    try:
        with socket.create_connection((m.host, m.port), timeout=timeout_s):
            pass
    except OSError as exc:
        return Check("MQTT broker", "fail", f"cannot reach {m.host}:{m.port} ({exc.strerror or exc})",
                     "check mqtt.host and mqtt.port, that the broker runs ('systemctl status mosquitto') "
                     "and that a firewall lets the port through")
    return Check("MQTT broker", "pass", f"{m.host}:{m.port} accepts connections (TLS and login not tested)")


def check_web(cfg: Config, *, fake: bool = False, timeout_s: float = 3.0) -> Check:
    """Does the phone page answer (as sitsense) on its port? Its addresses on the LAN are printed.
    Nothing listening is a skip (the service may not run yet); another program, a TLS mismatch or
    a missing aiohttp are failures."""
    import importlib.util
    import json
    import ssl
    import urllib.request

    w = cfg.web
    if not w.enabled:
        return Check("phone page", "skip", "web.enabled = false")
    if importlib.util.find_spec("aiohttp") is None:
        return Check("phone page", "fail", "the page needs aiohttp, which is not installed",
                     "pip install 'sitsense[web]' (in the service's venv), or set web.enabled = false")
    from .web.attach import page_urls

    urls = " or ".join(page_urls(w))
    host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "[::1]"}.get(w.bind, f"[{w.bind}]" if ":" in w.bind else w.bind)
    scheme = "https" if w.tls_cert else "http"
    ctx = ssl._create_unverified_context() if w.tls_cert else None  # a LAN certificate may not name 127.0.0.1
    try:
        with urllib.request.urlopen(f"{scheme}://{host}:{w.port}/healthz", timeout=timeout_s, context=ctx) as r:
            answer = json.loads(r.read(4096) or b"{}")
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        if isinstance(reason, ConnectionRefusedError) or "refused" in str(reason).lower():
            if fake:
                return Check("phone page", "skip", f"nothing answers on port {w.port} now; with 'sitsense run' "
                             f"the page is at {urls}")
            known = _web_password_known(w)
            if known is False:  # the page is on by default but off until a password is set
                return Check("phone page", "skip", "off until a password is set ('sitsense web-password'); "
                             f"then it will be at {urls}")
            if known is None:  # cannot tell from here (the service's environment file is root's)
                return Check("phone page", "skip", f"nothing answers on port {w.port} now; once the service "
                             "runs with a password set ('sitsense web-password'; 'journalctl -u sitsense' says "
                             f"why the page is off) it is at {urls}")
            return Check("phone page", "fail", f"nothing answers on {host}:{w.port} (the page would be at {urls})",
                         "start the service ('sudo systemctl start sitsense'); if it runs, 'journalctl -u sitsense' "
                         "says why the page is off")
        return Check("phone page", "fail", f"{scheme}://{host}:{w.port}/ does not answer as sitsense ({reason})",
                     "another program may use the port: set web.port; with TLS check web.tls_cert and web.tls_key")
    if not isinstance(answer, dict) or answer.get("app") != "sitsense":
        return Check("phone page", "fail", f"port {w.port} answers, but not as sitsense",
                     "another program uses the port: set web.port to a free one")
    return Check("phone page", "pass", f"answers at {urls}")


SERVICE_ENVIRONMENT = "/etc/sitsense/environment"  # the unit's EnvironmentFile= (secrets, root only)


def _web_password_known(w, environment_file: str = SERVICE_ENVIRONMENT) -> bool | None:
    """Whether the page has a password: in this environment, ``web.password_file``, or the unit's
    environment file (readable by root only: None when this user cannot tell)."""
    from .web.auth import PASSWORD_ENV, PasswordError, load_password

    try:
        if load_password(w) is not None or w.password_file:
            return True
    except PasswordError:
        return True  # set, but unusable: the service's log says why
    try:
        text = open(environment_file, encoding="utf-8").read()
    except FileNotFoundError:
        return False
    except OSError:
        return None
    return any(line.strip().startswith(f"{PASSWORD_ENV}=") for line in text.splitlines())


def check_sensor(source) -> Check:
    """Open the source: is a supported chip answering, and which one?"""
    try:
        chip = source.open()
    except SitsenseError as exc:
        return Check("sensor answering", "fail", str(exc).splitlines()[0],
                     "check the wiring (hardware.md) and 'i2cdetect -y 1' (expect 68, or 69 with AD0 high)")
    note = "" if chip.genuine else "; a sibling or clone, used the same way"
    return Check("sensor answering", "pass", f"{chip.describe()} at {source.driver.where}{note}")


def check_samples(source, seconds: float) -> list[Check]:
    """Read ``seconds`` of samples: is |a| about 1 g at rest, and does the rate match the setting?"""
    chunks = []
    start_s = None
    try:
        for t_s, accel_g in source.blocks():
            if not len(t_s):
                continue
            chunks.append(accel_g)
            if start_s is None:
                start_s = source.driver.fifo_reset_s
    finally:
        source.close()
    faults = [e for e in source.pop_events() if e.status != "ok"]
    rate_hz = source.sample_rate_hz
    if not chunks:
        return [Check("samples sane", "fail", f"no samples in {seconds:g} s",
                      "power-cycle the sensor and check its 3V3 and GND wires"),
                Check("sample rate", "skip", "no samples")]
    a = np.concatenate(chunks)
    mag = np.linalg.norm(a, axis=1)
    mean_g, std_g = float(mag.mean()), float(mag.std())
    checks = []
    if abs(mean_g - 1.0) <= GRAVITY_TOLERANCE_G and std_g < 0.05 and not faults:
        checks.append(Check("samples sane", "pass", f"|a| = {mean_g:.3f} g (spread {std_g:.3f} g) over {len(a)} samples"))
    else:
        why = "; ".join(f"{e.status}: {e.detail}" for e in faults) or \
            f"|a| = {mean_g:.3f} g, spread {std_g:.3f} g (expected 1 g, still)"
        checks.append(Check("samples sane", "fail", why,
                            "keep the sensor still during the check; if it still fails, the board may be "
                            "damaged or loosely wired"))
    # counted by the driver, not from timestamps: those cannot show a rate outside the tolerance
    elapsed = source.driver.last_read_s - (start_s if start_s is not None else source.driver.fifo_reset_s)
    measured = source.driver.frames_read / elapsed if elapsed > 0 else 0.0
    ok = RATE_ERROR_MIN <= measured / rate_hz - 1 <= RATE_ERROR_MAX
    checks.append(Check("sample rate", "pass" if ok else "fail",
                        f"{measured:.2f} Hz measured, {rate_hz:g} Hz configured",
                        "" if ok else "another program may be using the chip, or the Pi is overloaded "
                        "(samples were lost); check 'sitsense doctor -v'"))
    return checks


def check_state(cfg: Config) -> Check:
    """Where this command finds the state (the service's, for root or the installed config) and the
    calibration in it."""
    from .paths import calibration_path, state_dir
    from .sensor.reference import load_reference

    folder = state_dir(cfg)
    try:
        ref = load_reference(calibration_path(cfg))
    except SitsenseError as exc:
        return Check("calibration", "fail", str(exc), "stand upright and still and run 'sudo sitsense calibrate'")
    if ref is None:
        return Check("calibration", "skip", f"none stored in {folder} (the service takes the first still seconds "
                     "as upright); stand upright and still and run 'sudo sitsense calibrate'")
    return Check("calibration", "pass", f"in {folder}, taken {ref.time or 'at an unknown time'}")


def check_state_folder(cfg: Config) -> Check:
    """The state folder takes a write (a full or read-only card only shows when writing)."""
    from .paths import state_dir
    from .storage import OK, probe

    status, detail = probe(state_dir(cfg))
    if status == OK:
        return Check("state folder", "pass", detail)
    return Check("state folder", "fail", detail,
                 "sitsense keeps counting in memory, but loses the day at a restart: free some space "
                 "('df -h', 'journalctl --vacuum-size=50M') or check the card ('dmesg | grep -i ext4')")


POSTURE_NOTICE_DAYS = 7


def check_posture(cfg: Config, state: str | os.PathLike | None = None) -> Check:
    """Whether this wearer's sitting looks like their standing from the mount: said by the running
    service (a ``sit_stand_alike`` notice in the last week's log) or by ``calibrate --sit``."""
    from datetime import datetime, timedelta

    from .paths import calibration_path, db_path
    from .sensor.reference import ALIKE_DEG, load_reference, sitting_tilt_deg
    from .store import Store

    fix = ("run 'sitsense calibrate --sit' (stand still, then sit still) and clip the sensor where the belt "
           "follows the pelvis (hardware.md)")
    try:
        ref = load_reference(calibration_path(cfg))
    except SitsenseError:
        ref = None
    tilt = sitting_tilt_deg(ref) if ref is not None else None
    if tilt is not None and tilt < ALIKE_DEG:
        return Check("posture check", "note", f"calibrate --sit measured sitting only {tilt:.1f} degrees from "
                     "standing: sitsense counts it by how you sit down and stand up", fix)
    db = Path(state) if state else db_path(cfg)
    notices = []
    if db.exists():
        since = (datetime.now().astimezone() - timedelta(days=POSTURE_NOTICE_DAYS)).isoformat(timespec="seconds")
        try:
            store = Store(db).open(read_only=True)
            try:
                notices = [e for e in store.events(["posture_notice"], since_wall=since)
                           if e.get("code") == "sit_stand_alike"]
            finally:
                store.close()
        except (SitsenseError, OSError):
            return Check("posture check", "skip", f"cannot read {db}")
    if notices:
        return Check("posture check", "note", f"on {notices[-1]['wall'][:10]} sitting looked like standing "
                     "from the mount", fix)
    if tilt is not None:
        return Check("posture check", "pass", f"sitting tilts the sensor {tilt:.0f} degrees from standing")
    return Check("posture check", "pass", "no sign that sitting looks like standing"
                 + ("" if db.exists() else " (no state yet)"))


def run_checks(cfg: Config, spec: str | None, speed: float | None, seconds: float) -> list[Check]:
    """Every check in order; sensor checks stop at the first failure (the rest would only repeat it)."""
    from .sensor.live import open_source, parse_spec

    kind, _ = parse_spec(spec or cfg.sensor.source)
    checks: list[Check] = []
    if kind == "mpu6050":
        checks.append(check_i2c_device(cfg.sensor.i2c_bus))
        checks.append(check_i2c_access(cfg.sensor.i2c_bus))
    else:
        checks.append(Check("I2C enabled", "skip", "fake sensor"))
        checks.append(Check("I2C access", "skip", "fake sensor"))
    holder = service_holding_the_sensor(cfg) if kind == "mpu6050" else None
    if holder is not None:  # two drivers on one chip would corrupt the service's stream
        checks.append(Check("sensor answering", "skip", f"the running service{holder} reads it; not opened a "
                            "second time (stop it, 'sudo systemctl stop sitsense', to check the sensor itself)"))
    elif all(c.status != "fail" for c in checks):
        source = open_source(spec, cfg.sensor, speed=speed, seconds=seconds, connect=False)
        sensor = check_sensor(source)
        checks.append(sensor)
        if sensor.status == "pass":
            checks.extend(check_samples(source, seconds))
    else:
        checks.append(Check("sensor answering", "skip", "I2C is not usable yet"))
    gpio = check_gpio(cfg)
    if kind != "mpu6050" and gpio.status == "fail":  # 'run' with a fake sensor plays on mock pins anyway
        gpio = Check("GPIO pin factory", "skip", "no pins here; with a fake sensor 'run' uses simulated pins")
    checks.append(gpio)
    checks.append(check_mqtt(cfg))
    checks.append(check_web(cfg, fake=kind != "mpu6050"))
    if kind == "mpu6050":  # a fake sensor's run keeps no state (see docs/wear/calibrate.md, "Where state lives")
        checks.append(check_state(cfg))
    checks.append(check_state_folder(cfg))
    checks.append(check_posture(cfg))
    return checks


def service_holding_the_sensor(cfg: Config) -> str | None:
    """' (pid N)' (or '') when a service runs on this config's state, else None."""
    from .paths import db_path
    from .persistence import lock_holder

    holder = lock_holder(db_path(cfg))
    if holder is None:
        return None
    return f" (pid {holder})" if holder else ""
