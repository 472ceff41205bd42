"""A real Home Assistant for the tests, and a phone that talks to it as the companion apps do.

``HomeAssistant`` runs the release that ``tests/hass_install.py`` put in its cached environment,
on a free loopback port, with its own configuration folder, the MQTT integration set up against a
test Mosquitto through the config-flow API (as the UI does), and nothing that needs the internet.
``Phone`` registers through ``mobile_app`` with local push: it opens Home Assistant's websocket,
subscribes to ``mobile_app/push_notification_channel`` for its webhook, confirms each notification
(as the apps do, so Home Assistant does not fall back to a cloud push), and presses notification
buttons by firing ``mobile_app_notification_action`` through its webhook.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from tests.mosquitto import Mosquitto, free_port, wait_until

# Log lines at WARNING or above that are about Home Assistant itself, not about sitsense or the
# blueprint: the test starts it with --skip-pip, 2024.3 warns that Python 3.11 support ends, and on
# a busy machine its own start-up can be slow.
EXPECTED_LOG = (
    re.compile(r"\[homeassistant\.bootstrap\] Skipping pip installation"),
    re.compile(r"\[homeassistant\.bootstrap\] Support for the running Python version .* is deprecated"),
    re.compile(r"\[homeassistant\.(setup|helpers\.entity_platform)\] Setup of .* is taking (over|longer than) "),
    re.compile(r"\[homeassistant\.bootstrap\] Waiting on integrations to complete setup"),
    re.compile(r"\[homeassistant\.core\] Something is blocking Home Assistant from wrapping up the start up"),
)
_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ (?P<level>[A-Z]+) ")


class HassError(AssertionError):
    """Raised when Home Assistant answers a request with an error."""


class HomeAssistant:
    """One Home Assistant process with a configuration folder of its own."""

    def __init__(self, hass_exe: Path, workdir: Path, *, time_zone: str = "UTC"):
        self.exe = hass_exe
        self.config_dir = workdir / "config"
        self.config_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_file = self.config_dir / "home-assistant.log"
        self.token = ""
        self.proc: subprocess.Popen | None = None
        (self.config_dir / "configuration.yaml").write_text(
            "homeassistant:\n"
            "  name: sitsense test\n"
            "  latitude: 52.37\n  longitude: 4.89\n  elevation: 0\n"
            f"  unit_system: metric\n  time_zone: {time_zone}\n  country: NL\n  currency: EUR\n"
            "http:\n"
            f"  server_host: 127.0.0.1\n  server_port: {self.port}\n"
            "logger:\n  default: info\n"
            "mobile_app:\n"
            "automation: !include automations.yaml\n")
        (self.config_dir / "automations.yaml").write_text("[]\n")

    # -- process -------------------------------------------------------------------------------

    def start(self, timeout: float = 240.0) -> None:
        """Start and wait until the HTTP API answers (the first start of a new environment is slow)."""
        out = open(self.config_dir / "stdout.log", "ab")
        self.proc = subprocess.Popen([str(self.exe), "-c", str(self.config_dir), "--skip-pip",
                                      "--log-file", str(self.log_file)], stdout=out, stderr=out)
        out.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Home Assistant exited ({self.proc.returncode}): {self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + "/api/onboarding", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (OSError, urllib.error.URLError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"Home Assistant did not answer within {timeout} s: {self.log_tail()}")
            time.sleep(0.5)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def log_problems(self) -> list[str]:
        """Every WARNING, ERROR or CRITICAL entry of the log (first line) that is not in EXPECTED_LOG."""
        found = []
        for line in self.log_file.read_text(errors="replace").splitlines():
            m = _LOG_LINE.match(line)
            if m and m["level"] in ("WARNING", "ERROR", "CRITICAL") and not any(p.search(line) for p in EXPECTED_LOG):
                found.append(line)
        return found

    # -- REST ----------------------------------------------------------------------------------

    def request(self, method: str, path: str, body: Any = None, *, form: bool = False, auth: bool = True,
                expect: tuple[int, ...] = (200, 201)) -> Any:
        headers = {}
        data = None
        if body is not None:
            if form:
                data = urllib.parse.urlencode(body).encode()
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            else:
                data = json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
        if auth and self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                status, text = resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            status, text = exc.code, exc.read().decode(errors="replace")
        if status not in expect:
            raise HassError(f"{method} {path}: HTTP {status}: {text[:500]}")
        return json.loads(text) if text.strip() else None

    def onboard(self, username: str = "wearer", password: str = "correct horse battery") -> None:
        """The onboarding a person does in the browser: the owner account, analytics (left off), and
        the login of the first client. Skipped: the location step, which sets up weather, radio and
        text-to-speech integrations that need the internet."""
        client_id = self.url + "/"
        user = self.request("POST", "/api/onboarding/users", {"client_id": client_id, "name": "Wearer",
                                                              "username": username, "password": password,
                                                              "language": "en"}, auth=False)
        tokens = self.request("POST", "/auth/token", {"grant_type": "authorization_code", "code": user["auth_code"],
                                                      "client_id": client_id}, form=True, auth=False)
        self.token = tokens["access_token"]
        self.request("POST", "/api/onboarding/analytics", {})
        self.request("POST", "/api/onboarding/integration",
                     {"client_id": client_id, "redirect_uri": client_id + "?auth_callback=1"})

    def add_mqtt(self, broker: Mosquitto) -> dict:
        """Settings > Devices & services > Add integration > MQTT, broker and port."""
        flow = self.request("POST", "/api/config/config_entries/flow", {"handler": "mqtt",
                                                                         "show_advanced_options": False})
        if flow.get("step_id") != "broker":
            raise HassError(f"MQTT config flow: expected the broker form, got {flow}")
        done = self.request("POST", f"/api/config/config_entries/flow/{flow['flow_id']}",
                            {"broker": broker.host, "port": broker.port})
        if done.get("type") != "create_entry":
            raise HassError(f"MQTT config flow did not finish: {done}")
        return done["result"]

    def install_blueprint(self, source: Path, path: str) -> None:
        """Copy a blueprint into config/blueprints/automation/<path> (docs/wear/mqtt.md's way without a URL)."""
        target = self.config_dir / "blueprints" / "automation" / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(source.read_bytes())

    def create_automation(self, alias: str, blueprint_path: str, inputs: dict[str, Any]) -> str:
        """What the automation editor saves for 'Create automation' from a blueprint; returns its entity id."""
        automation_id = uuid.uuid4().hex[:12]
        self.request("POST", f"/api/config/automation/config/{automation_id}",
                     {"alias": alias, "description": "", "use_blueprint": {"path": blueprint_path, "input": inputs}})
        entity_id = None

        def created() -> bool:
            nonlocal entity_id
            for st in self.states():
                if st["entity_id"].startswith("automation.") and st["attributes"].get("id") == automation_id:
                    entity_id = st["entity_id"]
                    return True
            return False

        wait_until(created, 60, f"automation {alias!r}")
        return entity_id  # type: ignore[return-value]

    def states(self) -> list[dict]:
        return self.request("GET", "/api/states")

    def state(self, entity_id: str) -> dict | None:
        try:
            return self.request("GET", f"/api/states/{entity_id}")
        except HassError as exc:
            if "HTTP 404" in str(exc):
                return None
            raise

    def call_service(self, domain: str, service: str, data: dict) -> Any:
        return self.request("POST", f"/api/services/{domain}/{service}", data)

    def wait_state(self, entity_id: str, predicate: Callable[[dict], bool], timeout: float, what: str) -> dict:
        """Poll ``entity_id`` until ``predicate(state)`` holds; fail with ``what`` and the last state."""
        last: dict | None = None

        def ok() -> bool:
            nonlocal last
            last = self.state(entity_id)
            return last is not None and predicate(last)

        try:
            wait_until(ok, timeout, what)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; {entity_id} is {last}") from None
        return last  # type: ignore[return-value]

    # -- websocket -----------------------------------------------------------------------------

    def websocket(self) -> "HassSocket":
        return HassSocket(self)


class HassSocket:
    """An authenticated websocket for commands (one answer per request)."""

    def __init__(self, hass: HomeAssistant):
        from websockets.sync.client import connect

        self.ws = connect(hass.url.replace("http", "ws", 1) + "/api/websocket", open_timeout=30)
        hello = json.loads(self.ws.recv(timeout=30))
        assert hello["type"] == "auth_required", hello
        self.ws.send(json.dumps({"type": "auth", "access_token": hass.token}))
        answer = json.loads(self.ws.recv(timeout=30))
        if answer["type"] != "auth_ok":
            raise HassError(f"websocket auth: {answer}")
        self.ha_version = answer.get("ha_version")
        self._next = 1
        self._lock = threading.Lock()

    def command(self, type_: str, **fields: Any) -> Any:
        with self._lock:
            msg_id = self._next
            self._next += 1
            self.ws.send(json.dumps({"id": msg_id, "type": type_, **fields}))
            while True:
                msg = json.loads(self.ws.recv(timeout=30))
                if msg.get("id") == msg_id and msg.get("type") == "result":
                    if not msg.get("success"):
                        raise HassError(f"{type_}: {msg.get('error')}")
                    return msg.get("result")

    def close(self) -> None:
        self.ws.close()


@dataclass
class Push:
    """One message the phone received on its push channel."""

    message: str
    title: str | None
    data: dict
    received_s: float = field(default_factory=time.monotonic)

    @property
    def tag(self) -> str | None:
        return self.data.get("tag")

    @property
    def actions(self) -> list[dict]:
        return list(self.data.get("actions") or [])

    def action(self, title_start: str) -> str:
        """The identifier of the button whose title starts with ``title_start``."""
        for a in self.actions:
            if a.get("title", "").startswith(title_start):
                return a["action"]
        raise AssertionError(f"no button {title_start!r} in {self.actions}")


class Phone:
    """A test phone: registered through mobile_app, receiving notifications by local push."""

    def __init__(self, hass: HomeAssistant, name: str, *, os_name: str = "Android"):
        self.hass = hass
        self.name = name
        self.os_name = os_name
        self.device_id = f"sitsense-test-{uuid.uuid4().hex[:8]}"
        reg = hass.request("POST", "/api/mobile_app/registrations", {
            "device_id": self.device_id, "app_id": "io.sitsense.testphone", "app_name": "sitsense test phone",
            "app_version": "1.0", "device_name": name, "manufacturer": "sitsense", "model": f"test {os_name}",
            "os_name": os_name, "os_version": "17" if os_name == "iOS" else "14", "supports_encryption": False,
            "app_data": {"push_websocket_channel": True}})
        self.webhook_id = reg["webhook_id"]
        self.received: list[Push] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self.errors: list[str] = []
        self._thread = threading.Thread(target=self._listen, name=f"phone-{name}", daemon=True)
        self._thread.start()
        if not self._ready.wait(30):
            raise AssertionError(f"phone {name}: push channel not open: {self.errors}")

    def ha_device_id(self, ws: HassSocket) -> str:
        """The phone's device in Home Assistant's device registry (what the blueprint's device picker shows)."""
        for dev in ws.command("config/device_registry/list"):
            if ["mobile_app", self.device_id] in dev["identifiers"]:
                return dev["id"]
        raise AssertionError(f"phone {self.name}: no device with identifier {self.device_id}")

    def _listen(self) -> None:
        from websockets.exceptions import ConnectionClosed
        from websockets.sync.client import connect

        try:
            with connect(self.hass.url.replace("http", "ws", 1) + "/api/websocket", open_timeout=30) as ws:
                ws.recv(timeout=30)
                ws.send(json.dumps({"type": "auth", "access_token": self.hass.token}))
                if json.loads(ws.recv(timeout=30))["type"] != "auth_ok":
                    self.errors.append("websocket auth failed")
                    return
                ws.send(json.dumps({"id": 1, "type": "mobile_app/push_notification_channel",
                                    "webhook_id": self.webhook_id, "support_confirm": True}))
                next_id = 2
                while not self._stop.is_set():
                    try:
                        msg = json.loads(ws.recv(timeout=0.5))
                    except TimeoutError:
                        continue
                    if msg.get("id") == 1 and msg.get("type") == "result":
                        if msg.get("success"):
                            self._ready.set()
                        else:
                            self.errors.append(f"push channel refused: {msg}")
                    elif msg.get("id") == 1 and msg.get("type") == "event":
                        event = dict(msg["event"])
                        confirm_id = event.pop("hass_confirm_id", None)
                        with self._lock:
                            self.received.append(Push(event.get("message", ""), event.get("title"),
                                                      event.get("data") or {}))
                        if confirm_id:
                            ws.send(json.dumps({"id": next_id, "type": "mobile_app/push_notification_confirm",
                                                "webhook_id": self.webhook_id, "confirm_id": confirm_id}))
                            next_id += 1
                    elif msg.get("type") == "result" and not msg.get("success"):
                        self.errors.append(f"websocket: {msg}")
        except ConnectionClosed:
            if not self._stop.is_set():
                self.errors.append("push channel closed by Home Assistant")
        except Exception as exc:  # the test reads errors; a thread must not die silently
            self.errors.append(f"push listener: {exc!r}")

    def pushes(self) -> list[Push]:
        with self._lock:
            return list(self.received)

    def notifications(self) -> list[Push]:
        """What would show on the screen: pushes other than commands such as clear_notification."""
        return [p for p in self.pushes() if p.message != "clear_notification"]

    def wait_push(self, predicate: Callable[[Push], bool], timeout: float, what: str) -> Push:
        found: list[Push] = []

        def ok() -> bool:
            found[:] = [p for p in self.pushes() if predicate(p)]
            return bool(found)

        try:
            wait_until(ok, timeout, f"{self.name}: {what}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; received: {self.pushes()}; errors: {self.errors}") from None
        return found[0]

    def press(self, push: Push, action: str) -> None:
        """Tap a notification button: the app fires mobile_app_notification_action through its webhook.

        Android sends the notification's data fields with the action (its tag among them); iOS sends
        the action and which device it came from."""
        event_data: dict[str, Any] = {"action": action}
        if self.os_name == "Android":
            event_data.update({k: v for k, v in push.data.items() if k != "actions"})
            event_data.update({"message": push.message, "title": push.title})
        else:
            event_data.update({"sourceDeviceID": self.device_id, "sourceDeviceName": self.name,
                               "sourceDevicePermanentID": self.device_id, "textInput": None})
        self.hass.request("POST", f"/api/webhook/{self.webhook_id}",
                          {"type": "fire_event", "data": {"event_type": "mobile_app_notification_action",
                                                          "event_data": event_data}}, auth=False)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
