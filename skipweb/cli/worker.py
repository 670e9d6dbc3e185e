"""`skipweb worker`: Celery worker processes. On a GPU machine, several per GPU (each pinned to its GPU with
its share of the cores) consuming ``gpu`` and ``any``; on a machine without one, a CPU worker consuming
``cpu`` and ``any`` (skipweb.facts: the routing rule). ``--gpus 0`` on a machine without CUDA subscribes
exactly as a GPU machine's worker does and trains on the CPU: routing is tested that way on CI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Annotated

import typer

from skipweb.errors import UserError


def worker(
    gpus: Annotated[str | None, typer.Option(help="GPU indices to use, e.g. 0,1 (default: every GPU this machine "
                                             "has; none: a CPU worker)")] = None,
    per_gpu: Annotated[int | None, typer.Option("--per-gpu", min=1, max=64, help="runs at once on each GPU, one "
                                                "process each (default: from the GPU's memory and the cores per "
                                                "GPU, see `default_per_gpu`)")] = None,
    cpu: Annotated[bool, typer.Option("--cpu", help="a CPU worker, even on a machine with GPUs")] = False,
    loglevel: Annotated[str, typer.Option()] = "INFO",
    threads: Annotated[int | None, typer.Option(min=1, help="torch CPU threads of each worker process (default: "
                                                "the machine's cores shared out among them)")] = None,
) -> None:
    """Start Celery workers: N per GPU (GPU runs and device-auto runs), or one CPU worker (CPU and auto runs)."""
    from skipweb.cli.runs import open_db

    indices = [] if cpu else parse_gpus(gpus)
    open_db(create=True)
    if indices:
        per = per_gpu or default_per_gpu(len(indices))
        slots = [(g, k) for g in indices for k in range(per)]
        if len(slots) > 1:  # one child process per slot, each pinned to its GPU
            # each child sees only its GPU (CUDA reads CUDA_VISIBLE_DEVICES once, when torch first asks it
            # anything, so the mask is set before the child starts), as its GPU 0
            share = str(threads or share_of_cores(len(slots)))
            argv = [sys.executable, "-m", "skipweb", "worker", "--gpus", "0", "--per-gpu", "1", "--threads", share,
                    "--loglevel", loglevel]
            supervise([(argv, {**os.environ, "CUDA_VISIBLE_DEVICES": physical_gpu(g)}) for g, _ in slots],
                      f"{len(slots)} GPU worker processes ({per} per GPU on GPU {', '.join(map(str, indices))})")  # fmt: skip
            return
        os.environ["CUDA_VISIBLE_DEVICES"] = physical_gpu(indices[0])
    start_celery(gpu=bool(indices), loglevel=loglevel, threads=threads or share_of_cores(1))


def parse_gpus(gpus: str | None, gpu_count: int | None = -1) -> list[int]:
    """``--gpus``: a comma list of indices, ``none``, or (not given) every GPU torch sees here. An index past
    the machine's last GPU is refused (``gpu_count``: how many it has, asked of torch when -1; None or 0: no
    check, a stand-in GPU worker on a machine without CUDA)."""
    if gpus is None or gpu_count == -1:
        import torch

        gpu_count = torch.cuda.device_count()
        if gpus is None:
            return list(range(gpu_count))
    if gpus.strip().lower() in ("", "none"):
        return []
    items = [g.strip() for g in gpus.split(",")]
    if not all(g.isascii() and g.isdigit() for g in items):
        raise UserError(f"--gpus {gpus!r}: give GPU indices as a comma list, e.g. 0 or 0,1, or none")
    indices = [int(g) for g in items]
    if len(set(indices)) != len(indices):
        raise UserError(f"--gpus {gpus!r}: indices are distinct numbers from 0, e.g. 0,1")
    if gpu_count and max(indices) >= gpu_count:
        raise UserError(f"--gpus {gpus!r}: there is no GPU {max(indices)}; this machine's GPUs are 0 to {gpu_count - 1}")
    return indices


def physical_gpu(index: int) -> str:
    """The CUDA_VISIBLE_DEVICES entry of GPU ``index`` as this process sees it (the parent's mask, if any)."""
    visible = [v for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
    return visible[index] if index < len(visible) else str(index)


def default_per_gpu(gpus: int) -> int:
    """Runs at once per GPU: one process per two cores of the GPU's share, at most one per 8 GiB of its
    memory, at most 8. The small nets of the bundled sets use a GPU a few percent each; each process needs
    about a core to launch its kernels (bench/gpu.py's packing rows, bench/RESULTS.md). On a machine
    without CUDA (a stand-in GPU worker) one."""
    import torch

    if not torch.cuda.is_available():
        return 1
    gib = torch.cuda.get_device_properties(0).total_memory / 2**30
    return max(1, min(8, share_of_cores(gpus) // 2, int(gib // 8)))


def share_of_cores(processes: int) -> int:
    """CPU threads for one of ``processes`` worker processes on this machine: an equal share, at least 1."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // max(1, processes))


def supervise(children: list[tuple[list[str], dict[str, str]]], what: str) -> None:
    """Run the worker processes until SIGINT, SIGTERM or SIGHUP, which stop them all (killed after 15 s: a
    worker's warm shutdown would wait for its run; the lease sweep resumes it from its checkpoint). A process
    that dies on its own is started again after 5 s (its run, if any, is resumed the same way)."""
    print(f"skipweb worker: {what}", file=sys.stderr, flush=True)
    procs = [subprocess.Popen(argv, env=env) for argv, env in children]
    stopping = []

    def stop(signum, _frame) -> None:
        stopping.append(signum)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, stop)
    try:
        while not stopping:
            for i, p in enumerate(procs):
                if p.poll() is not None and not stopping:
                    print(f"skipweb worker: process {p.pid} exited ({p.returncode}); starting it again in 5 s",
                          file=sys.stderr, flush=True)  # fmt: skip
                    time.sleep(5)
                    procs[i] = subprocess.Popen(children[i][0], env=children[i][1])
            time.sleep(0.5)
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15  # within `skipweb up`'s 20 s: a run in flight resumes from its checkpoint
        for p in procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()


def start_celery(*, gpu: bool, loglevel: str, threads: int) -> None:
    """This process becomes one Celery worker (solo pool: one run at a time). Its standard output carries one
    line, when it is ready: its name, where it trains and its queues. Everything else it says (Celery's
    notes, warnings, tracebacks) goes to standard error, which `skipweb up` sends to its log file."""
    import torch
    from celery.signals import worker_ready

    from skipweb.facts import CPU_WORKER_QUEUES, GPU_WORKER_QUEUES
    from skipweb.services import training

    ready_line = split_stdout()
    # More threads than cores among the processes on a machine slows every run many times over (oversubscribed
    # OpenMP threads spin against each other), so a worker uses its share of the cores and no more.
    torch.set_num_threads(threads)
    if gpu and not torch.cuda.is_available():
        training.CPU_STANDS_IN_FOR_CUDA = True
        print("GPU worker on a machine without CUDA: it takes GPU runs and trains them on the CPU", file=sys.stderr)
    warm_up(torch)
    from skipweb.services.broker import app  # it loads the task bodies (workers.tasks) by name

    quiet_root_warning()
    from skipweb.services import worker_log

    worker_log.install()  # a broker outage: one log line per retry, one when it is back
    app.conf.skipweb_gpu_worker = gpu  # workers.tasks announces the worker's kind (services.presence)
    queues = GPU_WORKER_QUEUES if gpu else CPU_WORKER_QUEUES
    name = f"skipweb-{'gpu' + os.environ.get('CUDA_VISIBLE_DEVICES', '') if gpu else 'cpu'}-{os.getpid()}@%h"
    where = trains_on(torch, gpu, threads)

    def ready(sender=None, **_) -> None:
        print(f"worker {getattr(sender, 'hostname', name)}: trains on {where}; queues {', '.join(queues)}",
              file=ready_line, flush=True)  # fmt: skip

    worker_ready.connect(ready, weak=False)
    # -q: no banner (up prints the line above instead); the rest of the worker's log stays as it was
    app.worker_main(["-q", "worker", "--pool=solo", "--concurrency=1", f"--queues={','.join(queues)}",
                     f"--loglevel={loglevel}", f"--hostname={name}", "--without-gossip", "--without-mingle"])  # fmt: skip


def split_stdout():
    """Keep this process's standard output for the ready line and point file descriptor 1 at standard error,
    so nothing else (a library's print, Celery's shutdown notes) lands on it. In a terminal both are the
    terminal and nothing changes; under `skipweb up` the ready line reaches up's terminal, the rest its log."""
    sys.stdout.flush()
    ready_line = os.fdopen(os.dup(1), "w", buffering=1, encoding=sys.stdout.encoding or "utf-8")
    os.dup2(2, 1)
    return ready_line


def trains_on(torch, gpu: bool, threads: int) -> str:
    """Where this worker process trains, for its ready line: the GPU's name, or the CPU and its threads."""
    cpu = f"the CPU ({threads} torch thread{'s' if threads > 1 else ''})"
    if not gpu:
        return cpu
    if not torch.cuda.is_available():
        return f"{cpu}, standing in for a GPU (no CUDA here)"
    return f"GPU {physical_gpu(0)} ({torch.cuda.get_device_name()})"


def warm_up(torch) -> None:
    """Before the worker says it is connected: import the training code, give one tiny model an optimiser
    (torch.optim imports torch._dynamo on first use: 1.2 s here), import scikit-learn's datasets (the bundled
    digits: 1.2 s), and on a GPU create the CUDA context and load the convolution and matrix libraries (a bf16
    convolution, forward and backward). Otherwise the first run of each worker process pays for them: seconds
    on the critical path of the first click (the demo's 12 runs on 8 processes per GPU: most are first runs)."""
    import sklearn.datasets  # noqa: F401

    import skipweb.training.trainer  # noqa: F401
    from skipweb.describe import count_flops
    from skipweb.models import get_model

    tiny = get_model("mlp", depth=2, num_classes=2, in_channels=1, image_size=4)
    count_flops(tiny, 1, 4)
    torch.optim.SGD(tiny.parameters(), lr=0.1)

    if torch.cuda.is_available():
        conv = torch.nn.Conv2d(3, 16, 3, padding=1).cuda()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            conv(torch.randn(8, 3, 32, 32, device="cuda")).float().sum().backward()
        torch.cuda.synchronize()


ROOT_WARNING = ("running as root: skipweb's workers accept JSON messages only, so the broker cannot make them "
                "run code, but prefer an unprivileged user (the Docker image runs as 'skipweb')")


def running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def quiet_root_warning() -> None:
    """Celery prints a 6-line "absolutely not recommended" block when a worker runs as root (as in many
    containers and on this project's CI machine). Say once, in one line, what the risk is and is not instead:
    this app accepts JSON messages only (Celery refuses root outright when pickle is accepted), so a message on
    the broker cannot run code; root still lets a compromised training job touch the whole machine. (Under
    `skipweb up` this line goes to the log; up says it once on the terminal.)"""
    if not running_as_root():
        return
    import warnings

    from celery.exceptions import SecurityWarning

    warnings.filterwarnings("ignore", category=SecurityWarning)
    print(f"worker {ROOT_WARNING}", file=sys.stderr)


def register(app: typer.Typer) -> None:
    app.command()(worker)
