"""Page speed in a real headless Chromium: navigation → the last chart drawn, cold and warm.

SYNTHETIC DATA (bench/ui_pages.synthesize: rows written straight into SQLite, no training): experiment 1 is
shaped like the demo (12 runs × 10 epochs × 45 steps, 22 probe layers), experiment 2 is the team-sized
sweep of issue 13 (20 runs × 200 epochs × 100 steps, 56 probe layers).

For each page the dashboard (`skipweb up --no-worker`) is started fresh: "cold" is the first viewer after a
start (empty server caches, a browser with nothing cached); "warm tab" the median of 3 later page loads in
new tabs of the same browser (what opening the link again costs: the server's caches and the browser's
HTTP cache are warm, but every new tab boots Streamlit's frontend and evaluates plotly.js again); "rerun"
the median of 3 reruns in the open tab (Streamlit's R key: what changing a widget costs); "from Runs" the
median of 3 moves inside one tab, from the experiment's Runs page through its "Compare this experiment" or
"Present it" link (what following a link in the app costs: no new frontend boot; the Runs page has no
chart, so plotly.js is still evaluated on arrival). "Done" means
Streamlit reports the script idle and every Plotly chart on the page has drawn its SVG.

Last, the framework's own floor on the same machine and browser: a bare Streamlit script (no skipweb) with
only a title; with the title and one Plotly chart of 12 lines × 450 points (the demo's curves chart); and
with a 12-row st.dataframe under that chart (Compare's summary table), served with `skipweb up`'s options
(SERVER_OPTIONS). A skipweb page cannot load faster than these.

Usage:  python bench/page_speed.py [--repeat 3] [--page Compare ...] [--no-floor]
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from ui_pages import synthesize  # noqa: E402

from skipweb.cli.serve import SERVER_OPTIONS  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]  # fmt: skip
DONE = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') return false;
  if (document.querySelector('[data-testid="stSkeleton"]')) return false;
  const charts = document.querySelectorAll('[data-testid="stPlotlyChart"]').length;
  const drawn = Array.from(document.querySelectorAll('.js-plotly-plot'))
      .filter(p => p.querySelector('.main-svg')).length;
  return drawn >= charts ? String(charts) : false;
}"""
PAGES = [  # name, path, the link on the experiment's Runs page that leads here (None: no such link)
    ("Launch", "/launch", None),
    ("Runs (demo)", "/runs?exp=1", None),
    ("Compare (demo)", "/compare?exp=1", "Compare this experiment"),
    ("Compare (20×200)", "/compare?exp=2", "Compare this experiment"),
    ("Present (demo)", "/present?exp=1", "Present it"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


FLOOR_APP = """
import streamlit as st
st.set_page_config(layout="wide", page_title="floor")
st.title("Streamlit alone")
if st.query_params.get("chart"):
    import math
    import plotly.graph_objects as go
    x = list(range(450))
    st.plotly_chart(go.Figure([go.Scatter(x=x, y=[math.exp(-t / (100 + 10 * i)) for t in x], name=f"run {i}")
                               for i in range(12)]))
if st.query_params.get("table"):
    st.dataframe([{"run": f"run {i}", "params": 270_000 + i, "final test error": 0.1 + i / 100} for i in range(12)])
"""


def start(data: Path, script: Path | None = None) -> tuple[subprocess.Popen, str]:
    """``skipweb up --no-worker`` on ``data``; with ``script``, plain Streamlit serving it with up's options."""
    port = free_port()
    env = {**os.environ, "SKIPWEB_DATA_DIR": str(data)}
    env.pop("SKIPWEB_DATABASE_URL", None)
    cmd = [sys.executable, "-m", "skipweb", "up", "--no-worker", "--port", str(port)]
    if script is not None:
        cmd = [sys.executable, "-m", "streamlit", "run", str(script), "--server.port", str(port), *SERVER_OPTIONS]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(url + "/_stcore/health", timeout=2)
            return proc, url
        except OSError:
            time.sleep(0.5)
    raise SystemExit("the dashboard did not start")


def stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def load(ctx, url: str, reruns: int = 0) -> tuple[float, int, list[float]]:
    """Seconds from navigation to the last chart drawn in a new tab, the number of charts, and the seconds
    of ``reruns`` reruns in that tab (from the R key to the last chart drawn again)."""
    page = ctx.new_page()
    frames: list[float] = []  # websocket messages from the server: a rerun has begun when one arrives
    page.on("websocket", lambda ws: ws.on("framereceived", lambda _: frames.append(time.perf_counter())))
    t = time.perf_counter()
    page.goto(url)
    charts = page.wait_for_function(DONE, timeout=120_000, polling=50).json_value()
    elapsed = time.perf_counter() - t
    again = []
    for _ in range(reruns):
        # (watching the app's "running" attribute missed reruns that finish within one frame)
        seen = len(frames)
        t = time.perf_counter()
        page.locator("body").press("r")
        while len(frames) == seen:
            if time.perf_counter() - t > 120:
                raise TimeoutError(f"no rerun of {url} after pressing R")
            page.wait_for_timeout(10)
        page.wait_for_function(DONE, timeout=120_000, polling=50)
        again.append(time.perf_counter() - t)
    page.close()
    return elapsed, int(charts), again


def follow(ctx, runs_url: str, label: str, charts: int) -> float:
    """Seconds from clicking ``label`` on an open Runs page to the last of ``charts`` charts drawn: moving
    between pages inside one tab, where Streamlit's frontend is already running."""
    page = ctx.new_page()
    page.goto(runs_url)
    page.wait_for_function(DONE, timeout=120_000, polling=50)
    link = page.get_by_role("link", name=label)
    t = time.perf_counter()
    link.click()
    page.wait_for_function(f"() => {{ const n = ({DONE})(); return n !== false && Number(n) >= {charts}; }}",
                           timeout=120_000, polling=50)  # fmt: skip
    elapsed = time.perf_counter() - t
    page.close()
    return elapsed


def floor(browser, data: Path, repeat: int) -> None:
    script = data / "floor.py"
    script.write_text(FLOOR_APP)
    proc, base = start(data, script)
    ctx = browser.new_context(viewport={"width": 1440, "height": 900})
    try:
        for name, path in (("floor: title only", "/"), ("floor: one chart", "/?chart=1"),
                           ("floor: chart+table", "/?chart=1&table=1")):
            cold = load(ctx, base + path)[0]
            warm = statistics.median(load(ctx, base + path)[0] for _ in range(repeat))
            print(f"{name:<18} {cold:>9.2f} {warm:>13.2f}   (bare Streamlit, no skipweb; cold = first tab)", flush=True)
    finally:
        ctx.close()
        stop(proc)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="warm viewers per page (median reported)")
    ap.add_argument("--page", action="append", help="only the pages whose name starts with this (repeatable)")
    ap.add_argument("--no-floor", action="store_true", help="skip the bare-Streamlit floor")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    data = Path(tempfile.mkdtemp(prefix="skipweb-pages-"))
    url = f"sqlite:///{data / 'skipweb.db'}"
    t = time.perf_counter()
    synthesize(url, argparse.Namespace(runs=12, epochs=10, steps_per_epoch=45, probe_every=10, layers=22))
    synthesize(url, argparse.Namespace(runs=20, epochs=200, steps_per_epoch=100, probe_every=10, layers=56))
    print(f"SYNTHETIC data written in {time.perf_counter() - t:.0f} s: exp 1 = 12 runs × 10 epochs (demo-shaped), "
          f"exp 2 = 20 runs × 200 epochs × 100 steps, 56 layers")  # fmt: skip
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, SQLite, "
          f"Chromium headless 1440×900; load before: {os.getloadavg()[0]:.2f}")  # fmt: skip
    print(f"{'page':<18} {'cold (s)':>9} {'warm tab (s)':>13} {'from Runs (s)':>14} {'rerun (s)':>10} {'charts':>7}")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            for name, path, label in PAGES:
                if args.page and not any(name.startswith(p) for p in args.page):
                    continue
                proc, base = start(data)
                ctx = browser.new_context(viewport={"width": 1440, "height": 900})
                try:
                    cold, n, _ = load(ctx, base + path)
                    warm = [load(ctx, base + path)[0] for _ in range(args.repeat)]
                    reruns = load(ctx, base + path, reruns=args.repeat)[2]
                    runs_url = base + "/runs?" + path.split("?")[1] if label else ""
                    inside = [follow(ctx, runs_url, label, n) for _ in range(args.repeat)] if label else []
                finally:
                    ctx.close()
                    stop(proc)
                via = f"{statistics.median(inside):>14.2f}" if inside else f"{'':>14}"
                print(f"{name:<18} {cold:>9.2f} {statistics.median(warm):>13.2f} {via} "
                      f"{statistics.median(reruns):>10.2f} {n:>7}", flush=True)  # fmt: skip
            if not args.no_floor:
                floor(browser, data, args.repeat)
        finally:
            browser.close()
    print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
