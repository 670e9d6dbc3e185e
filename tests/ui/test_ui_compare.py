"""Compare and Present pages through Streamlit's AppTest, on a SQLite database holding real (tiny) runs
trained by the real trainer and written by the real DbSink."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("streamlit.testing.v1")
from streamlit.testing.v1 import AppTest  # noqa: E402


def _compare_app() -> None:
    from skipweb.ui.compare import page

    page()


def _present_app() -> None:
    from skipweb.ui.present import page

    page()


def _use_db(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> str:
    from skipweb.settings import get_settings

    monkeypatch.setenv("SKIPWEB_DATA_DIR", str(data_dir))
    monkeypatch.delenv("SKIPWEB_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    from skipweb.ui import data

    data.clear()  # every cached read and shared figure
    return get_settings().db_url


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """An experiment with plain-20 (seed 0) and resnet-20 (seeds 0, 1) on digits, really trained."""
    from db import experiments, migrate, runs
    from db.session import dispose_engine
    from skipweb.grid import row
    from skipweb.services.sink import DbSink
    from skipweb.spec import RunSpec
    from skipweb.training.trainer import Trainer

    data_dir = tmp_path_factory.mktemp("skipweb")
    url = f"sqlite:///{(data_dir / 'skipweb.db').resolve()}"
    migrate.upgrade(url)
    exp = experiments.create_experiment(url, "plain vs resnet")
    base = {
        "dataset": "digits",
        "depth": 20,
        "epochs": 2,
        "subset": 256,
        "batch_size": 64,
        "probe_every": 2,
        "device": "cpu",
    }
    specs = [
        RunSpec.parse({**base, "family": f, "seed": s})
        for f, s in [("plain", 0), ("resnet", 0), ("resnet", 1)]
    ]
    ids = runs.add_runs(url, exp, [row(s) for s in specs])
    for rid, spec in zip(ids, specs, strict=True):
        assert runs.claim(url, rid, "test-worker")
        result = Trainer(spec, data_dir=data_dir, sinks=[DbSink(rid, db=url, owner="test-worker")]).run()
        assert runs.finish(url, rid, "test-worker", result.status, result.reason)
    yield {
        "dir": data_dir,
        "url": url,
        "exp": exp,
        "ids": ids,
        "runs": {r.id: r for r in runs.list_runs(url)},
    }
    dispose_engine(url)


def _run(app, **params: str) -> AppTest:
    at = AppTest.from_function(app, default_timeout=60)
    for k, v in params.items():
        at.query_params[k] = v
    return at.run()


def test_compare_experiment_view(trained, monkeypatch):
    _use_db(monkeypatch, trained["dir"])
    at = _run(_compare_app, exp=str(trained["exp"]), x="epoch", smooth="0.5", log="1")
    assert not at.exception
    assert not at.error and not at.warning
    table = at.dataframe[0].value
    runs = trained["runs"]
    assert sorted(table["label"]) == sorted(r.label for r in runs.values())
    for rid, r in runs.items():
        got = table.loc[table["run"] == rid].iloc[0]
        assert got["params"] == r.params > 0
        assert got["final test error"] == pytest.approx(r.latest["test/error"])
        assert got["time"].endswith("s")  # 1m23s, not 83.2147
    # one tab open at a time, and only the open one is computed and drawn
    assert at.session_state["cmp_view"] == "Curves" and len(at.get("plotly_chart")) == 1
    at.session_state["cmp_view"] = "Gradient flow"  # what clicking the tab does
    at.run()
    assert not at.exception and dict(at.query_params)["view"] == "gradients"
    heat, depth = [c.proto.spec for c in at.get("plotly_chart")]
    assert '"type":"heatmap"' in heat.replace(" ", "") and "(step " in depth  # the probe step's profile
    # skip path vs branch: one panel per run on one diverging scale; the plain net has no skip path
    at = _run(_compare_app, exp=str(trained["exp"]), x="epoch", smooth="0.5", log="1", view="blocks")
    assert not at.exception and at.radio(key="cmp_block_view").value == "ratio"
    specs = [c.proto.spec for c in at.get("plotly_chart")]
    assert "log10 skip" in specs[0] and "not defined\\u003cbr\\u003efor this net" in specs[0]
    assert '"type":"heatmap"' in specs[0].replace(" ", "") and "gradient ratio per block" in specs[1]
    at.radio(key="cmp_block_view").set_value("act_dead").run()
    assert not at.exception and "dead-unit fraction" in at.get("plotly_chart")[0].proto.spec
    assert dict(at.query_params)["view"] == "blocks"
    at = _run(_compare_app, exp=str(trained["exp"]), view="depth")  # degradation, error vs params
    assert [("against depth" in c.proto.spec, "against parameters" in c.proto.spec) for c in at.get("plotly_chart")] == [
        (True, False), (False, True)]  # fmt: skip
    at = _run(_compare_app, exp=str(trained["exp"]), x="epoch", smooth="0.5", log="1")
    # Compare links to the projector view of the same selection
    present = [m.value for m in at.markdown if "./present?" in m.value]
    assert present and f"exp={trained['exp']}" in present[0] and "x=epoch" in present[0], present
    tab = _run(_compare_app, exp=str(trained["exp"]), view="gradients")  # the open tab travels to Present
    present = [m.value for m in tab.markdown if "./present?" in m.value]
    assert present and "view=gradients" in present[0], present
    # the URL reproduces the view: widget state came from it and was written back
    assert at.session_state["cmp_x"] == "epoch" and at.session_state["cmp_smooth"] == 0.5
    assert at.session_state["cmp_log"] is True
    assert dict(at.query_params)["exp"] == str(trained["exp"])
    at.radio(key="cmp_x").set_value("wall").run()  # a widget change goes back into the URL
    assert not at.exception and dict(at.query_params)["x"] == "wall"


def test_compare_runs_folded(trained, monkeypatch):
    _use_db(monkeypatch, trained["dir"])
    resnets = [rid for rid, r in trained["runs"].items() if r.family == "resnet"]
    at = _run(_compare_app, runs=",".join(map(str, resnets)), fold="1")
    assert not at.exception and not at.error
    spec = at.get("plotly_chart")[0].proto.spec
    assert "resnet-20 (2 seeds)" in spec
    assert sorted(at.dataframe[0].value["run"]) == sorted(resnets)


@pytest.mark.parametrize(
    ("params", "kind", "text"),
    [
        ({"runs": "1,x"}, "error", "'x' is not an integer run id"),
        ({"runs": "1,99999999999999999999"}, "error", "99999999999999999999 is not a run id (ids run from 1 to"),
        ({"runs": "3000000000"}, "error", "3000000000 is not a run id"),
        ({"exp": "99999999999999999999"}, "error", "must be an experiment id, 1 to 2147483647"),
        ({"exp": "abc"}, "error", "must be an experiment id"),
        ({"exp": "999"}, "warning", "Experiment 999 does not exist"),
        ({"runs": "1,777"}, "warning", "Unknown run id(s) 777"),
        ({"exp": "1", "x": "furlongs"}, "warning", "Unknown x-axis 'furlongs'"),
        ({"exp": "1", "smooth": "nan?"}, "warning", "Bad `smooth`"),
        ({"exp": "1", "view": "sideways"}, "warning", "Unknown view 'sideways'; choose one of curves, gradients"),
    ],
)
def test_compare_bad_params_show_message_not_traceback(trained, monkeypatch, params, kind, text):
    _use_db(monkeypatch, trained["dir"])
    at = _run(_compare_app, **params)
    assert not at.exception
    assert any(text in m.value for m in getattr(at, kind))


def test_compare_empty_db_says_how_to_launch(tmp_path, monkeypatch):
    from db import migrate

    url = _use_db(monkeypatch, tmp_path)
    migrate.upgrade(url)
    at = _run(_compare_app)
    assert not at.exception
    assert "Launch" in at.info[0].value


def test_present_renders_user_text_as_text(trained, monkeypatch):
    _use_db(monkeypatch, trained["dir"])
    evil = "<script>alert(1)</script> **bold**"
    at = _run(
        _present_app, exp=str(trained["exp"]), charts="curves,degradation,bogus", title=evil, notes=evil
    )
    assert not at.exception
    assert at.text[0].value == evil  # notes: st.text, verbatim
    assert "<script>" not in at.title[0].value  # title: markdown-escaped
    assert any("Unknown chart(s) 'bogus'" in w.value for w in at.warning)
    assert len(at.get("plotly_chart")) == 2
    assert all("<script>" not in m.value for m in at.markdown)  # only the static CSS is raw HTML


def test_present_blocks_chart(trained, monkeypatch):
    _use_db(monkeypatch, trained["dir"])
    at = _run(_present_app, exp=str(trained["exp"]), charts="blocks")
    assert not at.exception and not at.warning
    (chart,) = at.get("plotly_chart")
    assert "log10 skip" in chart.proto.spec and "not defined\\u003cbr\\u003efor this net" in chart.proto.spec
    at = _run(_present_app, exp=str(trained["exp"]), view="gradients")  # Compare's open tab, without charts=
    assert not at.exception and not at.warning and len(at.get("plotly_chart")) == 2  # heatmaps, depth profile


def test_present_leaves_the_figures_viewers_share_unchanged(trained, monkeypatch):
    """Compare's figures are built once per TTL and shared by every viewer (ui.data.shared, issue 13 item 5);
    Present enlarges the fonts of its own copy, never of the shared figure."""
    from skipweb.facts import Metric
    from skipweb.ui import data, selection

    url = _use_db(monkeypatch, trained["dir"])
    present = _run(_present_app, exp=str(trained["exp"]), charts="curves")
    assert '"font":{"size":20}' in present.get("plotly_chart")[0].proto.spec.replace(" ", "")
    runs = data.experiment_runs(url, trained["exp"])
    shared = selection.curve_figure(url, runs, Metric.TEST_ERROR, "step", 0.0, False, False)
    assert selection.curve_figure(url, runs, Metric.TEST_ERROR, "step", 0.0, False, False) is shared
    assert shared.layout.font.size != 20
    compare = _run(_compare_app, exp=str(trained["exp"]))
    assert '"size":20' not in compare.get("plotly_chart")[0].proto.spec.replace(" ", "")


def test_present_bad_params(trained, monkeypatch):
    _use_db(monkeypatch, trained["dir"])
    at = _run(_present_app, runs="a,b")
    assert not at.exception
    assert "not an integer run id" in at.error[0].value


def test_metric_display_buckets_long_series_in_the_database(tmp_path, monkeypatch):
    import numpy as np
    import pandas as pd

    from db import experiments, metrics, migrate, runs
    from skipweb.ui import data

    url = _use_db(monkeypatch, tmp_path)
    migrate.upgrade(url)
    exp = experiments.create_experiment(url, "long")
    row = {
        "spec": {"seed": 0},
        "config_hash": "h",
        "label": "r",
        "family": "plain",
        "depth": 20,
        "dataset": "digits",
        "seed": 0,
    }
    long_id, short_id = runs.add_runs(url, exp, [row, {**row, "config_hash": "h2"}], checkpoint_dir=tmp_path)
    vals = np.random.default_rng(3).normal(size=1000)
    metrics.write_batch(url, long_id, [("train/loss", s, s / 10, v, s * 0.1) for s, v in enumerate(vals)])
    metrics.write_batch(url, short_id, [("train/loss", s, s / 10, float(s), s * 0.1) for s in range(50)])
    df = data.metric_display(url, (long_id, short_id), "train/loss", 100)
    long = df[df["run_id"] == long_id]
    k = -(-1000 // 99)  # steps per bucket, so that there are at most 100 buckets
    expect = pd.DataFrame({"b": np.arange(1000) // k, "v": vals, "s": np.arange(1000)}).groupby("b").mean()
    assert len(long) == len(expect) <= 100
    np.testing.assert_allclose(long["value"], expect["v"])
    np.testing.assert_array_equal(long["step"], np.rint(expect["s"]))
    short = df[df["run_id"] == short_id]
    np.testing.assert_array_equal(short["value"], np.arange(50))  # short series whole


def test_present_says_what_it_shows(trained, monkeypatch):
    """Issue 12 item 1: the projector view names the experiment, its data, recipe, seeds and date, read
    from the runs' own specs."""
    import datetime

    _use_db(monkeypatch, trained["dir"])
    at = _run(_present_app, exp=str(trained["exp"]), charts="curves")
    assert not at.exception
    assert at.title[0].value == "plain vs resnet"  # no title= given: the experiment's
    today = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-")
    context = at.caption[0].value
    assert context.startswith(f"Experiment #{trained['exp']} «plain vs resnet» · digits · 2 epochs, batch 64, lr ")
    from types import SimpleNamespace

    from skipweb.ui.formatting import run_context

    one = SimpleNamespace(spec={"dataset": "digits", "epochs": 1, "batch_size": 32, "lr": 0.025, "seed": 0},
                          created_at=None)
    assert "digits · 1 epoch, batch 32" in run_context([one], None)
    assert " · seeds 0, 1 · " in context and today in context


def test_heatmaps_default_to_one_run_of_each_configuration():
    """The default heatmap selection shows every kind of net before a second seed of any (a story's runs come
    sorted by configuration, so the first four were often four seeds of plain nets)."""
    from skipweb.ui.figures import first_of_each

    names = ["plain-20 · seed 0", "plain-20 · seed 1", "plain-56 · seed 0", "plain-56 · seed 1",
             "resnet-20 · seed 0", "resnet-20 · seed 1", "resnet-56 · seed 0"]  # fmt: skip
    assert first_of_each(names) == ["plain-20 · seed 0", "plain-56 · seed 0", "resnet-20 · seed 0",
                                    "resnet-56 · seed 0"]  # fmt: skip
    assert first_of_each(["a", "b"]) == ["a", "b"]
    assert first_of_each(["x · seed 0", "x · seed 1", "y"], n=3) == ["x · seed 0", "y", "x · seed 1"]


def test_the_served_dashboard_imports_its_pages_before_the_first_viewer() -> None:
    """`skipweb up` runs Streamlit through skipweb.ui.server, which imports every page first (so the first
    viewer does not wait for pandas, plotly and the stories) and logs nothing while doing so."""
    import subprocess
    import sys

    code = (
        "import logging, sys\n"
        "logging.basicConfig(level=logging.WARNING)\n"
        "from skipweb.ui import server\n"
        "assert not any(m.startswith('skipweb.ui.compare') for m in sys.modules)\n"
        "server.warm()\n"
        "from skipweb.ui.links import PAGE_MODULES\n"
        "print(sorted(m for m in sys.modules if m in {f'skipweb.ui.{m}' for m, _ in PAGE_MODULES.values()}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == str(sorted(f"skipweb.ui.{p}" for p in
                                            ("compare", "launch", "present", "run_detail", "runs")))
    assert "No runtime found" not in out.stderr, out.stderr[-1000:]
