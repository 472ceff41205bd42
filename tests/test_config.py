"""Config: defaults documented in the shipped file, partial files, every problem reported at once."""

from __future__ import annotations

import pytest

from sitsense.config import Config, load_config, render_defaults
from sitsense.errors import ConfigError

from .conftest import REPO


def test_shipped_config_file_is_the_generated_one():
    assert (REPO / "config" / "sitsense.toml").read_text() == render_defaults(), \
        "run: sitsense config-defaults > config/sitsense.toml"


def test_shipped_config_loads_as_the_defaults():
    cfg = load_config(REPO / "config" / "sitsense.toml")
    assert cfg.tracker == Config().tracker and cfg.mqtt == Config().mqtt


def test_a_file_may_hold_only_the_keys_it_changes(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text("[tracker]\nsit_limit_min = 45\n")
    cfg = load_config(p)
    assert cfg.tracker.sit_limit_min == 45.0 and cfg.tracker.break_s == 60.0
    assert cfg.sensor == Config().sensor


def test_every_problem_is_reported_at_once(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('[tracker]\nsit_limit_min = 2\nbreak_s = "long"\nfoo = 1\n[nope]\n'
                 '[sensor]\nrange_g = 3\n[tracker.x]\n')
    with pytest.raises(ConfigError) as exc:
        load_config(p)
    lines = str(exc.value).splitlines()
    text = str(exc.value)
    assert all(line.startswith(str(p)) for line in lines)
    assert "tracker.sit_limit_min = 2: out of range (allowed: 5.0..240.0 min)" in text
    assert "tracker.break_s = 'long': must be a number" in text
    assert "tracker.foo: unknown key" in text
    assert "[nope]: unknown section" in text
    assert "sensor.range_g = 3: not allowed (allowed: 2, 4, 8, 16)" in text
    assert exc.value.exit_code == 78


def test_invalid_toml_and_wrong_shapes(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text("[tracker\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(p)
    p.write_text('[tracker]\nactive_hours = "9 to 5"\nactive_days = ["mon", "someday"]\n')
    with pytest.raises(ConfigError) as exc:
        load_config(p)
    assert "active_hours" in str(exc.value) and "'someday' is not allowed" in str(exc.value)


def test_pins_in_use_twice_and_unknown_time_zone(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text("[buzzer]\nbutton_enabled = true\nbutton_pin = 17\npin = 17\n"
                 "[tracker]\ntimezone = \"Mars/Olympus\"\n")
    with pytest.raises(ConfigError) as exc:
        load_config(p)
    assert "GPIO17 is already buzzer.pin" in str(exc.value) and "unknown time zone" in str(exc.value)


def test_the_sensors_i2c_pins_are_refused_for_the_buzzer_and_button(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text("[buzzer]\npin = 3\nbutton_enabled = true\nbutton_pin = 2\n")
    with pytest.raises(ConfigError) as exc:
        load_config(p)
    assert "GPIO3 is the sensor's I2C SCL" in str(exc.value) and "GPIO2 is the sensor's I2C SDA" in str(exc.value)


def test_booleans_are_not_numbers(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text("[tracker]\nmax_reminders = true\n")
    with pytest.raises(ConfigError, match="must be a whole number"):
        load_config(p)


def test_a_password_file_others_can_read_fails_the_check_before_the_service_starts(tmp_path):
    """A secret readable by others is a config error (exit 78): systemd does not restart into a loop."""
    secret = tmp_path / "mqtt-password"
    secret.write_text("hunter2\n")
    secret.chmod(0o644)
    p = tmp_path / "c.toml"
    p.write_text(f'[mqtt]\nenabled = true\nusername = "pi"\npassword_file = "{secret}"\n')
    with pytest.raises(ConfigError) as exc:
        load_config(p)
    assert exc.value.exit_code == 78 and "chmod 600" in str(exc.value) and "hunter2" not in str(exc.value)
    secret.chmod(0o600)
    assert load_config(p).mqtt.password_file == str(secret)


def test_a_systemd_credential_is_only_checked_inside_the_unit(tmp_path, monkeypatch):
    """check-config from a shell cannot see /run/credentials/...; inside the unit a missing one is an error."""
    p = tmp_path / "c.toml"
    p.write_text('[mqtt]\nenabled = true\npassword_file = "/run/credentials/sitsense.service/mqtt-password"\n')
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    assert load_config(p).mqtt.enabled
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", "/run/credentials/sitsense.service")
    with pytest.raises(ConfigError, match="file missing or not readable"):
        load_config(p)
