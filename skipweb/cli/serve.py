"""`skipweb up`: the embedded stack — one worker process and the dashboard — stopped together on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

console = Console()
# The router, inside the package so that an installed wheel serves it too (Streamlit runs a script by path).
APP = Path(__file__).resolve().parents[1] / "ui" / "app.py"
SERVER_OPTIONS = [  # Streamlit's, for a served dashboard (bench/page_speed.py serves its floor with them too)
    "--server.headless", "true", "--browser.gatherUsageStats", "false",
    # a served dashboard, not a development session: no Deploy button or rerun-on-save menu for
    # viewers, and no file watcher (it flooded the log with "Inotify queue overflowed")
    "--client.toolbarMode", "viewer", "--server.fileWatcherType", "none", "--server.runOnSave", "false",
    # no full gc.collect() after every script run: with torch, pandas and plotly loaded it took a third of
    # each viewer's server CPU and held the GIL against every other viewer (bench/viewers.py --profile)
    "--runner.postScriptGC", "false",
]  # fmt: skip


def up(
    host: Annotated[str | None, typer.Option(help="address to bind (default: settings, 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="dashboard port (default 8501)")] = None,
    no_worker: Annotated[bool, typer.Option("--no-worker", help="dashboard only (workers run elsewhere)")] = False,
    workers: Annotated[int | None, typer.Option(min=1, help="CPU worker processes (default: one per core, at "
                                                "most 8; each gets an equal share of the cores as torch threads)")] = None,
) -> None:
    """Start the workers and the dashboard; print the URL; Ctrl-C (or SIGTERM, SIGHUP) stops them all.

    The terminal gets the URL, one line per worker process when it is ready (where it trains, its queues) and
    the log file's path; everything else the processes say goes to that file (``<data dir>/logs/up.log``),
    and its last lines come to the terminal when a process dies."""
    from skipweb.cli.runs import UserError, open_db
    from skipweb.cli.worker import ROOT_WARNING, running_as_root, share_of_cores
    from skipweb.passwords import open_door
    from skipweb.settings import get_settings

    settings = get_settings()
    host, port = host or settings.host, port or settings.port
    why = open_door(host, settings.auth_file, Path.cwd() / ".streamlit" / "secrets.toml", settings.allow_anonymous)
    if why:
        raise UserError(why)
    settings = open_db(create=True)
    procs: list[subprocess.Popen] = []
    gpu = not no_worker and workers is None and gpu_machine()
    n = 0 if no_worker else (workers or default_workers())
    log_path, log = open_log(settings.data_dir)
    started = log.tell()  # this start's lines begin here
    stop_on_signals()
    try:
        # plain prints: no markup, and a long URL line is not broken at the terminal's width
        print(f"skipweb dashboard: http://{host}:{port}  (Ctrl-C stops)", flush=True)
        print(f"log: {log_path}", flush=True)
        if n and running_as_root():
            print(f"workers {ROOT_WARNING}", flush=True)
        for _ in range(n):  # on a GPU machine one `skipweb worker`, which starts its processes per GPU
            # stdout: each worker process's ready line, to this terminal (worker.start_celery); the rest: the log
            procs.append(subprocess.Popen([sys.executable, "-m", "skipweb", "worker", "--loglevel", "WARNING",
                                           *([] if gpu else ["--cpu", "--threads", str(share_of_cores(n))])],
                                          stderr=log))  # fmt: skip
        procs.append(subprocess.Popen([
            # Streamlit's `streamlit run`, with the pages imported before the first viewer arrives (ui/server.py)
            sys.executable, "-m", "skipweb.ui.server", "run", str(APP), "--server.address", host,
            "--server.port", str(port), *SERVER_OPTIONS,
        ], stdout=log, stderr=log))  # fmt: skip
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        died = next(p for p in procs if p.poll() is not None)
        print(f"a skipweb process exited (code {died.returncode}); stopping the others. The last lines of "
              f"{log_path}:\n{tail(log_path, since=started)}", file=sys.stderr, flush=True)  # fmt: skip
    except KeyboardInterrupt:
        print("stopping…", flush=True)
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.time() + 20
        for p in procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                p.kill()
        log.close()
    codes = [p.returncode for p in procs]
    raise typer.Exit(0 if all(c in (0, -signal.SIGTERM, None) for c in codes) else 1)


def open_log(data_dir: Path):
    """``<data dir>/logs/up.log``, appended to, with a line that marks this start."""
    path = (data_dir / "logs" / "up.log").resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    log = open(path, "ab", buffering=0)  # noqa: SIM115 (the children write to it until up stops)
    log.write(f"\n==== skipweb up, pid {os.getpid()}, {time.strftime('%Y-%m-%d %H:%M:%S')} ====\n".encode())
    return path, log


def tail(path: Path, since: int = 0, lines: int = 20) -> str:
    """The last ``lines`` lines written to the log from offset ``since`` on (read from its end only)."""
    with open(path, "rb") as f:
        f.seek(max(since, f.seek(0, os.SEEK_END) - 64 * 1024))
        return "\n".join(f.read().decode(errors="replace").splitlines()[-lines:])


def stop_on_signals() -> None:
    """SIGTERM (what Docker, systemd and `kill` send) and SIGHUP (a closed terminal) stop `up` as Ctrl-C
    does: they raise KeyboardInterrupt in the main thread, whose handler stops every child."""

    def interrupt(signum: int, _frame) -> None:
        for sig in (signal.SIGTERM, signal.SIGHUP):  # a second one must not cut the stopping short
            signal.signal(sig, signal.SIG_IGN)
        raise KeyboardInterrupt(signal.Signals(signum).name)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, interrupt)


def gpu_machine() -> bool:
    import torch

    return torch.cuda.device_count() > 0


def default_workers() -> int:
    """One `skipweb worker` on a GPU machine (it starts its processes per GPU itself); else one CPU worker per
    core, at most 8, each with an equal share of the cores. Measured with bench/demo.py on a quiet 2-core machine (the
    12-run demo, bench/RESULTS.md): 2 workers × 1 thread finished in 102 s (123 CPU s), 1 worker × 2 threads
    in 347 s (448 CPU s). The bundled sets' small nets do not use a second thread well; a second process does."""
    from skipweb.cli.worker import share_of_cores

    if gpu_machine():
        return 1
    return min(8, share_of_cores(1))


def passwd(
    user: Annotated[str, typer.Argument(help="user name")],
    file: Annotated[Path | None, typer.Option(help="password file (default: SKIPWEB_AUTH_FILE)")] = None,
) -> None:
    """Add or replace a user in the dashboard's password file (bcrypt-hashed)."""
    from skipweb.cli.runs import UserError
    from skipweb.services.accounts import set_password
    from skipweb.settings import get_settings

    path = file or get_settings().auth_file
    if path is None:
        raise UserError("no password file: pass --file or set SKIPWEB_AUTH_FILE")
    if ":" in user or not user.strip():
        raise UserError("user names cannot be empty or contain ':'")
    password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    try:
        set_password(path, user, password)
    except (ValueError, OSError) as e:
        raise UserError(f"cannot set the password in {path}: {e}") from None
    console.print(f"{user} can now sign in ({path})")


def register(app: typer.Typer) -> None:
    app.command()(up)
    app.command()(passwd)
