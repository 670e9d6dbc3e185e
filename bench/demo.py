"""The one-click demo, timed end to end: submit the degradation story's preset on an empty embedded
installation (SQLite + the filesystem broker), let real `skipweb worker` processes train it, and build the
story -- the same path the Launch page's "Run the demo" button takes.

    python bench/demo.py                   # 1 worker × 2 threads, then 2 workers × 1 thread
    python bench/demo.py --layout 1x2      # WORKERSxTHREADS CPU workers
    python bench/demo.py --layout gpu      # one `skipweb worker`, as `skipweb up` starts it on a GPU machine
    python bench/demo.py --layout gpu:4    # ... with --per-gpu 4 (on a machine without CUDA: --gpus 0)

The clock starts once every worker process says it is connected (a running `skipweb up`), at the submit, and
stops when the story is built, in this process as the dashboard builds it in its own: the click-to-verdicts
time (the verdicts are then checked against `skipweb story --json`'s, untimed). Prints, per layout: submit → all runs finished,
the story's build time, and each finding's verdict. Goals: under 2 minutes on a quiet 2-core CPU; under 20 s
on one H200 (issue 21).
"""

from __future__ import annotations

import argparse
import contextlib
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


def worker_argvs(layout: str) -> tuple[list[list[str]], int, str]:
    """The worker commands of a layout, how many worker processes will connect, and a readable name."""
    base = [sys.executable, "-m", "skipweb", "worker", "--loglevel", "WARNING"]
    if layout.startswith("gpu"):
        import torch

        per = layout.partition(":")[2]
        gpus = torch.cuda.device_count()
        where = [] if gpus else ["--gpus", "0"]  # a machine without CUDA: a stand-in GPU worker
        if not per:  # as `skipweb up` starts it: the default per GPU
            from skipweb.cli.worker import default_per_gpu

            per = str(default_per_gpu(max(1, gpus)))
        return [base + where + ["--per-gpu", per]], max(1, gpus) * int(per), f"GPU workers, {per} per GPU"
    workers, threads = (int(x) for x in layout.split("x"))
    argv = base + ["--cpu", "--threads", str(threads)]
    return [argv] * workers, workers, f"{workers} worker(s) × {threads} thread(s)"


def run_preset(key: str, layout: str, seeds: str | None = None, cap_s: float | None = None, **overrides) -> dict:
    """Submit story ``key``'s preset on a fresh embedded installation as the Launch page's demo button does
    (skipweb.services.launch.submit, in this process), train it with the real worker processes of ``layout``,
    wait for every run (and landscape job) to end, build the story. ``cap_s``: stop waiting after this many
    seconds and report how many runs had finished. ``overrides``: spec fields (a tiny dry run)."""
    from db.run_queries import list_runs
    from db.workers import connected
    from skipweb.services.broker import make_app
    from skipweb.services.launch import submit
    from skipweb.settings import Settings, get_settings
    from skipweb.stories import get_story, story_runs

    argvs, expect, name = worker_argvs(layout)
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "SKIPWEB_DATA_DIR": tmp, "SKIPWEB_HEARTBEAT_SECONDS": "2"}
        env.pop("SKIPWEB_DATABASE_URL", None), env.pop("SKIPWEB_BROKER_URL", None)
        os.environ.update(SKIPWEB_DATA_DIR=tmp)  # this process's submit writes the checkpoint paths from it
        get_settings.cache_clear()
        skipweb(env, "db", "upgrade")
        db_url = f"sqlite:///{tmp}/skipweb.db"
        procs = [subprocess.Popen(a, env=env, stdout=subprocess.DEVNULL, stderr=open(Path(tmp) / f"worker{i}.log", "w"))  # noqa: SIM115
                 for i, a in enumerate(argvs)]  # fmt: skip
        t_start = time.perf_counter()
        while len(connected(db_url, 30)) < expect:  # as a running `skipweb up` would have them
            if time.perf_counter() - t_start > 180 or any(p.poll() is not None for p in procs):
                raise SystemExit(f"{name}: the workers did not connect; see {tmp}/worker*.log:\n"
                                 + (Path(tmp) / "worker0.log").read_text()[-3000:])  # fmt: skip
            time.sleep(0.5)
        t_connect = time.perf_counter() - t_start
        capped = False
        cpu0 = sum(cpu_seconds(p.pid) for p in _tree(procs))
        try:
            t0 = time.perf_counter()
            story = get_story(key)
            specs = story.preset.specs([int(x) for x in seeds.split(",")] if seeds else None, **overrides)
            exp = submit(specs, title=story.title, tags=[story.tag, "demo"], db=db_url,
                         celery=make_app(Settings(data_dir=Path(tmp)))).experiment_id  # fmt: skip
            while True:  # read in this process: a `skipweb status` process twice a second took a core of two
                runs = [{"id": r.id, "status": r.status} for r in list_runs(db_url, experiment_id=exp, limit=None)]
                if runs and all(r["status"] in FINAL for r in runs) and not _landscapes_pending(db_url, runs):
                    break
                if cap_s and time.perf_counter() - t0 > cap_s:
                    capped = True
                    break
                time.sleep(0.5)
            t_runs = time.perf_counter() - t0
            cpu = sum(cpu_seconds(p.pid) for p in _tree(procs)) - cpu0
            # the story built in this process, as the dashboard's Story page builds it in its own (a CLI
            # process's start-up is not on a person's path); then the CLI's verdicts, untimed, must be the same
            view = get_story(key).build(db_url, story_runs(db_url, exp)) if not capped else None
            t_story = time.perf_counter() - t0 - t_runs
            story = json.loads(skipweb(env, "story", key, "--json")) if not capped else {"findings": []}
            if view is not None and [f.verdict for f in view.findings] != [f["verdict"] for f in story["findings"]]:
                raise SystemExit(f"the story's verdicts differ: built here {[f.verdict for f in view.findings]}, "
                                 f"`skipweb story --json` {[f['verdict'] for f in story['findings']]}")  # fmt: skip
        finally:  # a capped layout still has runs in flight: a warm shutdown would wait for them
            kids = _tree(procs)[len(procs):] if capped else []
            for p in procs:
                p.send_signal(signal.SIGTERM if not capped else signal.SIGKILL)
            for p in procs:
                p.wait(timeout=60)
            for p in kids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.pid, signal.SIGKILL)
    return {"story": key, "layout": name, "runs": len(runs), "capped": capped, "connect_s": t_connect,
            "succeeded": sum(r["status"] == "succeeded" for r in runs), "submit_to_finished_s": t_runs,
            "worker_cpu_s": cpu, "story_s": t_story, "findings": story["findings"]}  # fmt: skip


def _tree(procs: list[subprocess.Popen]) -> list[subprocess.Popen]:
    """The worker processes and their children (a GPU worker starts one process per slot), for CPU time."""
    out = []
    for p in procs:
        out.append(p)
        kids = Path(f"/proc/{p.pid}/task/{p.pid}/children")
        if kids.exists():
            out += [_Pid(int(c)) for c in kids.read_text().split()]
    return out


class _Pid:
    def __init__(self, pid: int):
        self.pid = pid


def _landscapes_pending(db_url: str, runs: list[dict]) -> bool:
    from db.landscape_jobs import latest_jobs

    jobs = latest_jobs(db_url, [r["id"] for r in runs])
    return any(j.status in ("pending", "queued", "running") for j in jobs.values())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layout", action="append", help="WORKERSxTHREADS, gpu or gpu:N (repeatable); default 1x2, 2x1")
    ap.add_argument("--seeds", help="the preset's seeds (default: its own, 0,1,2)")
    ap.add_argument("--cap", type=float, help="stop waiting after this many seconds")
    ap.add_argument("--epochs", type=int, help="override the preset's epochs (a dry run)")
    ap.add_argument("--subset", type=int, help="train on only N samples (a dry run)")
    a = ap.parse_args()
    overrides = {k: v for k, v in (("epochs", a.epochs), ("subset", a.subset)) if v is not None}
    print(f"{os.cpu_count()} cores; load before {os.getloadavg()[0]:.2f}", flush=True)
    for layout in a.layout or ["1x2", "2x1"]:
        r = run_preset("degradation", layout, a.seeds, a.cap, **overrides)
        verdicts = [f["verdict"] for f in r["findings"]]
        end = (f"CAPPED at {a.cap:.0f} s with {r['succeeded']}/{r['runs']} finished" if r["capped"]
               else f"submit → all finished {r['submit_to_finished_s']:.1f} s")  # fmt: skip
        print(f"{r['layout']}: {r['succeeded']}/{r['runs']} runs succeeded; {end} (worker CPU "
              f"{r['worker_cpu_s']:.0f} s); story built in {r['story_s']:.1f} s; click → verdicts "
              f"{r['submit_to_finished_s'] + r['story_s']:.1f} s; {verdicts.count('agrees')}/{len(verdicts)} agree "
              f"(workers connected {r['connect_s']:.0f} s after start)", flush=True)  # fmt: skip
        for f in r["findings"]:
            print(f"    [{f['verdict']}] {f['text']}", flush=True)
    print(f"load after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
