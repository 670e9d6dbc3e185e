"""The real `skipweb` console script, in subprocesses: JSON contracts and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


def sw(*args: str, tmp_path) -> subprocess.CompletedProcess:
    env = {**os.environ, "SKIPWEB_DATA_DIR": str(tmp_path / "sw")}
    return subprocess.run([sys.executable, "-m", "skipweb", *args], capture_output=True, text=True, env=env,
                          timeout=600)


def test_models_lists_every_family(tmp_path):
    from skipweb.models import list_models

    out = subprocess.run([sys.executable, "-m", "skipweb", "models"], capture_output=True, text=True, timeout=600,
                         env={**os.environ, "SKIPWEB_DATA_DIR": str(tmp_path / "sw"), "COLUMNS": "80"})  # fmt: skip
    assert out.returncode == 0
    for name in list_models():
        assert f"{name} (" in out.stdout
    words = out.stdout.split()  # at 80 columns lines break between words, never inside one
    assert "zero_init_residual=False|True," in words and "kaiming|xavier|small" in out.stdout
    assert max(map(len, out.stdout.splitlines())) <= 80


def test_describe_json(tmp_path):
    out = sw("describe", "resnet", "--depth", "56", "--json", tmp_path=tmp_path)
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    assert d["family"] == "resnet" and d["depth"] == 56
    assert d["params"] == 853_018  # He et al. 2015: 0.85M
    assert d["flops"] > 2e8 and d["probe_layers"] == 56


@pytest.mark.slow
def test_describe_no_skip_twin_has_same_params(tmp_path):
    a = json.loads(sw("describe", "resnet", "--depth", "20", "--json", tmp_path=tmp_path).stdout)
    b = json.loads(sw("describe", "resnet", "--depth", "20", "--no-skip", "--json", tmp_path=tmp_path).stdout)
    assert a["params"] == b["params"] and b["skip_layers"] == 0 < a["skip_layers"]


@pytest.mark.slow
def test_train_json_on_digits(tmp_path):
    out = sw("train", "resnet", "--depth", "20", "--dataset", "digits", "--epochs", "2", "--json", tmp_path=tmp_path)
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    assert d["params"] > 0 and d["status"] == "succeeded"
    assert set(d["final"]) >= {"train_loss", "train_error", "test_error"}
    assert 0 <= d["final"]["test_error"] <= 1
    for when in ("first_step", "last_step"):
        assert d["grad"][when]["first"] > 0 and d["grad"][when]["last"] > 0
    assert d["grad"]["first_step"]["step"] < d["grad"]["last_step"]["step"]


@pytest.mark.parametrize("args, fragment", [
    (["train", "resnett", "--depth", "20"], "choose one of: plain, resnet"),
    (["train", "resnet", "--depth", "21"], "6n+2"),
    (["train", "resnet", "--depth", "20", "--epochs", "-3"], "epochs"),
    pytest.param(["train", "resnet", "--depth", "20", "--dataset", "cifar10"], "offline datasets: digits",
                 marks=pytest.mark.slow),  # waits for the download to fail
    (["train", "resnet", "--depth", "20", "--dataset", "nope"], "choose one of"),
    (["train", "resnet", "--depth", "20", "--norm", "layer"], "batch, none"),
    (["train", "densenet", "--depth", "40", "--shortcut", "B"], "option 'shortcut'"),
    (["train", "resnet", "--depth", "20", "--bogus"], "No such option"),
    (["describe", "unet", "--depth", "9", "--dataset", "shapes"], "unet"),
    # ids and numbers out of range: the same one line on SQLite as on PostgreSQL (32-bit ids and seeds)
    (["status", "99999999999999999999"], "ids run from 1 to 2147483647"),
    (["status", "exp:3000000000"], "ids run from 1 to 2147483647"),
    (["status", "exp:999"], "no experiment 999"),  # as `export 999` says it
    (["cancel", "99999999999999999999"], "less than or equal to 2147483647"),
    (["export", "3000000000"], "less than or equal to 2147483647"),
    (["landscape", "99999999999999999999"], "less than or equal to 2147483647"),
    (["submit", "resnet", "--depth", "20", "--seeds", "2147483648"], "less than or equal to 2147483647"),
    (["submit", "resnet", "--depth", "20", "--title", "x" * 201], "at most 200"),
    (["submit", "resnet", "--depth", "20", "--warmup", "inf"], "--warmup"),
    (["landscape", "1", "--range", "inf"], "less than or equal to 1000"),
    (["story", "degradation", "--exp", "99999999999999999999"], "less than or equal to 2147483647"),
    (["story", "degradation", "--exp", "3000000000"], "less than or equal to 2147483647"),
    (["landscape", "1", "--grid", "1"], "greater than or equal to 3"),
    (["landscape", "1", "--subset", "0"], "--subset '0' is not a number of samples: give one from 1 up, or all"),
    (["landscape", "1", "--seed", "3000000000"], "less than or equal to 2147483647"),
    # experiment text: titles, and now tags, are bounded (tags one line each)
    (["submit", "mlp", "--depth", "4", "--tags", "t" * 65], "65 characters long; at most 64"),
    (["submit", "mlp", "--depth", "4", "--tags", ",".join(f"t{i}" for i in range(21))], "21 tags; at most 20"),
    pytest.param(["train", "mlp", "--depth", "3", "--tags", "t" * 65], "at most 64", marks=pytest.mark.slow),
    # a preset fixes its grid: what would change it is refused by name, never dropped
    (["submit", "--preset", "degradation", "--depth", "20", "--norm", "none"], "drop --depth, --norm"),
    (["submit", "resnet", "--preset", "degradation"], "drop the family argument"),
    (["submit", "--preset", "degradation", "--dataset", "cifar10"], "drop --dataset"),
    # what can never run is refused at submit time, before anything is written
    (["submit", "mlp", "--depth", "4", "--subset", "100000"], "subset=100000 is not possible: digits has"),
    pytest.param(["submit", "resnet", "--depth", "20", "--dataset", "cifar10"], "offline datasets: digits",
                 marks=pytest.mark.slow),  # waits for the download to fail
])
def test_bad_input_is_one_line(args, fragment, upgraded):
    out = sw(*args, tmp_path=upgraded)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("error: ") and fragment in lines[0]
    assert "Traceback" not in out.stderr + out.stdout
    from db.run_queries import list_runs

    assert list_runs(f"sqlite:///{upgraded / 'sw' / 'skipweb.db'}", limit=None) == []  # nothing written


@pytest.fixture(scope="module")
def upgraded(tmp_path_factory):
    """One migrated embedded database for the bad-input cases (each checks that it stays empty)."""
    tmp = tmp_path_factory.mktemp("bad-input")
    assert sw("db", "upgrade", tmp_path=tmp).returncode == 0
    return tmp


@pytest.mark.slow
def test_submit_status_cancel_export(tmp_path):
    """The scripting contracts of issue 3, against the embedded database and broker (no worker)."""
    out = sw("submit", "plain,resnet", "--depth", "20", "--seeds", "0,1", "--epochs", "1", "--json", tmp_path=tmp_path)
    assert out.returncode == 0, out.stderr
    sub = json.loads(out.stdout)
    assert len(sub["run_ids"]) == 4 and sub["skipped"] == [] and isinstance(sub["experiment_id"], int)
    queued = list((tmp_path / "sw" / "broker" / "queue").iterdir())
    assert len(queued) == 4  # one message per run id, published after the commit

    st = json.loads(sw("status", str(sub["run_ids"][0]), "--json", tmp_path=tmp_path).stdout)
    assert {"id", "experiment_id", "status", "attempts", "reason", "progress"} <= set(st)
    assert st["status"] == "queued" and st["attempts"] == 0 and st["progress"] == 0
    listing = json.loads(sw("status", "--json", tmp_path=tmp_path).stdout)
    assert sorted(r["id"] for r in listing) == sorted(sub["run_ids"])

    assert sw("cancel", str(sub["run_ids"][0]), tmp_path=tmp_path).returncode == 0
    st = json.loads(sw("status", str(sub["run_ids"][0]), "--json", tmp_path=tmp_path).stdout)
    assert st["status"] == "cancelled" and st["reason"]
    never = sw("landscape", str(sub["run_ids"][0]), tmp_path=tmp_path)  # cancelled while queued
    assert never.returncode != 0 and "was cancelled before it started: it never ran" in never.stderr, never.stderr
    again = sw("cancel", str(sub["run_ids"][0]), tmp_path=tmp_path)
    assert again.returncode == 2 and len(again.stderr.strip().splitlines()) == 1

    # train records its run like a submitted one; a succeeded configuration is then skipped by submit
    tr = json.loads(sw("train", "mlp", "--depth", "3", "--epochs", "1", "--json", tmp_path=tmp_path).stdout)
    assert tr["status"] == "succeeded" and isinstance(tr["run_id"], int)
    dup = json.loads(sw("submit", "mlp", "--depth", "3", "--epochs", "1", "--json", tmp_path=tmp_path).stdout)
    assert dup["run_ids"] == [] and dup["skipped"][0]["run_id"] == tr["run_id"]

    exp = json.loads(sw("status", str(tr["run_id"]), "--json", tmp_path=tmp_path).stdout)["experiment_id"]
    for fmt in ("csv", "json", "parquet"):
        target = tmp_path / f"m.{fmt}"
        res = sw("export", str(exp), "--format", fmt, "-o", str(target), tmp_path=tmp_path)
        assert res.returncode == 0, res.stderr
        assert target.stat().st_size > 0
    import pandas as pd

    df = pd.read_csv(tmp_path / "m.csv")
    losses = df[df.key == "train/loss"]
    assert losses.step.tolist() == list(range(1, tr["steps"] + 1)) and set(df.label) == {"mlp-3"}
    # the run's recipe and spec travel with its metrics
    first = df.iloc[0]
    assert (first.dataset, first.epochs, first.batch_size) == ("digits", 1, 32) and first.lr == 0.025
    assert json.loads(first.spec)["family"] == "mlp" and "width" in json.loads(first.options)
    rows = json.loads((tmp_path / "m.json").read_text())  # JSON keeps them as objects, not strings of JSON
    assert rows[0]["spec"]["family"] == "mlp" and "width" in rows[0]["options"] and len(rows) == len(df)

    # --probes adds every per-layer probe statistic, equal to what the charts read
    from db.metrics import read_grad, read_probe_layers

    assert not df.key.str.startswith("probe/").any()
    res = sw("export", str(exp), "--probes", "-o", str(tmp_path / "p.csv"), tmp_path=tmp_path)
    assert res.returncode == 0, res.stderr
    probes = pd.read_csv(tmp_path / "p.csv")
    probes = probes[probes.key.str.startswith("probe/")]
    db_url = f"sqlite:///{tmp_path / 'sw' / 'skipweb.db'}"
    steps, matrix = read_grad(db_url, [tr["run_id"]], "grad_norm")[tr["run_id"]]
    layers = read_probe_layers(db_url, [tr["run_id"]])[tr["run_id"]]
    assert len(steps) and len(probes) == 3 * matrix.size
    first_layer = probes[probes.key == f"probe/grad_norm/{layers[0].name}"]
    assert first_layer.step.tolist() == steps.tolist()
    assert first_layer.value.to_numpy() == pytest.approx(matrix[:, 0], rel=1e-6)


@pytest.mark.slow
def test_export_never_overwrites_without_force_and_os_errors_are_one_line(tmp_path):
    out = sw("submit", "mlp", "--depth", "4", "--json", tmp_path=tmp_path)
    exp = str(json.loads(out.stdout)["experiment_id"])
    kept = tmp_path / "kept.csv"
    kept.write_text("precious")
    kept.chmod(0o444)  # as root, a read-only file was overwritten before
    for args, fragment in [(["-o", str(kept)], "exists; use --force"), (["-o", str(tmp_path)], "not a file"),
                           (["-o", ""], "not a file"), (["-o", "/proc/nope/m.csv"], "cannot write /proc/nope"),
                           (["-o", str(tmp_path / "m\nx.csv")], "contains a control character")]:
        res = sw("export", exp, *args, tmp_path=tmp_path)
        assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr
        assert fragment in res.stderr and "Traceback" not in res.stderr
    assert kept.read_text() == "precious" and not (tmp_path / "m\nx.csv").exists()
    res = sw("export", exp, "-o", str(kept), "--force", tmp_path=tmp_path)
    assert res.returncode == 0 and kept.read_text().startswith("run_id")


def test_status_lists_a_screenful_and_says_how_many(tmp_path):
    """`skipweb status` prints the newest STATUS_ROWS runs (a screenful, and cheap to render: issue 13) and
    then how many there are, counted in SQL."""
    from db import experiments, migrate, runs
    from db.session import dispose_engine
    from skipweb.cli.runs import STATUS_ROWS
    from skipweb.grid import row
    from skipweb.spec import RunSpec

    url = f"sqlite:///{tmp_path / 'sw' / 'skipweb.db'}"
    (tmp_path / "sw").mkdir()
    migrate.upgrade(url)
    exp = experiments.create_experiment(url, "many")
    specs = [RunSpec.parse({"family": "mlp", "depth": 3, "dataset": "digits", "seed": s}) for s in range(STATUS_ROWS + 7)]
    runs.add_runs(url, exp, [row(s) for s in specs])
    dispose_engine(url)
    out = sw("status", tmp_path=tmp_path)
    assert out.returncode == 0, out.stderr
    assert f"the newest {STATUS_ROWS} of {STATUS_ROWS + 7} runs" in out.stdout
    assert len(json.loads(sw("status", "--json", tmp_path=tmp_path).stdout)) == STATUS_ROWS


def test_story_exp_out_of_range_on_postgresql(pg_module_url, tmp_path):
    """PostgreSQL's ids are 32-bit: an id past them is refused in one line before any query (it raised
    NumericValueOutOfRange there, OverflowError on SQLite)."""
    env = {**os.environ, "SKIPWEB_DATA_DIR": str(tmp_path), "SKIPWEB_DATABASE_URL": pg_module_url}
    for exp in ("3000000000", "99999999999999999999"):
        out = subprocess.run([sys.executable, "-m", "skipweb", "story", "degradation", "--exp", exp], env=env,
                             capture_output=True, text=True, timeout=600)  # fmt: skip
        assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
        assert "less than or equal to 2147483647" in out.stderr and "Traceback" not in out.stderr
    out = subprocess.run([sys.executable, "-m", "skipweb", "story", "degradation", "--exp", "2147483647"], env=env,
                         capture_output=True, text=True, timeout=600)  # fmt: skip
    assert out.returncode == 2 and out.stderr.strip() == "error: no experiment 2147483647; see `skipweb status` " \
        "for experiment ids", out.stderr


def test_submit_preset_applies_the_training_options(tmp_path):
    """--epochs, --subset and the other training options reach every run of a preset (they were dropped)."""
    from db.run_queries import list_runs

    out = sw("submit", "--preset", "degradation", "--seeds", "0", "--epochs", "2", "--subset", "100",
             "--lr", "0.01", "--probe-every", "7", "--json", tmp_path=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr
    ids = json.loads(out.stdout)["run_ids"]
    records = list_runs(f"sqlite:///{tmp_path / 'sw' / 'skipweb.db'}", limit=None)
    assert sorted(r.id for r in records) == sorted(ids) and len(ids) == 4
    for r in records:
        assert (r.spec["epochs"], r.spec["subset"], r.spec["lr"], r.spec["probe_every"]) == (2, 100, 0.01, 7)
        assert r.spec["batch_size"] == 32  # not given: the preset's recipe


@pytest.mark.parametrize("gpus, count, fragment", [
    ("abc", None, "give GPU indices as a comma list"),
    ("0,0", None, "distinct numbers"),
    ("-1", None, "give GPU indices as a comma list"),
    ("2", 2, "there is no GPU 2; this machine's GPUs are 0 to 1"),
])  # fmt: skip
def test_worker_gpus_are_checked(gpus, count, fragment):
    """`skipweb worker --gpus abc` started a worker that consumed nothing (its queues follow from its kind)."""
    from skipweb.cli.worker import parse_gpus
    from skipweb.errors import UserError

    with pytest.raises(UserError) as err:
        parse_gpus(gpus, gpu_count=count)
    assert fragment in str(err.value) and "\n" not in str(err.value)
    assert parse_gpus("0, 1", gpu_count=2) == [0, 1] and parse_gpus("none") == []
    assert parse_gpus("0", gpu_count=None) == [0]  # no CUDA here: a stand-in GPU worker


@pytest.mark.parametrize("command", ["train", "submit"])
def test_cli_offers_every_declared_choice(command):
    """Nothing listed by hand: every choice RunSpec declares (its Literal fields) and every value of every
    family's options (the registry) is an option of both commands, named in its help."""
    import typing

    from skipweb.cli.lazy import Deferred
    from skipweb.models import declared_options
    from skipweb.spec import RunSpec, choices

    params = {p.name: p for p in Deferred(command).load().params}
    literal = [n for n, f in RunSpec.model_fields.items() if typing.get_origin(f.annotation) is typing.Literal]
    assert {"optimizer", "schedule", "device", "amp"} <= set(literal)
    for name in literal:
        assert all(str(c) in params[name].help for c in choices(name)), name
    for name, (values, _) in declared_options().items():
        assert f"--{name.replace('_', '-')}" in params[name].opts, name
        if not all(isinstance(v, bool) for v in values):  # a flag offers both values
            assert all(str(v) in params[name].help for v in values), name
