"""A small tmpfs to play a full or read-only disk (tests/test_state_storage.py and bench/soak.py).

Mounting needs root (CI runs as root); ``Tmpfs`` raises ``TmpfsUnavailable`` with the reason
otherwise, for the caller to skip with.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


class TmpfsUnavailable(RuntimeError):
    """No tmpfs can be mounted here (not root, or no mount permission)."""


class Tmpfs:
    """A tmpfs of ``size_kib`` mounted at ``path``: fill it, free it, make it read-only, unmount it."""

    def __init__(self, path: Path, size_kib: int):
        if os.geteuid() != 0:
            raise TmpfsUnavailable("mounting a small tmpfs needs root (CI runs as root)")
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kib}k,mode=0755", "tmpfs", str(path)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise TmpfsUnavailable(f"cannot mount a tmpfs: {done.stderr.strip() or done.returncode}")

    def fill(self) -> None:
        """Write until the file system is full, down to its last block."""
        for name, size in (("filler", 65536), ("filler2", 512)):
            try:
                with open(self.path / name, "ab") as f:
                    while True:
                        f.write(b"\0" * size)
                        f.flush()
            except OSError:
                pass

    def free(self) -> None:
        for name in ("filler", "filler2"):
            (self.path / name).unlink(missing_ok=True)

    def read_only(self, on: bool = True) -> None:
        subprocess.run(["mount", "-o", f"remount,{'ro' if on else 'rw'}", str(self.path)], check=True)

    def unmount(self) -> None:
        subprocess.run(["umount", "-l", str(self.path)], capture_output=True)
