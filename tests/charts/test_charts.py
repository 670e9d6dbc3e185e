"""skipweb.charts on synthetic data whose right answers numpy computes independently."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from skipweb import charts
from skipweb.charts import curves as charts_curves
from skipweb.charts import runs as charts_runs


def _frame(run_values: dict[int, np.ndarray], key: str = "train/loss") -> pd.DataFrame:
    parts = []
    for rid, vals in run_values.items():
        n = len(vals)
        parts.append(
            pd.DataFrame(
                {
                    "run_id": rid,
                    "key": key,
                    "step": np.arange(n),
                    "epoch": np.arange(n) / 10,
                    "value": vals,
                    "wall": np.arange(n) * 0.5,
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def test_config_group_ignores_seed_only():
    a = {"family": "resnet", "depth": 20, "seed": 0, "lr": 0.1}
    assert charts.config_group(a) == charts.config_group({**a, "seed": 7})
    assert charts.config_group(a) != charts.config_group({**a, "depth": 56})


def test_fold_three_seeds_matches_numpy():
    rng = np.random.default_rng(0)
    vals = {i: rng.normal(size=50) for i in (1, 2, 3)}
    vals[4] = rng.normal(size=50)  # another configuration, not folded in
    df = _frame(vals)
    labels = {1: "resnet-20", 2: "resnet-20", 3: "resnet-20", 4: "plain-20"}
    groups = {1: "g", 2: "g", 3: "g", 4: "h"}
    fig = charts_curves.curves(df, "train/loss", labels, fold=True, groups=groups)
    stack = np.stack([vals[1], vals[2], vals[3]])
    mean, std = stack.mean(axis=0), stack.std(axis=0)
    by_name = {t.name: t for t in fig.data if t.name}
    assert set(by_name) == {"resnet-20 (3 seeds)", "plain-20"}
    np.testing.assert_allclose(by_name["resnet-20 (3 seeds)"].y, mean)
    band_hi, band_lo = fig.data[0].y, fig.data[1].y
    np.testing.assert_allclose(band_hi, mean + std)
    np.testing.assert_allclose(band_lo, mean - std)
    np.testing.assert_allclose(by_name["plain-20"].y, vals[4])
    # same label → same colour in the band and the line
    assert by_name["resnet-20 (3 seeds)"].line.color == charts.color_map(labels.values())["resnet-20"]


def test_smoothing_draws_raw_curve_behind_and_ema():
    y = np.array([1.0, 0.0, 0.0, 0.0])
    fig = charts_curves.curves(_frame({1: y}), "train/loss", {1: "a"}, smoothing=0.5, log_y=True, x="wall")
    raw, smooth = fig.data
    np.testing.assert_allclose(raw.y, y)
    np.testing.assert_allclose(smooth.y, [1.0, 0.5, 0.25, 0.125])
    np.testing.assert_allclose(smooth.x, np.arange(4) * 0.5)
    assert fig.layout.yaxis.type == "log"


def test_samples_axis_is_step_times_batch():
    fig = charts_curves.curves(_frame({1: np.ones(5)}), "train/loss", {1: "a"}, x="samples", batch_sizes={1: 128})
    np.testing.assert_array_equal(fig.data[0].x, np.arange(5) * 128)
    with pytest.raises(ValueError, match="x must be one of"):
        charts_curves.curves(_frame({1: np.ones(5)}), "train/loss", {1: "a"}, x="bogus")


def test_downsample_keeps_endpoints_extremes_and_bound():
    rng = np.random.default_rng(1)
    x = np.arange(100_003)
    y = rng.normal(size=x.size)
    y[4242] = 50.0  # a spike must survive
    dx, dy, idx = charts_curves.downsample(x, y, max_points=500)
    assert len(dx) <= 500
    assert dx[0] == 0 and dx[-1] == x[-1]
    assert dy.max() == 50.0 and dy.min() == y.min()
    assert np.all(np.diff(dx) > 0)
    np.testing.assert_array_equal(dy, y[idx])
    sx, sy, _ = charts_curves.downsample(x[:10], y[:10], max_points=500)  # short series untouched
    np.testing.assert_array_equal(sy, y[:10])


def test_heatmaps_share_one_colour_scale_of_global_log10_range():
    rng = np.random.default_rng(2)
    a = 10 ** rng.uniform(-6, -1, size=(30, 8))
    b = 10 ** rng.uniform(-3, 2, size=(40, 12))
    b[0, 0] = 0.0  # log10(0) is dropped, not -inf
    grads = {"plain-20": (np.arange(30) * 10, a), "resnet-20": (np.arange(40) * 10, b)}
    layers = {"resnet-20": [SimpleNamespace(idx=i, name=f"l{i}", skip=i % 2 == 1) for i in range(12)]}
    fig = charts.grad_heatmaps(grads, layers)
    logs = np.concatenate([np.log10(a).ravel(), np.log10(b.ravel()[1:])])
    assert fig.layout.coloraxis.cmin == pytest.approx(logs.min())
    assert fig.layout.coloraxis.cmax == pytest.approx(logs.max())
    heat = [t for t in fig.data if t.type == "heatmap"]
    assert [t.name for t in heat] == ["plain-20", "resnet-20"]
    assert all(t.coloraxis == "coloraxis" for t in heat)
    np.testing.assert_allclose(np.asarray(heat[0].z, dtype=float), np.log10(a).T)
    # one bar beside the heatmap per skip-bridged block (here every odd layer is a block of its own)
    (bars,) = [t for t in fig.data if t.type == "scatter"]
    ends = [y for y in bars.y if y is not None]
    assert ends == pytest.approx([v for i in (1, 3, 5, 7, 9, 11) for v in (i - 0.4, i + 0.4)])
    assert "skip-bridged" in bars.hovertext[0] and max(x for x in bars.x if x is not None) < heat[1].x[0]
    # consecutive layers of one block share one bar
    spans = charts.skip_spans([SimpleNamespace(idx=i, name=n, skip=s) for i, (n, s) in enumerate(
        [("stem.0", False), ("layer1.0.conv1", True), ("layer1.0.conv2", True), ("layer1.1.conv1", True),
         ("layer2.0.conv1", True), ("layer2.0.shortcut.0", True), ("fc", False)])])
    assert spans == [(1, 2, "layer1.0"), (3, 3, "layer1.1"), (4, 5, "layer2.0")]


def test_heatmap_columns_bucketed_for_long_runs():
    m = np.full((2000, 5), 10.0)
    fig = charts.grad_heatmaps({"r": (np.arange(2000), m)}, max_cols=300)
    assert len(fig.data[0].x) <= 300
    np.testing.assert_allclose(np.asarray(fig.data[0].z, dtype=float), 1.0)


def test_grad_vs_depth_takes_nearest_probe_step():
    steps = np.array([0, 10, 20])
    m = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]], dtype=np.float32)
    fig = charts.grad_vs_depth({"a": (steps, m)}, 12)
    np.testing.assert_array_equal(fig.data[0].y, [4, 5, 6])
    assert "step 10" in fig.data[0].name and fig.layout.yaxis.type == "log"


def test_degradation_one_trace_per_family_mean_and_std():
    rows = [
        {"family": f, "depth": d, "value": v}
        for f, d, v in [
            ("plain", 20, 0.1),
            ("plain", 20, 0.3),
            ("plain", 56, 0.4),
            ("resnet", 20, 0.08),
            ("resnet", 56, 0.06),
            ("resnet", 56, 0.07),
        ]
    ]
    fig = charts_runs.final_error_vs_depth(rows)
    assert sorted(t.name for t in fig.data) == ["plain", "resnet"]
    plain = next(t for t in fig.data if t.name == "plain")
    assert list(plain.x) == [20, 56]
    np.testing.assert_allclose(plain.y, [0.2, 0.4])
    np.testing.assert_allclose(plain.error_y.array, [np.std([0.1, 0.3]), 0.0])


def test_error_vs_params_log_x():
    rows = [
        {"family": "resnet", "label": "resnet-20", "params": 270_000, "value": 0.08},
        {"family": "resnet", "label": "resnet-56", "params": 850_000, "value": 0.06},
    ]
    fig = charts_runs.error_vs_params(rows)
    assert fig.layout.xaxis.type == "log" and list(fig.data[0].x) == [270_000, 850_000]


def test_summary_table_from_records_and_history():
    run = SimpleNamespace(
        id=5,
        label="resnet-20",
        family="resnet",
        depth=20,
        seed=0,
        status="succeeded",
        params=272_474,
        flops=41_000_000,
        started_at=None,
        finished_at=None,
        latest={},
    )
    hist = pd.DataFrame(
        {
            "run_id": [5, 5, 5],
            "key": ["test/error"] * 3,
            "step": [1, 2, 3],
            "epoch": [1.0, 2.0, 3.0],
            "value": [0.5, 0.2, 0.3],
            "wall": [1.0, 2.0, 3.5],
        }
    )
    latest = {5: {"test/error": 0.3, "epoch/train_error": 0.1, "samples_per_s": 900.0}}
    t = charts_runs.summary_table([run], latest, hist)
    row = t.iloc[0]
    assert row["label"] == "resnet-20" and row["params"] == 272_474
    assert row["best test error"] == 0.2 and row["final test error"] == 0.3
    assert row["final train error"] == 0.1 and row["samples/s"] == 900.0 and row["time (s)"] == 3.5


def test_a_running_run_is_never_shown_as_final():
    """Issue 12 item 5: a run at 57% is 'running 57%' in the table, with no final value, and is left out of
    the final-value charts (its newest test error was 0.858)."""
    from skipweb.ui.selection import final_rows, unfinished

    def rec(i, label, status, steps):
        return SimpleNamespace(id=i, label=label, family=label.split("-")[0], depth=int(label.split("-")[1]),
                               seed=0, status=status, params=1000, flops=None, started_at=None, finished_at=None,
                               steps_done=steps, total_steps=100, latest={})  # fmt: skip

    runs = [rec(1, "plain-20", "succeeded", 100), rec(2, "plain-56", "running", 57)]
    latest = {1: {"test/error": 0.1, "epoch/train_error": 0.05}, 2: {"test/error": 0.858, "epoch/train_error": 0.8}}
    t = charts_runs.summary_table(runs, latest).set_index("run")
    assert t.loc[1, "status"] == "succeeded" and t.loc[1, "final test error"] == 0.1
    assert t.loc[2, "status"] == "running 57%"
    assert np.isnan(t.loc[2, "final test error"]) and np.isnan(t.loc[2, "final train error"])
    assert [r["label"] for r in final_rows(runs, latest, "test/error")] == ["plain-20"]
    assert unfinished(runs) == ["plain-56 (running 57%)"]


def test_one_colour_per_configuration_on_every_page():
    """Issue 12 item 3: a run's colour comes from its family, depth and variant alone, so it is the same in
    every chart and on every page; families keep their hue (plain blues, resnet oranges); seeds of one
    configuration share the colour and differ by dash; two configurations never share a colour."""
    from plotly.colors import sequential

    page = charts.color_map(["plain-20", "plain-56", "resnet-20", "resnet-56 · seed 0", "resnet-56 · seed 1"])
    other = charts.color_map(["resnet-56", "densenet-22"])
    assert page["resnet-56 · seed 0"] == page["resnet-56 · seed 1"] == other["resnet-56"]
    assert {page["plain-20"], page["plain-56"]} <= set(sequential.Blues)
    assert {page["resnet-20"], page["resnet-56 · seed 0"]} <= set(sequential.Oranges)
    assert len({page[k] for k in ("plain-20", "plain-56", "resnet-20", "resnet-56 · seed 0")}) == 4
    variants = charts.color_map(["unet-3 (skip=concat)", "unet-3 (skip=add)", "unet-3 (skip=none)"])
    assert len(set(variants.values())) == 3
    dashes = charts_curves.seed_dashes(["resnet-56 · seed 0", "resnet-56 · seed 1", "plain-20"])
    assert dashes["resnet-56 · seed 0"] != dashes["resnet-56 · seed 1"] and dashes["plain-20"] == "solid"
    # the depth plot's family lines are in their family's hue too
    fam = charts.color_map(["plain", "resnet"])
    assert fam["plain"] in sequential.Blues and fam["resnet"] in sequential.Oranges


def test_projector_charts_scale_every_text():
    """Issue 12 item 2: in Present, ticks, legends and axis titles grow with the view, not only the title."""
    rows = [{"family": "plain", "label": "plain-20", "depth": 20, "params": 1, "value": 0.1},
            {"family": "resnet", "label": "resnet-20", "depth": 20, "params": 1, "value": 0.05}]  # fmt: skip
    fig = charts.for_projector(charts_runs.final_error_vs_depth(rows), size=20)
    assert fig.layout.font.size == 20 and fig.layout.legend.font.size == 18
    assert fig.layout.xaxis.tickfont.size == 18 and fig.layout.yaxis.title.font.size == 20


def test_log_axes_label_decades_or_1_2_5_never_every_digit():
    wide = charts.log_axis(go.Figure(go.Scatter(y=[1e-5, 1e-1])), [np.array([1e-5, 1e-1])])
    assert wide.layout.yaxis.type == "log" and wide.layout.yaxis.dtick == 1
    narrow = charts.log_axis(go.Figure(go.Scatter(y=[0.2, 0.9])), [np.array([0.2, 0.9])])
    assert list(narrow.layout.yaxis.ticktext) == ["0.2", "0.5", "1"]  # written out: never a bare "5"


def test_block_charts_of_nets_without_skips_say_so_instead_of_empty_axes():
    from db.blocks import BlockLayerRecord, BlockSeries
    from skipweb.charts import blocks as charts_blocks

    nan = np.full((3, 2), np.nan)
    ones = np.ones((3, 2))
    plain = BlockSeries(layers=[BlockLayerRecord(i, f"layer1.{i}", "none") for i in range(2)],
                        steps=np.array([1, 2, 3]), epochs=np.array([0.3, 0.6, 1.0]),
                        stats={"skip_grad": nan, "branch_grad": ones, "act_dead": ones * 0})  # fmt: skip
    prof = charts_blocks.block_profile({"plain-8": plain}, "ratio")
    assert not prof.data and "not defined" in prof.layout.annotations[0].text
    assert prof.layout.xaxis.visible is False and prof.layout.yaxis.visible is False
    heat = charts_blocks.block_heatmaps({"plain-8": plain}, "ratio")
    assert not [t for t in heat.data if t.type == "heatmap"]
    (note,) = [a for a in heat.layout.annotations if "no skip path" in a.text]
    assert (note.xref, note.x) == ("paper", pytest.approx(0.5))  # centred in its own panel
    two = charts_blocks.block_heatmaps({"resnet-8": BlockSeries(
        layers=plain.layers, steps=plain.steps, epochs=plain.epochs,
        stats={"skip_grad": ones, "branch_grad": ones}), "plain-8": plain}, "ratio")  # fmt: skip
    (note,) = [a for a in two.layout.annotations if "no skip path" in a.text]
    assert note.x == pytest.approx(sum(two.layout.xaxis2.domain) / 2) and note.x > 0.5
