"""Run a sitsense command in a child process whose address space is capped (``RLIMIT_AS``).

What does not fit raises MemoryError in the child, so a test can show a job runs in bounded
memory. BLAS and OpenMP are kept to one thread: their per-thread buffers would otherwise eat
into the cap on a machine with many cores.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys

from .conftest import REPO


def run_capped(args: list[str], limit_mb: int, *, timeout_s: float = 600) -> subprocess.CompletedProcess:
    """``python -m sitsense.cli ARGS`` with at most ``limit_mb`` MiB of address space."""
    def cap() -> None:
        limit = limit_mb << 20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "sitsense.cli", *args], preexec_fn=cap, cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout_s)
