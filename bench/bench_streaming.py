"""Traces of any length in bounded memory: peak RSS and time of ``synth`` and ``simulate`` for 2 h,
24 h and 7 days at 50 Hz, and trace parsing beside ``numpy.loadtxt`` on the same file, in one run.

    PYTHONPATH=. python bench/bench_streaming.py [--quick] [--json OUT]

Every command runs in its own process, measured by ``wait4`` (its own peak RSS and CPU, not the
benchmark's). Baselines in the same run: Python with numpy imported (the floor of any sitsense
process) and ``sitsense --help`` (start-up). The trace is an office hour repeated (the same work
per hour), so time per hour of trace shows whether time grows linearly with length.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

HOUR = "stand 2m, sit 40m, walk 3m, stand 5m, sit 10m"  # one office hour, repeated
LENGTHS_H = (2, 24, 168)
QUICK_LENGTHS_H = (1, 2, 6)
RATE_HZ = 50
TARGETS = {"peak_rss_mb": 100, "replay_x_real_time": 10_000}


def run(cmd: list[str]) -> dict:
    """Run ``cmd`` to completion: its wall time, CPU time and peak RSS (MiB), from wait4."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO,
                            env=dict(os.environ, PYTHONPATH=str(REPO)))
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:6])} ... failed ({proc.returncode}): {err.strip()[-400:]}")
    return {"wall_s": round(wall, 2), "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}


def sitsense(*args: str) -> list[str]:
    return [sys.executable, "-m", "sitsense.cli", *args]


def measure(quick: bool = False, work: Path | None = None) -> dict:
    work = work or Path(tempfile.gettempdir()) / "sitsense-bench-streaming"
    work.mkdir(parents=True, exist_ok=True)
    out: dict = {"rate_hz": RATE_HZ, "hour_plan": HOUR, "targets": TARGETS,
                 "python_numpy": run([sys.executable, "-c", "import numpy"]),
                 "startup": run(sitsense("--help"))}
    # the fixed cost of each command (imports, the model, opening files): the same on a 1 minute trace
    minute = work / "minute.csv.gz"
    out["fixed"] = {"synth": run(sitsense("synth", "--plan", "sit 1m", "--rate", str(RATE_HZ), "-o", str(minute))),
                    "simulate": run(sitsense("simulate", str(minute), "--quiet"))}
    lengths = []
    for hours in (QUICK_LENGTHS_H if quick else LENGTHS_H):
        path = work / f"office-{hours}h.csv.gz"
        plan = ", ".join([HOUR] * hours)
        synth = run(sitsense("synth", "--plan", plan, "--rate", str(RATE_HZ), "--seed", "11",
                             "--start", "2026-03-02T08:00:00+01:00", "-o", str(path)))
        simulate = run(sitsense("simulate", str(path), "--quiet"))
        simulate["x_real_time"] = round(hours * 3600 / simulate["wall_s"])
        simulate["x_real_time_cpu"] = round(hours * 3600 / simulate["cpu_s"])
        lengths.append({"hours": hours, "samples": hours * 3600 * RATE_HZ, "file_mb": round(path.stat().st_size / 1e6, 1),
                        "synth": synth, "simulate": simulate})
    out["lengths"] = lengths
    out["parse"] = parse_speed(work / f"office-{lengths[1]['hours']}h.csv.gz", work)
    for row in lengths:  # CPU per hour of trace, the fixed cost taken out: constant if time is linear
        for cmd in ("synth", "simulate"):
            row[cmd]["cpu_s_per_hour"] = round((row[cmd]["cpu_s"] - out["fixed"][cmd]["cpu_s"]) / (row["hours"] - 1 / 60), 3)
    for row in lengths:
        for cmd in ("synth", "simulate"):
            row[cmd]["per_hour_vs_shortest"] = round(row[cmd]["cpu_s_per_hour"] / lengths[0][cmd]["cpu_s_per_hour"], 2)
    out["rows"] = rows(out)
    return out


def parse_speed(gz: Path, work: Path, repeats: int = 3) -> dict:
    """Our reader against ``numpy.loadtxt`` (the four numeric columns) on the same plain file, in
    this process, best of ``repeats`` each, alternating."""
    import gzip

    import numpy as np

    from sitsense.trace_reader import TraceReader

    plain = work / gz.name.replace(".csv.gz", ".csv")
    if not plain.exists():
        with gzip.open(gz, "rb") as src, open(plain, "wb") as dst:
            while block := src.read(1 << 20):
                dst.write(block)
    with open(plain, "rb") as f:
        header_lines = 0
        for line in f:
            header_lines += 1
            if line.startswith(b"t,"):
                break
    best = {"sitsense": float("inf"), "loadtxt": float("inf")}
    for _ in range(repeats):
        t0 = time.process_time()
        n = sum(len(chunk) for chunk in TraceReader(plain).chunks())
        best["sitsense"] = min(best["sitsense"], time.process_time() - t0)
        t0 = time.process_time()
        m = len(np.loadtxt(plain, delimiter=",", usecols=(0, 1, 2, 3), skiprows=header_lines, ndmin=2))
        best["loadtxt"] = min(best["loadtxt"], time.process_time() - t0)
    assert n == m
    size_mb = plain.stat().st_size / 1e6
    return {"file_mb": round(size_mb, 1), "samples": n, "sitsense_mb_s": round(size_mb / best["sitsense"], 1),
            "loadtxt_mb_s": round(size_mb / best["loadtxt"], 1), "speedup": round(best["loadtxt"] / best["sitsense"], 2)}


def _length(hours: int) -> str:
    return f"{hours // 24} days" if hours >= 48 else f"{hours} h"


def rows(r: dict) -> list[list[str]]:
    """The README table rows: benchmark | sitsense | baseline (same run) | target."""
    floor = r["python_numpy"]["peak_rss_mb"]
    out = []
    for row in r["lengths"]:
        s, m = row["synth"], row["simulate"]
        out.append([f"`synth`, {_length(row['hours'])} at 50 Hz ({row['file_mb']} MB gzip)",
                    f"peak RSS {s['peak_rss_mb']} MB; {s['wall_s']} s, {s['cpu_s']} s CPU: {s['cpu_s_per_hour']} s "
                    f"per hour of trace ({s['per_hour_vs_shortest']}x the shortest's)",
                    f"python + numpy {floor} MB; fixed cost {r['fixed']['synth']['cpu_s']} s CPU",
                    "RSS under 100 MB; time linear in length"])
        out.append([f"`simulate`, {_length(row['hours'])} at 50 Hz",
                    f"peak RSS {m['peak_rss_mb']} MB; {m['wall_s']} s wall ({m['x_real_time']}x real time), "
                    f"{m['cpu_s']} s CPU ({m['x_real_time_cpu']}x): {m['cpu_s_per_hour']} s per hour of trace "
                    f"({m['per_hour_vs_shortest']}x the shortest's)",
                    f"python + numpy {floor} MB; fixed cost {r['fixed']['simulate']['cpu_s']} s CPU",
                    "RSS under 100 MB; >= 10000x real time; time linear in length"])
    p = r["parse"]
    out.append([f"trace parsing, {p['file_mb']} MB ({p['samples']} samples): labels and order checked",
                f"{p['sitsense_mb_s']} MB/s", f"numpy.loadtxt {p['loadtxt_mb_s']} MB/s, numbers only "
                f"(ours at {p['speedup']}x its speed)", "at least loadtxt's speed"])
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1 h, 2 h and 6 h instead of 2 h, 24 h and 7 days")
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args()
    result = measure(quick=args.quick)
    print("| benchmark | sitsense | baseline (same run) | target |\n| --- | --- | --- | --- |")
    for row in result["rows"]:
        print("| " + " | ".join(row) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
