"""Dashboard pages through Streamlit's AppTest, against a temporary migrated SQLite database.

Each page function runs as a small script (AppTest.from_function) so query params and session state can
be set; app.py itself is run for the router and the schema check. Submitting uses the embedded
filesystem broker in the temporary data dir (no server).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests import ROOT

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

TIMEOUT = 60


def _page(name: str) -> None:
    import importlib

    from skipweb.ui.common import sidebar_auth

    sidebar_auth()
    importlib.import_module(f"skipweb.ui.{name}").page()


def page_test(name: str, **query) -> AppTest:
    at = AppTest.from_function(_page, args=(name,), default_timeout=TIMEOUT)
    for k, v in query.items():
        at.query_params[k] = v
    return at


MARKDOWN = ("markdown", "caption", "error", "warning", "info", "success", "title", "subheader")


def sources(at: AppTest, kinds=(*MARKDOWN, "text")) -> list[str]:
    """The source of every text element the page shows (markdown, captions, alerts, titles; st.text)."""
    parts = []
    for kind in kinds:
        parts += [str(e.value) for e in getattr(at, kind)]
    return parts


def texts(at: AppTest) -> str:
    """Every text the page shows, joined, as a reader sees it (user text's escaping backslashes removed)."""
    return re.sub(r"\\(.)", r"\1", "\n".join(sources(at)))


def count_runs(url: str) -> int:
    from db.run_queries import list_runs

    return len(list_runs(url, limit=None))


def add(
    url: str, specs: list[dict], title: str = "exp", tags=(), checkpoint_dir: Path | None = None
) -> list[int]:
    from db.experiments import create_experiment
    from db.runs import add_runs
    from skipweb.grid import row
    from skipweb.spec import RunSpec

    exp = create_experiment(url, title, tags=list(tags))
    return add_runs(url, exp, [row(RunSpec.parse(s)) for s in specs], checkpoint_dir=checkpoint_dir)


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


# ---- router ----------------------------------------------------------------------------------------
@pytest.fixture
def loopback():
    """Streamlit's server.address as `skipweb up` sets it by default; app.py refuses others without sign-in
    (tests/ui/test_door.py)."""
    from streamlit import config

    old = config.get_option("server.address")
    config.set_option("server.address", "127.0.0.1")
    yield
    config.set_option("server.address", old)


def test_app_routes_to_launch_on_empty_db(env, loopback):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    assert not at.exception
    assert any(b.label == "Run the demo" for b in at.button)


def test_app_unmigrated_db_shows_one_line_error(tmp_path, monkeypatch, loopback):
    from skipweb.settings import get_settings

    monkeypatch.setenv("SKIPWEB_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    monkeypatch.setenv("SKIPWEB_DATA_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    get_settings.cache_clear()
    assert not at.exception
    assert len(at.error) == 1 and "skipweb db upgrade" in at.error[0].value
    assert "\n" not in at.error[0].value


# ---- launch ----------------------------------------------------------------------------------------
def test_empty_db_demo_button_launches(env):
    at = page_test("launch").run()
    assert not at.exception
    demo = at.button(key="demo_go")
    assert not demo.disabled
    demo.click().run()
    assert not at.exception
    assert "queued 12 runs" in texts(at)
    # the page reflects the launch at once (issue 12 item 8): the empty-database box is gone and the
    # story view is linked
    assert not [b for b in at.button if b.key == "demo_go"] and "The database is empty" not in texts(at)
    links = [e.proto.label for e in at.get("page_link")] + [m.value for m in at.markdown]
    assert any("Open the story view" in t for t in links), links
    from db.experiments import list_experiments
    from db.run_queries import list_runs
    from skipweb.recipes import recipe_for

    # the demo is the degradation story's preset, 3 seeds, on the digits recipe, tagged so its view finds it
    runs = list_runs(env)
    assert sorted((r.label, r.seed) for r in runs) == [
        (f"{f}-{d}", s) for f in ("plain", "resnet") for d in (20, 56) for s in (0, 1, 2)
    ]
    recipe = recipe_for("digits")
    assert all(r.status == "queued" and r.spec["epochs"] == recipe.epochs and r.spec["lr"] == recipe.lr
               and r.spec["batch_size"] == recipe.batch_size and r.spec["warmup_epochs"] == recipe.warmup_epochs
               for r in runs)  # fmt: skip
    (exp,) = list_experiments(env)
    assert exp.tags == ["story:degradation", "demo"]
    assert any((Path(env.removeprefix("sqlite:///")).parent / "broker" / "queue").iterdir())
    # the Launch page now links straight to the story view, saying how far the runs are
    at = page_test("launch").run()
    links = [str(e.proto) for e in at.get("page_link")] + [texts(at).replace("\\", "")]
    assert any("(experiment 1), 0 of 12 runs finished so far" in x and "story=degradation" in x for x in links), links


def test_preset_fills_form_and_shows_grid(env):
    at = page_test("launch").run()
    at.button(key="preset_Degradation").click().run()
    assert not at.exception
    assert at.multiselect(key="launch_families").value == ["plain", "resnet"]
    assert at.multiselect(key="launch_depths_resnet").value == [20, 56]
    body = texts(at)
    assert "12 runs" in body  # 4 configurations × the story's seeds 0, 1, 2
    assert at.text_input(key="launch_seeds").value == "0,1,2"
    assert "Default recipe for digits: sgd lr 0.025" in body  # the form shows the recipe it filled in
    assert at.number_input(key="launch_lr").value == 0.025 and at.number_input(key="launch_warmup_epochs").value == 1
    grid = at.dataframe[0].value
    assert sorted(set(grid["label"])) == ["plain-20", "plain-56", "resnet-20", "resnet-56"]
    assert sorted(grid["seed"]) == [0] * 4 + [1] * 4 + [2] * 4
    assert (grid["params"] != "?").all()


def test_bad_seeds_show_one_line_error_and_create_nothing(env):
    at = page_test("launch").run()
    at.button(key="preset_Degradation").click().run()
    at.text_input(key="launch_seeds").input("a,b").run()
    assert not at.exception
    assert len(at.error) == 1 and "'a' is not a valid int" in at.error[0].value
    assert not [b for b in at.button if b.key == "launch_go"]
    assert count_runs(env) == 0


@pytest.mark.parametrize(("field", "value", "message"), [
    ("launch_lr", -1.0, "Learning rate must be above 0 and at most 10; got -1. Nothing was queued."),
    ("launch_epochs", 0, "Epochs must be between 1 and 10,000; got 0. Nothing was queued."),
    ("launch_batch_size", 100_000, "Batch size must be between 1 and 65,536; got 100000. Nothing was queued."),
])  # fmt: skip
def test_out_of_range_numbers_are_refused_not_replaced(env, field, value, message):
    """The widgets keep no min/max of their own (the browser kept the old value, which then launched): an
    out-of-range number reaches the page, which refuses it in one line naming the field and the range."""
    at = page_test("launch").run()
    at.button(key="preset_Degradation").click().run()
    assert at.number_input(key=field).min is None and at.number_input(key=field).max is None
    at.number_input(key=field).set_value(value).run()
    assert not at.exception and [e.value for e in at.error] == [message]
    assert not [b for b in at.button if b.key == "launch_go"] and count_runs(env) == 0


def test_bad_seed_names_the_field_and_options_read_as_words(env):
    at = page_test("launch").run()
    at.button(key="preset_MLP residual").click().run()
    assert at.multiselect(key="launch_opt_no_skip").label == "no skip (the plain twin)"
    assert at.multiselect(key="launch_opt_zero_init_residual").label == "zero-init residual branch"
    at.text_input(key="launch_seeds").input("0,abc").run()
    assert not at.exception and [e.value for e in at.error] == [
        "Seeds: 'abc' is not a valid int (comma-separated whole numbers, e.g. 0,1,2)"]
    assert count_runs(env) == 0


def test_launch_offers_every_declared_choice(env):
    """Nothing listed by hand: every choice RunSpec declares (its Literal fields) and every value of every
    family's options (the registry) is offered by the form, for every family at once."""
    import typing

    from skipweb.models import declared_options, list_models
    from skipweb.spec import RunSpec, choices

    at = page_test("launch").run()
    at.multiselect(key="launch_families").set_value(list_models()).run()
    assert not at.exception
    for name, (values, _) in declared_options().items():
        assert at.multiselect(key=f"launch_opt_{name}").options == [str(v) for v in values], name
    literal = [n for n, f in RunSpec.model_fields.items() if typing.get_origin(f.annotation) is typing.Literal]
    assert {"optimizer", "schedule", "device", "amp"} <= set(literal)
    widgets = {w.key: w for kind in ("selectbox", "radio") for w in getattr(at, kind)}
    for name in literal:  # a label may explain its value: "auto (a GPU when its worker has one)"
        assert [o.split(" ")[0] for o in widgets[f"launch_{name}"].options] == list(choices(name)), name


def test_invalid_combination_shows_error(env):
    at = page_test("launch").run()
    at.button(key="preset_MLP residual").click().run()
    at.multiselect(key="launch_families").set_value(["plain", "mlp"]).run()
    at.multiselect(key="launch_depths_plain").set_value([20]).run()
    at.multiselect(key="launch_opt_width").set_value([128]).run()  # an MLP width, not a plain one
    assert not at.exception
    assert len(at.error) == 1 and "width=128 is not valid" in at.error[0].value
    assert not [b for b in at.button if b.key == "launch_go"]
    assert count_runs(env) == 0


def test_launch_creates_rows(env):
    at = page_test("launch").run()
    at.button(key="preset_U-Net skips").click().run()
    at.text_input(key="launch_seeds").input("0").run()  # the preset's 3 seeds, cut to one
    at.number_input(key="launch_epochs").set_value(1).run()
    at.text_input(key="launch_title").input("U-Net **skips**").run()
    at.text_input(key="launch_tags").input("unet, demo").run()
    assert "3 runs" in texts(at)
    at.button(key="launch_go").click().run()
    assert not at.exception
    assert "queued 3 runs" in texts(at)
    from db.experiments import list_experiments
    from db.run_queries import list_runs

    (exp,) = list_experiments(env)
    assert exp.title == "U-Net **skips**" and exp.tags == ["unet", "demo"]
    runs = list_runs(env)
    assert sorted(r.spec["options"]["skip"] for r in runs) == ["add", "concat", "none"]


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


# ---- auth ------------------------------------------------------------------------------------------
def test_password_file_gates_writes(env, tmp_path, monkeypatch):
    from skipweb.passwords import hash_password
    from skipweb.settings import get_settings

    auth = tmp_path / "users.txt"
    auth.write_text(f"# team\nalice:{hash_password('s3cret')}\n")
    monkeypatch.setenv("SKIPWEB_AUTH_FILE", str(auth))
    get_settings.cache_clear()

    at = page_test("launch").run()
    assert not at.exception
    assert at.button(key="demo_go").disabled  # anonymous: viewing only
    at.button(key="preset_Degradation").click().run()
    assert at.button(key="launch_go").disabled

    at.text_input(key="auth_user").input("alice")
    at.text_input(key="auth_password").input("wrong")
    submit = [b for b in at.sidebar.button if b.label == "Sign in"][0]
    submit.click().run()
    assert any("wrong user or password" in e.value for e in at.error)

    at.text_input(key="auth_password").input("s3cret")
    [b for b in at.sidebar.button if b.label == "Sign in"][0].click().run()
    assert not at.exception
    assert "alice" in [t.value for t in at.sidebar.text]
    at.checkbox(key="launch_sure").check().run()  # the preset's 12 runs ask for a tick
    assert not at.button(key="launch_go").disabled
    at.button(key="launch_go").click().run()
    from db.experiments import list_experiments

    (exp,) = list_experiments(env)
    assert exp.owner == "alice"
    assert count_runs(env) == 12  # the Degradation preset: 4 configurations × seeds 0, 1, 2


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
    from skipweb.passwords import hash_password
    from skipweb.settings import get_settings

    add(env, [{"dataset": "digits", "epochs": 1, "family": "plain", "depth": 8}])
    auth = tmp_path / "users.txt"
    auth.write_text(f"bob:{hash_password('pw')}\n")
    monkeypatch.setenv("SKIPWEB_AUTH_FILE", str(auth))
    get_settings.cache_clear()
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


def test_launch_skips_queued_and_running_unless_forced(env):
    """Issue 22 item 12: a grid launched twice queued every configuration twice; now the second launch
    finds them queued (or running) and queues nothing, unless 'Run again' is ticked."""
    from db.runs import claim
    from skipweb.ui import data

    def launch(force: bool = False):
        at = page_test("launch").run()
        at.button(key="preset_Degradation").click().run()
        at.text_input(key="launch_seeds").input("0").run()
        if force:
            at.checkbox(key="launch_force").check().run()
        if [c for c in at.checkbox if c.key == "launch_sure"]:
            at.checkbox(key="launch_sure").check().run()
        at.button(key="launch_go").click().run()
        assert not at.exception
        return at

    launch()
    first = count_runs(env)
    assert first == 4
    assert claim(env, 1, "w1")  # one of them running
    data.clear()  # the page's reads are cached for seconds; a worker's claim is not a dashboard write
    at = page_test("launch").run()
    at.button(key="preset_Degradation").click().run()
    at.text_input(key="launch_seeds").input("0").run()
    assert sorted(at.dataframe[0].value["already"]) == ["run 1 (running)", "run 2 (queued)", "run 3 (queued)",
                                                        "run 4 (queued)"]  # fmt: skip
    at = launch()
    assert any("already succeeded, run or are queued" in w.value for w in at.warning)
    assert count_runs(env) == first
    launch(force=True)
    assert count_runs(env) == 2 * first


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
