"""A memory cgroup for a child process, like the unit's ``MemoryMax=`` (tests and bench/soak.py).

Needs root and a writable cgroup file system: cgroup v2 (``memory.max``) or v1's memory
controller (``memory.limit_in_bytes``). ``MemoryCgroup.create`` raises ``CgroupUnavailable`` with
the reason otherwise, for the caller to skip with. The child joins through ``preexec_fn``, so
nothing but that process (and its own children) is limited.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")


class CgroupUnavailable(RuntimeError):
    """No memory cgroup can be made here (not root, no controller, read-only cgroup fs)."""


class MemoryCgroup:
    """One fresh memory cgroup with a limit; ``remove()`` when its processes are gone."""

    def __init__(self, path: Path, v2: bool):
        self.path = path
        self.v2 = v2

    @classmethod
    def create(cls, limit_bytes: int, name: str = "sitsense-test") -> "MemoryCgroup":
        if os.geteuid() != 0:
            raise CgroupUnavailable("a memory cgroup needs root (CI runs as root)")
        leaf = f"{name}-{uuid.uuid4().hex[:8]}"
        errors = []
        if (ROOT / "cgroup.controllers").exists() and "memory" in (ROOT / "cgroup.controllers").read_text().split():
            try:  # cgroup v2: the parent must hand the memory controller to its children
                subtree = ROOT / "cgroup.subtree_control"
                if "memory" not in subtree.read_text().split():
                    subtree.write_text("+memory")
                path = ROOT / leaf
                path.mkdir()
                (path / "memory.max").write_text(str(limit_bytes))
                if (path / "memory.swap.max").exists():
                    (path / "memory.swap.max").write_text("0")
                return cls(path, True)
            except OSError as exc:
                errors.append(f"cgroup v2: {exc.strerror or exc}")
        v1 = ROOT / "memory"
        if (v1 / "memory.limit_in_bytes").exists():
            try:
                path = v1 / leaf
                path.mkdir()
                (path / "memory.limit_in_bytes").write_text(str(limit_bytes))
                return cls(path, False)
            except OSError as exc:
                errors.append(f"cgroup v1: {exc.strerror or exc}")
        raise CgroupUnavailable("no writable memory cgroup: " + ("; ".join(errors) or f"nothing under {ROOT}"))

    def join(self) -> None:
        """Move the calling process in (use as ``preexec_fn``: it runs in the child before exec)."""
        (self.path / "cgroup.procs").write_text(str(os.getpid()))

    def peak_bytes(self) -> int:
        """The most memory the cgroup used (v2 without memory.peak: the current use)."""
        for name in ("memory.peak", "memory.max_usage_in_bytes", "memory.current", "memory.usage_in_bytes"):
            f = self.path / name
            if f.exists():
                return int(f.read_text().split()[0])
        return 0

    def current_bytes(self) -> int:
        for name in ("memory.current", "memory.usage_in_bytes"):
            f = self.path / name
            if f.exists():
                return int(f.read_text().split()[0])
        return 0

    def oom_kills(self) -> int:
        """Processes the kernel killed for going over the limit."""
        for name in ("memory.events", "memory.oom_control"):
            f = self.path / name
            if f.exists():
                for line in f.read_text().splitlines():
                    key, _, value = line.partition(" ")
                    if key == "oom_kill":
                        return int(value)
        return 0

    def remove(self) -> None:
        try:
            self.path.rmdir()
        except OSError:
            pass
