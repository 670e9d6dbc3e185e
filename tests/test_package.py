"""skipweb as a normal package (issue 23 item 1): built as a wheel, installed into a directory of its own and
started from another directory, it migrates its database and serves every page. It used to find the
dashboard's script next to the checkout (`…/site/app.py: File does not exist`)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests import ROOT

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
# (url path, the page's title): every page of the router
PAGES = [("launch", "Launch"), ("runs", "Runs"), ("compare", "Compare runs"), ("run", "Run detail"),
         ("present", "skipweb")]  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, dict]:
    """The wheel, built from a copy of what it is built from (so no build/ of the checkout's leaks in) and
    installed with `pip install --target`; its environment: the target on PYTHONPATH, the venv's
    site-packages for the dependencies, no checkout anywhere on the path."""
    tmp = tmp_path_factory.mktemp("package")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "requirements.txt"):
        shutil.copy(ROOT / name, src / name)
    for pkg in ("skipweb", "db", "workers"):
        shutil.copytree(ROOT / pkg, src / pkg, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    out = subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp / "wheel"), str(src)],
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "License classifiers are deprecated" not in out.stderr and "project.license" not in out.stderr
    (wheel,) = (tmp / "wheel").glob("skipweb-*.whl")
    target = tmp / "site"
    out = subprocess.run([*pip, "install", "--no-deps", "--target", str(target), str(wheel)],
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    cwd = tmp / "elsewhere"
    cwd.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKIPWEB_") and k != "PYTHONPATH"}
    env.update(PYTHONPATH=str(target), SKIPWEB_DATA_DIR=str(tmp / "data"))
    where = subprocess.run([sys.executable, "-c", "import skipweb, db, workers; print(skipweb.__file__, "
                            "db.__file__, workers.__file__)"], cwd=cwd, env=env, capture_output=True, text=True,
                           timeout=120)  # fmt: skip
    assert where.returncode == 0, where.stderr[-2000:]
    assert all(Path(p).is_relative_to(target) for p in where.stdout.split()), where.stdout
    return target, {"env": env, "cwd": cwd}


def skipweb(target: Path) -> list[str]:
    """The console script pip installed (run by this interpreter: its #! line may be too long for the kernel)."""
    return [sys.executable, str(target / "bin" / "skipweb")]


def test_the_wheel_holds_the_dashboard_and_the_migrations(installed) -> None:
    target, _ = installed
    assert (target / "skipweb" / "ui" / "app.py").is_file()
    assert (target / "db" / "migrations" / "script.py.mako").is_file()
    assert sorted(p.name for p in (target / "db" / "migrations" / "versions").glob("*.py")) == sorted(
        p.name for p in (ROOT / "db" / "migrations" / "versions").glob("*.py"))
    assert not (target / "app.py").exists() and not (target / "tests").exists()


@pytest.mark.slow
def test_db_upgrade_from_another_directory(installed) -> None:
    target, run = installed
    out = subprocess.run([*skipweb(target), "db", "upgrade"], capture_output=True, text=True, timeout=300, **run)
    assert out.returncode == 0, out.stderr[-2000:]
    assert re.search(r"at revision \d{4}", out.stdout), out.stdout
    assert (Path(run["env"]["SKIPWEB_DATA_DIR"]) / "skipweb.db").is_file()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_up_serves_every_page_from_another_directory(installed) -> None:
    """`skipweb up --no-worker` from the installed package: Streamlit answers, and in a real Chromium each
    page of the router shows its title (no exception box)."""
    target, run = installed
    port = free_port()
    log_path = run["cwd"] / "up.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([*skipweb(target), "up", "--no-worker", "--port", str(port)], stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True, **run)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        health = None
        while proc.poll() is None and health is None:  # a dead `up` ends the wait, not a clock
            try:
                health = urllib.request.urlopen(url + "/_stcore/health", timeout=5).read()
            except OSError:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(0.5)  # between two asks, and at once when `up` dies
        assert health == b"ok", log_path.read_text(errors="replace")[-3000:]
        assert urllib.request.urlopen(url + "/", timeout=30).status == 200
        if not Path(CHROMIUM).exists():
            pytest.skip("Debian chromium is not installed (scripts/system-deps.sh): pages not opened")
        from playwright.sync_api import sync_playwright

        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            page = browser.new_page()
            for path, title in PAGES:
                page.goto(f"{url}/{path}")
                page.get_by_role("heading", name=title, exact=True).first.wait_for(timeout=120_000)
                assert not page.locator('[data-testid="stException"]').count(), (path, page.inner_text("body"))
            browser.close()
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    text = log_path.read_text(errors="replace")
    assert "Traceback" not in text and "does not exist" not in text, text[-3000:]


def test_the_image_installs_the_package_as_a_wheel_does() -> None:
    """The Dockerfile installs with `pip install .` (not editable) and runs away from the sources."""
    lines = [ln for ln in (ROOT / "Dockerfile").read_text().splitlines() if ln.startswith("RUN ")]
    install = [ln for ln in lines if re.search(r"pip install (--no-deps )?\.(\s|$)", ln)]
    assert install, lines
    assert not any(re.search(r"pip install .*(-e|--editable)\b", ln) for ln in lines), lines
    assert "rm -rf /src" in install[0]
