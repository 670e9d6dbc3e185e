"""Loss landscapes on the dashboard (Streamlit AppTest): Run detail shows a stored landscape and queues new
ones, Compare and Present put two side by side, Launch asks for them after training. Real tiny runs trained
by the worker's own runner, real landscapes from compute_and_store, the embedded broker in a temp dir."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("streamlit.testing.v1")
from streamlit.testing.v1 import AppTest  # noqa: E402

TIMEOUT = 60
TINY = {"dataset": "digits", "epochs": 1, "subset": 64, "batch_size": 32, "probe_every": 5, "device": "cpu"}


def _page(name: str) -> None:
    import importlib

    importlib.import_module(f"skipweb.ui.{name}").page()


def _run(name: str, **query: str) -> AppTest:
    at = AppTest.from_function(_page, args=(name,), default_timeout=TIMEOUT)
    for k, v in query.items():
        at.query_params[k] = v
    return at.run()


def _use(monkeypatch: pytest.MonkeyPatch, data: Path, url: str) -> None:
    import streamlit as st

    from skipweb.settings import get_settings

    monkeypatch.setenv("SKIPWEB_DATA_DIR", str(data))
    monkeypatch.setenv("SKIPWEB_DATABASE_URL", url)
    monkeypatch.delenv("SKIPWEB_BROKER_URL", raising=False)
    monkeypatch.delenv("SKIPWEB_AUTH_FILE", raising=False)
    monkeypatch.chdir(data)
    get_settings.cache_clear()
    st.cache_data.clear()


def _charts(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def _traces(spec: dict, kind: str) -> list[dict]:
    return [t for t in spec["data"] if t.get("type") == kind]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """plain-8 and resnet-8 trained by skipweb.services.training.execute with a 5×5 landscape each; resnet-20 queued."""
    from db import experiments, migrate, runs
    from db.session import dispose_engine
    from skipweb.grid import plan, row
    from skipweb.services.landscapes import compute_and_store
    from skipweb.services.training import execute
    from skipweb.settings import Settings

    data = tmp_path_factory.mktemp("landscape-ui")
    url = f"sqlite:///{data / 'skipweb.db'}"
    migrate.upgrade(url)
    settings = Settings(data_dir=data, database_url=url)
    exp = experiments.create_experiment(url, "plain vs resnet")
    specs = plan(["plain", "resnet"], [8], [0], TINY) + plan(["resnet"], [20], [0], TINY)
    plain, resnet, queued = runs.add_runs(url, exp, [row(s) for s in specs], checkpoint_dir=data / "ckpt")
    for rid in (plain, resnet):
        assert execute(rid, settings=settings, owner="test") == "succeeded"
        compute_and_store(settings, rid, grid=5, range_=1.0, subset=64, seed=0)
    yield {"data": data, "url": url, "plain": plain, "resnet": resnet, "queued": queued}
    dispose_engine(url)


def test_run_detail_shows_landscape_and_queues_a_job(trained, monkeypatch) -> None:
    from db.landscape_jobs import list_jobs

    _use(monkeypatch, trained["data"], trained["url"])
    at = _run("run_detail", run=str(trained["resnet"]))
    assert not at.exception and not at.error
    assert "Loss landscape" in [s.value for s in at.subheader]
    specs = _charts(at)
    assert len(_traces(specs[-3], "contour")) == 1 and len(_traces(specs[-2], "surface")) == 1
    assert specs[-1]["layout"]["title"]["text"] == "initial → final weights"
    assert any("5×5 grid over ±1" in c.value for c in at.caption)

    button = at.button(key="landscape_go")
    assert not button.disabled
    at.number_input(key="landscape_grid").set_value(7)
    at.number_input(key="landscape_range").set_value(0.5)
    at = at.button(key="landscape_go").click().run()
    assert not at.exception and not at.error
    [job] = list_jobs(trained["url"], trained["resnet"])
    assert (job.status, job.grid, job.range) == ("queued", 7, 0.5)
    assert any(f"Landscape job {job.id} queued" in s.value for s in at.success)
    assert len(list((trained["data"] / "broker" / "queue").iterdir())) == 1  # its id went to the broker
    assert any(f"Landscape job {job.id} is queued: the landscape appears here when it is stored" in i.value
               for i in at.info)
    assert list(at.dataframe[-1].value["status"]) == ["queued"]


def test_run_detail_unfinished_run_cannot_compute(trained, monkeypatch) -> None:
    _use(monkeypatch, trained["data"], trained["url"])
    at = _run("run_detail", run=str(trained["queued"]))
    assert not at.exception
    assert any("No loss landscape for this run yet" in i.value for i in at.info)
    assert at.button(key="landscape_go").disabled
    assert any(f"run {trained['queued']} is queued" in c.value for c in at.caption)


def test_compare_two_landscapes_on_one_colour_scale(trained, monkeypatch) -> None:
    _use(monkeypatch, trained["data"], trained["url"])
    ids = [trained["plain"], trained["resnet"], trained["queued"]]
    at = _run("compare", runs=",".join(map(str, ids)), view="landscape")
    assert not at.exception and not at.error
    assert at.multiselect(key="cmp_landscape_runs").value == [trained["plain"], trained["resnet"]]
    specs = {s["layout"].get("title", {}).get("text"): s for s in _charts(at)}
    contour = specs["loss landscape (filter-normalized)"]
    panels = _traces(contour, "contour")
    assert [p["name"] for p in panels] == ["plain-8", "resnet-8"]
    assert {p["coloraxis"] for p in panels} == {"coloraxis"}  # one colour scale for both
    axis = contour["layout"]["coloraxis"]
    assert {(p["zmin"], p["zmax"]) for p in panels} == {(axis["cmin"], axis["cmax"])}
    surfaces = [s for s in _charts(at) if _traces(s, "surface")]
    assert len(surfaces) == 1 and len(_traces(surfaces[0], "surface")) == 2
    lacking = " ".join(i.value for i in at.info)
    assert f"No loss landscape yet for #{trained['queued']}" in lacking
    assert f"skipweb landscape {trained['queued']}" in lacking


def test_present_landscape_chart(trained, monkeypatch) -> None:
    _use(monkeypatch, trained["data"], trained["url"])
    ids = [trained["queued"], trained["plain"], trained["resnet"]]
    at = _run("present", runs=",".join(map(str, ids)), charts="landscape")
    assert not at.exception and not at.warning
    [spec] = _charts(at)
    assert [p["name"] for p in _traces(spec, "contour")] == ["plain-8", "resnet-8"]


def test_launch_asks_for_landscapes_after_training(tmp_path, monkeypatch) -> None:
    from db import migrate
    from db.landscape_jobs import latest_jobs
    from db.run_queries import list_runs
    from db.session import dispose_engine

    url = f"sqlite:///{tmp_path / 'skipweb.db'}"
    migrate.upgrade(url)
    _use(monkeypatch, tmp_path, url)
    at = _run("launch")
    at.button(key="preset_Degradation").click().run()
    assert at.number_input(key="launch_landscape_grid").disabled
    at.checkbox(key="launch_landscape").check().run()
    at.number_input(key="launch_landscape_grid").set_value(5).run()
    at.checkbox(key="launch_sure").check().run()  # 12 runs
    at.button(key="launch_go").click().run()
    assert not at.exception and not at.error
    ids = [r.id for r in list_runs(url, limit=None)]
    jobs = latest_jobs(url, ids)
    assert len(ids) == 12 and sorted(jobs) == sorted(ids)
    assert {(j.status, j.grid) for j in jobs.values()} == {("pending", 5)}
    assert any("A loss landscape follows each run" in i.value for i in at.info)
    dispose_engine(url)
