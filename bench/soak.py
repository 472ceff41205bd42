"""Fault soak: a simulated day through the emulator, the driver and ``sitsense run``, with faults.

One day (a posture plan played by the synthetic wearer) is run twice:

* **clean**, in-process, as fast as possible, no faults: the reference;
* **faulty**, as real ``sitsense run --sensor fake:DAY --state DB`` processes on a scaled clock
  (``--speed``), publishing to a real Mosquitto, with I2C NACKs on a share of all transactions,
  sensor disconnects, a spontaneous chip reset, a host stall longer than the FIFO holds (one FIFO
  overflow), a broker outage (Mosquitto stopped and started again) and one SIGKILL of the service
  in the middle of a sitting bout, followed by a restart on the same state database.

The processes share ``--epoch`` (the real monotonic time of the day's start), so the harness
knows the sensor time at every real moment, stages the broker outage and the kill in sensor time,
and the restarted service joins the day where the wearer is by then. Both processes are started
ahead and wait on stdin (imports done), so the restart costs only the chosen ``down_s``.

Figures: lost sensor time (seconds the faulty run could not classify beyond the clean run's own,
with each fault episode), sitting time of the faulty run against the clean run's sitting over the
seconds the faulty run could read the sensor, alerts produced against alerts a subscriber got,
exit statuses and wall time.

**Hostile** (``--hostile``, issue 18): the same 24 h day, without the kill but with what a
service meets besides sensor faults: a damaged checkpoint at start (yesterday's, keys missing and
a count null), the state folder (a tmpfs) filling up at hour 6 and staying full, a 30 MB payload
and 20 000 distinct command names at hour 12, and all of it inside a 128 MiB memory cgroup (the
unit's ``MemoryMax=``). The harness restarts the service as systemd would (``Restart=on-failure``,
not after 78) and counts the restarts. The sitting time then comes from the run's own summary
(the database stopped taking writes at hour 6). Needs root (tmpfs, cgroup).

``python -m bench.soak`` runs the full 24 h day and prints the figures as JSON
(``--reduced`` for the test suite's two hours; ``--speed`` to trade wall time against scheduling
slack; ``--hostile`` for the day above).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DEVICE = "soak"
START_LEAD_S = 3.0  # real seconds from 'go' to the day's first sample (a child's start after its imports)

# The child: imports done before the harness says go, then exactly what the 'sitsense' script does.
# The day's file is read ahead too (SOAK_TRACE): a real sensor needs no file, and a restarted fake
# sensor reads its trace up to where the day is, which at 200x would add sensor minutes to a restart.
PRELOAD = ("import os, sys, numpy, paho.mqtt.client, sitsense.cli, sitsense.commands.run, sitsense.wiring, "
           "sitsense.sensor.live as L, sitsense.sensor.playback as P, sitsense.mqtt.client, sitsense.coach, "
           "sitsense.persistence, sitsense.traces as T\n"
           "path = os.environ.get('SOAK_TRACE')\n"
           "if path:\n"  # the fake sensor plays the day from memory instead of streaming it from the file
           "    day, fake = T.read_trace(path), L._fake_trace\n"
           "    L._fake_trace = lambda p, cfg, seed=0: ((P.TracePlayer.of(day), day.sample_rate_hz, day.start_time)\n"
           "                                            if str(p) == path else fake(p, cfg, seed=seed))\n"
           "open(os.environ['SOAK_READY'], 'w').close()\n"
           "epoch = sys.stdin.readline().strip()\n"
           "sys.exit(sitsense.cli.main([epoch if a == '@EPOCH' else a for a in sys.argv[1:]]))")


@dataclass
class SoakSpec:
    """The day and its faults; every time is sensor seconds from the start of the day."""

    plan: str
    start_time: str = "2026-03-02T00:00:00+00:00"
    rate_hz: float = 25.0
    seed: int = 7
    speed: float = 300.0
    checkpoint_s: float = 30.0
    nack: float = 0.01
    disconnects: list[tuple[float, float]] = field(default_factory=list)  # (start, length)
    reset_at: float | None = None
    stall: tuple[float, float] | None = None  # (start, length): must exceed the FIFO's capacity
    broker_outage: tuple[float, float] | None = None
    kill_at: float | None = None
    down_s: float = 60.0  # the service is down this long after the kill
    # issue 18: what else a long-running service meets
    damaged_snapshot: bool = False  # a damaged checkpoint (yesterday's) in the database at start
    disk_full_at: float | None = None  # the state folder (a tmpfs of state_fs_kib) fills up then, for good
    state_fs_kib: int = 16384
    flood_at: float | None = None  # a 30 MB payload and 20 000 distinct command names then
    memory_max_mib: int | None = None  # every service process inside a memory cgroup of this size
    supervise: bool = False  # restart a service that fails, as systemd does, and count the restarts

    def faults(self) -> str:
        items = [f"nack={self.nack:g}"] if self.nack else []
        items += [f"disconnect={a:g}+{d:g}" for a, d in self.disconnects]
        if self.reset_at is not None:
            items.append(f"reset={self.reset_at:g}")
        if self.stall is not None:
            items.append(f"stall={self.stall[0]:g}+{self.stall[1]:g}")
        return ", ".join(items)


def day_24h() -> SoakSpec:
    """The full day for the bench: sleep, a working day with long sits, an evening."""
    plan = ("stand 2m, lie 6h58m, stand 10m, walk 20m, sit 50m, stand 5m, walk 5m, sit 1h40m, walk 30m, "
            "sit 45m, stand 15m, sit 2h, walk 10m, stand 5m, sit 35m, walk 40m, sit 1h30m, stand 10m, sit 55m, "
            "walk 30m, stand 20m, sit 2h, stand 10m, lie 3h10m")
    return SoakSpec(plan=plan, speed=200.0,
                    disconnects=[(10 * 3600 + 600, 300), (15 * 3600, 300)], reset_at=12 * 3600 + 1234,
                    stall=(13 * 3600 + 300, 20), broker_outage=(9 * 3600 + 1000, 600), kill_at=11 * 3600 + 300)


def day_24h_hostile() -> SoakSpec:
    """The full day with issue 18's faults on top of the sensor's and the broker's (no kill: the
    state cannot be saved after hour 6, which is the point)."""
    day = day_24h()
    day.kill_at = None
    day.damaged_snapshot, day.disk_full_at, day.flood_at = True, 6 * 3600.0, 12 * 3600.0
    day.memory_max_mib, day.supervise = 128, True
    return day


def day_2h_hostile() -> SoakSpec:
    """The reduced hostile day for the test suite: full at 30 min, floods at 1 h."""
    day = day_2h()
    day.kill_at = None
    day.damaged_snapshot, day.disk_full_at, day.flood_at = True, 1800.0, 3600.0
    day.memory_max_mib, day.supervise = 128, True
    return day


def day_2h() -> SoakSpec:
    """The reduced day for the test suite: the same kinds of faults in two hours (from 09:00)."""
    # sit 41m, not 40: the second reminder of that bout is due 40 min in, and a stand-up at that very
    # minute makes the reminder a matter of a second or two (the faulty and the clean run may differ)
    plan = "stand 2m, sit 41m, walk 5m, sit 45m, stand 3m, sit 25m"
    return SoakSpec(plan=plan, start_time="2026-03-02T09:00:00+00:00", speed=300.0,
                    disconnects=[(900, 300), (5000, 300)], reset_at=6300, stall=(1500, 20),
                    broker_outage=(1700, 600), kill_at=3600)


# ---------------------------------------------------------------------------------------------- runs

def write_config(path: Path, spec: SoakSpec, broker=None) -> Path:
    from sitsense.config import SECTIONS

    lines = ["[sensor]", f"sample_rate_hz = {int(spec.rate_hz)}", "[tracker]", 'timezone = "UTC"',
             "[buzzer]", "enabled = false", "[store]", f"checkpoint_s = {spec.checkpoint_s}"]
    if "web" in SECTIONS:  # the phone page is not part of the soak (its start would compete with the day's)
        lines += ["[web]", "enabled = false"]
    if broker is not None:
        lines += ["[mqtt]", "enabled = true", f'host = "{broker.host}"', f"port = {broker.port}",
                  f'device_id = "{DEVICE}"', "discovery = false", "reconnect_max_s = 2"]
    path.write_text("\n".join(lines) + "\n")
    return path


def clean_run(trace_path: Path, config_path: Path, upright_g=None) -> list[dict]:
    """The reference: the same day through the same objects, no faults, no broker, no store.

    ``upright_g``: the upright reference the faulty run calibrated (it joins the day a few
    seconds late, so its still-start calibration differs slightly; the provisional classifier is
    sensitive to that, and it is no fault)."""
    from sitsense.config import load_config
    from sitsense.sensor.live import open_source
    from sitsense.wiring import build_service

    cfg = load_config(str(config_path))
    source = open_source(f"fake:{trace_path}", cfg.sensor, speed=0)
    out = io.StringIO()
    service = build_service(cfg, source=source, clock=source.clock, stream=out, json_lines=True)
    if upright_g is not None:
        service.classifier.set_reference(np.asarray(upright_g, dtype=float))
    service.run()
    return [json.loads(line) for line in out.getvalue().splitlines()]


class Child:
    """One ``sitsense run`` process, started ahead (imports and the trace check done: ``wait_ready``)
    and waiting for ``go(epoch)``, which replaces ``@EPOCH`` in its arguments."""

    def __init__(self, args: list[str], workdir: Path, name: str, env: dict[str, str], preexec_fn=None):
        self.name = name
        self.out_path = workdir / f"{name}.jsonl"
        self.err_path = workdir / f"{name}.log"
        self.ready_path = workdir / f"{name}.ready"
        self.ready_path.unlink(missing_ok=True)
        self._out = open(self.out_path, "wb")
        self._err = open(self.err_path, "wb")
        self.proc = subprocess.Popen([sys.executable, "-c", PRELOAD, *args], stdin=subprocess.PIPE,
                                     stdout=self._out, stderr=self._err, env=dict(env, SOAK_READY=str(self.ready_path)),
                                     cwd=REPO, preexec_fn=preexec_fn)

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready_path.exists():
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} ended (status {self.proc.returncode}) before it was ready: "
                                   f"{self.err_path.read_text(errors='replace')[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} not ready within {timeout:g} s")
            time.sleep(0.02)

    def go(self, epoch: float | None = None) -> None:
        """Start; ``epoch`` replaces an ``@EPOCH`` argument (a child given its epoch up front needs none)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{epoch!r}\n".encode() if epoch is not None else b"go\n")
        self.proc.stdin.close()

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._out.close()
        self._err.close()

    def events(self) -> list[dict]:
        out = []
        for line in self.out_path.read_bytes().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:  # the line being written when the process was killed
                pass
        return out

    def log(self) -> str:
        return self.err_path.read_text(errors="replace")


def read_checkpoint(db: Path) -> dict | None:
    """The tracker checkpoint in the state database (read-only, as another process may write)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        row = conn.execute("SELECT value FROM kv WHERE key='tracker'").fetchone()
        return json.loads(row[0]) if row else None
    finally:
        conn.close()


def stored_totals(db: Path) -> dict:
    """Seconds per posture over every day in the database (finished days and today), and alerts."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        totals: dict[str, float] = {}
        for (summary,) in conn.execute("SELECT summary FROM days"):
            d = json.loads(summary)
            for p in ("sitting", "standing", "walking", "lying", "not_worn", "unknown"):
                totals[p] = totals.get(p, 0.0) + d[f"{p}_s"]
        row = conn.execute("SELECT value FROM kv WHERE key='tracker'").fetchone()
        if row:
            today = json.loads(row[0])["snapshot"]["today"]
            days = {json.loads(s)["date"] for (s,) in conn.execute("SELECT summary FROM days")}
            if today["day"] not in days:
                for p, v in today["seconds"].items():
                    totals[p] = totals.get(p, 0.0) + v
        alerts = [json.loads(p)["id"] for (p,) in conn.execute("SELECT payload FROM events WHERE type='alert'")]
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        return {"seconds": totals, "alert_ids": alerts, "integrity": integrity}
    finally:
        conn.close()


def timeline(events: list[dict], n_s: int, *, cuts: list[float] = ()) -> np.ndarray:
    """Per-second posture (index i: the second ending at i + 1) from posture events; ``cuts`` are
    times from which the posture is unknown (a process died) until the next event."""
    marks = [(float(e["since_t"]), e["posture"]) for e in events if e["type"] == "posture"]
    marks += [(c, "unknown") for c in cuts]
    marks.sort(key=lambda m: m[0])
    out = np.full(n_s, "unknown", dtype=object)
    for k, (t0, posture) in enumerate(marks):
        t1 = marks[k + 1][0] if k + 1 < len(marks) else n_s
        a, b = max(0, int(round(t0))), min(n_s, int(round(t1)))
        if b > a:
            out[a:b] = posture
    return out


def sensor_episodes(events: list[dict]) -> list[dict]:
    """Sensor faults from start to recovery, with the samples the driver says they cost."""
    episodes, open_ = [], None
    for e in events:
        if e["type"] != "sensor":
            continue
        if e["status"] != "ok":
            if open_ is None:
                open_ = {"kind": e["status"], "start_s": round(e["t"], 1)}
        elif open_ is not None:
            open_.update(end_s=round(e["t"], 1), lasted_s=round(e["t"] - open_["start_s"], 1),
                         lost_samples=e.get("lost_samples", 0))
            episodes.append(open_)
            open_ = None
    if open_ is not None:
        episodes.append(open_)
    return episodes


# ---------------------------------------------------------------------------------------------- soak

def run_soak(spec: SoakSpec, workdir: Path, *, broker=None, log=lambda msg: None) -> dict:
    """Run the clean and the faulty day; return the figures (see the module docstring).

    ``broker`` is a ``tests.mosquitto.Mosquitto`` with persistence (started here if not running).
    """
    from sitsense.plan import parse_plan
    from sitsense.synth import synthesize
    from sitsense.traces import write_trace
    from tests.memcg import MemoryCgroup
    from tests.mosquitto import Collector, Mosquitto
    from tests.tmpfs import Tmpfs

    wall0 = time.monotonic()
    workdir.mkdir(parents=True, exist_ok=True)
    trace = synthesize(parse_plan(spec.plan), sample_rate_hz=spec.rate_hz, seed=spec.seed,
                       start_time=spec.start_time)
    duration_s = int(round(trace.duration_s))
    trace_path = workdir / "day.csv.gz"
    write_trace(trace_path, trace)
    log(f"day of {duration_s / 3600:.1f} h written in {time.monotonic() - wall0:.1f} s")

    # issue 18's faults that need the machine: a small file system for the state, a memory cgroup
    fs = Tmpfs(workdir / "state", spec.state_fs_kib) if spec.disk_full_at is not None else None
    cgroup = MemoryCgroup.create(spec.memory_max_mib * 2**20, name="sitsense-soak") if spec.memory_max_mib else None
    own_broker = broker is None
    if broker is None:
        broker = Mosquitto(workdir / "mosquitto", persist=True)
    if broker.proc is None:
        broker.start()
    collector = Collector(broker, [f"sitsense/{DEVICE}/alert", f"sitsense/{DEVICE}/storage"], session=True)
    config = write_config(workdir / "soak.toml", spec, broker)
    db = workdir / "state" / "sitsense.db"
    damaged = plant_damaged_checkpoint(db, spec) if spec.damaged_snapshot else None
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1", STATE_DIRECTORY=str(workdir / "state"),
               SOAK_TRACE=str(trace_path))
    env.pop("NOTIFY_SOCKET", None)

    faulty_wall0 = time.monotonic()
    args = ["-v", "run", "--config", str(config), "--sensor", f"fake:{trace_path}", "--speed", f"{spec.speed:g}",
            "--epoch", "@EPOCH", "--json", "--state", str(db), "--faults", spec.faults()]
    join = cgroup.join if cgroup is not None else None
    first = Child(args, workdir, "run1", env, preexec_fn=join)
    second = Child(args, workdir, "run2", env, preexec_fn=join) if spec.kill_at is not None else None
    children = [c for c in (first, second) if c is not None]
    for c in children:
        c.wait_ready()
    # what is left of a start once the imports and the trace check are done (config, model, broker,
    # state): the day begins after it, so the wearer's still start is seen at 1x as at 300x
    epoch = time.monotonic() + START_LEAD_S

    def world() -> float:
        return (time.monotonic() - epoch) * spec.speed

    def sleep_until(w: float) -> None:
        delay = epoch + w / spec.speed - time.monotonic()
        if delay > 0:
            time.sleep(delay)

    schedule: list[tuple[float, str]] = []
    if spec.broker_outage:
        a, d = spec.broker_outage
        schedule += [(a, "broker_stop"), (a + d, "broker_start")]
    if spec.kill_at is not None:
        schedule += [(spec.kill_at, "kill"), (spec.kill_at + spec.down_s, "restart")]
    if spec.disk_full_at is not None:
        schedule.append((spec.disk_full_at, "disk_full"))
    if spec.flood_at is not None:
        schedule.append((spec.flood_at, "flood"))
    schedule.sort()
    staged: dict[str, float] = {}
    kill_info: dict = {}
    restarts = 0
    try:
        first.go(epoch)
        for at, action in schedule:
            sleep_until(at)
            if first.proc.poll() is not None and action in ("kill",):
                raise RuntimeError(f"run1 ended (status {first.proc.returncode}) before the kill: {first.log()[-2000:]}")
            if action == "broker_stop":
                broker.stop()
            elif action == "broker_start":
                broker.start()
            elif action == "kill":
                first.kill()
                kill_info["kill_s"] = world()  # nothing after this was read by run1
                saved = read_checkpoint(db)
                kill_info["checkpoint_s"] = float(saved["t"]) if saved else None
            elif action == "restart":
                assert second is not None
                second.go(epoch)
            elif action == "disk_full":
                assert fs is not None
                fs.fill()
            elif action == "flood":
                flood(broker)
            staged[action] = round(world(), 1)
            log(f"{action} at sensor time {staged[action]:.0f} s (planned {at:.0f} s)")
        while True:
            last = children[-1]
            remaining_s = max(0.0, duration_s - world()) / spec.speed
            status_last = last.wait(timeout=remaining_s + 120)
            # systemd: Restart=on-failure, RestartPreventExitStatus=78; a day that ended is no failure
            if not spec.supervise or status_last in (0, 78) or world() >= duration_s or restarts >= 5:
                break
            restarts += 1
            log(f"{last.name} failed (status {status_last}) at sensor time {world():.0f} s: restarting it")
            again = Child(args, workdir, f"run{len(children) + 1}", env, preexec_fn=join)
            children.append(again)
            again.wait_ready()
            again.go(epoch)
        status_first = first.proc.returncode
        faulty_wall_s = time.monotonic() - faulty_wall0
        log(f"faulty run done in {faulty_wall_s:.1f} s (status {status_last})")

        run_events = [c.events() for c in children]
        produced = [e["id"] for evs in run_events for e in evs if e["type"] == "alert"]
        stored = stored_totals(db)
        produced_ids = set(produced) | set(stored["alert_ids"])
        topic = f"sitsense/{DEVICE}/alert"

        def got() -> set[str]:
            return {json.loads(m.payload)["id"] for m in collector.on(topic)}

        deadline = time.monotonic() + 20.0
        while not produced_ids <= got() and time.monotonic() < deadline:
            time.sleep(0.05)
        received = [json.loads(m.payload)["id"] for m in collector.on(topic)]
        storage_tiles = sorted({m.text for m in collector.on(f"sitsense/{DEVICE}/storage")})
        logs = [c.log() for c in children]
        memory = {"limit_mib": spec.memory_max_mib, "peak_mib": round(cgroup.peak_bytes() / 2**20, 1),
                  "oom_kills": cgroup.oom_kills()} if cgroup is not None else None
    finally:
        collector.close()
        for c in children:
            c.close()
        if own_broker:
            broker.stop()
        if fs is not None:
            fs.unmount()
        if cgroup is not None:
            cgroup.remove()

    # The clean run calibrates itself, as the faulty one did: a still start counts once the wearer sits
    # down from it, so both report nothing before that sit-down (not a sensor fault's cost).
    calibrations = [e for e in run_events[0] if e["type"] == "calibration"]
    t = time.monotonic()
    clean_events = clean_run(trace_path, write_config(workdir / "clean.toml", spec))
    clean_wall_s = time.monotonic() - t
    log(f"clean run in {clean_wall_s:.1f} s")

    # ---- figures
    n_s = duration_s
    clean = timeline(clean_events, n_s)
    cuts = [kill_info["kill_s"]] if kill_info else []
    faulty_events = [e for evs in run_events for e in evs]
    faulty = timeline(faulty_events, n_s, cuts=cuts)
    readable = faulty != "unknown"
    ref_sitting_s = float(np.sum((clean == "sitting") & readable))
    if spec.disk_full_at is not None:  # the database stopped taking writes: the run's own count
        faulty_sitting_s = sum(float(next((e["sitting_s"] for e in reversed(evs) if e["type"] == "summary"), 0.0))
                               for evs in run_events)
    else:
        faulty_sitting_s = float(stored["seconds"].get("sitting", 0.0))
    clean_unknown_s = float(np.sum(clean == "unknown"))
    lost_s = float(np.sum(~readable)) - clean_unknown_s
    resumed = [line for line in logs[-1].splitlines() if "resumed from a checkpoint" in line]
    after_restart = [e for e in run_events[-1] if e["type"] == "alert"] if second else []
    figures = {
        "sensor_hours": round(duration_s / 3600, 2),
        "speed": spec.speed,
        "faults": spec.faults(),
        "broker_outage_s": list(spec.broker_outage) if spec.broker_outage else None,
        "staged_at_s": staged,
        "exit_status": ({"run1": status_first, "run2": status_last} if second else
                        {c.name: c.proc.returncode for c in children}),
        "tracebacks": sum(log_text.count("Traceback") for log_text in logs),
        "error_lines": sum(" ERROR " in line for log_text in logs for line in log_text.splitlines()),
        "alerts_produced": len(produced_ids),
        "alerts_delivered": len(produced_ids & set(received)),
        "alerts_missing": sorted(produced_ids - set(received)),
        "alert_duplicates_received": len(received) - len(set(received)),
        "clean_alerts": sum(e["type"] == "alert" for e in clean_events),
        "alerts_during_broker_outage": sum(
            1 for evs in run_events for e in evs if e["type"] == "alert" and spec.broker_outage
            and spec.broker_outage[0] <= e["t"] < spec.broker_outage[0] + spec.broker_outage[1]),
        "sensor_episodes": [ep for evs in run_events for ep in sensor_episodes(evs)],
        "power_cut": {
            "killed_at_s": round(kill_info.get("kill_s", 0.0), 1),
            "last_checkpoint_s": round(kill_info.get("checkpoint_s") or 0.0, 1),
            "counting_lost_s": round(kill_info.get("kill_s", 0.0) - (kill_info.get("checkpoint_s") or 0.0), 1),
            "resumed": resumed[0].split(": ", 1)[-1] if resumed else None,
            "alerts_after_restart": [{"id": e["id"], "bout_min": round(e["bout_s"] / 60, 1)} for e in after_restart],
        } if kill_info else None,
        "lost_sensor_s": round(lost_s, 1),
        "unreadable_s": int(np.sum(~readable)),
        "sitting_clean_total_s": float(np.sum(clean == "sitting")),
        "sitting_reference_readable_s": ref_sitting_s,
        "sitting_faulty_stored_s": round(faulty_sitting_s, 1),
        "sitting_diff_pct": round(100.0 * (faulty_sitting_s - ref_sitting_s) / max(ref_sitting_s, 1.0), 3),
        "db_integrity": stored["integrity"],
        "calibration": {"faulty_at_s": calibrations[0]["t"] if calibrations else None,
                        "upright_g": calibrations[0]["upright_g"] if calibrations else None},
        "wall_s": {"clean": round(clean_wall_s, 1), "faulty": round(faulty_wall_s, 1),
                   "total": round(time.monotonic() - wall0, 1)},
    }
    if spec.damaged_snapshot or spec.disk_full_at is not None or spec.flood_at is not None or spec.supervise:
        figures["hostile"] = hostile_figures(logs, restarts=restarts, damaged=damaged, storage_tiles=storage_tiles,
                                             memory=memory)
    return figures


def hostile_figures(logs: list[str], *, restarts: int, damaged: dict | None, storage_tiles: list[str],
                    memory: dict | None) -> dict:
    """What issue 18's faults did, from the services' logs and the broker."""
    lines = [line for text in logs for line in text.splitlines()]
    warnings = [line for line in lines if " WARNING " in line]
    return {
        "restarts": restarts,
        "damaged_snapshot": damaged,
        "damaged_snapshot_warnings": [line.split(": ", 1)[-1][:300] for line in warnings
                                      if "sitsense.persistence" in line and "damaged" in line],
        "storage_warnings": len([line for line in warnings if "sitsense.storage" in line]),
        "storage_first_warning": next((line.split(": ", 1)[-1][:300] for line in warnings
                                       if "sitsense.storage" in line), None),
        "storage_tile_values": storage_tiles,
        "oversized_refused_lines": sum("refused a message of" in line for line in lines),
        "command_warnings": sum("MQTT: ignored" in line or "too many" in line for line in warnings),
        "log_bytes": sum(len(text) for text in logs),
        "memory": memory,
    }


def plant_damaged_checkpoint(db: Path, spec: SoakSpec) -> dict:
    """Yesterday's checkpoint as a flipped bit or an older sitsense might leave it: ``snoozed_until_t``
    missing, ``reminders`` and ``today.alerts`` null (each crashed 'run' on every start before)."""
    from datetime import datetime, timedelta

    from sitsense.store import Store

    start = datetime.fromisoformat(spec.start_time)
    end = start.replace(hour=0, minute=0, second=0) - timedelta(minutes=5)  # 23:55 the day before
    snapshot = {"posture": "lying", "last_t": 86000.0, "bout_start_t": 80000.0, "reminders": None,
                "next_alert_t": None, "active_since_t": None, "break_start_t": None, "paused_until_t": None,
                "pending": [], "bout_alerts": [],
                "today": {"day": end.date().isoformat(), "bouts": [3000.0, 2400.0], "breaks": 5, "alerts": None,
                          "heeded": 2, "release_s": 240.0,
                          "seconds": {"sitting": 25000.0, "standing": 9000.0, "walking": 6000.0, "lying": 40000.0,
                                      "not_worn": 4000.0, "unknown": 2000.0}}}
    store = Store(db).open()
    store.put("tracker", {"version": 2, "snapshot": snapshot, "wall": end.isoformat(), "t": 86000.0})
    store.close()
    return {"day": end.date().isoformat(), "damage": ["snapshot.snoozed_until_t missing", "snapshot.reminders null",
                                                       "snapshot.today.alerts null"]}


def flood(broker, device: str = DEVICE) -> dict:
    """What anyone who may publish to ``cmd/+`` could send: one 30 MB payload, 20 000 distinct names."""
    from tests.mosquitto import Collector

    status = f"sitsense/{device}/status"
    sender = Collector(broker, [status])
    try:
        sender.publish(f"sitsense/{device}/cmd/snooze", b"x" * (30 * 1024 * 1024))
        # sitsense drops a connection that brings a packet over its limit: wait until it is back (its
        # Last Will said offline, then it says online), or the names would go to nobody
        deadline = time.monotonic() + 15.0
        while time.monotonic() < deadline:
            said = [m.text for m in sender.on(status)]
            if "offline" in said and said[-1] == "online":
                break
            time.sleep(0.05)
        for k in range(20_000):
            sender.client.publish(f"sitsense/{device}/cmd/n{k:05d}-" + "y" * 200, b"", qos=0)
        sender.publish(f"sitsense/{device}/cmd/n-last", b"")  # QoS 1: everything before it went out
    finally:
        sender.close()
    return {"payload_mb": 30, "names": 20_000}


def main(argv: list[str] | None = None) -> int:
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reduced", action="store_true", help="the test suite's two-hour day instead of 24 h")
    parser.add_argument("--speed", type=float, help="sensor seconds per real second (default: the day's own)")
    parser.add_argument("--keep", help="work in this folder and keep it (logs, JSON lines, state database)")
    parser.add_argument("--hostile", action="store_true", help="issue 18's day: a damaged checkpoint, the state "
                        "folder full from hour 6, floods at hour 12, a 128 MiB memory cgroup (needs root)")
    args = parser.parse_args(argv)
    if args.hostile:
        spec = day_2h_hostile() if args.reduced else day_24h_hostile()
    else:
        spec = day_2h() if args.reduced else day_24h()
    if args.speed:
        spec.speed = args.speed
    sys.path.insert(0, str(REPO))
    workdir = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="sitsense-soak-"))
    figures = run_soak(spec, workdir, log=lambda m: print(m, file=sys.stderr, flush=True))
    figures["workdir"] = str(workdir)
    figures["spec"] = asdict(spec)
    print(json.dumps(figures, indent=2))
    hostile = figures.get("hostile") or {}
    ok = (not figures["alerts_missing"] and figures["tracebacks"] == 0 and abs(figures["sitting_diff_pct"]) <= 1.0
          and list(figures["exit_status"].values())[-1] == 0 and hostile.get("restarts", 0) == 0
          and not (hostile.get("memory") or {}).get("oom_kills"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
