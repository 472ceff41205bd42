"""Configuration: one dataclass per TOML section, every key documented, validated all at once.

A user's file holds only the keys it changes; everything else keeps its default. Problems are
collected and reported together, one line each, naming the file, the key path, the value and
what is allowed. ``config/sitsense.toml`` is generated from these dataclasses (``sitsense
config-defaults``), so the documented defaults can never drift from the code. Longer than most
modules on purpose: most of it is that declaration, every key with its documentation, in one place.
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from dataclasses import MISSING, Field, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping

from .errors import ConfigError, MqttSettingError

DEVICE_ID_CHARS = "A-Za-z0-9_-"  # what an MQTT device id is made of (topic-safe, no wildcards)
DEVICE_ID_MAX = 64
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HHMM_RANGE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-(?:([01]\d|2[0-3]):([0-5]\d)|(24):(00))$")  # ends may be 24:00
TOPIC_LEVELS = r"^(?=.{1,64}$)[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$"  # no empty level: 'a//b' and '/a' are refused


def key(default: Any, doc: str, *, unit: str = "", lo: float | None = None, hi: float | None = None,
        choices: tuple[Any, ...] | None = None, pattern: str | None = None) -> Any:
    """Declare a config key with its default, unit and allowed values."""
    meta = {"doc": doc, "unit": unit, "lo": lo, "hi": hi, "choices": choices, "pattern": pattern}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class SensorConfig:
    source: str = key("mpu6050", "where samples come from: 'mpu6050' (the real chip) or 'fake:PATH' "
                      "(the register emulator replaying a trace file)", pattern=r"^(mpu6050|fake:.+)$")
    i2c_bus: int = key(1, "I2C bus number (/dev/i2c-N); 1 on every current Raspberry Pi", lo=0, hi=20)
    address: int = key(0x68, "I2C address: 0x68 (AD0 low) or 0x69 (AD0 high)", choices=(0x68, 0x69))
    sample_rate_hz: int = key(25, "accelerometer sample rate", unit="Hz", lo=10, hi=100)
    poll_interval_s: float = key(1.0, "how often the FIFO is read; the CPU sleeps in between",
                                 unit="s", lo=0.05, hi=5.0)
    range_g: int = key(2, "full-scale range", unit="g", choices=(2, 4, 8, 16))


@dataclass(frozen=True)
class PostureConfig:
    model: str = key("", "posture model file (.npz); empty uses the model shipped with sitsense")
    step_s: float = key(1.0, "how often a posture is decided", unit="s", lo=0.2, hi=5.0)
    calibration_s: float = key(5.0, "still standing needed for an upright reference", unit="s",
                               lo=2.0, hi=30.0)
    not_worn_min: float = key(10.0, "stillness without any human micro-movement before the sensor "
                              "counts as taken off (backdated to when the stillness began)",
                              unit="min", lo=1.0, hi=120.0)
    decide_every_s: float = key(10.0, "decide postures in batches this long: much less CPU when the sensor is "
                                "read every second; postures reach the tracker up to this much later, "
                                "except getting up from sitting or lying, which is decided at once "
                                "(0 decides every step at once)", unit="s", lo=0.0, hi=60.0)


@dataclass(frozen=True)
class TrackerConfig:
    sit_limit_min: float = key(30.0, "sedentary bout length that triggers the first alert", unit="min",
                               lo=5.0, hi=240.0)
    break_s: float = key(60.0, "standing or walking this long ends a bout (shorter stand-ups do not)",
                         unit="s", lo=10.0, hi=1800.0)
    snooze_min: float = key(10.0, "time between reminders while the bout goes on", unit="min",
                            lo=1.0, hi=120.0)
    max_reminders: int = key(3, "most alerts per bout, the first included", lo=1, hi=10)
    heed_window_min: float = key(10.0, "an alert counts as heeded if a break starts within this time",
                                 unit="min", lo=1.0, hi=60.0)
    active_hours: str = key("08:00-20:00", "local time window in which alerts may fire (HH:MM-HH:MM; "
                            "may wrap past midnight)", pattern=_HHMM_RANGE.pattern)
    active_days: list = key(list(WEEKDAYS), "days on which alerts may fire", choices=WEEKDAYS)
    timezone: str = key("", "IANA time zone for day boundaries and active hours, e.g. 'Europe/Berlin'; "
                        "empty uses the system's")


@dataclass(frozen=True)
class CoachConfig:
    level: str = key("beginner", "the wearer's level: advanced also gets the couch stretch and psoas ball",
                     choices=("beginner", "advanced"))
    equipment: list = key([], "what the wearer has at hand", choices=("foam_roller", "massage_ball", "mat"))
    daily_goal_min: float = key(8.0, "release minutes to aim for each day (the guide says 5-10)",
                                unit="min", lo=1.0, hi=60.0)
    guided_holds: bool = key(True, "time the holds on the buzzer once the wearer stands up")
    seed: int = key(0, "seed for the exercise rotation (the same seed gives the same choices)", lo=0)
    long_bout_min: float = key(45.0, "a bout at least this long (or any second or later reminder) gets a "
                               "static hip-flexor stretch", unit="min", lo=5.0, hi=480.0)


@dataclass(frozen=True)
class BuzzerConfig:
    enabled: bool = key(True, "drive a buzzer or vibration motor on a GPIO pin")
    kind: str = key("active", "'active' buzzer (on/off), 'tonal' passive piezo (needs PWM) or "
                    "'vibration' motor (PWM through a transistor)", choices=("active", "tonal", "vibration"))
    pin: int = key(17, "output GPIO (BCM number)", lo=2, hi=27)
    button_enabled: bool = key(False, "a push button: press snoozes, long press pauses 1 h, "
                               "double press starts the guided release, three presses recalibrate")
    button_pin: int = key(27, "button GPIO (BCM number), wired to ground", lo=2, hi=27)
    quiet_hours: str = key("21:00-07:00", "no sound in this local time window (HH:MM-HH:MM; "
                           "equal ends disable it)", pattern=_HHMM_RANGE.pattern)
    vibrate_only: bool = key(False, "never make sound: only a vibration motor may run")
    tone_hz: float = key(2000.0, "middle pitch of a tonal (passive piezo) buzzer; pick one near its resonance",
                         unit="Hz", lo=400.0, hi=4000.0)
    vibration_duty: float = key(0.8, "motor strength of a vibration motor (PWM duty)", lo=0.2, hi=1.0)
    long_press_s: float = key(1.5, "holding the button this long pauses alerts for an hour", unit="s",
                              lo=0.5, hi=5.0)
    double_press_s: float = key(0.4, "presses this close together count as one gesture (two: the guided "
                                "release, three: recalibrate)", unit="s",
                                lo=0.15, hi=1.0)


@dataclass(frozen=True)
class MqttConfig:
    enabled: bool = key(False, "publish alerts and state to an MQTT broker")
    host: str = key("localhost", "broker host name or address", pattern=r"^\S+$")
    port: int = key(1883, "broker port (8883 is usual with TLS)", lo=1, hi=65535)
    device_id: str = key("", "device id in topics and the client id; empty uses the host name",
                         pattern=rf"^[{DEVICE_ID_CHARS}]{{0,{DEVICE_ID_MAX}}}$")
    topic_prefix: str = key("sitsense", "first level(s) of every topic: letters, digits, '_' and '-', levels "
                            "separated by single '/'", pattern=TOPIC_LEVELS)
    tls_ca: str = key("", "CA certificate file for TLS; empty uses the system's CA store when any tls_* "
                      "is set (no tls_* at all means no TLS)")
    tls_cert: str = key("", "client certificate file for TLS (optional; setting it turns TLS on)")
    tls_key: str = key("", "client key file for TLS (mode 0600; needs tls_cert unless the key is in it)")
    username: str = key("", "broker user name; the password comes from SITSENSE_MQTT_PASSWORD or "
                        "password_file, never from this file")
    password_file: str = key("", "file (mode 0600) holding the broker password")
    state_interval_s: float = key(30.0, "at most one update of the state topics per this interval",
                                  unit="s", lo=1.0, hi=3600.0)
    state_max_per_hour: int = key(150, "most state-topic messages (tiles and JSON state) in any hour, so a "
                                  "phone on mobile data is not flooded; alerts and events are not limited",
                                  lo=20, hi=100000)
    discovery: bool = key(True, "publish Home Assistant discovery configs")
    discovery_prefix: str = key("homeassistant", "Home Assistant discovery prefix", pattern=TOPIC_LEVELS)
    outbox_max: int = key(10000, "alerts and events kept on disk while the broker is away",
                          lo=100, hi=1000000)
    keepalive_s: int = key(60, "MQTT keepalive; the broker announces 'offline' about 1.5 times this "
                           "after the Pi vanishes without a goodbye", unit="s", lo=5, hi=1200)
    reconnect_max_s: int = key(60, "longest wait between reconnect attempts (the wait doubles from 1 s "
                               "up to this)", unit="s", lo=1, hi=3600)

    @property
    def tls(self) -> bool:
        """TLS is on whenever any tls_* file is set (never a silent plaintext fallback)."""
        return bool(self.tls_ca or self.tls_cert or self.tls_key)


@dataclass(frozen=True)
class WebConfig:
    enabled: bool = key(True, "serve the phone page from the service (it starts only once a password is set: "
                        "'sitsense web-password')")
    bind: str = key("0.0.0.0", "address the page listens on: 0.0.0.0 for the whole LAN, 127.0.0.1 for this "
                    "machine only, :: for IPv6 too", pattern=r"^[0-9A-Fa-f:.]{2,45}$")
    port: int = key(8080, "TCP port of the page (1024 or higher: the service has no privileges)",
                    lo=1024, hi=65535)
    password_file: str = key("", "file (mode 0600, or a systemd credential) holding the page's password hash "
                             "from 'sitsense web-password', or the password; SITSENSE_WEB_PASSWORD wins")
    tls_cert: str = key("", "certificate file (PEM) to serve the page over HTTPS; empty serves plain HTTP")
    tls_key: str = key("", "private key file (PEM) of tls_cert")


@dataclass(frozen=True)
class StoreConfig:
    path: str = key("", "state database; every state file goes beside it. Empty uses sitsense.db in "
                    "$STATE_DIRECTORY (systemd), else /var/lib/sitsense (root, or this file is "
                    "/etc/sitsense/sitsense.toml), else $XDG_STATE_HOME/sitsense, else ~/.local/state/sitsense")
    checkpoint_s: float = key(60.0, "most counting lost in a power cut; writes happen this often",
                              unit="s", lo=5.0, hi=3600.0)


@dataclass(frozen=True)
class Config:
    sensor: SensorConfig = field(default_factory=SensorConfig)
    posture: PostureConfig = field(default_factory=PostureConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    coach: CoachConfig = field(default_factory=CoachConfig)
    buzzer: BuzzerConfig = field(default_factory=BuzzerConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    web: WebConfig = field(default_factory=WebConfig)
    source_path: str = ""

    def with_changes(self, section: str, **changes: Any) -> "Config":
        """A copy with some keys of one section changed (used by CLI flags and tests)."""
        return replace(self, **{section: replace(getattr(self, section), **changes)})


SECTIONS: dict[str, type] = {f.name: f.default_factory for f in fields(Config)  # type: ignore[misc]
                             if f.default_factory is not MISSING}


def load_config(path: str | os.PathLike | None = None, *, check_files: bool = True) -> Config:
    """Read a TOML file (or nothing: all defaults) and validate every key at once."""
    if path is None:
        return Config()
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such config file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot read config file: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from None
    return config_from_dict(data, source=str(p), check_files=check_files)


def config_from_dict(data: dict[str, Any], *, source: str = "<config>", check_files: bool = True) -> Config:
    problems: list[str] = []
    sections: dict[str, Any] = {}
    for name, value in data.items():
        if name not in SECTIONS:
            problems.append(f"[{_show(name)}]: unknown section (allowed: {', '.join(SECTIONS)})")
        elif not isinstance(value, dict):
            problems.append(f"{name}: must be a [{name}] table")
    for name, cls in SECTIONS.items():
        given = data.get(name, {})
        if not isinstance(given, dict):
            continue
        values = {}
        known = {f.name: f for f in fields(cls)}
        for k, v in given.items():
            if k not in known:
                problems.append(f"{name}.{_show(k)}: unknown key (allowed: {', '.join(known)})")
                continue
            problem = _check_value(known[k], v)
            if problem:
                problems.append(f"{name}.{k} = {v!r}: {problem}")
            else:
                values[k] = float(v) if known[k].type == "float" else v
        sections[name] = cls(**values)
    cfg = Config(**sections, source_path=source)
    problems.extend(_cross_checks(cfg, check_files))
    if problems:
        raise ConfigError("\n".join(f"{source}: {p}" for p in problems))
    return cfg


def _show(name: str) -> str:
    """A key as written in TOML, quoted when it is not a bare key (so messages stay one line)."""
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else repr(name)


def _check_value(f: Field[Any], v: Any) -> str | None:
    meta = f.metadata
    want = f.type
    if want == "bool":
        if not isinstance(v, bool):
            return "must be true or false"
    elif want == "int":
        if isinstance(v, bool) or not isinstance(v, int):
            return "must be a whole number"
    elif want == "float":
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return "must be a number"
    elif want == "str":
        if not isinstance(v, str):
            return "must be a string in quotes"
    elif want == "list":
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            return "must be a list of strings, e.g. [\"a\", \"b\"]"
        bad = [x for x in v if meta["choices"] and x not in meta["choices"]]
        if bad:
            return f"{bad[0]!r} is not allowed (allowed: {', '.join(meta['choices'])})"
        return None
    lo, hi, choices, pattern = meta["lo"], meta["hi"], meta["choices"], meta["pattern"]
    if choices is not None and v not in choices:
        shown = ", ".join(hex(c) if f.name == "address" else repr(c) for c in choices)
        return f"not allowed (allowed: {shown})"
    if lo is not None and v < lo or hi is not None and v > hi:
        if v != v:
            return "must be a number"
        rng = f"{lo}..{hi}" if hi is not None else f">= {lo}"
        return f"out of range (allowed: {rng}{' ' + meta['unit'] if meta['unit'] else ''})"
    if isinstance(v, float) and v != v:
        return "must be a number, not nan"
    if pattern and not re.match(pattern, v):
        return f"not in the expected form ({meta['doc']})"
    return None


CREDENTIALS_ROOT = "/run/credentials/"  # systemd's LoadCredential= files, visible only to the unit
I2C_PINS = {2: "SDA", 3: "SCL"}  # I2C bus 1 on every 40-pin Pi


def _cross_checks(cfg: Config, check_files: bool) -> list[str]:
    problems = []
    if cfg.buzzer.button_enabled and cfg.buzzer.button_pin == cfg.buzzer.pin:
        problems.append(f"buzzer.button_pin = {cfg.buzzer.button_pin}: GPIO{cfg.buzzer.pin} is already "
                        "buzzer.pin; use another pin")
    used = [("buzzer.pin", cfg.buzzer.pin, cfg.buzzer.enabled),
            ("buzzer.button_pin", cfg.buzzer.button_pin, cfg.buzzer.button_enabled)]
    for key, pin, enabled in used:
        if enabled and pin in I2C_PINS:
            problems.append(f"{key} = {pin}: GPIO{pin} is the sensor's I2C {I2C_PINS[pin]} (see hardware.md); "
                            "use another pin, e.g. 17 or 27")
    if cfg.tracker.timezone:
        try:
            from zoneinfo import ZoneInfo
            ZoneInfo(cfg.tracker.timezone)
        except Exception:
            problems.append(f"tracker.timezone = {cfg.tracker.timezone!r}: unknown time zone "
                            "(use an IANA name such as 'Europe/London', or '' for the system's)")
    if check_files and cfg.posture.model:
        problems.extend(_model_problems(cfg.posture.model))
    if check_files and cfg.mqtt.enabled:
        problems.extend(_mqtt_file_problems(cfg.mqtt))
    if bool(cfg.web.tls_cert) != bool(cfg.web.tls_key):
        problems.append("web.tls_cert and web.tls_key: set both (HTTPS) or neither (plain HTTP)")
    if check_files and cfg.web.enabled:
        for name in ("tls_cert", "tls_key", "password_file"):
            path = getattr(cfg.web, name)
            if not path or _inside_unit_only(path):
                continue
            if not os.access(os.path.expanduser(path), os.R_OK):
                problems.append(f"web.{name} = {path!r}: file missing or not readable by this user")
            elif name in ("password_file", "tls_key"):
                shared = _readable_by_others(os.stat(os.path.expanduser(path)).st_mode, path)
                if shared:
                    problems.append(f"web.{name} = {path!r}: {shared}")
    return problems


def _inside_unit_only(path: str) -> bool:
    """A systemd credential exists only inside the unit; 'run' checks it there."""
    return path.startswith(CREDENTIALS_ROOT) and not os.environ.get("CREDENTIALS_DIRECTORY")


def _model_problems(path: str) -> list[str]:
    """A posture.model that 'run' could not load (missing, or not a model this sitsense reads)."""
    from .errors import ModelError
    from .posture.model import PostureModel

    try:
        PostureModel.load(os.path.expanduser(path))
    except ModelError as exc:
        return [f"posture.model = {path!r}: {exc}"]
    return []


def _mqtt_file_problems(mqtt: MqttConfig, environ: Mapping[str, str] | None = None) -> list[str]:
    """The MQTT files and credentials 'run' would refuse: unreadable, shared secrets, empty passwords,
    a password without a user, TLS files that do not load."""
    problems = []
    usable = {}
    for name in ("tls_ca", "tls_cert", "tls_key", "password_file"):
        path = getattr(mqtt, name)
        if not path:
            continue
        if _inside_unit_only(path):
            continue
        if not os.access(os.path.expanduser(path), os.R_OK):
            problems.append(f"mqtt.{name} = {path!r}: file missing or not readable by this user")
            continue
        usable[name] = os.path.expanduser(path)
        if name == "tls_key":
            shared = _readable_by_others(os.stat(usable[name]).st_mode, path)
            if shared:
                problems.append(f"mqtt.{name} = {path!r}: {shared}")
    if mqtt.tls_key and not mqtt.tls_cert:
        problems.append(f"mqtt.tls_key = {mqtt.tls_key!r}: set without mqtt.tls_cert; set the client certificate "
                        "too (or put the key in the certificate file and leave tls_key empty)")
    elif mqtt.tls and not problems:
        problem = tls_problem(mqtt)
        if problem:
            problems.append(problem)
    env = os.environ if environ is None else environ
    if "password_file" in usable or env.get(PASSWORD_ENV):
        try:
            load_password(mqtt, env)
        except ConfigError as exc:
            problems.append(str(exc))
        else:
            if not mqtt.username:
                where = PASSWORD_ENV if env.get(PASSWORD_ENV) else "mqtt.password_file"
                problems.append(f"mqtt.username = '': a password is set ({where}) but no user name; "
                                "set mqtt.username too")
    return problems


def tls_problem(mqtt: MqttConfig) -> str | None:
    """Why the TLS files cannot be used (as paho would load them), or None."""
    import ssl

    try:
        context = ssl.create_default_context(cafile=os.path.expanduser(mqtt.tls_ca) if mqtt.tls_ca else None)
        if mqtt.tls_cert:
            context.load_cert_chain(os.path.expanduser(mqtt.tls_cert),
                                    os.path.expanduser(mqtt.tls_key) if mqtt.tls_key else None)
    except (OSError, ValueError, ssl.SSLError) as exc:
        return f"mqtt.tls_ca/tls_cert/tls_key: the TLS files do not load ({getattr(exc, 'reason', None) or exc})"
    return None


# ---------------------------------------------------------------- secrets

PASSWORD_ENV = "SITSENSE_MQTT_PASSWORD"


class Secret(str):
    """A string that never shows itself in a repr or a log line."""

    def __repr__(self) -> str:
        return "'***'"


def _readable_by_others(mode: int, path: str | os.PathLike[str]) -> str | None:
    """Why a secret file with this mode is not private, or None when only its owner may read it."""
    if not mode & 0o077:
        return None
    return (f"mode {stat.S_IMODE(mode):04o} lets other users read a secret; run 'chmod 600 {path}' "
            "(owner read/write only)")


def load_password(cfg: MqttConfig, environ: Mapping[str, str] | None = None) -> Secret | None:
    """The broker password: ``SITSENSE_MQTT_PASSWORD`` wins, else ``password_file`` (mode 0600 only).

    Raises MqttSettingError (a config error: exit 78) naming the file and what to do."""
    env = os.environ if environ is None else environ
    if env.get(PASSWORD_ENV):
        return Secret(env[PASSWORD_ENV])
    if not cfg.password_file:
        return None
    path = Path(cfg.password_file).expanduser()
    try:
        shared = _readable_by_others(path.stat().st_mode, path)
        if shared:
            raise MqttSettingError(f"mqtt.password_file = {str(path)!r}: {shared}")
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MqttSettingError(f"mqtt.password_file = {str(path)!r}: cannot read it ({exc.strerror}); "
                          "create it with the password on one line, mode 0600") from None
    password = text.rstrip("\r\n")
    if not password:
        raise MqttSettingError(f"mqtt.password_file = {str(path)!r}: the file is empty")
    return Secret(password)


def parse_hhmm_range(text: str) -> tuple[int, int]:
    """'08:00-20:00' -> (480, 1200) minutes after midnight."""
    m = _HHMM_RANGE.match(text)
    if not m:
        raise ConfigError(f"{text!r}: expected HH:MM-HH:MM")
    a = int(m.group(1)) * 60 + int(m.group(2))
    b = 24 * 60 if m.group(5) else int(m.group(3)) * 60 + int(m.group(4))
    return a, b


def in_window(minute_of_day: int, window: tuple[int, int]) -> bool:
    """True when a minute of the day lies in [start, end), wrapping past midnight if end < start."""
    a, b = window
    if a == b:
        return False
    if a < b:
        return a <= minute_of_day < b
    return minute_of_day >= a or minute_of_day < b


@dataclass(frozen=True)
class KeyDoc:
    """One config key as documented: ``default`` in TOML, ``allowed`` the unit, range and choices."""

    section: str
    name: str
    default: str
    doc: str
    unit: str
    allowed: tuple[str, ...]


def key_docs() -> list[KeyDoc]:
    """Every key of every section, in declaration order (``config-defaults`` and the docs use it)."""
    out = []
    for section, cls in SECTIONS.items():
        for f in fields(cls):
            meta = f.metadata
            default = f.default_factory() if callable(f.default_factory) else f.default
            allowed = []
            if meta["unit"]:
                allowed.append(f"unit: {meta['unit']}")
            if meta["lo"] is not None or meta["hi"] is not None:
                allowed.append(f"range: {meta['lo']}..{meta['hi'] if meta['hi'] is not None else ''}")
            if meta["choices"] is not None:
                shown = ", ".join(hex(c) if f.name == "address" else str(c) for c in meta["choices"])
                allowed.append(f"allowed: {shown}")
            out.append(KeyDoc(section, f.name, _toml_value(default, f.name), meta["doc"], meta["unit"],
                              tuple(allowed)))
    return out


def render_defaults() -> str:
    """The commented default config file, generated from the dataclasses above."""
    lines = ["# sitsense configuration: every key with its default, unit and allowed values.",
             "# A file of your own needs only the keys it changes; see 'sitsense check-config FILE'.",
             "# Secrets never go here: the MQTT password comes from SITSENSE_MQTT_PASSWORD or mqtt.password_file.",
             ""]
    section = None
    for k in key_docs():
        if k.section != section:
            if section is not None:
                lines.append("")
            lines.append(f"[{k.section}]")
            section = k.section
        lines.append(f"# {k.doc}.")
        if k.allowed:
            lines.append(f"# ({'; '.join(k.allowed)})")
        lines.append(f"{k.name} = {k.default}")
    lines.append("")
    return "\n".join(lines)


def _toml_value(v: Any, name: str) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if name == "address":
        return hex(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x, "") for x in v) + "]"
    return repr(v)
