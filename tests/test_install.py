"""install.sh, run for real: into a scratch root (``--root``: fresh install, re-run, upgrade, bad
config), and as ``sudo ./install.sh`` on a Pi would, inside a throwaway systemd (install, upgrade).

Each run builds and pip-installs sitsense into a real venv (its dependencies come from the package
index or pip's cache), so this module takes a minute or two. Nothing outside the scratch folders
is touched: ``--root`` skips apt, raspi-config, groups and systemctl, and the live run happens in
the box of tests/systemd_box.py, with apt and raspi-config replaced by recording stand-ins.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from .conftest import REPO, require

# A Raspberry Pi OS Bookworm /boot/firmware/config.txt ships with the I2C line commented out.
PI_CONFIG_TXT = """# For more options and information see http://rptl.io/configtxt
#dtparam=i2c_arm=on
#dtparam=i2s=on
#dtparam=spi=on
dtparam=audio=on
camera_auto_detect=1
"""
RELEASE_FILES = ["pyproject.toml", "README.md", "hardware.md", "install.sh", "sitsense", "config", "systemd",
                 "examples", "docs"]


def _install(src: Path, root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(src / "install.sh"), "--root", str(root), "--python", sys.executable],
                          capture_output=True, text=True, timeout=900, env={**os.environ, "PIP_NO_INPUT": "1"})


def _tree(root: Path) -> dict[str, tuple[int, str]]:
    """Every file outside the venv (which pip rewrites on each run): mode and content hash."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if rel.startswith("opt/sitsense/venv") or p.is_dir() and not p.is_symlink():
            continue
        data = os.readlink(p).encode() if p.is_symlink() else p.read_bytes()
        out[rel] = (p.lstat().st_mode, hashlib.sha256(data).hexdigest())
    return out


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A release copy of this checkout and a scratch Pi root, after one fresh install."""
    require(shutil.which("bash") is not None, "bash not found")
    base = tmp_path_factory.mktemp("install")
    src, root = base / "release", base / "root"
    src.mkdir()
    for name in RELEASE_FILES:
        item = REPO / name
        if item.is_dir():
            shutil.copytree(item, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(item, src / name)
    (root / "boot" / "firmware").mkdir(parents=True)
    (root / "boot" / "firmware" / "config.txt").write_text(PI_CONFIG_TXT)
    first = _install(src, root)
    return src, root, first


def test_fresh_install_lays_out_a_working_system(installed):
    src, root, run = installed
    assert run.returncode == 0, run.stdout + run.stderr
    sitsense = root / "opt/sitsense/venv/bin/sitsense"
    version = subprocess.run([str(sitsense), "--version"], capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("sitsense "), version.stderr
    # 'sitsense' on PATH, pointing at the installed system's venv (not at the scratch root)
    assert os.readlink(root / "usr/local/bin/sitsense") == "/opt/sitsense/venv/bin/sitsense"
    assert (root / "etc/systemd/system/sitsense.service").read_text() == (src / "systemd/sitsense.service").read_text()
    # I2C: the commented line switched on in place, once; i2c-dev loaded at boot
    config_txt = (root / "boot/firmware/config.txt").read_text().splitlines()
    assert config_txt.count("dtparam=i2c_arm=on") == 1 and "#dtparam=i2c_arm=on" not in config_txt
    assert (root / "etc/modules").read_text().splitlines().count("i2c-dev") == 1
    # the skeleton: checked by the installer itself, the secrets file private
    conf = root / "etc/sitsense/sitsense.toml"
    assert conf.read_text() == (src / "config/wearer.toml").read_text()
    assert "sitsense.toml: ok" in run.stdout
    assert (root / "etc/sitsense/environment").stat().st_mode & 0o777 == 0o600
    # doctor ran (it may fail here: no I2C bus on the test machine), and the installer went on
    assert re.search(r"^(PASS|FAIL|SKIP) +I2C enabled", run.stdout, re.M), run.stdout


def test_rerun_changes_nothing_and_keeps_the_wearers_config(installed):
    src, root, _ = installed
    conf = root / "etc/sitsense/sitsense.toml"
    conf.write_text("[tracker]\nsit_limit_min = 45\n")
    before = _tree(root)
    again = _install(src, root)
    assert again.returncode == 0, again.stdout + again.stderr
    assert _tree(root) == before
    assert "kept /etc/sitsense/sitsense.toml" in again.stdout and "unit unchanged" in again.stdout
    assert "I2C already on" in again.stdout


def test_upgrade_replaces_code_and_unit_and_keeps_config(installed):
    src, root, _ = installed
    conf = root / "etc/sitsense/sitsense.toml"
    conf.write_text("[tracker]\nsit_limit_min = 50\n")
    init = src / "sitsense" / "__init__.py"
    init.write_text(init.read_text() + "\nRELEASE_MARK = 'next'\n")
    unit = src / "systemd" / "sitsense.service"
    unit.write_text(unit.read_text().replace("Description=sitsense", "Description=sitsense (next)"))
    run = _install(src, root)
    assert run.returncode == 0, run.stdout + run.stderr
    python = root / "opt/sitsense/venv/bin/python"
    mark = subprocess.run([str(python), "-c", "import sitsense; print(sitsense.RELEASE_MARK)"],
                          capture_output=True, text=True, timeout=60, cwd=root)
    assert mark.stdout.strip() == "next", mark.stderr
    assert "Description=sitsense (next)" in (root / "etc/systemd/system/sitsense.service").read_text()
    assert conf.read_text() == "[tracker]\nsit_limit_min = 50\n"


def test_a_bad_config_stops_the_install_with_the_config_status(installed):
    src, root, _ = installed
    conf = root / "etc/sitsense/sitsense.toml"
    conf.write_text("[tracker]\nsit_limit_min = 1\n")
    run = _install(src, root)
    assert run.returncode == 78, run.stdout + run.stderr
    assert "sit_limit_min" in run.stderr and "run the installer again" in run.stderr
    assert conf.read_text() == "[tracker]\nsit_limit_min = 1\n"  # never overwritten


def test_the_skeleton_holds_only_real_keys_at_their_defaults(tmp_path):
    """Uncommenting every line of config/wearer.toml gives a valid config equal to the defaults,
    so the comments tell the truth and the file cannot drift from the code."""
    from sitsense.config import load_config

    active = re.sub(r"^# (\w+ = )", r"\1", (REPO / "config" / "wearer.toml").read_text(), flags=re.M)
    keys = [(section, key) for section, values in tomllib.loads(active).items() for key in values]
    assert len(keys) >= 15
    path = tmp_path / "all-keys.toml"
    path.write_text(active)
    cfg, defaults = load_config(str(path)), load_config(None)
    for section, key in keys:
        assert getattr(getattr(cfg, section), key) == getattr(getattr(defaults, section), key), (section, key)


# ---------------------------------------------------------------- live, under a real (throwaway) systemd

# Stand-ins for what the box cannot do offline: apt (records what it was asked) and raspi-config
# (I2C already on). Everything else is real: groups, pip into the venv, systemctl, the service.
APT_GET = "#!/bin/sh\necho \"apt-get $*\" >> /var/log/install-stubs.log\n"
APT_CACHE = "#!/bin/sh\necho \"apt-cache $*\" >> /var/log/install-stubs.log\n"  # 'show python3-lgpio' finds it
RASPI_CONFIG = "#!/bin/sh\necho \"raspi-config $*\" >> /var/log/install-stubs.log\n[ \"$2\" = get_i2c ] && echo 0\n"
FAKE_SENSOR_CONFIG = '[sensor]\nsource = "fake:/opt/sitsense/src/examples/desk-morning.csv.gz"\n'


@pytest.fixture(scope="module")
def live_box(installed, tmp_path_factory):
    """A throwaway systemd (tests/systemd_box.py) with the release, the dependencies as wheels and
    Debian's python3; install.sh runs in it as 'sudo ./install.sh' would on a Pi."""
    from . import systemd_box

    reason = systemd_box.available()
    require(reason is None, f"cannot run a throwaway systemd here: {reason}")
    require(os.access("/usr/bin/python3", os.X_OK), "no /usr/bin/python3 (the installer's default interpreter)")
    probe = subprocess.run(["/usr/bin/python3", "-c", "import ensurepip, sys; sys.exit(sys.version_info < (3, 11))"],
                           capture_output=True)
    require(probe.returncode == 0, "/usr/bin/python3 is older than 3.11 or lacks venv (apt install python3-venv)")
    src, _, _ = installed
    base = tmp_path_factory.mktemp("live")
    wheels = base / "wheels"
    project = tomllib.loads((src / "pyproject.toml").read_text())["project"]
    deps = project["dependencies"] + project["optional-dependencies"]["web"]  # install.sh installs [web]
    got = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", "--dest",
                          str(wheels), *deps, "setuptools>=68", "wheel"], capture_output=True, text=True, timeout=600)
    require(got.returncode == 0, f"cannot fetch the dependencies as wheels: {got.stderr.strip()[-300:]}")
    box = systemd_box.SystemdBox(base / "box")
    box.add_bind(src, "/srv/release")
    box.add_bind(wheels, "/srv/wheels")
    box.add_file("/usr/local/sbin/apt-get", APT_GET, 0o755)
    box.add_file("/usr/local/sbin/apt-cache", APT_CACHE, 0o755)
    box.add_file("/usr/local/bin/raspi-config", RASPI_CONFIG, 0o755)
    box.add_file("/etc/sitsense/sitsense.toml", FAKE_SENSOR_CONFIG)  # a wearer's config, there before
    try:
        box.start()
        yield box
    finally:
        box.close()


def _install_live(box) -> subprocess.CompletedProcess:
    return box.run("env", "-i", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root",
                   "SUDO_USER=nobody", "PIP_CONFIG_FILE=/dev/null", "PIP_NO_INDEX=1", "PIP_FIND_LINKS=/srv/wheels",
                   "PIP_NO_CACHE_DIR=1", "bash", "/srv/release/install.sh", check=False, timeout_s=900)


def test_live_install_starts_the_service_and_an_upgrade_restarts_it(live_box):
    box = live_box
    first = _install_live(box)
    assert first.returncode == 0, first.stdout + first.stderr
    stubs = box.read("/var/log/install-stubs.log")
    assert re.search(r"^apt-get install .*python3-venv.*i2c-tools.*python3-lgpio", stubs, re.M), stubs
    assert "I2C already on" in first.stdout and "kept /etc/sitsense/sitsense.toml" in first.stdout
    # the unit's groups exist now, and the user who ran sudo is in them
    groups = box.run("id", "-nG", "nobody").stdout.split()
    assert "i2c" in groups and "gpio" in groups
    assert box.systemctl("is-enabled", "sitsense").stdout.strip() == "enabled"
    props = box.show("sitsense.service", "ActiveState", "MainPID")
    assert props["ActiveState"] == "active", box.systemctl("status", "sitsense", check=False).stdout
    assert box.run("readlink", f"/proc/{props['MainPID']}/cwd").stdout.strip() == "/run/sitsense"
    assert box.run("sitsense", "--version").stdout.startswith("sitsense ")  # on PATH, as docs/wear/install.md says
    assert box.read("/etc/sitsense/sitsense.toml") == FAKE_SENSOR_CONFIG

    release_mark = "RELEASE_MARK = 'live-upgrade'\n"
    init = _release_file(box, "sitsense/__init__.py")
    init.write_text(init.read_text() + release_mark)
    try:
        second = _install_live(box)
    finally:
        init.write_text(init.read_text().replace(release_mark, ""))
    assert second.returncode == 0, second.stdout + second.stderr
    assert "service restarted with this version" in second.stdout
    after = box.show("sitsense.service", "ActiveState", "MainPID")
    assert after["ActiveState"] == "active" and after["MainPID"] != props["MainPID"]
    code = box.run("/opt/sitsense/venv/bin/python", "-c", "import sitsense; print(sitsense.RELEASE_MARK)").stdout
    assert code.strip() == "live-upgrade"
    assert box.read("/etc/sitsense/sitsense.toml") == FAKE_SENSOR_CONFIG


def _release_file(box, rel: str) -> Path:
    host, _ = next((h, b) for h, b in box.binds if b == "/srv/release")
    return host / rel
