"""Home Assistant MQTT discovery: the retained config messages that make sitsense a device in HA.

Pure functions of the topic layout; ``MqttOutput`` publishes them on connect and again whenever
Home Assistant announces ``online`` on ``<discovery_prefix>/status`` (it forgets them on restart
unless they are retained, and some setups clear retained messages).
"""

from __future__ import annotations

import json
from typing import Any

from ..control import CONTROLS
from ..events import POSTURES
from .topics import OFFLINE, ONLINE, Topics

ALERT_EVENT_TYPES = ("stand_up", "reminder")  # first alert of a bout, later reminders of the same bout
PAUSE_BUTTON_MIN = 60


# MQTT entities cannot bring translations, so the posture is shown by these names (the tile and the
# binary sensor keep sitsense's own values). Event types stay sitsense's ids: automations match them.
POSTURE_NAMES = {"sitting": "Sitting", "standing": "Standing", "walking": "Walking", "lying": "Lying",
                 "not_worn": "Not worn", "unknown": "Not sure"}
assert set(POSTURE_NAMES) == set(POSTURES), "every posture needs a name"


def _minutes(decimals: int = 0) -> dict[str, Any]:
    """A duration in minutes, shown as minutes: without a display precision the frontend shows it as h:mm:ss."""
    return {"device_class": "duration", "unit_of_measurement": "min", "suggested_display_precision": decimals}


def _sensor(name: str, tile: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "tile": tile, **extra}


# object id -> (component, config without the shared keys). ``tile`` names the plain topic read.
ENTITIES: dict[str, tuple[str, dict[str, Any]]] = {
    "sitting_today": ("sensor", _sensor("Sitting today", "today/sitting_min", **_minutes(),
                                        state_class="total_increasing")),
    "current_bout": ("sensor", _sensor("Current sitting bout", "bout_min", **_minutes(), state_class="measurement")),
    "breaks_today": ("sensor", _sensor("Breaks today", "today/breaks", state_class="total_increasing",
                                       icon="mdi:walk")),
    "alerts_today": ("sensor", _sensor("Alerts today", "today/alerts", state_class="total_increasing",
                                       icon="mdi:bell-ring-outline")),
    "release_today": ("sensor", _sensor("Release today", "today/release_min", **_minutes(1),
                                        state_class="total_increasing", icon="mdi:yoga")),
    "posture": ("sensor", _sensor("Posture", "posture", device_class="enum", options=list(POSTURE_NAMES.values()),
                                  value_template="{{ %s.get(value, value) }}" % json.dumps(POSTURE_NAMES),
                                  icon="mdi:human")),
    "sensor_status": ("sensor", _sensor("Sensor", "sensor", entity_category="diagnostic", icon="mdi:chip")),
    # ok, full, read-only or failing: the state folder (sitsense.storage); counting goes on in memory
    "storage_status": ("sensor", _sensor("State storage", "storage", entity_category="diagnostic", icon="mdi:sd")),
    "sitting": ("binary_sensor", _sensor("Sitting", "posture", icon="mdi:seat",
                                         value_template="{{ 'ON' if value == 'sitting' else 'OFF' }}")),
    # "On", "Paused until 10:45" or "Snoozed until 09:52"; the ISO times are attributes for automations
    "alerts": ("sensor", _sensor("Alerts", "alerts", icon="mdi:bell-outline",
                                 value_template="{{ value[:1] | upper }}{{ value[1:] }}",
                                 json_attributes="state",
                                 json_attributes_template="{{ {'paused_until': value_json.paused_until, "
                                                          "'snoozed_until': value_json.snoozed_until} | tojson }}")),
    "alerts_paused": ("binary_sensor", _sensor("Alerts paused", "alerts", icon="mdi:bell-sleep-outline",
                                               value_template="{{ 'ON' if value.startswith('paused') else 'OFF' }}")),
    # "ok", "uncalibrated" or "sit_stand_alike"; the message (what to do) is an attribute
    "posture_check": ("sensor", {"name": "Posture check", "topic": "posture_check",
                                 "value_template": "{{ value_json.code }}", "json_attributes": "posture_check",
                                 "entity_category": "diagnostic", "icon": "mdi:human-male-height-variant"}),
    "last_command": ("sensor", {"name": "Last command", "topic": "last_command", "icon": "mdi:message-reply-text",
                                "value_template": "{{ (value_json.command ~ ': ' ~ ('ok' if value_json.ok "
                                                  "else value_json.error))[:255] }}",
                                "json_attributes": "last_command", "entity_category": "diagnostic"}),
    "alert": ("event", {"name": "Stand-up alert", "topic": "alert", "event_types": list(ALERT_EVENT_TYPES),
                        "icon": "mdi:human-handsup"}),
    "snooze": ("button", {"name": "Snooze", "command": "snooze", "payload_press": "{}",
                          "icon": "mdi:alarm-snooze"}),
    "pause": ("button", {"name": f"Pause {PAUSE_BUTTON_MIN} min", "command": "pause",
                         "payload_press": json.dumps({"minutes": PAUSE_BUTTON_MIN}), "icon": "mdi:pause-circle"}),
    "resume": ("button", {"name": "Resume", "command": "resume", "payload_press": "{}",
                          "icon": "mdi:play-circle"}),
    "calibrate": ("button", {"name": "Calibrate upright", "command": "calibrate", "payload_press": "{}",
                             "entity_category": "config", "icon": "mdi:axis-arrow"}),
}


def device_info(device_id: str, sw_version: str) -> dict[str, Any]:
    """The HA device block shared by every entity."""
    return {"identifiers": [f"sitsense_{device_id}"], "name": f"sitsense {device_id}",
            "manufacturer": "sitsense", "model": "belt-worn sitting monitor (MPU-6050)",
            "sw_version": sw_version}


def discovery_topic(prefix: str, component: str, device_id: str, object_id: str) -> str:
    return f"{prefix}/{component}/{device_id}/{object_id}/config"


assert all(spec["command"] in CONTROLS for _, spec in ENTITIES.values() if "command" in spec), \
    "every button sends a known command"


def discovery_messages(topics: Topics, device_id: str, prefix: str = "homeassistant", *,
                       sw_version: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Every discovery (topic, config) pair for one device, in a stable order."""
    device = device_info(device_id, sw_version)
    out = []
    for object_id, (component, spec) in ENTITIES.items():
        config: dict[str, Any] = {}
        for k, v in spec.items():
            if k == "tile":
                config["state_topic"] = topics.tile(v)
            elif k == "topic":
                config["state_topic"] = getattr(topics, v)
            elif k == "command":
                config["command_topic"] = topics.cmd(v)
            elif k == "json_attributes":
                config["json_attributes_topic"] = getattr(topics, v)
            else:
                config[k] = v
        config.update({
            "unique_id": f"sitsense_{device_id}_{object_id}",
            "availability_topic": topics.status,
            "payload_available": ONLINE,
            "payload_not_available": OFFLINE,
            "device": device,
            "origin": {"name": "sitsense", "sw_version": sw_version},
        })
        if component == "button":
            config["qos"] = 1
        out.append((discovery_topic(prefix, component, device_id, object_id), config))
    return out


def hass_status_topic(prefix: str) -> str:
    """Where Home Assistant announces ``online`` after it (re)starts."""
    return f"{prefix}/status"
