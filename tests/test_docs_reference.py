"""The generated reference pages (docs/reference/) against the live program: each command's block is
what ``sitsense COMMAND --help`` prints, each config key's default what ``sitsense config-defaults``
prints, and every MQTT message a running service publishes matches the topic table the MQTT page
is made from. Stale pages fail with the command that regenerates them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from sitsense.cli import COMMANDS
from sitsense.docsgen import HELP_COLUMNS, REFERENCE_DIR, REGENERATE, stale_pages

from .conftest import REPO

SITSENSE = Path(sys.executable).with_name("sitsense")


def live(*args: str) -> str:
    """What the installed ``sitsense`` prints, in a terminal ``HELP_COLUMNS`` wide."""
    cmd = [str(SITSENSE)] if SITSENSE.exists() else [sys.executable, "-m", "sitsense.cli"]
    env = {**os.environ, "COLUMNS": str(HELP_COLUMNS)}
    done = subprocess.run(cmd + list(args), capture_output=True, text=True, env=env, timeout=60, check=True)
    return done.stdout


def page_blocks(page: str) -> dict[str, str]:
    """heading -> the ``text`` block under it, from the commands page."""
    return {m.group(1): m.group(2) + "\n"
            for m in re.finditer(r"^## ([^\n]+)\n\n```text\n(.*?)\n```$", page, flags=re.S | re.M)}


def test_the_generated_pages_are_current():
    stale = stale_pages()
    assert not stale, f"stale reference pages {stale}: run '{REGENERATE}' and commit docs/reference/"


def test_every_command_and_option_is_on_the_commands_page_as_help_prints_it():
    blocks = page_blocks((REFERENCE_DIR / "commands.md").read_text())
    assert set(blocks) == {"sitsense"} | {f"sitsense {name}" for name in COMMANDS}
    assert blocks["sitsense"] == live("--help")
    for name in COMMANDS:
        assert blocks[f"sitsense {name}"] == live(name, "--help"), f"sitsense {name} --help differs: run '{REGENERATE}'"
    assert "--faults" in blocks["sitsense run"] and "--plot OUT.png" in blocks["sitsense report"]  # options, not just names


def test_every_config_key_is_on_the_config_page_with_the_default_config_defaults_prints():
    text = live("config-defaults")
    defaults = tomllib.loads(text)
    page = (REFERENCE_DIR / "config.md").read_text()
    sections = dict(re.findall(r"^## \[(\w+)\]\n\n(.*?)(?=^## |\Z)", page, flags=re.S | re.M))
    assert set(sections) == set(defaults)
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^(\w+) = (.+)$", line)
        if not m:
            continue
        section = next(s[1:-1] for s in reversed(lines[:i]) if s.startswith("["))
        doc = next(s for s in reversed(lines[:i]) if s.startswith("# ") and not s.startswith("# ("))[2:].rstrip(".")
        row = next((r for r in sections[section].splitlines() if r.startswith(f"| `{m.group(1)}` |")), None)
        assert row is not None, f"{section}.{m.group(1)} is missing from the config page"
        assert row.startswith(f"| `{m.group(1)}` | `{m.group(2)}` |") and doc.replace("|", "\\|") in row, row
    assert sum(len(v) for v in defaults.values()) == sum(s.count("\n| `") for s in sections.values())


def test_every_message_a_service_publishes_matches_the_topic_table():
    """A replayed morning with the MQTT output on a recording client: every topic under the device,
    its QoS and retain flag, must be a row of the table, and every row must turn up."""
    from sitsense.clock import SimClock
    from sitsense.config import load_config
    from sitsense.mqtt.client import MqttOutput
    from sitsense.mqtt.fake import FakeMqttClient
    from sitsense.mqtt.topics import TOPIC_TABLE
    from sitsense.sensor.source import ReplaySource
    from sitsense.trace_reader import TraceReader
    from sitsense.wiring import build_service, close_outputs

    cfg = load_config(None)
    trace = TraceReader(REPO / "examples" / "desk-morning.csv.gz")
    clock = SimClock(trace.start_time)
    service = build_service(cfg, source=ReplaySource(trace, clock), clock=clock, console=False)
    fake = FakeMqttClient()
    out = MqttOutput(cfg.mqtt.__class__(enabled=True, device_id="doc"), client=fake, outbox=":memory:",
                     submit=service.submit, clock=service.clock)
    out.start()
    service.outputs.append(out)
    fake.deliver("sitsense/doc/cmd/snooze", b'{"minutes": 5}')
    fake.deliver("sitsense/doc/cmd/pause", b'{"minutes": 0}')  # refused: answered too
    service.run()
    close_outputs(service)

    rows = {spec.name: spec for spec in TOPIC_TABLE}
    seen = set()
    for p in fake.published:
        if not p.topic.startswith("sitsense/doc/"):
            assert p.topic.startswith("homeassistant/"), p.topic  # discovery: see docs/wear/mqtt.md
            continue
        name = re.sub(r"^cmd/[^/]+/result$", "cmd/<name>/result", p.topic[len("sitsense/doc/"):])
        assert name in rows, f"{p.topic} is published but not in TOPIC_TABLE"
        assert (p.qos, p.retain) == (rows[name].qos, rows[name].retained), f"{p.topic}: qos {p.qos}, retain {p.retain}"
        seen.add(name)
    assert fake.will == ("sitsense/doc/status", "offline", rows["status"].qos, rows["status"].retained)
    assert ("sitsense/doc/cmd/+", rows["cmd/<name>"].qos) in fake.subscriptions
    assert seen == {name for name, spec in rows.items() if not spec.incoming}
