"""Home Assistant for the tests: one pinned release in a cached virtual environment.

``python3 tests/hass_install.py`` installs it (a few minutes, once; ``.ci/run`` does this before the
tests) and prints the environment's path; later runs find it ready and return at once. The
environment lives outside the clone, under ``$SITSENSE_HASS_CACHE`` (default
``~/.cache/sitsense``), in a folder named after the release and the Python version, so a new pin
or a new Python gets a new one. It holds Home Assistant, the requirements of the integrations the
test loads (read from their manifests, pinned by Home Assistant's own constraints), and nothing
that needs the internet at run time: the test starts Home Assistant with ``--skip-pip``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# The newest release that installs on Python 3.11 (2024.4 needs 3.12); it warns that 3.11 is deprecated.
HASS_VERSION = "2024.3.3"

# Integrations whose requirements the environment gets, with their dependencies and
# after_dependencies: what a bare configuration loads (bootstrap's defaults), what the test
# configures, and what those import without declaring it (mobile_app -> cloud -> alexa -> camera
# -> stream, analytics -> recorder).
DOMAINS = ("mqtt", "mobile_app", "automation", "blueprint", "api", "config", "onboarding", "http",
           "websocket_api", "logger", "system_log", "cloud", "recorder", "stream")

# Left out: ha-av (stream's video decoder, a large binary wheel that nothing here imports).
SKIP_REQUIREMENTS = ("ha-av",)

# Pins for packages that moved on since the release and broke it (found by starting it):
# acme (via hass-nabucasa) needs josepy 1.x (2.0 removed ComparableX509).
OVERRIDES = ("josepy<2",)

# Run by the environment's own Python: the pinned requirements of DOMAINS and their dependencies.
_RESOLVE = r"""
import json, pathlib, sys
import homeassistant.components as components
from homeassistant import bootstrap

root = pathlib.Path(components.__file__).parent
todo = set(bootstrap.DEFAULT_INTEGRATIONS) | set(bootstrap.CORE_INTEGRATIONS) | set(sys.argv[1:])
seen, requirements = set(), set()
while todo:
    domain = todo.pop()
    if domain in seen or not (root / domain / "manifest.json").is_file():
        continue
    seen.add(domain)
    manifest = json.loads((root / domain / "manifest.json").read_text())
    requirements.update(manifest.get("requirements", []))
    todo.update(manifest.get("dependencies", []) + manifest.get("after_dependencies", []))
print(json.dumps(sorted(requirements)))
"""


def cache_root() -> Path:
    env = os.environ.get("SITSENSE_HASS_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sitsense"


def _recipe() -> str:
    """What the environment is made of; a change of any part makes a new one."""
    text = json.dumps([HASS_VERSION, DOMAINS, SKIP_REQUIREMENTS, OVERRIDES, sys.version_info[:2]])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def venv_dir() -> Path:
    return cache_root() / f"homeassistant-{HASS_VERSION}-py{sys.version_info[0]}{sys.version_info[1]}-{_recipe()}"


def hass_executable() -> Path | None:
    """The ``hass`` program of a finished environment, or None if there is none yet."""
    venv = venv_dir()
    if (venv / ".complete").is_file() and (venv / "bin" / "hass").is_file():
        return venv / "bin" / "hass"
    return None


def _pip(python: Path, *args: str) -> None:
    subprocess.run([str(python), "-m", "pip", "install", "-qq", "--disable-pip-version-check", *args],
                   check=True)


def install() -> Path:
    """Build the environment unless it is ready; returns its ``hass`` program."""
    ready = hass_executable()
    if ready is not None:
        return ready
    venv = venv_dir()
    if venv.exists():  # an install that was cut short: start again
        shutil.rmtree(venv)
    venv.parent.mkdir(parents=True, exist_ok=True)
    print(f"installing Home Assistant {HASS_VERSION} into {venv} (once; a few minutes)", file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    with tempfile.TemporaryDirectory() as tmp:
        overrides = Path(tmp) / "overrides.txt"
        overrides.write_text("\n".join(OVERRIDES) + "\n")
        _pip(python, "-c", str(overrides), f"homeassistant=={HASS_VERSION}")
        found = subprocess.run([str(python), "-c", _RESOLVE, *DOMAINS], check=True, capture_output=True, text=True)
        wanted = [r for r in json.loads(found.stdout)
                  if not r.lower().startswith(tuple(s + "=" for s in SKIP_REQUIREMENTS))]
        constraints = next((venv / "lib").glob("python*/site-packages/homeassistant/package_constraints.txt"))
        _pip(python, "-c", str(constraints), "-c", str(overrides), *wanted)
    (venv / ".complete").write_text(HASS_VERSION + "\n")  # last: marks the environment finished
    return venv / "bin" / "hass"


if __name__ == "__main__":
    try:
        print(install())
    except subprocess.CalledProcessError as exc:
        sys.exit(f"hass_install: {' '.join(map(str, exc.cmd))[:200]} failed with status {exc.returncode}")
