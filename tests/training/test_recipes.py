"""Default recipes, the classifier's initialisation, ``zero_init_residual``, the story CLI and the workers'
CPU threads: issue 9's contracts, each on real objects (real models, the real console script)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest
import torch
from torch import nn

from skipweb.models import get_model
from skipweb.recipes import RECIPES, recipe_for, scaled_lr
from skipweb.spec import RunSpec


def sw(*args: str, tmp_path, **env) -> subprocess.CompletedProcess:
    full = {**os.environ, "SKIPWEB_DATA_DIR": str(tmp_path / "sw"), **env}
    full.pop("SKIPWEB_DATABASE_URL", None), full.pop("SKIPWEB_BROKER_URL", None)
    return subprocess.run([sys.executable, "-m", "skipweb", *args], capture_output=True, text=True, env=full,
                          timeout=300)  # fmt: skip


# ---- recipes -------------------------------------------------------------------------------------------
def test_every_registered_dataset_has_a_cited_linearly_scaled_recipe() -> None:
    from skipweb.data import list_datasets

    assert set(RECIPES) == set(list_datasets())
    for name, r in RECIPES.items():
        assert r.lr == pytest.approx(0.1 * r.batch_size / 128), name  # He et al.'s 0.1 at 128, scaled
        assert r.warmup_epochs >= 1 and r.source, name
    assert scaled_lr(32) == 0.025


def test_a_spec_takes_what_it_leaves_out_from_its_datasets_recipe() -> None:
    digits = recipe_for("digits")
    s = RunSpec(family="resnet", depth=56, dataset="digits")
    assert (s.epochs, s.batch_size, s.lr, s.warmup_epochs, s.schedule) == (
        digits.epochs, digits.batch_size, digits.lr, digits.warmup_epochs, digits.schedule)  # fmt: skip
    # a batch given without an lr gets the linearly scaled lr; given values always win
    assert RunSpec(family="resnet", depth=20, dataset="digits", batch_size=128).lr == pytest.approx(0.1)
    assert RunSpec(family="resnet", depth=20, dataset="digits", batch_size=128, lr=0.3).lr == 0.3
    shapes = RunSpec(family="unet", depth=3, dataset="shapes")
    assert shapes.batch_size == recipe_for("shapes").batch_size
    # a stored spec (every field present) re-validates unchanged
    assert RunSpec.parse(s.model_dump(mode="json")) == s


# ---- initialisation ------------------------------------------------------------------------------------
@pytest.mark.parametrize("family,depth", [("resnet", 56), ("plain", 56), ("densenet", 40), ("mlp", 8),
                                          ("highway", 20)])  # fmt: skip
def test_classifier_keeps_pytorchs_default_linear_init(family: str, depth: int) -> None:
    torch.manual_seed(0)
    model = get_model(family, depth=depth, num_classes=10, in_channels=1, image_size=8)
    head = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    bound = 1 / math.sqrt(head.in_features)  # nn.Linear's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    assert head.weight.abs().max() <= bound and head.weight.std() > bound / 3
    assert head.bias.abs().max() <= bound and head.bias.abs().sum() > 0
    # fan-out Kaiming would draw std sqrt(2 / 10) = 0.45 on a 64->10 head: far larger
    assert head.weight.std() < 0.2


def test_resnet56_starts_near_the_uniform_loss(tmp_path) -> None:
    """The issue's symptom: with the fan-out head resnet-56's initial loss on digits was ~13."""
    from skipweb.data import DeviceLoader, load_dataset

    data = load_dataset("digits", data_dir=tmp_path, seed=0)
    x, y = next(iter(DeviceLoader(data.train, batch_size=512, mean=data.mean, std=data.std)))
    torch.manual_seed(0)
    model = get_model("resnet", depth=56, num_classes=10, in_channels=1, image_size=8).train()
    with torch.no_grad():
        loss = nn.functional.cross_entropy(model(x), y).item()
        assert loss < 4, loss  # ln(10) = 2.3
        nn.init.kaiming_normal_(model.fc.weight, mode="fan_out", nonlinearity="relu")  # the old head
        assert nn.functional.cross_entropy(model(x), y).item() > 2 * loss


@pytest.mark.parametrize("family,opts", [("resnet", {}), ("resnet", {"block": "preact"}),
                                         ("resnet", {"block": "bottleneck"}), ("resnet", {"norm": "none"}),
                                         ("mlp", {})])  # fmt: skip
def test_zero_init_residual_makes_every_block_the_identity(family: str, opts: dict) -> None:
    depth = 56 if opts.get("block") == "bottleneck" else (8 if family == "mlp" else 20)
    torch.manual_seed(0)
    model = get_model(family, depth=depth, num_classes=10, in_channels=1, image_size=8, zero_init_residual=True,
                      **opts).eval()  # fmt: skip
    blocks = [m for m in model.modules() if getattr(m, "skip_bridged", False) and hasattr(m, "zero_last")]
    assert blocks
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    hooks = [b.register_forward_hook(lambda m, i, o: seen.append((i[0], o))) for b in blocks]
    with torch.no_grad():
        model(torch.randn(4, 1, 8, 8))
    for h in hooks:
        h.remove()
    same_shape = [(i, o) for i, o in seen if i.shape == o.shape]  # not the stage transitions (projections)
    assert len(same_shape) >= len(blocks) - 3
    for i, o in same_shape:  # post-activation blocks end in an act after the sum: act(x) == x for x >= 0 here
        expected = torch.relu(i) if family == "resnet" and opts.get("block", "basic") == "basic" else i
        assert torch.allclose(o, expected, atol=1e-5)
    # off by default: the same seed gives a block that is not the identity
    torch.manual_seed(0)
    plain = get_model(family, depth=depth, num_classes=10, in_channels=1, image_size=8, **opts)
    assert any(p.abs().sum() > 0 for n, p in plain.named_parameters() if n.endswith(("bn2.weight", "fc.weight")))


def test_zero_init_residual_is_a_spec_option_and_a_label() -> None:
    s = RunSpec(family="resnet", depth=20, dataset="digits", options={"zero_init_residual": True})
    assert s.label == "resnet-20 (zero_init_residual=True)"
    assert RunSpec(family="resnet", depth=20, dataset="digits").options["zero_init_residual"] is False


# ---- the story CLI -------------------------------------------------------------------------------------
@pytest.mark.slow
def test_submit_preset_and_story_json(tmp_path) -> None:
    out = sw("submit", "--preset", "degradation", "--seeds", "0,1", "--json", tmp_path=tmp_path)
    assert out.returncode == 0, out.stderr
    sub = json.loads(out.stdout)
    assert len(sub["run_ids"]) == 8  # plain/resnet × 20/56 × seeds 0,1
    status = json.loads(sw("status", f"exp:{sub['experiment_id']}", "--json", tmp_path=tmp_path).stdout)
    assert {r["label"] for r in status} == {"plain-20", "plain-56", "resnet-20", "resnet-56"}
    story = sw("story", "degradation", "--json", tmp_path=tmp_path)
    assert story.returncode == 0, story.stderr
    d = json.loads(story.stdout)
    assert d["story"] == "degradation" and d["experiment_id"] == sub["experiment_id"]
    assert len(d["findings"]) == 3
    for f in d["findings"]:  # nothing has trained: every finding says what is missing
        assert set(f) == {"verdict", "text", "values"} and f["verdict"] == "inconclusive"
        assert "queued" in f["text"]
    # the preset's default seeds are 0, 1, 2; --exp picks an experiment, a missing one is one line
    again = json.loads(sw("submit", "--preset", "long-skips", "--json", tmp_path=tmp_path).stdout)
    assert len(again["run_ids"]) == 9  # concat/add/none × seeds 0,1,2
    bad = sw("story", "degradation", "--exp", "999", tmp_path=tmp_path)
    assert bad.returncode == 2 and bad.stderr.strip() == "error: no experiment 999; see `skipweb status` for experiment ids"


@pytest.mark.parametrize("args", [("story", "nope"), ("story", "nope", "--json"), ("submit", "--preset", "nope")])
def test_unknown_story_key_exits_2_listing_the_keys(args, tmp_path) -> None:
    out = sw(*args, tmp_path=tmp_path)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.strip() == ("error: unknown story 'nope'; valid stories: degradation, gradient-regimes, "
                                  "add-vs-concat, long-skips, gates, landscapes")  # fmt: skip


def test_train_without_family_is_one_line(tmp_path) -> None:
    out = sw("train", tmp_path=tmp_path)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1 and "--depth" in out.stderr


def test_recipes_command_lists_each_dataset(tmp_path) -> None:
    out = sw("recipes", tmp_path=tmp_path)
    assert out.returncode == 0
    for name, r in RECIPES.items():
        assert name in out.stdout and f"{r.lr:g}" in out.stdout


# ---- workers use their share of the cores --------------------------------------------------------------
def test_share_of_cores() -> None:
    from skipweb.cli.worker import share_of_cores

    cores = len(os.sched_getaffinity(0))
    assert share_of_cores(1) == cores and share_of_cores(cores * 4) == 1
    assert share_of_cores(2) == max(1, cores // 2)


@pytest.mark.slow
def test_worker_sets_its_torch_threads(tmp_path) -> None:
    """A real `skipweb worker --threads 1` process: its torch thread count, read back from the process."""
    import time

    env = {**os.environ, "SKIPWEB_DATA_DIR": str(tmp_path / "sw")}
    env.pop("SKIPWEB_DATABASE_URL", None), env.pop("SKIPWEB_BROKER_URL", None)
    log = tmp_path / "worker.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen([sys.executable, "-c", "import os, torch, sys; from skipweb.cli import main;"
                                 "import celery.apps.worker as w; orig = w.Worker.on_consumer_ready\n"
                                 "def ready(self, c):\n    os.write(1, f'THREADS {torch.get_num_threads()}\\n'.encode()); orig(self, c)\n"
                                 "w.Worker.on_consumer_ready = ready\nsys.argv=['skipweb','worker','--threads','1']; main()"],
                                env=env, stdout=fh, stderr=subprocess.STDOUT)  # fmt: skip
        try:
            for _ in range(600):  # the worker announces readiness itself; this only bounds a hung start
                if "THREADS" in log.read_text() or proc.poll() is not None:
                    break
                time.sleep(0.2)
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    assert "THREADS 1" in log.read_text(), log.read_text()[-2000:]


def test_launch_estimate_comes_from_similar_finished_runs() -> None:
    """Issue 12 item 11: seconds per step of finished runs with the same family, depth, dataset and batch,
    times each planned run's steps; a configuration nobody has run is counted as unknown."""
    from datetime import UTC, datetime, timedelta
    from types import SimpleNamespace

    from skipweb.grid import estimate, plan, steps_of

    t0 = datetime(2026, 12, 1, tzinfo=UTC)

    def done(seconds: float, steps: int, **spec) -> SimpleNamespace:
        full = plan([spec.pop("family")], [spec.pop("depth")], [0], {"dataset": "digits", "batch_size": 32,
                                                                     "device": "cpu", **spec})[0]  # fmt: skip
        return SimpleNamespace(spec=full.model_dump(mode="json"), started_at=t0,
                               finished_at=t0 + timedelta(seconds=seconds), total_steps=steps)  # fmt: skip

    finished = [done(34, 340, family="resnet", depth=20), done(68, 340, family="resnet", depth=20),
                done(10, 340, family="resnet", depth=20, batch_size=64), done(5, 34, family="mlp", depth=4)]  # fmt: skip
    specs = plan(["resnet"], [20, 56], [0, 1], {"dataset": "digits", "batch_size": 32, "epochs": 2, "device": "cpu"})
    assert steps_of(specs[0]) == 2 * 34  # 1,077 digits in batches of 32
    seconds, known = estimate(specs, finished)
    assert known == 2  # resnet-20 × 2 seeds; no resnet-56 has finished
    assert seconds == pytest.approx(2 * 0.15 * 68)  # median of 0.1 and 0.2 s/step; batch 64 and mlp ignored
