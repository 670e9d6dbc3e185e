"""`skipweb up` starts quietly (issue 24 item 8): the URL, one line per worker process (where it trains, its
queues), the log file's path, and nothing else. It used to print two Celery banners, kombu's "No hostname
was supplied" four times, the root-user line once per process and the URL line broken at 80 columns."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.request

import pytest

pytestmark = pytest.mark.slow  # two workers and the dashboard start (no training), ~10 s on 2 cores


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.timeout(300)
def test_up_prints_the_url_one_line_per_worker_and_the_log(tmp_path) -> None:
    from skipweb.cli.worker import share_of_cores

    data, port = tmp_path / "data", free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKIPWEB_")}
    env.update(SKIPWEB_DATA_DIR=str(data), CUDA_VISIBLE_DEVICES="")  # the default: CPU workers, one per core
    workers = min(8, share_of_cores(1))
    up = subprocess.Popen([sys.executable, "-m", "skipweb", "up", "--port", str(port)], env=env, cwd=tmp_path,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)  # fmt: skip
    lines: list[str] = []
    try:
        # every worker says it is ready in one line: read up's output until they all have (or it ends)
        while sum(ln.startswith("worker ") for ln in lines) < workers and (line := up.stdout.readline()):
            lines.append(line.rstrip("\n"))
        answered = False
        while not answered and up.poll() is None:
            try:
                answered = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).status == 200
            except OSError:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    up.wait(0.5)  # between two asks, and at once when `up` dies
        assert answered, "\n".join(lines) + up.stdout.read()
        os.killpg(up.pid, signal.SIGINT)  # Ctrl-C in a terminal: to the whole process group
        rest = up.communicate(timeout=60)[0]
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)
    log = (data / "logs" / "up.log").resolve()
    said = "\n".join(lines) + "\n" + rest
    assert lines[:2] == [f"skipweb dashboard: http://127.0.0.1:{port}  (Ctrl-C stops)", f"log: {log}"], said
    ready = [ln for ln in lines if ln.startswith("worker ")]
    names = set()
    for ln in ready:
        m = re.fullmatch(r"worker (skipweb-cpu-\d+@\S+): trains on the CPU \(\d+ torch threads?\); queues cpu, any", ln)
        assert m, ln
        names.add(m[1])
    assert len(names) == workers, said
    root = ["workers running as root: skipweb's workers accept JSON messages only, so the broker cannot make "
            "them run code, but prefer an unprivileged user (the Docker image runs as 'skipweb')"]  # fmt: skip
    assert [ln for ln in lines[2:] if ln not in ready] == (root if os.geteuid() == 0 else []), said
    assert rest.splitlines() == ["stopping…"], said
    assert up.returncode == 0, said
    # the details went to the log: Streamlit's own lines, each worker's; no banner, no kombu warning
    text = log.read_text(errors="replace")
    assert "You can now view your Streamlit app" in text
    assert "No hostname was supplied" not in text and "[queues]" not in text and "Traceback" not in text, text
