"""Every benchmark in one command, each figure beside a baseline measured in the same run.

    python -m bench.run_all [--quick] [--json OUT]

Prints the README "Performance" table (markdown) and writes the results as JSON
(default bench/results/latest.json). ``--quick`` shrinks inputs for a smoke run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

DAY_PLAN = ("stand 1m, sit 2h, walk 5m, sit 3h, stand 10m, walk 30m, sit 4h, lie 8h, off 2h, sit 3h, "
            "walk 1h, stand 34m")  # 24 h


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def make_trace(path: Path, plan: str, rate_hz: float = 50.0) -> Path:
    from sitsense.plan import parse_plan
    from sitsense.synth import synthesize
    from sitsense.traces import write_trace

    if not path.exists():
        write_trace(path, synthesize(parse_plan(plan), sample_rate_hz=rate_hz, seed=11))
    return path


def bench_replay(day_csv: Path) -> dict:
    """24 h at 50 Hz through parse, classify, track, coach and outputs (a null sink), the trace
    streamed from its file as ``simulate`` does."""
    from sitsense.clock import SimClock
    from sitsense.config import Config
    from sitsense.sensor.source import ReplaySource
    from sitsense.trace_reader import TraceReader
    from sitsense.wiring import build_service
    from datetime import datetime, timezone

    class Null:
        def handle(self, ev): pass
        def update_state(self, st): pass
        def close(self): pass

    c0, w0 = _cpu(), time.perf_counter()
    trace = TraceReader(day_csv)
    clock = SimClock(datetime(2026, 3, 2, 0, 0, tzinfo=timezone.utc))
    service = build_service(Config(), source=ReplaySource(trace, clock), clock=clock, console=False)
    service.outputs.append(Null())
    service.run()
    cpu = _cpu() - c0
    wall = time.perf_counter() - w0
    # baseline in the same run: only reading and parsing the same file
    c1 = _cpu()
    trace_s = trace.summary().duration_s
    parse_cpu = _cpu() - c1
    return {"trace_s": trace_s, "cpu_s": round(cpu, 2), "wall_s": round(wall, 2),
            "x_real_time": round(trace_s / wall), "baseline_parse_only_cpu_s": round(parse_cpu, 2),
            "target": ">= 10000x (under 9 s)"}


def bench_parse(csv: Path, repeats: int = 5) -> dict:
    """read_trace against numpy.loadtxt on the same file, MB/s of CPU time, best of ``repeats``
    each, alternating (a shared machine's load comes and goes)."""
    import numpy as np
    from sitsense.traces import read_trace

    size_mb = csv.stat().st_size / 1e6
    ours = base = float("inf")
    for _ in range(repeats):
        t0 = time.process_time()
        read_trace(csv)
        ours = min(ours, time.process_time() - t0)
        t0 = time.process_time()
        np.loadtxt(csv, delimiter=",", comments="#", usecols=(0, 1, 2, 3), dtype=np.float64, ndmin=2,
                   **_skip_header(csv))
        base = min(base, time.process_time() - t0)
    return {"file_mb": round(size_mb, 1), "sitsense_mb_s": round(size_mb / ours, 1),
            "loadtxt_mb_s": round(size_mb / base, 1), "speedup": round(base / ours, 2),
            "target": "at least loadtxt's speed"}


def _skip_header(csv: Path) -> dict:
    with open(csv) as f:
        n = 0
        for line in f:
            n += 1
            if line.startswith("t,"):
                break
    return {"skiprows": n}


def bench_startup(repeats: int = 7) -> dict:
    """``sitsense --help`` wall time, beside a bare Python start and an 'import numpy'."""
    def timed(cmd):
        runs = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, cwd=REPO)
            runs.append(time.perf_counter() - t0)
        return round(statistics.median(runs), 3)

    return {"sitsense_help_s": timed([sys.executable, "-m", "sitsense.cli", "--help"]),
            "python_bare_s": timed([sys.executable, "-c", "pass"]),
            "python_import_numpy_s": timed([sys.executable, "-c", "import numpy"]),
            "target": "under 0.3 s"}


def bench_memory(example: Path, seconds: float) -> dict:
    """Peak RSS of ``sitsense run``, beside Python with numpy imported.

    Measured on a fake sensor playing a short posture script (10 min), and fed from the example
    trace file (streamed, so the file's length does not matter).
    """
    def peak(cmd):
        proc = subprocess.run([sys.executable, os.path.join(REPO, "bench", "_maxrss.py"), *cmd],
                              capture_output=True, text=True, cwd=REPO)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd[-8:])} failed: {proc.stderr.strip()[-300:]}")
        return round(int(proc.stdout.strip().splitlines()[-1]) / 1024, 1)  # KiB -> MiB

    run = [sys.executable, "-m", "sitsense.cli", "run", "--speed", "0", "--no-state"]
    return {"sitsense_run_mb": peak([*run, "--sensor", "fake:plan:stand 1m, sit 9m", "--seconds", "600"]),
            "sitsense_run_trace_fed_mb": peak([*run, "--sensor", f"fake:{example}", "--seconds", str(seconds)]),
            "python_numpy_mb": peak([sys.executable, "-c", "import numpy"]),
            "target": "under 60 MB"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="small inputs, for a smoke run")
    ap.add_argument("--json", default=str(REPO / "bench" / "results" / "latest.json"))
    args = ap.parse_args()
    work = Path(tempfile.gettempdir()) / "sitsense-bench"
    work.mkdir(exist_ok=True)
    results: dict = {"machine": os.uname().machine, "python": sys.version.split()[0]}
    day = make_trace(work / ("day-quick.csv" if args.quick else "day24h.csv"),
                     "stand 1m, sit 1h, walk 5m, sit 54m" if args.quick else DAY_PLAN)
    two_h = make_trace(work / "two-hours.csv", "stand 1m, sit 1h, walk 5m, sit 54m")
    example = REPO / "examples" / "desk-morning.csv.gz"
    sections = [("replay", lambda: bench_replay(day)), ("parse", lambda: bench_parse(two_h)),
                ("startup", bench_startup), ("memory", lambda: bench_memory(example, 300 if args.quick else 1800))]
    for name, fn in [*sections, *_optional_sections(args.quick)]:
        print(f"running {name} ...", file=sys.stderr)
        try:
            results[name] = fn()
        except Exception as exc:  # one failing benchmark should not hide the others
            results[name] = {"error": f"{type(exc).__name__}: {exc}"}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=2))
    print(table(results))
    return 0


def _optional_sections(quick: bool):
    """Benchmarks owned by other parts of the code base, included when present."""
    out = []
    try:
        from bench import bench_live_loop
        out.append(("live_loop", lambda: bench_live_loop.measure(seconds=20 if quick else 60)))
    except ImportError:
        pass
    try:
        from bench import bench_classifier
        out.append(("classifier", lambda: bench_classifier.measure(quick=quick)))
    except ImportError:
        pass
    try:
        from bench import bench_streaming
        out.append(("streaming", lambda: bench_streaming.measure(quick=quick)))
    except ImportError:
        pass
    try:
        from bench import classifier_vs_forest
        out.append(("forest", lambda: _skippable(classifier_vs_forest.measure, quick=quick)))
    except ImportError:
        pass
    return out


def _skippable(fn, **kw) -> dict:
    """Run an optional benchmark; a missing dev tool or data set is a skip with its reason, not an error."""
    try:
        return fn(**kw)
    except (ImportError, FileNotFoundError) as exc:
        return {"skipped": str(exc)}


def table(r: dict) -> str:
    rows = ["| benchmark | sitsense | baseline (same run) | target |", "| --- | --- | --- | --- |"]
    rp = r.get("replay", {})
    if "cpu_s" in rp:
        rows.append(f"| replay {rp['trace_s'] / 3600:.0f} h at 50 Hz, whole pipeline | {rp['wall_s']} s ({rp['x_real_time']}x real time) "
                    f"| parsing alone {rp['baseline_parse_only_cpu_s']} s CPU | {rp['target']} |")
    ps = r.get("parse", {})
    if "sitsense_mb_s" in ps:
        rows.append(f"| trace parsing ({ps['file_mb']} MB) | {ps['sitsense_mb_s']} MB/s | numpy.loadtxt "
                    f"{ps['loadtxt_mb_s']} MB/s, the numbers only (ours at {ps['speedup']}x its speed; we also read "
                    f"and check labels and order) | {ps.get('target', 'at least loadtxt speed')} |")
    st = r.get("startup", {})
    if "sitsense_help_s" in st:
        rows.append(f"| `sitsense --help` start-up | {st['sitsense_help_s']} s | bare python {st['python_bare_s']} s, "
                    f"`import numpy` {st['python_import_numpy_s']} s | {st['target']} |")
    me = r.get("memory", {})
    if "sitsense_run_mb" in me:
        rows.append(f"| peak RSS of `sitsense run` (fake sensor, 10 min script) | {me['sitsense_run_mb']} MB | python + numpy "
                    f"{me['python_numpy_mb']} MB; the fake sensor fed from the 2 h example trace file "
                    f"{me['sitsense_run_trace_fed_mb']} MB (streamed) | {me['target']} |")
    for name in ("live_loop", "classifier", "streaming", "forest"):
        sec = r.get(name, {})
        for row in sec.get("rows", []):
            rows.append("| " + " | ".join(str(x) for x in row) + " |")
    skipped = [f"{k}: {v['skipped']}" for k, v in r.items() if isinstance(v, dict) and "skipped" in v]
    if skipped:
        rows.append("\nskipped:\n" + "\n".join(skipped))
    errors = [f"{k}: {v['error']}" for k, v in r.items() if isinstance(v, dict) and "error" in v]
    return "\n".join(rows) + ("\n\nerrors:\n" + "\n".join(errors) if errors else "")


if __name__ == "__main__":
    sys.exit(main())
