"""The phone page's cost: whole-service CPU and memory of ``sitsense run`` on a fake sensor in real
time, with the page open in headless Chromium (logged in, following the live stream), beside the
same run without the page, both measured at the same time.

    PYTHONPATH=. python bench/bench_web.py [--seconds 300] [--json OUT]

CPU is the service process's own user + system time (from /proc) over the measured window, after
a warm-up; RSS is its resident memory at the end and its peak (VmHWM). Targets (issue 15): with the
page open, under 1 % of a core and under 80 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

PLAN = "stand 1m, sit 6m, walk 2m, sit 20m"  # posture changes and an alert in the first 10 min
PASSWORD = "bench password"
CLK_TCK = os.sysconf("SC_CLK_TCK")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage")


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def memory_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) in MB."""
    info = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(info["VmRSS"].split()[0]) / 1024, int(info["VmHWM"].split()[0]) / 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_service(folder: Path, *, web: bool, seconds: float) -> tuple[subprocess.Popen, int]:
    from sitsense.web.auth import hash_password

    port = free_port()
    cfg = folder / f"{'web' if web else 'plain'}.toml"
    cfg.write_text(f"[tracker]\nsit_limit_min = 5\n[buzzer]\nenabled = false\n"
                   f"[web]\nenabled = {'true' if web else 'false'}\nbind = \"127.0.0.1\"\nport = {port}\n")
    env = dict(os.environ, SITSENSE_WEB_PASSWORD=hash_password(PASSWORD), STATE_DIRECTORY=str(folder / "state"))
    proc = subprocess.Popen([sys.executable, "-m", "sitsense.cli", "run", "--config", str(cfg), "--sensor",
                             f"fake:plan:{PLAN}", "--speed", "1", "--seconds", str(seconds), "--no-state"],
                            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, port


def open_page(port: int):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    profile = tempfile.mkdtemp(prefix="bench-chromium-")
    for flag in CHROMIUM_FLAGS + (f"--user-data-dir={profile}", "--window-size=390,844"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 30
    while True:
        try:
            driver.get(url)
            WebDriverWait(driver, 5).until(lambda d: d.find_element(By.ID, "password").is_displayed())
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "login-button").click()
    WebDriverWait(driver, 30).until(lambda d: d.find_element(By.ID, "link").text == "live")
    return driver, profile


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=300.0, help="measured window (default 300)")
    ap.add_argument("--warmup", type=float, default=20.0, help="seconds before measuring (start-up, login)")
    ap.add_argument("--json", help="write the figures here too")
    args = ap.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="bench-web-"))
    total = args.warmup + args.seconds + 60
    plain, _ = start_service(folder, web=False, seconds=total)
    paged, port = start_service(folder, web=True, seconds=total)
    driver = profile = None
    try:
        driver, profile = open_page(port)
        time.sleep(max(0.0, args.warmup - 0.0))
        c0 = {p.pid: cpu_s(p.pid) for p in (plain, paged)}
        w0 = time.monotonic()
        time.sleep(args.seconds)
        wall = time.monotonic() - w0
        live = driver.find_element("id", "link").text
        out = {}
        for name, p in (("without the page", plain), ("page open", paged)):
            used = cpu_s(p.pid) - c0[p.pid]
            rss, hwm = memory_mb(p.pid)
            out[name] = {"cpu_s": round(used, 3), "wall_s": round(wall, 1), "core_share_pct": round(100 * used / wall, 3),
                         "rss_mb": round(rss, 1), "peak_rss_mb": round(hwm, 1)}
        out["page open"]["page_link"] = live
    finally:
        if driver is not None:
            driver.quit()
            shutil.rmtree(profile, ignore_errors=True)
        for p in (plain, paged):
            p.terminate()
            p.wait(timeout=20)
        shutil.rmtree(folder, ignore_errors=True)
    print("| run | CPU over the window | share of one core | RSS at the end | peak RSS |")
    print("| --- | --- | --- | --- | --- |")
    for name, r in out.items():
        print(f"| {name} | {r['cpu_s']:.2f} s / {r['wall_s']:.0f} s | {r['core_share_pct']:.2f} % | "
              f"{r['rss_mb']:.1f} MB | {r['peak_rss_mb']:.1f} MB |")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    return out


if __name__ == "__main__":
    main()
