"""The dashboard's own door (issue 22 item 10): the sign-in check lived only in `skipweb up`, so
`streamlit run app.py --server.address 0.0.0.0` served an open dashboard. app.py now refuses a
non-loopback address (or none: every interface) without sign-in, in one line and with no page: checked in
AppTest and against a real Streamlit server over its websocket."""

from __future__ import annotations

import asyncio

import pytest

from tests import ROOT

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

TIMEOUT = 60


@pytest.fixture
def address():
    """Set Streamlit's server.address as `streamlit run --server.address A` would; the app reads it."""
    from streamlit import config

    old = config.get_option("server.address")
    yield lambda value: config.set_option("server.address", value)
    config.set_option("server.address", old)


@pytest.mark.parametrize("bind", ["0.0.0.0", "192.168.1.5", None])  # None: unset, every interface
def test_app_refuses_the_network_without_sign_in(env, address, bind):
    """Issue 22 item 10: the sign-in check lived only in `skipweb up`; `streamlit run app.py --server.address
    0.0.0.0` served an open dashboard. The app shows one line and nothing else (no page, no sidebar)."""
    address(bind)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    assert not at.exception
    where = bind or "every interface"
    assert [e.value for e in at.error] == [
        f"refusing to serve the dashboard on {where} with no sign-in: create users with `skipweb passwd USER` "
        "and set SKIPWEB_AUTH_FILE, or configure OIDC in .streamlit/secrets.toml, or set SKIPWEB_ALLOW_ANONYMOUS=1 "
        "to serve it open; or serve it on this machine only: --server.address 127.0.0.1"]
    assert not at.button and not at.sidebar.children and not at.title


@pytest.mark.parametrize("door", ["auth_file", "anonymous", "oidc"])
def test_app_serves_the_network_with_sign_in(env, address, monkeypatch, tmp_path, door):
    from skipweb.passwords import set_password
    from skipweb.settings import get_settings

    address("0.0.0.0")
    if door == "auth_file":
        set_password(tmp_path / "users.txt", "alice", "pw")
        monkeypatch.setenv("SKIPWEB_AUTH_FILE", str(tmp_path / "users.txt"))
    elif door == "anonymous":
        monkeypatch.setenv("SKIPWEB_ALLOW_ANONYMOUS", "1")
    else:
        (tmp_path / ".streamlit").mkdir()
        (tmp_path / ".streamlit" / "secrets.toml").write_text(
            '[auth]\nredirect_uri = "http://x/oauth2callback"\ncookie_secret = "s"\nclient_id = "c"\n'
            'client_secret = "c"\nserver_metadata_url = "http://x/.well-known/openid-configuration"\n')
    get_settings.cache_clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    assert not at.exception and not at.error
    assert any(b.label == "Run the demo" for b in at.button)


def test_streamlit_run_on_the_network_refuses_without_sign_in(tmp_path):
    """Issue 22 item 10, against a real server: `streamlit run app.py --server.address 0.0.0.0` (the command
    app.py's docstring gave) served an open dashboard; a browser's session now gets one line and no page."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "SKIPWEB_DATA_DIR": str(tmp_path)}
    for name in ("SKIPWEB_AUTH_FILE", "SKIPWEB_ALLOW_ANONYMOUS", "SKIPWEB_DATABASE_URL", "SKIPWEB_BROKER_URL"):
        env.pop(name, None)
    cmd = [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.address", "0.0.0.0",
           "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none"]  # fmt: skip
    with open(tmp_path / "streamlit.log", "w") as log:
        proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 300  # bounds a server that never starts; a healthy one answers in seconds
        while True:  # until the server answers, or exits
            assert proc.poll() is None, (tmp_path / "streamlit.log").read_text()[-2000:]
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=5)
                break
            except OSError:
                assert time.monotonic() < deadline, (tmp_path / "streamlit.log").read_text()[-2000:]
                time.sleep(0.2)
        elements = asyncio.run(_first_page(port))
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
    assert [kind for kind, _ in elements] == ["alert"], elements
    assert elements[0][1].startswith("refusing to serve the dashboard on 0.0.0.0 with no sign-in")
    assert elements[0][1].endswith("or serve it on this machine only: --server.address 127.0.0.1")
    assert not (tmp_path / "skipweb.db").exists()  # refused before the database was opened


async def _first_page(port: int) -> list[tuple[str, str]]:
    """What a browser's session receives when it opens the dashboard: (element type, text) of each element
    the script draws, over Streamlit's own websocket protocol (websockets: a dependency of Streamlit's)."""
    import websockets
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    out = []
    async with websockets.connect(f"ws://127.0.0.1:{port}/_stcore/stream", subprotocols=["streamlit"],
                                  max_size=None, open_timeout=60) as ws:  # fmt: skip
        msg = BackMsg()
        msg.rerun_script.query_string = ""
        await ws.send(msg.SerializeToString())
        while True:
            fwd = ForwardMsg()
            fwd.ParseFromString(await asyncio.wait_for(ws.recv(), 120))
            if fwd.WhichOneof("type") == "delta" and fwd.delta.WhichOneof("type") == "new_element":
                element = fwd.delta.new_element
                kind = element.WhichOneof("type")
                out.append((kind, element.alert.body if kind == "alert" else ""))
            if fwd.WhichOneof("type") == "script_finished":
                return out
