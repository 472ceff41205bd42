#!/usr/bin/env bash
# Install or upgrade sitsense on a Raspberry Pi (Raspberry Pi OS Bookworm): sudo ./install.sh
#
# Safe to run again: an upgrade replaces the code and the unit and keeps the configuration and the
# day history. Steps: packages (apt), I2C on, the code in /opt/sitsense (its own venv), a
# 'sitsense' command in /usr/local/bin, a configuration skeleton in /etc/sitsense (only if there is
# none), the systemd unit, then 'sitsense check-config' and 'sitsense doctor', then the service.
#
# --root DIR installs into DIR instead of / and leaves the running system alone (no apt, no
# raspi-config, no groups, no systemctl): the tests use it. The venv's scripts then name DIR.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: sudo ./install.sh [--with-mosquitto] [--no-start] [--python PYTHON] [--root DIR]

  --with-mosquitto  also install the Mosquitto broker on this Pi (see docs/wear/mqtt.md)
  --no-start        install and enable the service, but do not start it (a running one is stopped
                    for the checks and stays stopped)
  --python PYTHON   interpreter for the venv (default /usr/bin/python3, which sees apt's lgpio)
  --root DIR        install into DIR instead of /, touching nothing of the running system
EOF
}

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
ROOT=/
PYTHON=/usr/bin/python3
WITH_MOSQUITTO=0
START=1
while [ $# -gt 0 ]; do
  case "$1" in
    --root) ROOT=${2:?--root needs a folder}; shift 2 ;;
    --python) PYTHON=${2:?--python needs an interpreter}; shift 2 ;;
    --with-mosquitto) WITH_MOSQUITTO=1; shift ;;
    --no-start) START=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install.sh: unknown option '$1'" >&2; usage >&2; exit 64 ;;
  esac
done

say() { printf 'install: %s\n' "$*"; }
fail() { printf 'install.sh: %s\n' "$*" >&2; exit "${2:-1}"; }

if [ "$ROOT" = / ]; then
  LIVE=1
  R=""
  [ "$(id -u)" = 0 ] || fail "run it as root: sudo $0" 77
else
  LIVE=0
  mkdir -p "$ROOT"
  R=$(cd "$ROOT" && pwd -P)
  say "installing into $R (the running system is left alone: no apt, I2C change, groups or systemctl)"
fi
PREFIX=/opt/sitsense            # as the installed system sees it
VENV=$PREFIX/venv
CONF=/etc/sitsense/sitsense.toml
REBOOT=0

# --- packages ---------------------------------------------------------------------------------
if [ "$LIVE" = 1 ]; then
  export DEBIAN_FRONTEND=noninteractive
  packages=(python3-venv i2c-tools)
  apt-get update -qq
  # lgpio is gpiozero's pin library on Bookworm; Raspberry Pi OS packages it, plain Debian does not
  if apt-cache show python3-lgpio >/dev/null 2>&1; then packages+=(python3-lgpio)
  else say "python3-lgpio is not packaged here (not Raspberry Pi OS?): the buzzer and button need it"; fi
  [ "$WITH_MOSQUITTO" = 1 ] && packages+=(mosquitto)
  say "apt: ${packages[*]}"
  apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi

# --- groups: the unit's SupplementaryGroups=, and the user who ran sudo (for doctor, calibrate) --
if [ "$LIVE" = 1 ]; then
  for g in i2c gpio; do
    getent group "$g" >/dev/null || { groupadd --system "$g"; say "created group $g"; }
    if [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ] && ! id -nG "$SUDO_USER" | tr ' ' '\n' | grep -qx "$g"; then
      usermod -aG "$g" "$SUDO_USER"
      say "added $SUDO_USER to group $g (log out and in again to use it)"
    fi
  done
fi

# --- I2C ----------------------------------------------------------------------------------------
# dtparam=i2c_arm=on in config.txt (Bookworm: /boot/firmware/), and the i2c-dev module at boot
enable_i2c_in_files() {
  local cfg="" f
  for f in "$R/boot/firmware/config.txt" "$R/boot/config.txt"; do
    if [ -f "$f" ]; then cfg=$f; break; fi
  done
  if [ -z "$cfg" ]; then
    say "no /boot/firmware/config.txt: not a Raspberry Pi? enable I2C yourself (hardware.md)"
    return
  fi
  if grep -Eq '^[[:space:]]*dtparam=i2c_arm=on[[:space:]]*$' "$cfg"; then
    say "I2C already on in ${cfg#"$R"}"
  elif grep -Eq '^[[:space:]]*#?[[:space:]]*dtparam=i2c_arm=(on|off)[[:space:]]*$' "$cfg"; then
    sed -E -i '0,/^[[:space:]]*#?[[:space:]]*dtparam=i2c_arm=(on|off)[[:space:]]*$/s//dtparam=i2c_arm=on/' "$cfg"
    say "I2C turned on in ${cfg#"$R"}"; REBOOT=1
  else
    printf 'dtparam=i2c_arm=on\n' >> "$cfg"
    say "I2C turned on in ${cfg#"$R"}"; REBOOT=1
  fi
  mkdir -p "$R/etc"
  touch "$R/etc/modules"
  if ! grep -Eq '^[[:space:]]*i2c-dev[[:space:]]*$' "$R/etc/modules"; then
    printf 'i2c-dev\n' >> "$R/etc/modules"
    say "i2c-dev added to /etc/modules"
  fi
}
if [ "$LIVE" = 1 ] && command -v raspi-config >/dev/null; then
  if [ "$(raspi-config nonint get_i2c)" = 0 ]; then say "I2C already on"
  else raspi-config nonint do_i2c 0; say "I2C turned on (raspi-config)"; REBOOT=1; fi
else
  enable_i2c_in_files
fi

# --- a running service stops here: its code is replaced, and doctor must not share the chip -----
RUNNING=0
if [ "$LIVE" = 1 ] && systemctl is-active --quiet sitsense; then
  RUNNING=1
  say "stopping the service for the upgrade"
  systemctl stop sitsense
fi

# --- the code: a copy of this release in /opt/sitsense/src, installed into /opt/sitsense/venv ---
mkdir -p "$R$PREFIX"
if [ "$SRC" != "$(cd "$R$PREFIX" && pwd -P)/src" ]; then
  rm -rf "$R$PREFIX/src.new"
  mkdir "$R$PREFIX/src.new"
  for item in pyproject.toml README.md hardware.md install.sh sitsense config systemd examples docs; do
    [ -e "$SRC/$item" ] && cp -R "$SRC/$item" "$R$PREFIX/src.new/"
  done
  find "$R$PREFIX/src.new" \( -name __pycache__ -o -name '*.egg-info' \) -prune -exec rm -rf {} +
  rm -rf "$R$PREFIX/src"
  mv "$R$PREFIX/src.new" "$R$PREFIX/src"
fi
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
  || fail "$PYTHON is not Python 3.11 or newer (Raspberry Pi OS Bookworm has 3.11)" 69
if [ ! -x "$R$VENV/bin/python" ]; then
  say "creating the venv $VENV (with the system's packages, for apt's lgpio)"
  "$PYTHON" -m venv --system-site-packages "$R$VENV"
fi
say "installing sitsense $(sed -n 's/^__version__ = "\(.*\)"/\1/p' "$R$PREFIX/src/sitsense/__init__.py") into $VENV"
# [web]: aiohttp for the phone page (docs/wear/phone-page.md); the service runs without it too
"$R$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$R$PREFIX/src[web]"
rm -rf "$R$PREFIX/src/build" "$R$PREFIX/src"/*.egg-info
mkdir -p "$R/usr/local/bin"
ln -sfn "$VENV/bin/sitsense" "$R/usr/local/bin/sitsense"

# --- configuration: a skeleton with the keys a wearer changes; never overwritten ---------------
install -d -m 0755 "$R/etc/sitsense"
if [ -e "$R$CONF" ]; then
  say "kept $CONF"
else
  install -m 0644 "$SRC/config/wearer.toml" "$R$CONF"
  say "wrote $CONF (the keys a wearer changes; 'sitsense config-defaults' lists them all)"
fi
if [ ! -e "$R/etc/sitsense/environment" ]; then
  printf '# secrets for the service, e.g. SITSENSE_MQTT_PASSWORD=...; readable by root only\n' \
    > "$R/etc/sitsense/environment"
fi
chmod 0600 "$R/etc/sitsense/environment"

# --- the unit -------------------------------------------------------------------------------------
install -d -m 0755 "$R/etc/systemd/system"
if cmp -s "$SRC/systemd/sitsense.service" "$R/etc/systemd/system/sitsense.service"; then
  say "unit unchanged"
else
  install -m 0644 "$SRC/systemd/sitsense.service" "$R/etc/systemd/system/sitsense.service"
  say "installed /etc/systemd/system/sitsense.service"
fi

# --- checks ---------------------------------------------------------------------------------------
say "checking $CONF"
status=0
"$R$VENV/bin/sitsense" check-config "$R$CONF" || status=$?
if [ "$status" != 0 ]; then
  fail "fix $CONF and run the installer again; the service is not started until then" "$status"
fi
say "sitsense doctor"
if ! "$R$VENV/bin/sitsense" doctor --config "$R$CONF"; then
  if [ "$REBOOT" = 1 ]; then
    say "doctor found problems; I2C was just turned on, so reboot first, then: sudo sitsense doctor --config $CONF"
  else
    say "doctor found problems (see the fix lines above); the service keeps retrying until they are fixed"
  fi
fi

# --- the service ------------------------------------------------------------------------------------
if [ "$LIVE" = 1 ]; then
  systemctl daemon-reload
  systemctl enable --quiet sitsense
  if [ "$REBOOT" = 1 ]; then
    say "reboot to turn I2C on (sudo reboot); the service starts at boot"
  elif [ "$START" = 0 ]; then
    say "service enabled, not started (--no-start)"
  elif systemctl start sitsense; then
    if [ "$RUNNING" = 1 ]; then say "service restarted with this version"; else say "service started"; fi
  else
    say "the service did not start yet (journalctl -u sitsense says why); systemd retries every 15 s"
  fi
  say "done: 'systemctl status sitsense', 'journalctl -u sitsense -f'; then clip it on and calibrate (docs/wear/calibrate.md)"
else
  say "done (into $R)"
fi
