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


def one(layout: str) -> dict:
    workers, threads = (int(x) for x in layout.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "SKIPWEB_DATA_DIR": tmp}
        env.pop("SKIPWEB_DATABASE_URL", None), env.pop("SKIPWEB_BROKER_URL", None)
        skipweb(env, "db", "upgrade")
        procs = [subprocess.Popen([sys.executable, "-m", "skipweb", "worker", "--threads", str(threads),
                                   "--loglevel", "WARNING"], env=env, stdout=subprocess.DEVNULL,
                                  stderr=open(Path(tmp) / f"worker{i}.log", "w"))  # noqa: SIM115
                 for i in range(workers)]  # fmt: skip
        time.sleep(8)  # let the workers import torch and connect, as a running `skipweb up` would have
        try:
            t0 = time.perf_counter()
            exp = json.loads(skipweb(env, "submit", "--preset", "degradation", "--json"))["experiment_id"]
            while True:
                runs = json.loads(skipweb(env, "status", f"exp:{exp}", "--json"))
                if runs and all(r["status"] in FINAL for r in runs):
                    break
                time.sleep(1)
            t_runs = time.perf_counter() - t0
            t1 = time.perf_counter()
            story = json.loads(skipweb(env, "story", "degradation", "--json"))
            t_story = time.perf_counter() - t1
        finally:
            for p in procs:
                p.send_signal(signal.SIGTERM)
            for p in procs:
                p.wait(timeout=30)
    return {"layout": f"{workers} worker(s) × {threads} thread(s)", "runs": len(runs),
            "succeeded": sum(r["status"] == "succeeded" for r in runs), "submit_to_finished_s": t_runs,
            "story_s": t_story, "verdicts": [f["verdict"] for f in story["findings"]],
            "findings": [f["text"] for f in story["findings"]]}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layout", action="append", help="WORKERSxTHREADS (repeatable); default 1x2 and 2x1")
    a = ap.parse_args()
    print(f"{os.cpu_count()} cores; load before {os.getloadavg()[0]:.2f}")
    for layout in a.layout or ["1x2", "2x1"]:
        r = one(layout)
        print(f"{r['layout']}: {r['succeeded']}/{r['runs']} runs succeeded; submit → all finished "
              f"{r['submit_to_finished_s']:.0f} s; story built in {r['story_s']:.1f} s; verdicts {r['verdicts']}")
        for text in r["findings"]:
            print(f"    {text}")
    print(f"load after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
