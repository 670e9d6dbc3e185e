"""Loss landscapes (skipweb.training.landscape, db.landscapes, `skipweb landscape`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from skipweb.training import landscape as L


def tiny_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Conv2d(4, 6, 3, padding=1, bias=False),
        nn.BatchNorm2d(6),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(6, 5),
    )


def tiny_batches(seed: int = 1) -> L.Batches:
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(16, 1, 8, 8, generator=g), torch.randint(0, 5, (16,), generator=g)) for _ in range(2)
    ]


# ---- (1) filter normalization ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "make",
    [
        tiny_model,
        lambda: __import__("skipweb.models", fromlist=["get_model"]).get_model(
            "resnet", depth=8, num_classes=10, in_channels=1, image_size=8
        ),
    ],
    ids=["tiny", "resnet8"],
)
def test_filter_normalization(make) -> None:
    model = make()
    d = L.random_direction(model, torch.Generator().manual_seed(3))
    kinds = set()
    for name, p in model.named_parameters():
        assert d[name].shape == p.shape
        if p.dim() <= 1:  # biases, BN scale/shift
            assert torch.count_nonzero(d[name]) == 0, name
            continue
        kinds.add("conv" if p.dim() == 4 else "linear")
        w_norm = p.detach().reshape(p.shape[0], -1).norm(dim=1)
        d_norm = d[name].reshape(p.shape[0], -1).norm(dim=1)
        torch.testing.assert_close(d_norm, w_norm, rtol=1e-5, atol=1e-7)
        assert not torch.allclose(d[name], p.detach())  # random, not a copy of the weights
    assert kinds == {"conv", "linear"}
    # include_1d: 1-D parameters scaled as one filter
    d1 = L.random_direction(model, torch.Generator().manual_seed(3), include_1d=True)
    for name, p in model.named_parameters():
        if p.dim() == 1 and p.detach().norm() > 0:
            torch.testing.assert_close(d1[name].norm(), p.detach().norm(), rtol=1e-5, atol=1e-7)


# ---- (2) reproducibility --------------------------------------------------------------------------------
def test_surface_reproducible_for_a_seed() -> None:
    model, batches = tiny_model(), tiny_batches()
    before = {k: v.clone() for k, v in model.state_dict().items()}

    def surface(seed: int):
        d1, d2 = L.directions(model, seed)
        return L.surface_2d(model, batches, d1, d2, grid=5, range_=1.0)

    x, y, a = surface(7)
    _, _, b = surface(7)
    _, _, c = surface(8)
    assert x == y == [-1.0, -0.5, 0.0, 0.5, 1.0]
    assert a == b  # bit-identical
    assert a != c
    for k, v in model.state_dict().items():  # the model is restored
        assert torch.equal(v, before[k]), k
    xs, line = L.line_1d(model, batches, L.directions(model, 7)[0], grid=5)
    assert xs == x and line == a[2]  # the 1-D slice along d1 is the centre row of the surface


# ---- (3) the centre and the ends of the interpolation, on a real (briefly trained) run ----------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from skipweb.spec import RunSpec
    from skipweb.training.trainer import Trainer

    data_dir = tmp_path_factory.mktemp("data")
    spec = RunSpec(family="resnet", depth=8, dataset="digits", epochs=1, device="cpu", seed=3)
    trainer = Trainer(spec, data_dir=data_dir)
    initial = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
    trainer.run()
    final = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
    return spec, data_dir, initial, final


def test_initial_weights_match_the_trainer(trained) -> None:
    spec, data_dir, initial, final = trained
    _, init_model, final_model = L.build_models(spec, final, data_dir=data_dir)
    for k, v in init_model.state_dict().items():
        assert torch.equal(v, initial[k]), k
    for k, v in final_model.state_dict().items():
        assert torch.equal(v, final[k]), k


def test_centre_is_final_and_interp_ends_are_initial_and_final(trained) -> None:
    spec, data_dir, initial, final = trained
    result = L.compute(spec, final, data_dir=data_dir, grid=3, range_=0.5, subset=128, seed=1)
    data, init_model, final_model = L.build_models(spec, final, data_dir=data_dir)
    batches = L.make_batches(data.train, mean=data.mean, std=data.std, subset=128, seed=1)
    final_loss, init_loss = L.loss_of(final_model, batches), L.loss_of(init_model, batches)
    assert result.x == result.y == [-0.5, 0.0, 0.5]
    assert result.loss[1][1] == pytest.approx(final_loss, rel=1e-6) == result.final_loss
    interp = dict(result.interp)
    assert interp[0.0] == pytest.approx(init_loss, rel=1e-6)
    assert interp[1.0] == pytest.approx(final_loss, rel=1e-6)
    assert init_loss != pytest.approx(final_loss)
    assert min(interp) < 0 and max(interp) > 1 and len(interp) == L.evaluations(3) - 9
    again = L.compute(spec, final, data_dir=data_dir, grid=3, range_=0.5, subset=128, seed=1)
    assert again.loss == result.loss and again.interp == result.interp


# ---- (4) end to end through the CLI and the database ------------------------------------------------------
def sw(*args: str, data: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "SKIPWEB_DATA_DIR": str(data)}
    return subprocess.run(
        [sys.executable, "-m", "skipweb", *args], capture_output=True, text=True, env=env, timeout=600
    )


@pytest.mark.slow
def test_cli_end_to_end(tmp_path) -> None:
    from db.landscape_jobs import get_job
    from db.landscapes import latest_landscape
    from db.session import dispose_engine

    data = tmp_path / "sw"
    out = sw("train", "resnet", "--depth", "20", "--dataset", "digits", "--epochs", "1", "--json", data=data)
    assert out.returncode == 0, out.stderr
    run_id = json.loads(out.stdout)["run_id"]

    out = sw("landscape", str(run_id), "--grid", "3", "--subset", "128", "--json", data=data)
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    assert d["run_id"] == run_id and d["grid"] == 3 and d["range"] == 1.0
    assert d["x"] == d["y"] == [-1.0, 0.0, 1.0]
    assert len(d["loss"]) == 3 and all(len(r) == 3 for r in d["loss"])
    assert all(set(p) == {"alpha", "loss"} for p in d["interp"])
    alphas = [p["alpha"] for p in d["interp"]]
    assert 0.0 in alphas and 1.0 in alphas
    assert d["interp"][alphas.index(1.0)]["loss"] == pytest.approx(d["loss"][1][1], rel=1e-6)

    url = f"sqlite:///{data / 'skipweb.db'}"
    try:
        row = latest_landscape(url, run_id)
        assert row is not None and row.kind == "2d" and row.grid == 3 and row.subset == 128
        assert row.loss == d["loss"] and row.x == d["x"] and row.y == d["y"]
        line = latest_landscape(url, run_id, "1d")
        assert line.loss == d["loss"][1] and line.y is None
        interp = latest_landscape(url, run_id, "interp")
        assert interp.x == alphas and interp.loss == [p["loss"] for p in d["interp"]]
    finally:
        dispose_engine(url)

    # --queue writes a job row and publishes its id; the worker task computes and stores it the same way
    out = sw(
        "landscape", str(run_id), "--grid", "3", "--range", "0.5", "--subset", "64", "--seed", "1", "--queue",
        "--json", data=data,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    queued = json.loads(out.stdout)
    assert queued == {"job_id": queued["job_id"], "run_id": run_id, "status": "queued"}
    assert len(list((data / "broker" / "queue").iterdir())) == 1
    code = f"from workers.tasks import landscape_job as t; print(t.run({queued['job_id']}), t.run({queued['job_id']}))"
    env = {**os.environ, "SKIPWEB_DATA_DIR": str(data)}
    task = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert task.returncode == 0, task.stderr
    assert task.stdout.strip().startswith("succeeded skipped: not queued"), task.stdout  # run twice: no-op
    try:
        job = get_job(url, queued["job_id"])
        assert job.status == "succeeded" and job.finished_at is not None and job.reason is None
        row2 = latest_landscape(url, run_id)
        assert row2.id > row.id and row2.range == 0.5 and row2.subset == 64 and row2.seed == 1
        assert row2.x == [-0.5, 0.0, 0.5] and len(row2.loss) == 3
    finally:
        dispose_engine(url)

    # errors: one line, exit 2
    out = sw("landscape", "999", data=data)
    assert out.returncode == 2 and out.stderr.strip().splitlines() == [
        "error: no run 999; see `skipweb status` for run ids"
    ]
    for f in next((data / "checkpoints").glob(f"run-{run_id}-*")).iterdir():
        f.unlink()
    out = sw("landscape", str(run_id), data=data)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1
    assert "has no checkpoint" in out.stderr


def test_store_and_latest(db_url) -> None:
    from db import experiments, runs
    from db.landscapes import latest_landscape, save_landscape

    exp = experiments.create_experiment(db_url, "t")
    (run_id,) = runs.add_runs(
        db_url,
        exp,
        [
            {
                "spec": "{}",
                "config_hash": "h",
                "label": "l",
                "family": "resnet",
                "depth": 20,
                "dataset": "digits",
                "seed": 0,
            }
        ],
    )
    assert latest_landscape(db_url, run_id) is None
    kw = {"grid": 2, "range_": 1.0, "seed": 0, "subset": 512, "x": [-1.0, 1.0], "y": [-1.0, 1.0]}
    save_landscape(db_url, run_id, "2d", loss=[[1.0, 2.0], [3.0, None]], **kw)
    second = save_landscape(db_url, run_id, "2d", loss=[[5.0, 6.0], [7.0, 8.0]], **kw)
    got = latest_landscape(db_url, run_id)
    assert got.id == second and got.loss == [[5.0, 6.0], [7.0, 8.0]] and got.created_at.tzinfo is not None
    with pytest.raises(ValueError, match="unknown landscape kind"):
        save_landscape(db_url, run_id, "3d", loss=[], **kw)


def test_charts_share_one_colour_scale() -> None:
    from skipweb.charts.landscape import interp_figure, landscape_figures

    a = {"x": [-1.0, 0.0, 1.0], "y": [-1.0, 0.0, 1.0], "loss": [[10, 2, 10], [3, 1, 3], [10, 2, None]]}
    b = {"x": [-1.0, 0.0, 1.0], "y": [-1.0, 0.0, 1.0], "loss": [[1000, 5, 100], [4, 2, 4], [100, 5, 100]]}
    contours, surfaces = landscape_figures({"resnet-20": a, "plain-20": b})
    for fig in (contours, surfaces):
        assert fig.layout.coloraxis.cmin == pytest.approx(0.0) and fig.layout.coloraxis.cmax == pytest.approx(
            3.0
        )
        kinds = [t.type for t in fig.data if t.type in ("contour", "surface")]
        assert len(kinds) == 2 and all(t.coloraxis == "coloraxis" for t in fig.data if t.type in kinds)
    fig = interp_figure({"resnet-20": [(0.0, 2.3), (0.5, 1.0), (1.0, 0.1)]})
    assert list(fig.data[0].x) == [0.0, 0.5, 1.0]
