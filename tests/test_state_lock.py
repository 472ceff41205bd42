"""Only one service writes a state database: a second one exits at once with one clear line."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sitsense.cli import main
from sitsense.errors import StoreError
from sitsense.persistence import StateInUse, StateLock
from sitsense.store import Store

REPO = Path(__file__).resolve().parent.parent


def test_a_second_lock_on_the_same_database_is_refused_and_names_the_holder(tmp_path):
    db = tmp_path / "s.db"
    first = StateLock(db).acquire()
    with pytest.raises(StateInUse) as err:
        StateLock(db).acquire()
    assert str(err.value) == f"another sitsense is already using {db} (pid {os.getpid()})"
    assert err.value.exit_code not in (0, 78)
    assert isinstance(err.value, StoreError)
    StateLock(tmp_path / "other.db").acquire().release()  # another database is free
    first.release()
    with StateLock(db):  # free again once released
        pass


def _checkpointed(db: Path) -> bool:
    if not db.exists():
        return False
    try:
        store = Store(db).open(read_only=True)
    except StoreError:
        return False  # not created yet
    try:
        return store.get("tracker") is not None
    finally:
        store.close()


def test_a_second_sitsense_run_exits_at_once_and_queries_still_work(tmp_path, capsys):
    db = tmp_path / "s.db"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("NOTIFY_SOCKET", None)
    proc = subprocess.Popen([sys.executable, "-m", "sitsense.cli", "run", "--sensor", "fake:plan:sit 60m",
                             "--speed", "5", "--state", str(db)], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not _checkpointed(db):  # it runs: past its resume, its first checkpoint written
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline
            time.sleep(0.1)
        started = time.monotonic()
        code = main(["run", "--sensor", "fake:plan:sit 60m", "--speed", "0", "--seconds", "120", "--state", str(db)])
        assert time.monotonic() - started < 5
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 75  # systemd restarts it later (78 would stop it for good)
        assert err == [f"sitsense: another sitsense is already using {db} (pid {proc.pid})"]
        # the read-only commands take no lock
        assert main(["history", "--state", str(db)]) == 0
        assert main(["report", "--state", str(db), "--json"]) == 0
        # the first one is untouched: still running, its state not replaced
        assert proc.poll() is None
        store = Store(db).open(read_only=True)
        assert store.get("tracker") is not None and store.days() == []
        store.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0
    assert main(["run", "--sensor", "fake:plan:sit 1m", "--speed", "0", "--state", str(db)]) == 0  # free again
