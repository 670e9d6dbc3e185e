"""ResNet, plain, highway and MLP families: sizes against the papers, depth rules, probe flags, and the
gradient flow at initialisation that motivates the whole comparison."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from skipweb.models import ModelConfigError, count_params, get_info, get_model
from skipweb.models.highway import HighwayBlock, HighwayMerge
from skipweb.models.resnet import CifarResNet

# ---------------------------------------------------------------- ResNet / plain (arXiv 1512.03385)

# Option A, basic blocks, BatchNorm, 10 classes: the widely cited counts (0.27M ... 19.4M in Table 6).
PAPER_COUNTS = {20: 269_722, 32: 464_154, 44: 658_586, 56: 853_018, 110: 1_727_962, 1202: 19_421_274}


@pytest.mark.parametrize(("depth", "exact"), PAPER_COUNTS.items())
def test_resnet_option_a_parameter_counts(depth: int, exact: int) -> None:
    assert count_params(get_model("resnet", depth=depth, shortcut="A")) == exact


@pytest.mark.parametrize("depth", [20, 56])
def test_option_a_adds_no_parameters(depth: int) -> None:
    assert count_params(get_model("plain", depth=depth)) == PAPER_COUNTS[depth]
    assert count_params(get_model("resnet", depth=depth, no_skip=True)) == PAPER_COUNTS[depth]


def test_option_b_and_bottleneck_counts() -> None:
    # Measured, not quoted: option B adds two 1x1 conv + BN projections (16->32, 32->64) = 2,752 params.
    assert count_params(get_model("resnet", depth=20, shortcut="B")) == 272_474
    assert count_params(get_model("resnet", depth=56, shortcut="B")) == 855_770
    # Measured: pre-activation bottleneck ResNet-164 (arXiv 1603.05027 reports 1.7M).
    assert count_params(get_model("resnet", depth=164, block="bottleneck", shortcut="B")) == 1_704_154
    assert count_params(get_model("resnet", depth=164, block="bottleneck", shortcut="A")) == 1_661_274
    # Pre-activation basic blocks move BNs around but keep the count.
    assert count_params(get_model("resnet", depth=20, block="preact")) == PAPER_COUNTS[20]


def test_depth_rules() -> None:
    info = get_info("resnet")
    assert info.valid_depths(upto=60) == [8, 14, 20, 26, 32, 38, 44, 50, 56]
    # 9n+2 for bottlenecks: 164 = 9*18+2; note 56 = 9*6+2 and 110 = 9*12+2 are valid as well.
    assert info.valid_depths({"block": "bottleneck"}, upto=170)[-1] == 164
    for depth in (164, 56, 110):
        assert info.check_depth(depth, {"block": "bottleneck"}) is None
    for depth in (32, 44, 165):
        with pytest.raises(ModelConfigError, match=r"9n\+2"):
            get_model("resnet", depth=depth, block="bottleneck")
    with pytest.raises(ModelConfigError, match=r"resnet basic blocks need depth 6n\+2"):
        get_model("resnet", depth=21)
    with pytest.raises(ModelConfigError, match=r"6n\+2"):
        get_model("plain", depth=1208)  # beyond the 1202-layer cap


def test_probe_flags_mark_the_bridged_layers() -> None:
    assert not any(layer.skip for layer in get_model("plain", depth=20).probe_layers())
    layers = get_model("resnet", depth=20, shortcut="B").probe_layers()
    assert layers[0].name == "stem.0" and not layers[0].skip
    assert layers[-1].name == "fc" and not layers[-1].skip
    assert all(layer.skip for layer in layers[1:-1])
    assert sum("shortcut" in layer.name for layer in layers) == 2
    assert len(layers) == 1 + 18 + 2 + 1  # stem, 9 blocks x 2 convs, 2 projections, fc


@pytest.mark.parametrize(
    "opts", [{"block": "preact"}, {"block": "preact", "shortcut": "B"}, {"block": "bottleneck"}]
)
def test_preact_and_bottleneck_run(opts: dict) -> None:
    depth = 29 if opts["block"] == "bottleneck" else 20
    for no_skip in (False, True):
        model = get_model("resnet", depth=depth, no_skip=no_skip, **opts)
        assert isinstance(model, CifarResNet) and isinstance(model.final[0], nn.BatchNorm2d)
        out = model(torch.randn(2, 3, 32, 32))
        assert out.shape == (2, 10) and torch.isfinite(out).all()


@pytest.mark.parametrize("family", ["resnet", "plain"])
def test_depth_56_without_norm_builds(family: str) -> None:
    model = get_model(family, depth=56, norm="none")
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert torch.isfinite(model(torch.randn(2, 3, 32, 32))).all()


def test_width_scales_the_stages() -> None:
    model = get_model("resnet", depth=20, width=32, in_channels=1, num_classes=3)
    assert model.fc.in_features == 128
    assert model(torch.randn(2, 1, 16, 16)).shape == (2, 3)


# ---------------------------------------------------------------- highway (arXiv 1507.06228)


def test_highway_gate_bias_is_set_after_init() -> None:
    for bias in (-2.0, -1.0):
        opts = {} if bias == -2.0 else {"gate_bias": bias}
        blocks = [m for m in get_model("highway", depth=20, **opts).modules() if isinstance(m, HighwayBlock)]
        assert len(blocks) == 9
        for block in blocks:
            assert isinstance(block.gate, nn.Conv2d) and isinstance(block.merge, HighwayMerge)
            assert torch.all(block.gate.bias == bias)


def test_highway_no_skip_twin_is_the_plain_net() -> None:
    twin = get_model("highway", depth=20, no_skip=True)
    assert type(twin) is type(get_model("highway", depth=20))
    assert all(block.gate is None for block in twin.modules() if isinstance(block, HighwayBlock))
    assert count_params(twin) == count_params(get_model("plain", depth=20))
    # The gates (3x3 conv + bias, one per block) are the only extra parameters.
    gates = (
        3 * (16 * 16 * 9 + 16)
        + (16 * 32 * 9 + 32)
        + 2 * (32 * 32 * 9 + 32)
        + (32 * 64 * 9 + 64)
        + 2 * (64 * 64 * 9 + 64)
    )
    assert count_params(get_model("highway", depth=20)) == count_params(twin) + gates


# ---------------------------------------------------------------- MLP


def test_mlp_residual_and_plain_have_equal_size() -> None:
    res, plain = get_model("mlp", depth=6, width=64), get_model("mlp", depth=6, width=64, no_skip=True)
    assert count_params(res) == count_params(plain)
    layers = res.probe_layers()
    assert len(layers) == 6 and [layer.skip for layer in layers] == [False, True, True, True, True, False]
    assert get_model("mlp", depth=2).stem.in_features == 3 * 32 * 32
    with pytest.raises(ModelConfigError, match="between 2 and 1000"):
        get_model("mlp", depth=1)


# ---------------------------------------------------------------- gradient flow at initialisation


def _first_last_grad_norms(family: str, **opts) -> tuple[float, float]:
    """Weight-gradient L2 norms of the first probe layer and the last conv, after one CE backward."""
    torch.manual_seed(0)
    model = get_model(family, depth=56, **opts)
    gen = torch.Generator().manual_seed(1)
    x, y = torch.randn(64, 3, 32, 32, generator=gen), torch.randint(0, 10, (64,), generator=gen)
    nn.functional.cross_entropy(model(x), y).backward()
    convs = [m for _, m in model.probe_modules() if isinstance(m, nn.Conv2d)]
    return convs[0].weight.grad.norm().item(), convs[-1].weight.grad.norm().item()


@pytest.mark.slow
def test_gradient_flow_at_init_depth_56() -> None:
    """Measured (seed 0, torch 2.14 CPU), first-layer / last-conv weight-gradient norm:

    plain  + BN, kaiming:      6.0e3 / 1.05   = 5.7e3   (other seeds: 1e3 .. 6e3)
    resnet + BN, kaiming:      12.7  / 1.02   = 12.4    (other seeds: 12 .. 15)
    plain  + no norm, small:   0.0   / 0.0    (float32 underflow; ~1e-53 each in float64)
    resnet + no norm, small:   2.3e-3 / 2.7e-4 = 8.5    (other seeds: 5.6 .. 14)

    With BN the plain net does not vanish, it explodes towards the input (the BN gradient explosion of
    Yang et al. 2019, arXiv 1902.08129); the skips tame it ~500x. With a small init and no norm the
    plain net's gradients vanish everywhere at once: a weight gradient is (backward signal) x (forward
    activation), and the two decay in opposite directions, so the ratio cannot show it but the absolute
    size does. The residual net at the same init keeps usable gradients in every layer.
    """
    figures = {
        (family, norm): _first_last_grad_norms(family, **opts)
        for family in ("plain", "resnet")
        for norm, opts in (("batch", {"norm": "batch"}), ("none", {"norm": "none", "init": "small"}))
    }
    for (family, norm), (first, last) in figures.items():
        ratio = first / last if last else float("nan")
        print(f"{family:6s} norm={norm:5s} first={first:.3g} last={last:.3g} first/last={ratio:.3g}")

    first, last = figures["plain", "batch"]
    assert first / last > 500
    first, last = figures["resnet", "batch"]
    assert 2 < first / last < 60
    assert figures["plain", "batch"][0] / figures["plain", "batch"][1] > 20 * first / last

    first, last = figures["plain", "none"]
    assert first < 1e-30 and last < 1e-30
    first, last = figures["resnet", "none"]
    assert first > 1e-4 and last > 1e-5
    assert 1.5 < first / last < 60
