"""The router and the Launch page through Streamlit's AppTest, against a temporary migrated SQLite database
(conftest's ``env``): the demo button, presets, refused input, sign-in gating writes, and a grid launched
twice. app.py itself is run for the router and the schema check; each page function runs as a small script
(tests/ui/pages.py). Submitting uses the embedded filesystem broker in the temporary data dir (no server).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import ROOT

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from tests.ui.pages import TIMEOUT, count_runs, page_test, team_sign_in, texts  # noqa: E402


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


# ---- auth ------------------------------------------------------------------------------------------
def test_password_file_gates_writes(env, tmp_path, monkeypatch):
    team_sign_in(tmp_path, monkeypatch, "alice", "s3cret")

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
