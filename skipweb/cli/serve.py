"""`skipweb up`: the embedded stack — one worker process and the dashboard — stopped together on Ctrl-C."""

from __future__ import annotations

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
    """Start the workers and the dashboard; print the URL; Ctrl-C (or SIGTERM, SIGHUP) stops them all."""
    from skipweb.cli.runs import UserError, open_db
    from skipweb.cli.worker import share_of_cores
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
    stop_on_signals()
    try:
        for _ in range(n):  # on a GPU machine one `skipweb worker`, which starts its processes per GPU
            procs.append(subprocess.Popen([sys.executable, "-m", "skipweb", "worker", "--loglevel", "WARNING",
                                           *([] if gpu else ["--cpu", "--threads", str(share_of_cores(n))])]))  # fmt: skip
        procs.append(subprocess.Popen([
            # Streamlit's `streamlit run`, with the pages imported before the first viewer arrives (ui/server.py)
            sys.executable, "-m", "skipweb.ui.server", "run", str(APP), "--server.address", host,
            "--server.port", str(port), *SERVER_OPTIONS,
        ]))  # fmt: skip
        console.print(f"[bold green]skipweb[/] dashboard: http://{host}:{port}  (data in "
                      f"{settings.data_dir.resolve()}; Ctrl-C stops)")  # fmt: skip
        if n and not gpu:
            console.print(f"{n} CPU worker{'s' if n > 1 else ''} × {share_of_cores(n)} torch threads")
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        console.print("[red]a skipweb process exited; stopping the others[/]")
    except KeyboardInterrupt:
        console.print("stopping…")
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
    codes = [p.returncode for p in procs]
    raise typer.Exit(0 if all(c in (0, -signal.SIGTERM, None) for c in codes) else 1)


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
