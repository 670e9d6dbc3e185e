"""The one-click demo, timed end to end: submit the degradation story's preset on an empty embedded
installation (SQLite + the filesystem broker), let real `skipweb worker` processes train it, and build the
story -- the same path the Launch page's "Run the demo" button takes.

    python bench/demo.py                   # 1 worker × 2 threads, then 2 workers × 1 thread
    python bench/demo.py --layout 1x2      # WORKERSxTHREADS

Prints, per layout: submit → all runs finished, the story's build time, and each finding's verdict.
Goal: under 2 minutes on a quiet 2-core CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FINAL = ("succeeded", "failed", "diverged", "cancelled")


def skipweb(env: dict, *args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "skipweb", *args], env=env, capture_output=True, text=True,
                         check=True)  # fmt: skip
    return out.stdout


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_preset(key: str, workers: int, threads: int, seeds: str | None = None) -> dict:
    """Submit story ``key``'s preset on a fresh embedded installation, train it with ``workers`` real worker
    processes of ``threads`` torch threads each, wait for every run (and landscape job) to end, build the story."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "SKIPWEB_DATA_DIR": tmp}
        env.pop("SKIPWEB_DATABASE_URL", None), env.pop("SKIPWEB_BROKER_URL", None)
        skipweb(env, "db", "upgrade")
        procs = [subprocess.Popen([sys.executable, "-m", "skipweb", "worker", "--threads", str(threads),
                                   "--loglevel", "WARNING"], env=env, stdout=subprocess.DEVNULL,
                                  stderr=open(Path(tmp) / f"worker{i}.log", "w"))  # noqa: SIM115
                 for i in range(workers)]  # fmt: skip
        time.sleep(8)  # let the workers import torch and connect, as a running `skipweb up` would have
        cpu0 = sum(cpu_seconds(p.pid) for p in procs)
        try:
            t0 = time.perf_counter()
            extra = ["--seeds", seeds] if seeds else []
            exp = json.loads(skipweb(env, "submit", "--preset", key, "--json", *extra))["experiment_id"]
            db_url = f"sqlite:///{tmp}/skipweb.db"
            while True:
                runs = json.loads(skipweb(env, "status", f"exp:{exp}", "--json"))
                if runs and all(r["status"] in FINAL for r in runs) and not _landscapes_pending(db_url, runs):
                    break
                time.sleep(1)
            t_runs = time.perf_counter() - t0
            cpu = sum(cpu_seconds(p.pid) for p in procs) - cpu0
            t1 = time.perf_counter()
            story = json.loads(skipweb(env, "story", key, "--json"))
            t_story = time.perf_counter() - t1
        finally:
            for p in procs:
                p.send_signal(signal.SIGTERM)
            for p in procs:
                p.wait(timeout=60)
    return {"story": key, "layout": f"{workers} worker(s) × {threads} thread(s)", "runs": len(runs),
            "succeeded": sum(r["status"] == "succeeded" for r in runs), "submit_to_finished_s": t_runs,
            "worker_cpu_s": cpu, "story_s": t_story, "findings": story["findings"]}  # fmt: skip


def _landscapes_pending(db_url: str, runs: list[dict]) -> bool:
    from db.landscape_jobs import latest_jobs

    jobs = latest_jobs(db_url, [r["id"] for r in runs])
    return any(j.status in ("pending", "queued", "running") for j in jobs.values())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layout", action="append", help="WORKERSxTHREADS (repeatable); default 1x2 and 2x1")
    a = ap.parse_args()
    print(f"{os.cpu_count()} cores; load before {os.getloadavg()[0]:.2f}")
    for layout in a.layout or ["1x2", "2x1"]:
        workers, threads = (int(x) for x in layout.split("x"))
        r = run_preset("degradation", workers, threads)
        print(f"{r['layout']}: {r['succeeded']}/{r['runs']} runs succeeded; submit → all finished "
              f"{r['submit_to_finished_s']:.0f} s (worker CPU {r['worker_cpu_s']:.0f} s); story built in "
              f"{r['story_s']:.1f} s", flush=True)  # fmt: skip
        for f in r["findings"]:
            print(f"    [{f['verdict']}] {f['text']}", flush=True)
    print(f"load after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
