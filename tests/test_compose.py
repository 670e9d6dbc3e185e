"""docker-compose.yml and .env.example: the team deployment's shape, checked without Docker."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

REPO = Path(__file__).resolve().parents[1]
COMPOSE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"


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


def test_every_skipweb_variable_is_a_setting():
    from skipweb.settings import Settings

    fields = {name.upper() for name in Settings.model_fields}
    text = COMPOSE.read_text() + (ENV_EXAMPLE.read_text() if ENV_EXAMPLE.exists() else "")
    used = set(re.findall(r"\bSKIPWEB_([A-Z0-9_]+)", text))
    assert used, "no SKIPWEB_ variable found"
    unknown = sorted(f"SKIPWEB_{v}" for v in used - fields)
    assert not unknown, f"not fields of skipweb.settings.Settings: {unknown}"
