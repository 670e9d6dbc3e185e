"""The pages that show runs (Runs, Run detail, Compare, and the Launch page's view of runs already there)
through Streamlit's AppTest, against a temporary migrated SQLite database: one module-scoped database with
a really trained run and runs running, failed and cancelled (``trained``), or conftest's empty ``env``.
Each page function runs as a small script (tests/ui/pages.py) so query params and session state can be
set. User text is text on every page.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("streamlit")

from tests.ui.pages import MARKDOWN, add, count_runs, page_test, sources, team_sign_in, texts  # noqa: E402


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    """A database with one really trained run (digits resnet-20, 1 epoch) and runs that are running,
    failed and cancelled. Module-scoped: training once is enough."""
    from db import migrate
    from db.runs import claim, finish, get_run, request_cancel
    from skipweb.services.sink import DbSink
    from skipweb.spec import RunSpec
    from skipweb.training.trainer import Trainer

    tmp = tmp_path_factory.mktemp("ui")
    url = f"sqlite:///{tmp / 'skipweb.db'}"
    migrate.upgrade(url)
    base = {"dataset": "digits", "epochs": 1, "device": "cpu", "batch_size": 64}
    ids = add(
        url,
        [
            {**base, "family": "resnet", "depth": 20},
            {**base, "family": "plain", "depth": 20},
            {**base, "family": "plain", "depth": 8},
            {**base, "family": "resnet", "depth": 8},
        ],
        title="Degradation *bold* <b>x</b>",
        tags=["t1"],
    )
    done, running, failed, cancelled = ids
    (unet,) = add(
        url,
        [{**base, "dataset": "shapes", "family": "unet", "depth": 2, "subset": 64, "options": {"width": 8}}],
        title="unet",
        checkpoint_dir=tmp / "checkpoints",
    )
    assert claim(url, done, "w1", host="host-a", device="cpu")
    spec = RunSpec.parse(get_run(url, done).spec_json)
    Trainer(spec, data_dir=tmp / "datasets", sinks=[DbSink(done, db=url)]).run()
    assert finish(url, done, "w1", "succeeded")
    assert claim(url, unet, "w1", host="host-a", device="cpu")
    unet_run = get_run(url, unet)
    unet_spec = RunSpec.parse(unet_run.spec_json)
    Trainer(
        unet_spec,
        data_dir=tmp / "datasets",
        checkpoint_dir=Path(unet_run.checkpoint_path),
        sinks=[DbSink(unet, db=url)],
    ).run()
    assert finish(url, unet, "w1", "succeeded")
    assert claim(url, running, "w2", host="host-b", device="cpu")
    assert claim(url, failed, "w3", host="host-c", device="cpu")
    assert finish(url, failed, "w3", "failed", reason="CUDA out of memory (boom)")
    assert request_cancel(url, cancelled) == "cancelled"
    return {
        "url": url,
        "tmp": tmp,
        "done": done,
        "running": running,
        "failed": failed,
        "cancelled": cancelled,
        "unet": unet,
    }


@pytest.fixture
def trained_env(trained, monkeypatch: pytest.MonkeyPatch):
    from skipweb.settings import get_settings

    monkeypatch.setenv("SKIPWEB_DATA_DIR", str(trained["tmp"]))
    monkeypatch.setenv("SKIPWEB_DATABASE_URL", trained["url"])
    monkeypatch.delenv("SKIPWEB_AUTH_FILE", raising=False)
    monkeypatch.chdir(trained["tmp"])
    get_settings.cache_clear()
    yield trained
    get_settings.cache_clear()


# ---- runs ------------------------------------------------------------------------------------------
def test_runs_table_shows_statuses_and_progress(trained_env):
    at = page_test("runs").run()
    assert not at.exception
    table = at.dataframe[0].value
    by_id = table.set_index("id")
    assert by_id.loc[trained_env["done"], "status"] == "succeeded"
    assert by_id.loc[trained_env["done"], "progress"] == pytest.approx(1.0)
    assert 0.0 <= float(by_id.loc[trained_env["done"], "test error"]) <= 1.0  # the logged test/error
    assert by_id.loc[trained_env["running"], "status"] == "running"
    assert by_id.loc[trained_env["running"], "worker"] == "host-b"
    assert by_id.loc[trained_env["failed"], "reason"].startswith("CUDA out of memory")
    assert by_id.loc[trained_env["cancelled"], "status"] == "cancelled"
    assert by_id.loc[trained_env["cancelled"], "test error"] == "" == by_id.loc[trained_env["running"], "test error"]
    # what a reader needs first, first: it fits 1280 pixels without scrolling sideways
    assert list(table.columns)[:9] == ["id", "label", "detail", "status", "progress", "test error", "elapsed", "ETA",
                                       "reason"]  # fmt: skip
    assert "refreshing every 2 s" in texts(at)  # a run is active


def test_runs_filters_from_query_params(trained_env):
    at = page_test("runs", status="failed").run()
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["id"]) == [trained_env["failed"]]
    at = page_test("runs", exp="abc").run()
    assert not at.exception
    assert any("not a valid experiment id" in e.value for e in at.error)
    at = page_test("runs", exp="9999").run()
    assert not at.exception and any("does not exist" in w.value for w in at.warning)


def test_runs_are_paged_and_counted_in_sql(env, monkeypatch):
    from db.runs import request_cancel
    from skipweb.ui import runs as runs_page

    monkeypatch.setattr(runs_page, "PAGE_SIZE", 5)
    ids = add(env, [{"family": "mlp", "depth": 3, "dataset": "digits", "seed": s} for s in range(12)])
    request_cancel(env, ids[0])  # a queued run is cancelled at once
    at = page_test("runs").run()
    assert not at.exception
    assert at.dataframe[0].value["id"].tolist() == ids[::-1][:5]  # newest first
    assert "runs 1–5 of 12 · 11 queued · 1 cancelled" in texts(at)  # every matching run counted, not the page
    at.number_input(key="runs_page").set_value(3).run()
    assert not at.exception
    assert at.dataframe[0].value["id"].tolist() == ids[::-1][10:]
    assert "runs 11–12 of 12" in texts(at)


def test_runs_out_of_range_experiment_is_one_line(trained_env):
    at = page_test("runs", exp="99999999999999999999").run()
    assert not at.exception
    assert [e.value for e in at.error] == ["?exp=99999999999999999999 is not a valid experiment id: ids run "
                                          "from 1 to 2147483647"]


def test_runs_experiment_title_is_text(trained_env):
    at = page_test("runs", exp="1").run()
    assert not at.exception
    assert "Degradation *bold* <b>x</b>" in [t.value for t in at.text]


# ---- run detail ------------------------------------------------------------------------------------
@pytest.mark.parametrize("value,message", [
    ("abc", "not a valid run id"), ("99999", "does not exist"),
    # past the 32-bit ids: OverflowError (SQLite) or integer out of range (PostgreSQL) showed a traceback
    ("99999999999999999999", "ids run from 1 to 2147483647"), ("3000000000", "ids run from 1 to 2147483647"),
])  # fmt: skip
def test_run_detail_bad_param(trained_env, value, message):
    at = page_test("run_detail", run=value).run()
    assert not at.exception
    assert any(message in e.value for e in at.error)


def test_run_detail_of_trained_run(trained_env):
    at = page_test("run_detail", run=str(trained_env["done"])).run()
    assert not at.exception
    assert "Run 1: resnet-20" in texts(at)
    assert at.json and '"family": "resnet"' in at.json[0].value.replace(" ", " ")
    metric_keys = set(at.dataframe[1].value["key"])
    assert metric_keys, "the trained run has metrics"
    layers = at.dataframe[2].value
    assert layers["skip"].any() and not layers["skip"].all()
    # the network map: a box per probe layer, an arc per skip-bridged block (9 basic blocks)
    net = next(c.proto.spec for c in at.get("plotly_chart") if "skip-bridged layer" in c.proto.spec)
    assert "layer1.0.conv1" in net and net.count('"type":"path"') == 9
    # blocks: skip/branch ratio and dead units, one heatmap each, 9 basic blocks of resnet-20
    assert "Blocks" in texts(at)
    specs = [c.proto.spec for c in at.get("plotly_chart")]
    ratio = next(s for s in specs if "log10 skip" in s)
    assert "layer3.2 (add)" in ratio and "dead-unit fraction" in " ".join(specs)


def test_run_detail_failed_reason(trained_env):
    at = page_test("run_detail", run=str(trained_env["failed"])).run()
    assert not at.exception
    assert "CUDA out of memory (boom)" in texts(at)


def test_run_detail_unet_gallery(trained_env):
    at = page_test("run_detail", run=str(trained_env["unet"])).run()
    assert not at.exception
    assert "Predictions" in texts(at)
    assert not at.warning, [w.value for w in at.warning]
    images = at.get("image")
    assert len(images) == 12  # 4 test images x (image, truth, prediction)
    net = next(c.proto.spec for c in at.get("plotly_chart") if "skip-bridged layer" in c.proto.spec)
    assert "long skip (encoder" in net and net.count("\"dash\":\"dash\"") >= 1  # the long skips


def test_runs_cancel_retry_delete(env):
    from db.run_queries import get_run, list_runs

    base = {"dataset": "digits", "epochs": 1, "device": "cpu"}
    first, second = add(
        env, [{**base, "family": "plain", "depth": 8}, {**base, "family": "resnet", "depth": 8}]
    )
    at = page_test("runs").run()
    assert not at.exception
    assert "refreshing every 2 s" in texts(at)

    at.number_input(key="runs_action_id").set_value(first).run()
    at.button(key="runs_cancel").click().run()
    assert not at.exception
    assert get_run(env, first).status == "cancelled"
    at.button(key="runs_cancel").click().run()
    assert any("already cancelled" in e.value for e in at.error)  # one line, no traceback

    at.button(key="runs_retry").click().run()
    assert not at.exception
    retried = [r for r in list_runs(env) if r.retry_of == first]
    assert len(retried) == 1 and retried[0].status == "queued"

    assert at.button(key="runs_delete").disabled  # needs the confirmation first
    at.checkbox(key="runs_confirm_delete").check().run()
    at.button(key="runs_delete").click().run()
    assert not at.exception
    assert get_run(env, first) is None
    # the page reflects it at once (issue 12 item 8): the run's row is gone and the confirmation unticked
    assert first not in set(at.dataframe[0].value["id"]) and not at.checkbox(key="runs_confirm_delete").value
    assert any("deleted" in m.value for m in at.success)
    assert get_run(env, second) is not None


def test_runs_actions_hidden_for_anonymous(env, tmp_path, monkeypatch):
    add(env, [{"dataset": "digits", "epochs": 1, "family": "plain", "depth": 8}])
    team_sign_in(tmp_path, monkeypatch, "bob", "pw")
    at = page_test("runs").run()
    assert not at.exception
    assert not [b for b in at.button if b.key in ("runs_cancel", "runs_delete")]
    assert any("Sign in" in i.value for i in at.info)


def test_launch_shows_and_skips_succeeded(trained_env):
    before = count_runs(trained_env["url"])
    at = page_test("launch").run()
    assert not [b for b in at.button if b.key == "demo_go"]  # the database is not empty
    at.multiselect(key="launch_families").set_value(["resnet"]).run()
    at.multiselect(key="launch_depths_resnet").set_value([20]).run()
    at.selectbox(key="launch_dataset").set_value("digits").run()
    at.number_input(key="launch_epochs").set_value(1).run()
    at.number_input(key="launch_batch_size").set_value(64).run()
    at.number_input(key="launch_lr").set_value(0.05).run()  # the recipe's lr scaled to batch 64, as the run had
    at.radio(key="launch_device").set_value("cpu").run()  # the run was trained on the cpu
    assert not at.exception
    assert "(1 already succeeded, running or queued)" in texts(at)
    assert "of worker time, from similar finished runs" in texts(at)  # the trained run's seconds per step
    assert not [c for c in at.checkbox if c.key == "launch_sure"]  # one run: no confirmation
    assert list(at.dataframe[0].value["already"]) == [f"run {trained_env['done']} (succeeded)"]
    at.button(key="launch_go").click().run()
    assert any("already succeeded, run or are queued" in w.value for w in at.warning)
    assert count_runs(trained_env["url"]) == before


# ---- issue 11, door 9: user text is text on every page -------------------------------------------------
HOSTILE = "[x](javascript:alert(1)) :blue[boo] $x^2$ **b** <b>i</b>"


def test_hostile_user_text_is_escaped_on_every_page(env):
    from db.experiments import create_experiment
    from db.runs import add_runs, claim, finish
    from skipweb.grid import row
    from skipweb.spec import RunSpec

    exp = create_experiment(env, f"title {HOSTILE}", description=HOSTILE, owner=f"o {HOSTILE}",
                            tags=[f"t {HOSTILE}"])  # fmt: skip
    spec = RunSpec(family="mlp", depth=4, dataset="digits", device="cpu")
    [run_id] = add_runs(env, exp, [row(spec)])
    assert claim(env, run_id, "w1") and finish(env, run_id, "w1", "failed", f"reason {HOSTILE}")
    pages = [("runs", {"exp": str(exp)}), ("runs", {}), ("compare", {"exp": str(exp)}),
             ("run_detail", {"run": str(run_id)}), ("present", {"exp": str(exp)})]  # fmt: skip
    for name, query in pages:
        at = page_test(name, **query).run()
        assert not at.exception, (name, at.exception)
        shown = sources(at, MARKDOWN)  # st.text is never markup
        for raw in ("[x](javascript", ":blue[", "$x^2$", "**b**"):
            bad = [t for t in shown if raw in t]
            assert not bad, f"{name}: {raw!r} reaches markdown unescaped: {bad[0][:200]}"
        if name in ("runs", "run_detail") and query:
            assert "javascript" in texts(at), f"{name}: the hostile text is not shown at all"


def test_compare_opens_on_the_only_experiment(env):
    (rid,) = add(env, [{"dataset": "digits", "epochs": 1, "family": "plain", "depth": 20}], title="only one")
    at = page_test("compare").run()
    assert not at.exception and "Pick an experiment" not in texts(at)
    assert at.query_params["exp"] == "1" and "1 run(s) selected" in texts(at)
