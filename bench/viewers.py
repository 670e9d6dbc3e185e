"""Many viewers at once (issue 13): N people open Compare on a 20-run experiment at the same moment, served by
`skipweb up --no-worker` against PostgreSQL, while two writers append metrics as two training workers do.

Each viewer is a real Streamlit session driven through Streamlit's own websocket protocol (the protobuf
BackMsg/ForwardMsg the browser exchanges): connect to /_stcore/stream, ask for the Compare page with
``?exp=ID``, and read until the server says the script finished. The time is connect → script finished,
i.e. everything the server does for a viewer (queries, figures, serialisation, sending); drawing happens in
each viewer's own browser (bench/page_speed.py measures that, about 2 s for Compare on this machine).
Errors: a refused connection, a script that raised, or a page with fewer charts than a lone viewer gets.

SYNTHETIC data (bench/ui_pages.synthesize): 20 runs × 200 epochs × 100 steps, probes × 56 layers. The two
writers are processes calling db.metrics.write_batch every 0.5 s for two running runs (30 metric rows and
one 56-layer probe step each time: what a CPU worker's flush holds), fenced by their leases.

Usage:  python bench/viewers.py [--viewers 1,5,10,20] [--pg URL] [--profile stacks.txt]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine

sys.path.insert(0, str(Path(__file__).parent))
from page_speed import free_port  # noqa: E402
from ui_pages import synthesize  # noqa: E402

HZ = os.sysconf("SC_CLK_TCK")


def writer(url: str, run_id: int, stop) -> None:
    from db import metrics, runs

    runs.claim(url, run_id, f"bench-writer-{run_id}")
    step = 0
    while not stop.is_set():
        rows = [(key, step + i, (step + i) / 100, 1.0 / (step + i + 1), time.time())
                for key in ("train/loss", "train/error", "lr") for i in range(10)]  # fmt: skip
        probe = [(step + 10, (step + 10) / 100, [1.0] * 56, [2.0] * 56, [0.01] * 56)]
        metrics.write_batch(url, run_id, rows, probe, owner=f"bench-writer-{run_id}")
        runs.heartbeat(url, run_id, f"bench-writer-{run_id}")
        step += 10
        stop.wait(0.5)


async def view(port: int, exp: int) -> tuple[float, int, str]:
    """One viewer: (seconds to script finished, charts received, error or "")."""
    import websockets
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    t = time.perf_counter()
    charts, error = 0, ""
    try:
        async with websockets.connect(f"ws://127.0.0.1:{port}/_stcore/stream", subprotocols=["streamlit"],
                                      max_size=None, open_timeout=60) as ws:  # fmt: skip
            msg = BackMsg()
            msg.rerun_script.query_string = f"exp={exp}"
            msg.rerun_script.page_name = "compare"
            await ws.send(msg.SerializeToString())
            while True:
                fwd = ForwardMsg()
                fwd.ParseFromString(await asyncio.wait_for(ws.recv(), 300))
                kind = fwd.WhichOneof("type")
                if kind == "delta" and fwd.delta.WhichOneof("type") == "new_element":
                    element = fwd.delta.new_element.WhichOneof("type")
                    charts += element == "plotly_chart"
                    if element == "exception":
                        error = fwd.delta.new_element.exception.message[:120]
                if kind == "script_finished":
                    break
    except Exception as e:  # noqa: BLE001 - a benchmark reports every failure as an error
        error = f"{type(e).__name__}: {e}"[:120]
    return time.perf_counter() - t, charts, error


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ  # utime + stime


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def streamlit_pid(parent: int) -> int:
    for _ in range(100):
        out = subprocess.run(
            ["pgrep", "-P", str(parent), "-f", "skipweb.ui.server"], capture_output=True, text=True
        ).stdout
        if out.split():
            return int(out.split()[0])
        time.sleep(0.2)
    raise SystemExit("no dashboard process (skipweb.ui.server) under skipweb up")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--viewers", default="1,5,10,20")
    ap.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    ap.add_argument(
        "--profile",
        metavar="FILE",
        help="sample the server with py-spy, GIL holder only (collapsed stacks to FILE)",
    )
    args = ap.parse_args()
    admin = create_engine(args.pg, isolation_level="AUTOCOMMIT")
    name = f"skipweb_viewers_{uuid.uuid4().hex[:8]}"
    with admin.connect() as c:
        c.exec_driver_sql(f"CREATE DATABASE {name}")
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    proc = None
    stop = mp.Event()
    writers: list[mp.Process] = []
    try:
        t = time.perf_counter()
        exp_ids = synthesize(url, argparse.Namespace(runs=20, epochs=200, steps_per_epoch=100, probe_every=10,
                                                       layers=56))  # fmt: skip
        live = synthesize(
            url, argparse.Namespace(runs=2, epochs=1, steps_per_epoch=10, probe_every=10, layers=56)
        )
        from db import runs
        from db.session import dispose_engine, scope
        from db.tables import SqlRun

        with scope(url) as s:  # the two "training" runs: running again, for the writers to hold
            s.query(SqlRun).filter(SqlRun.id.in_(live)).update({"status": "queued"})
        exp = runs.get_run(url, exp_ids[0]).experiment_id
        dispose_engine(url)
        print(f"SYNTHETIC data in PostgreSQL written in {time.perf_counter() - t:.0f} s; machine: {os.cpu_count()} "
              f"cores, load {os.getloadavg()[0]:.2f}")  # fmt: skip
        port = free_port()
        env = {**os.environ, "SKIPWEB_DATABASE_URL": url, "SKIPWEB_DATA_DIR": tempfile.mkdtemp()}
        proc = subprocess.Popen([sys.executable, "-m", "skipweb", "up", "--no-worker", "--port", str(port)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
        server = streamlit_pid(proc.pid)
        time.sleep(3)
        writers = [mp.Process(target=writer, args=(url, rid, stop)) for rid in live]
        for w in writers:
            w.start()
        base_rss = rss_mib(server)
        if args.profile:  # py-spy is not a requirement: `pip install py-spy` to use this
            spy = subprocess.Popen(
                [
                    "py-spy",
                    "record",
                    "--pid",
                    str(server),
                    "--gil",
                    "--format",
                    "raw",
                    "--rate",
                    "200",
                    "--output",
                    args.profile,
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        cold = asyncio.run(view(port, exp))
        print(f"first viewer after start (cold caches): {cold[0]:.2f} s, {cold[1]} charts {cold[2]}")
        print(f"{'viewers':>7} {'p50 (s)':>8} {'p95 (s)':>8} {'max (s)':>8} {'errors':>7} {'server CPU s/viewer':>20} "
              f"{'server RSS MiB':>15}")  # fmt: skip
        for n in (int(v) for v in args.viewers.split(",")):
            cpu0 = cpu_seconds(server)

            async def crowd(n=n):
                return await asyncio.gather(*(view(port, exp) for _ in range(n)))

            results = asyncio.run(crowd())
            cpu = (cpu_seconds(server) - cpu0) / n
            times = sorted(r[0] for r in results)
            errors = [r[2] or f"{r[1]} charts" for r in results if r[2] or r[1] < cold[1]]
            p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
            print(f"{n:>7} {statistics.median(times):>8.2f} {p95:>8.2f} {times[-1]:>8.2f} {len(errors):>7} "
                  f"{cpu:>20.2f} {rss_mib(server):>15.0f}", flush=True)  # fmt: skip
            for e in sorted(set(errors))[:3]:
                print(f"        error: {e}")
        print(f"server RSS at start {base_rss:.0f} MiB; load after {os.getloadavg()[0]:.2f}")
        if args.profile:
            spy.send_signal(signal.SIGINT)
            spy.wait(60)
    finally:
        stop.set()
        for w in writers:
            w.join(10)
        if proc is not None:
            os.killpg(proc.pid, signal.SIGINT)
            proc.wait(30)
        with admin.connect() as c:
            c.exec_driver_sql(f"DROP DATABASE {name} WITH (FORCE)")


if __name__ == "__main__":
    main()
