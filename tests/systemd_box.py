"""A throwaway systemd for the tests: runs a shipped unit under the real service manager.

systemd is started as PID 1 of its own PID, mount, network, UTS, IPC and cgroup namespaces, on an
overlay of ``/`` whose writes land in a tmpfs, with its own ``/run``, ``/tmp``, ``/dev`` (a few
nodes), a read-only ``/sys`` and ``/proc/sys``, and a unit search path holding only the files the
test gives it and an empty ``/etc/systemd/system`` for what is installed there
(``SYSTEMD_UNIT_PATH``; generators off). Nothing it does reaches the host: no
sysinit units run (a full boot would clean ``/tmp``, trigger udev, apply sysctls), the host's
files, network and hostname stay as they were, and its cgroup is a child of the test's, removed
afterwards. Needs root, ``unshare``/``nsenter`` (util-linux) and overlayfs; ``available()`` says
why not.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
import uuid
from pathlib import Path

SYSTEMD = next((p for p in ("/lib/systemd/systemd", "/usr/lib/systemd/systemd") if os.access(p, os.X_OK)), None)
UNIT_DIR = "/etc/sitsense-test/units"  # inside the box

# What a service's default dependencies and the shipped unit name; empty stand-ins, so that no
# distribution unit (and nothing it pulls in) is ever loaded.
STUB_UNITS = {
    "sitsense-test.target": "[Unit]\nDescription=sitsense test box\nDefaultDependencies=no\n",
    "sysinit.target": "[Unit]\nDefaultDependencies=no\n",
    "basic.target": "[Unit]\nDefaultDependencies=no\n",
    "shutdown.target": "[Unit]\nDefaultDependencies=no\n",
    "network-online.target": "[Unit]\nDefaultDependencies=no\n",
    "time-sync.target": "[Unit]\nDefaultDependencies=no\n",
    "system.slice": "[Unit]\nDefaultDependencies=no\n",
    "multi-user.target": "[Unit]\nDefaultDependencies=no\n",  # WantedBy= of the shipped unit
}

_BOOT = r"""
set -eu
B="$1"
mount -t tmpfs -o mode=0755 sitsense-test "$B/layer"
mkdir "$B/layer/upper" "$B/layer/work"
cp -a "$B/stage/." "$B/layer/upper/"
mount -t overlay sitsense-test -o "lowerdir=/,upperdir=$B/layer/upper,workdir=$B/layer/work" "$B/root"
R="$B/root"
mount -t proc proc "$R/proc"
mount --bind "$R/proc/sys" "$R/proc/sys"
mount -o remount,bind,ro "$R/proc/sys"
mount -t sysfs -o ro sysfs "$R/sys"
mount -t cgroup2 cgroup2 "$R/sys/fs/cgroup"
mount -t tmpfs -o mode=0755 tmpfs "$R/dev"
for n in null zero full random urandom tty; do
  touch "$R/dev/$n"
  mount --bind "/dev/$n" "$R/dev/$n"
done
mkdir "$R/dev/pts" "$R/dev/shm"
mount -t tmpfs -o mode=0755 tmpfs "$R/run"
mount -t tmpfs -o mode=1777 tmpfs "$R/tmp"
mount -t tmpfs -o mode=0755 tmpfs "$R/etc/systemd/system"
__BINDS__
cd "$R"
mkdir -p .host
pivot_root . .host
cd /
umount -l /.host
exec env -i container=sitsense-test PATH=/usr/sbin:/usr/bin:/sbin:/bin \
  SYSTEMD_UNIT_PATH=/etc/sitsense-test/units:/etc/systemd/system SYSTEMD_GENERATOR_PATH=/etc/sitsense-test/none \
  SYSTEMD_ENVIRONMENT_GENERATOR_PATH=/etc/sitsense-test/none \
  "$2" --unit=sitsense-test.target --log-target=console --log-level=notice --show-status=no
"""


def available() -> str | None:
    """None if a box can be started here, else the reason it cannot."""
    if os.geteuid() != 0:
        return "needs root (systemd runs the unit as PID 1 of its own namespaces)"
    if SYSTEMD is None:
        return "systemd is not installed (Debian package 'systemd')"
    for tool in ("unshare", "nsenter", "pivot_root", "systemctl"):
        if shutil.which(tool) is None:
            return f"{tool} not found (util-linux / systemd)"
    if "overlay" not in Path("/proc/filesystems").read_text():
        return "the kernel has no overlayfs"
    if _cgroup2_dir() is None:
        return "no cgroup v2 hierarchy mounted"
    return None


def _cgroup2_dir() -> Path | None:
    """The test process's own cgroup v2 directory (the box's cgroup goes beneath it)."""
    mount = next((line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()
                  if line.split()[2] == "cgroup2"), None)
    own = next((line[3:] for line in Path("/proc/self/cgroup").read_text().splitlines() if line.startswith("0::")),
               None)
    if mount is None or own is None:
        return None
    return Path(mount) / own.lstrip("/")


class SystemdBox:
    """One throwaway service manager. ``add_file`` before ``start``; then ``systemctl`` and ``read``."""

    def __init__(self, workdir: Path):
        self.dir = workdir
        self.stage = workdir / "stage"
        for d in (self.stage, workdir / "layer", workdir / "root"):
            d.mkdir(parents=True, exist_ok=True)
        self.log = workdir / "systemd.log"
        self.proc: subprocess.Popen | None = None
        self.pid1: int | None = None
        self.cgroup: Path | None = None
        self.binds: list[tuple[Path, str]] = []
        for name, text in STUB_UNITS.items():
            self.add_file(f"{UNIT_DIR}/{name}", text)

    def add_file(self, path: str, text: str, mode: int = 0o644) -> None:
        """A file the box sees at ``path`` (on top of the host's)."""
        dest = self.stage / path.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(text)
        dest.chmod(mode)

    def add_bind(self, host_path: Path, path: str) -> None:
        """Show a host folder read-only at ``path`` in the box."""
        self.binds.append((Path(host_path).resolve(), path))

    def add_groups(self, *names: str) -> None:
        """Groups the box's /etc/group has besides the host's (a unit's SupplementaryGroups= must exist)."""
        lines = Path("/etc/group").read_text().splitlines()
        known = {line.split(":", 1)[0] for line in lines}
        gids = {int(line.split(":")[2]) for line in lines if line.count(":") >= 3 and line.split(":")[2].isdigit()}
        gid = 990
        for name in names:
            if name not in known:
                while gid in gids:
                    gid -= 1
                lines.append(f"{name}:x:{gid}:")
                gids.add(gid)
        self.add_file("/etc/group", "\n".join(lines) + "\n")

    def add_unit(self, name: str, text: str) -> None:
        self.add_file(f"{UNIT_DIR}/{name}", text)

    def start(self, timeout_s: float = 60.0) -> None:
        parent = _cgroup2_dir()
        assert parent is not None
        self.cgroup = parent / f"sitsense-test-{uuid.uuid4().hex[:8]}"
        self.cgroup.mkdir()
        procs = self.cgroup / "cgroup.procs"
        script = self.dir / "boot.sh"
        binds = "\n".join(f'mkdir -p "$R"{shlex.quote(box)} && mount --bind {shlex.quote(str(host))} '
                          f'"$R"{shlex.quote(box)} && mount -o remount,bind,ro "$R"{shlex.quote(box)}'
                          for host, box in self.binds)
        script.write_text(_BOOT.replace("__BINDS__", binds))
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                ["unshare", "--pid", "--mount", "--uts", "--ipc", "--net", "--cgroup", "--fork",
                 "--propagation", "private", "/bin/sh", str(script), str(self.dir), SYSTEMD],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                preexec_fn=lambda: procs.write_text(str(os.getpid())))  # joins before the namespaces exist
        deadline = time.monotonic() + timeout_s
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the box's systemd exited early:\n{self.log.read_text()[-3000:]}")
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
            pid = children.read_text().split() if children.exists() else []
            if pid and Path(f"/proc/{pid[0]}/comm").read_text().strip() == "systemd":
                self.pid1 = int(pid[0])
                ready = self.systemctl("is-system-running", check=False)
                if ready.stdout.strip() in ("running", "degraded"):
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the box's systemd did not come up in {timeout_s:g} s:\n"
                                   f"{self.log.read_text()[-3000:]}")
            time.sleep(0.05)

    def run(self, *argv: str, check: bool = True, timeout_s: float = 60.0) -> subprocess.CompletedProcess:
        """Run a command inside the box (its namespaces and root)."""
        assert self.pid1 is not None
        return subprocess.run(["nsenter", f"--target={self.pid1}", "--mount", "--pid", "--net", "--uts", "--ipc",
                               "--cgroup", *argv], capture_output=True, text=True, check=check, timeout=timeout_s)

    def systemctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.run("systemctl", "--no-pager", *args, check=check)

    def show(self, unit: str, *props: str) -> dict[str, str]:
        out = self.systemctl("show", unit, *(f"--property={p}" for p in props)).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def read(self, path: str) -> str:
        """A file as the box sees it."""
        return self.run("cat", path).stdout

    def close(self) -> None:
        """Stop everything in the box (killing its PID 1 ends the namespaces) and remove its cgroup."""
        if self.proc is not None:
            if self.pid1 is not None:
                try:
                    os.kill(self.pid1, 9)
                except ProcessLookupError:
                    pass
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
            self.proc = None
        if self.cgroup is not None and self.cgroup.exists():
            deadline = time.monotonic() + 30
            while True:
                try:
                    for d in sorted((p for p in self.cgroup.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
                        d.rmdir()
                    self.cgroup.rmdir()
                    break
                except OSError:  # processes still leaving
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            self.cgroup = None
