"""Power-cut test: SIGKILL ``sitsense run --state DB`` at random points, restart it, again and again.

The wearer sits all along (after ten minutes of standing to calibrate). The processes share
``--epoch`` (see bench/soak.py), so the harness knows the sensor time at every real moment.
For each kill it records the sensor time just before SIGKILL and once the process is gone, reads
the last checkpoint left in the database (its sensor time ``t``), checks the database
(``PRAGMA integrity_check``, nothing moved aside) and starts the next process, which resumes.

Counting lost by a kill = the sensor time the process had reached minus what is durable:
``gone_s - max(checkpoint t, the time the process began counting)``. ``gone_s`` is an upper
bound of what the process had read: the real loss can be smaller by the samples still waiting
in the chip's FIFO (at most one poll interval) and by the time SIGKILL took, and a process's
first step is reported one step after it began. So a kill is within the promise when
``lost <= checkpoint_s + step_s + poll_interval_s + (gone_s - before_kill_s)``.

``python -m bench.power_cut`` does 20 kills and prints the figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# The wearer stands this long first (the first process calibrates on it). Long enough that a first
# process slow to start on a loaded machine (seconds of real time, hundreds of sensor seconds at
# 100x) still finds the wearer standing, rather than a day that starts seated.
STAND_S = 600.0


def run_power_cuts(workdir: Path, *, kills: int = 20, seed: int = 1, speed: float = 100.0,
                   checkpoint_s: float = 5.0, life_s: tuple[float, float] = (2.0, 40.0),
                   down_s: tuple[float, float] = (1.0, 20.0), log=lambda msg: None) -> dict:
    from bench.soak import Child, read_checkpoint
    from sitsense.plan import parse_plan
    from sitsense.synth import synthesize
    from sitsense.traces import write_trace

    wall0 = time.monotonic()
    rng = random.Random(seed)
    workdir.mkdir(parents=True, exist_ok=True)
    plan_lives = [rng.uniform(*life_s) for _ in range(kills)]
    plan_downs = [rng.uniform(*down_s) for _ in range(kills)]
    final_s = 120.0
    # Starts are waited for (see below): each may take a few real seconds, hundreds of sensor seconds.
    need_s = STAND_S + sum(plan_lives) + sum(plan_downs) + final_s + 120.0 + 600.0 * kills
    trace = synthesize(parse_plan(f"stand {int(STAND_S)}s, sit {int(need_s)}s"), sample_rate_hz=25, seed=seed,
                       start_time="2026-03-02T09:00:00+00:00")
    trace_path = workdir / "sitting.csv.gz"
    write_trace(trace_path, trace)
    config = workdir / "cut.toml"
    config.write_text("[sensor]\nsample_rate_hz = 25\n[tracker]\ntimezone = \"UTC\"\n[buzzer]\nenabled = false\n"
                      f"[store]\ncheckpoint_s = {checkpoint_s}\n")
    state = workdir / "state"
    db = state / "sitsense.db"
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1", STATE_DIRECTORY=str(state))
    env.pop("NOTIFY_SOCKET", None)
    epoch = time.monotonic() + 1.0
    args = ["-v", "run", "--config", str(config), "--sensor", f"fake:{trace_path}", "--speed", f"{speed:g}",
            "--epoch", repr(epoch), "--json", "--state", str(db)]

    def world() -> float:
        return (time.monotonic() - epoch) * speed

    def sleep_until(w: float) -> None:
        delay = epoch + w / speed - time.monotonic()
        if delay > 0:
            time.sleep(delay)

    cuts: list[dict] = []
    children: list[Child] = []
    nxt = Child(args, workdir, "run00", env)
    children.append(nxt)
    at = 0.0
    try:
        for i in range(kills + 1):
            child = nxt
            sleep_until(at)
            started = world()
            child.go(epoch)  # the args carry --epoch already; go() hands the same value
            nxt = Child(args, workdir, f"run{i + 1:02d}", env)  # the next one imports meanwhile
            children.append(nxt)
            if i == kills:
                sleep_until(started + final_s)
                deadline = time.monotonic() + 10.0
                while not [e for e in child.events() if e["type"] == "posture"] and time.monotonic() < deadline:
                    time.sleep(0.02)  # it must be counting (its signal handlers installed) to stop cleanly
                child.proc.terminate()  # the last one stops cleanly
                status = child.wait(timeout=30)
                last_events = [e for e in child.events() if e["type"] == "posture"]
                last_span = (float(last_events[0]["since_t"]), world()) if last_events else None
                nxt.close()
                break
            # Each life is counted from the moment the process is counting, not from its start: on a
            # loaded machine a start can take longer than a whole planned life at 100x.
            counting_at = _wait_until_counting(child, world, timeout_s=60.0)
            sleep_until(max(counting_at, STAND_S if i == 0 else 0.0) + plan_lives[i])
            if child.proc.poll() is not None:
                raise RuntimeError(f"{child.name} ended by itself (status {child.proc.returncode}): "
                                   f"{child.log()[-2000:]}")
            before = world()
            child.kill()
            gone = world()
            saved = read_checkpoint(db) if db.exists() else None
            counting = [e for e in child.events() if e["type"] == "posture"]
            began = float(counting[0]["since_t"]) if counting else None
            ck = float(saved["t"]) if saved else None
            if began is None:  # killed before it counted anything
                lost = 0.0
            else:
                lost = max(0.0, gone - max(began, ck if ck is not None else began))
            integrity = _integrity(db)
            cuts.append({"kill": i + 1, "started_s": round(started, 1), "before_kill_s": round(before, 2),
                         "gone_s": round(gone, 2), "began_counting_s": began, "checkpoint_s": ck,
                         "sitting_stored_s": saved["snapshot"]["today"]["seconds"]["sitting"] if saved else 0.0,
                         "lost_s": round(lost, 2), "kill_slack_s": round(gone - before, 3),
                         "integrity": integrity})
            log(f"kill {i + 1}: at {gone:.1f} s, checkpoint {ck}, lost {lost:.1f} s, {integrity}")
            at = gone + plan_downs[i]
        end_s = world()
        from sitsense.store import Store

        store = Store(db).open()
        moved_aside = list(store.warnings)
        snap = store.get("tracker")
        store.close()
        logs = [c.log() for c in children if c.err_path.exists()]
    finally:
        for c in children:
            c.close()
    final_sitting = snap["snapshot"]["today"]["seconds"]["sitting"] if snap else 0.0
    # Sitting the processes were up for (the wearer sits from the middle of the 2.5 s transition
    # after the standing), minus what the kills lost: what the database should hold, give or
    # take up to MAX_STEP_GAP_S per restart (the last seconds of a gap go to the posture after it).
    sit_from = STAND_S + 1.25
    spans = [(c["began_counting_s"], c["gone_s"]) for c in cuts if c["began_counting_s"] is not None]
    spans += [last_span] if last_span else []
    up_sitting = sum(max(0.0, b - max(a, sit_from)) for a, b in spans)
    expected = up_sitting - sum(c["lost_s"] for c in cuts)
    poll_s = 1.0
    over = [c for c in cuts if c["lost_s"] > checkpoint_s + 1.0 + poll_s + c["kill_slack_s"]]
    return {
        "kills": len(cuts),
        "seed": seed,
        "speed": speed,
        "checkpoint_s": checkpoint_s,
        "max_lost_s": max((c["lost_s"] for c in cuts), default=0.0),
        "mean_lost_s": round(sum(c["lost_s"] for c in cuts) / max(len(cuts), 1), 2),
        "kills_over_bound": len(over),
        "integrity": sorted({c["integrity"] for c in cuts}),
        "moved_aside": moved_aside + [str(p) for p in state.glob("*.corrupt-*")],
        "resumed": sum("resumed from a checkpoint" in text for text in logs),
        "tracebacks": sum(text.count("Traceback") for text in logs),
        "final_exit_status": status,
        "sensor_end_s": round(end_s, 1),
        "final_sitting_stored_s": round(final_sitting, 1),
        "sitting_while_up_s": round(up_sitting, 1),
        "sitting_expected_s": round(expected, 1),
        "sitting_stored_minus_expected_s": round(final_sitting - expected, 1),
        "cuts": cuts,
        "wall_s": round(time.monotonic() - wall0, 1),
    }


def _wait_until_counting(child, world, *, timeout_s: float) -> float:
    """Sensor time at which ``child`` reported its first posture (or ``timeout_s`` real seconds passed)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and child.proc.poll() is None:
        if any(e["type"] == "posture" for e in child.events()):
            break
        time.sleep(0.01)
    return world()


def _integrity(db: Path) -> str:
    import sqlite3

    if not db.exists():
        return "no database yet"
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> int:
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--speed", type=float, default=100.0)
    parser.add_argument("--keep", help="work in this folder and keep it")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    workdir = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="sitsense-cut-"))
    fig = run_power_cuts(workdir, kills=args.kills, seed=args.seed, speed=args.speed,
                         log=lambda m: print(m, file=sys.stderr, flush=True))
    fig["workdir"] = str(workdir)
    print(json.dumps(fig, indent=2))
    return 0 if fig["kills_over_bound"] == 0 and fig["integrity"] == ["ok"] and not fig["moved_aside"] else 1


if __name__ == "__main__":
    sys.exit(main())
