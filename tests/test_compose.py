"""docker-compose.yml and .env.example: the team deployment's shape, checked without Docker."""

from __future__ import annotations

import re

import pytest

from tests import ROOT

yaml = pytest.importorskip("yaml")

COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"


@pytest.fixture(scope="module")
def compose() -> dict:
    if not COMPOSE.exists():
        pytest.fail("docker-compose.yml is missing")
    return yaml.safe_load(COMPOSE.read_text())


def _command(service: dict) -> str:
    cmd = service.get("command", "")
    return " ".join(cmd) if isinstance(cmd, list) else str(cmd)


def test_services_present(compose):
    assert {"postgres", "redis", "web", "worker", "flower"} <= set(compose["services"])


def test_postgres_keeps_its_data_in_a_volume(compose):
    pg = compose["services"]["postgres"]
    mounts = [
        v if isinstance(v, str) else f"{v.get('source')}:{v.get('target')}" for v in pg.get("volumes", [])
    ]
    assert any(m.split(":")[1].startswith("/var/lib/postgresql/data") for m in mounts if ":" in m), mounts
    named = [m.split(":")[0] for m in mounts]
    assert any(n in (compose.get("volumes") or {}) for n in named), "postgres data is not a named volume"


def test_redis_persists_and_requires_a_password(compose):
    cmd = _command(compose["services"]["redis"])
    assert re.search(r"--appendonly[ =]yes", cmd), cmd
    assert "--requirepass" in cmd, cmd


def test_worker_reserves_nvidia_gpus(compose):
    devices = compose["services"]["worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert any(d.get("driver") == "nvidia" for d in devices), devices


def test_flower_is_bound_to_localhost(compose):
    ports = compose["services"]["flower"].get("ports", [])
    assert ports, "flower publishes no port"
    for p in ports:
        if isinstance(p, dict):
            assert p.get("host_ip") == "127.0.0.1", p
        else:
            assert str(p).startswith("127.0.0.1:"), p


@pytest.mark.parametrize("service", ["postgres", "redis"])
def test_health_checks(compose, service):
    check = compose["services"][service].get("healthcheck")
    assert check and check.get("test"), f"{service} has no health check"


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's variable interpolation (compose-spec "Interpolation"): ``$$``, ``${VAR}``, ``${VAR:-default}``,
    ``${VAR-default}``, ``${VAR:?error}``, ``${VAR?error}``, nested in defaults. An error raises
    ValueError("required variable VAR is missing a value: error"), as `docker compose` stops."""
    out, i = [], 0
    while i < len(text):
        if text.startswith("$$", i):
            out.append("$")
            i += 2
        elif text.startswith("${", i):
            depth, j = 1, i + 2  # find the matching brace: defaults may nest ${...}
            while depth:
                if text.startswith("${", j):
                    depth, j = depth + 1, j + 2
                    continue
                depth -= text[j] == "}"
                j += 1
            body = text[i + 2 : j - 1]
            name, op, arg = re.match(r"([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])(.*))?$", body, re.S).groups()
            value, unset = env.get(name), name not in env or (op and op.startswith(":") and not env.get(name))
            if op and op.endswith("-"):
                value = interpolate(arg, env) if unset else value
            elif op and op.endswith("?") and unset:
                raise ValueError(f"required variable {name} is missing a value: {arg}")
            out.append(value or "")
            i = j
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def test_interpolate_follows_compose():
    env = {"A": "a", "E": ""}
    assert interpolate("x${A}y $${A} ${B:-d${A}} ${E:-e} ${E-e} ${A:?no}", env) == "xay ${A} da e  a"
    with pytest.raises(ValueError, match="required variable E is missing a value: set it"):
        interpolate("${E:?set it}", env)


@pytest.mark.parametrize("env", [{}, {"POSTGRES_PASSWORD": "pg"}, {"POSTGRES_PASSWORD": "", "REDIS_PASSWORD": ""},
                                 {"REDIS_PASSWORD": "r"}])  # fmt: skip
def test_compose_refuses_to_start_without_the_passwords(env):
    """Issue 22 item 11: with no .env the passwords fell back to change-me; now compose stops, saying which
    variable to set (an empty one counts as missing: .env.example leaves them empty)."""
    with pytest.raises(ValueError, match=r"required variable (POSTGRES|REDIS)_PASSWORD is missing a value: set it "
                                         r"in \.env \(cp \.env\.example \.env\)"):  # fmt: skip
        interpolate(COMPOSE.read_text(), env)


def test_compose_with_the_passwords_publishes_the_dashboard_on_this_machine():
    env = {"POSTGRES_PASSWORD": "pg-secret", "REDIS_PASSWORD": "redis-secret"}
    compose = yaml.safe_load(interpolate(COMPOSE.read_text(), env))
    services, shared = compose["services"], compose["x-skipweb-env"]
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == "pg-secret"
    assert shared["SKIPWEB_DATABASE_URL"] == "postgresql+psycopg://skipweb:pg-secret@postgres:5432/skipweb"
    assert shared["SKIPWEB_BROKER_URL"] == "redis://:redis-secret@redis:6379/0"
    assert "redis-secret" in services["redis"]["command"] and "redis-secret" in _command(services["flower"])
    assert services["web"]["ports"] == ["127.0.0.1:8501:8501"]  # the team's network only when .env says so
    team = yaml.safe_load(interpolate(COMPOSE.read_text(), {**env, "DASHBOARD_ADDRESS": "0.0.0.0"}))
    assert team["services"]["web"]["ports"] == ["0.0.0.0:8501:8501"]
    assert "change-me" not in COMPOSE.read_text() + ENV_EXAMPLE.read_text()
    example = dict(ln.split("=", 1) for ln in ENV_EXAMPLE.read_text().splitlines() if ln and not ln.startswith("#"))
    assert example["POSTGRES_PASSWORD"] == example["REDIS_PASSWORD"] == ""  # copied unedited: compose refuses


def test_readme_creates_the_first_user_before_the_first_start():
    """With no /data/users.txt the web service exits 2 (no sign-in on 0.0.0.0) and restart: unless-stopped
    loops: the README's steps create the first user before `docker compose up`."""
    readme = (ROOT / "README.md").read_text()
    team = readme[readme.index("## Team deployment"):]
    team = team[: team.index("\n## ", 1)]
    first_user = team.index("docker compose run --rm --no-deps web skipweb passwd")
    assert team.index("cp .env.example .env") < first_user < team.index("docker compose up -d")


def test_every_skipweb_variable_is_a_setting():
    from skipweb.settings import Settings

    fields = {name.upper() for name in Settings.model_fields}
    text = COMPOSE.read_text() + (ENV_EXAMPLE.read_text() if ENV_EXAMPLE.exists() else "")
    used = set(re.findall(r"\bSKIPWEB_([A-Z0-9_]+)", text))
    assert used, "no SKIPWEB_ variable found"
    unknown = sorted(f"SKIPWEB_{v}" for v in used - fields)
    assert not unknown, f"not fields of skipweb.settings.Settings: {unknown}"


def test_team_deployment_requires_sign_in(compose):
    """Issue 11, door 10: the web service binds 0.0.0.0, so compose and .env.example ship sign-in on."""
    env = compose["x-skipweb-env"] if "x-skipweb-env" in compose else compose["services"]["web"]["environment"]
    assert str(env["SKIPWEB_AUTH_FILE"]).endswith("/data/users.txt}") or env["SKIPWEB_AUTH_FILE"] == "/data/users.txt"
    assert str(env["SKIPWEB_ALLOW_ANONYMOUS"]).endswith("-0}")
    lines = [ln.strip() for ln in ENV_EXAMPLE.read_text().splitlines()]
    assert "SKIPWEB_AUTH_FILE=/data/users.txt" in lines  # set, not commented out
    assert not any(ln.startswith("SKIPWEB_ALLOW_ANONYMOUS=1") for ln in lines)


@pytest.mark.parametrize("host, auth, anonymous, refused", [
    ("127.0.0.1", None, False, False),
    ("localhost", None, False, False),
    ("::1", None, False, False),
    ("0.0.0.0", None, False, True),
    ("192.168.1.5", None, False, True),
    ("0.0.0.0", "missing", False, True),
    ("0.0.0.0", "present", False, False),
    ("0.0.0.0", None, True, False),
])  # fmt: skip
def test_an_open_door_is_refused(tmp_path, host, auth, anonymous, refused):
    from skipweb.passwords import open_door, set_password

    auth_file = None if auth is None else tmp_path / "users.txt"
    if auth == "present":
        set_password(auth_file, "alice", "pw")
    why = open_door(host, auth_file, tmp_path / "secrets.toml", anonymous)
    assert (why is not None) == refused, why
    if refused:
        assert why.startswith(f"refusing to serve the dashboard on {host} with no sign-in") and "\n" not in why


def test_up_refuses_an_open_door_in_one_line(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "SKIPWEB_DATA_DIR": str(tmp_path)}
    env.pop("SKIPWEB_AUTH_FILE", None), env.pop("SKIPWEB_ALLOW_ANONYMOUS", None)
    out = subprocess.run([sys.executable, "-m", "skipweb", "up", "--host", "0.0.0.0", "--no-worker"], env=env,
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode == 2, out.stdout + out.stderr
    assert out.stderr.strip().startswith("error: refusing to serve the dashboard on 0.0.0.0")
    assert len(out.stderr.strip().splitlines()) == 1 and not (tmp_path / "skipweb.db").exists()
