"""DenseNet, U-Net and torchvision reference families: sizes against the papers, depth rules, shapes,
gradient flow and probe flags."""

from __future__ import annotations

import urllib.error

import pytest
import torch
import torchvision
from torch import nn

from skipweb.models import ModelConfigError, count_params, get_model
from skipweb.models.tv import _adapt_stem

# ---------------------------------------------------------------- DenseNet (arXiv 1608.06993)


@pytest.mark.parametrize(
    ("opts", "exact", "paper"),
    [
        ({"depth": 40}, 1_019_722, 1.0e6),  # Table 2: DenseNet (L=40, k=12) 1.0M
        ({"depth": 100, "bc": True}, 769_162, 0.8e6),  # Table 2: DenseNet-BC (L=100, k=12) 0.8M
        ({"depth": 100, "growth": 24}, 27_249_082, 27.2e6),  # Table 2: DenseNet (L=100, k=24) 27.2M
    ],
)
def test_densenet_matches_paper_sizes(opts: dict, exact: int, paper: float) -> None:
    n = count_params(get_model("densenet", num_classes=10, **opts))
    assert n == exact
    assert abs(n - paper) / paper < 0.05


def test_densenet_depth_rules() -> None:
    get_model("densenet", depth=40)
    get_model("densenet", depth=43)  # 3n+4
    get_model("densenet", depth=40, bc=True)  # 6n+4 with n=6
    get_model("densenet", depth=100, bc=True)
    for depth, opts in [(41, {}), (43, {"bc": True}), (4, {}), (7, {"bc": True})]:
        with pytest.raises(ModelConfigError, match="n\\+4"):
            get_model("densenet", depth=depth, **opts)
    with pytest.raises(ModelConfigError, match="growth"):
        get_model("densenet", depth=40, growth=13)


def test_densenet_bc_layers_have_4k_bottlenecks() -> None:
    model = get_model("densenet", depth=22, bc=True, growth=12)
    bottlenecks = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1)]
    # 3 blocks x 3 layers of 1x1 -> 4k, plus 2 transitions that halve the channels
    assert sum(m.out_channels == 48 for m in bottlenecks) == 9
    assert len(bottlenecks) == 11
    assert model.features.trans1[2].out_channels == model.features.trans1[2].in_channels // 2
    plain = get_model("densenet", depth=22, bc=False)
    assert sum(isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) for m in plain.modules()) == 2


@pytest.mark.parametrize("bc", [False, True])
def test_densenet_forward_gradients_and_probe_flags(bc: bool) -> None:
    for no_skip in (False, True):
        model = get_model("densenet", depth=22, bc=bc, no_skip=no_skip, num_classes=5, in_channels=1)
        out = model(torch.randn(2, 1, 16, 16))
        assert out.shape == (2, 5)
        out.sum().backward()
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
        layers = model.probe_layers()
        assert len(layers) == 22  # the paper's depth counts exactly the weight layers
        flags = {layer.name: layer.skip for layer in layers}
        assert not flags["stem"] and not flags["head.4"] and not flags["features.trans1.2"]
        assert flags["features.dense2.0.branch.2"] is not no_skip


def test_densenet_twin_has_fewer_params_and_no_concat() -> None:
    dense = get_model("densenet", depth=40)
    twin = get_model("densenet", depth=40, no_skip=True)
    assert count_params(twin) == 48_882 < count_params(dense)
    assert count_params(get_model("densenet", depth=100, bc=True, no_skip=True)) == 283_234
    x = torch.randn(1, 16, 8, 8)
    assert twin.features.dense1[0](x).shape[1] == 12
    assert dense.features.dense1[0](x).shape[1] == 28


def test_densenet_without_norm_keeps_concatenated_input_intact() -> None:
    # An in-place activation straight on the layer input would corrupt the features passed onward.
    model = get_model("densenet", depth=22, norm="none")
    x = torch.randn(1, 16, 8, 8)
    out = model.features.dense1[0](x.clone())
    assert torch.equal(out[:, :16], x)


# ---------------------------------------------------------------- U-Net (arXiv 1505.04597)

MILESIAL = {"depth": 4, "width": 64, "in_channels": 3, "num_classes": 1, "image_size": 64}


@pytest.mark.parametrize(
    ("skip", "up", "exact"),
    [
        ("concat", "transpose", 31_037_633),  # milesial/Pytorch-UNet UNet(3, 1, bilinear=False)
        ("add", "transpose", 27_904_193),
        ("none", "transpose", 27_904_193),  # adding matched channels costs no parameters
        ("concat", "bilinear", 28_948_673),
    ],
)
def test_unet_param_counts(skip: str, up: str, exact: int) -> None:
    assert count_params(get_model("unet", skip=skip, up=up, norm="batch", **MILESIAL)) == exact


@pytest.mark.parametrize("image_size", [32, 64])
@pytest.mark.parametrize("depth", [1, 2, 3, 4])
def test_unet_output_shape(depth: int, image_size: int) -> None:
    model = get_model("unet", depth=depth, width=8, num_classes=2, in_channels=3, image_size=image_size)
    assert model(torch.randn(1, 3, image_size, image_size)).shape == (1, 2, image_size, image_size)


def test_unet_skip_modes_change_param_counts() -> None:
    counts = {s: count_params(get_model("unet", depth=3, width=8, skip=s)) for s in ("none", "add", "concat")}
    # concat widens every decoder conv's input; add and none feed it the same number of channels.
    assert counts["none"] == counts["add"] < counts["concat"]


@pytest.mark.parametrize("up", ["transpose", "bilinear"])
@pytest.mark.parametrize("skip", ["concat", "add", "none"])
def test_unet_gradients_reach_every_parameter(skip: str, up: str) -> None:
    model = get_model("unet", depth=2, width=8, skip=skip, up=up, num_classes=3, image_size=16)
    out = model(torch.randn(2, 3, 16, 16))
    assert out.shape == (2, 3, 16, 16)
    out.square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not missing


def test_unet_probe_flags() -> None:
    plain = get_model("unet", depth=3, width=8, skip="none")
    assert not any(layer.skip for layer in plain.probe_layers())
    flags = {layer.name: layer.skip for layer in get_model("unet", depth=3, width=8).probe_layers()}
    # Only the first encoder conv, the last decoder conv and the output conv lie on every path.
    unbridged = {n for n, s in flags.items() if not s}
    assert unbridged == {"inc.0", "inc.3", "ups.2.conv.0", "ups.2.conv.3", "outc"}
    assert flags["downs.2.1.0"] and flags["ups.0.up"] and flags["ups.2.up"]


def test_unet_rejects_bad_depth_and_image_size() -> None:
    with pytest.raises(ModelConfigError, match="1 to 6"):
        get_model("unet", depth=7, image_size=256)
    with pytest.raises(ModelConfigError, match="use depth <= 2"):
        get_model("unet", depth=3, width=8, image_size=28)


def test_a_unet_too_deep_for_its_dataset_is_refused_before_it_is_queued() -> None:
    """The image-size rule is checked with the spec (the Launch page, submit and the presets validate specs
    before writing anything), not first by the worker that builds the model."""
    from skipweb.errors import SpecError
    from skipweb.spec import RunSpec

    with pytest.raises(SpecError, match=r"image size 32 is not divisible by 2\*\*6; use depth <= 5 \(shapes's"):
        RunSpec.parse({"family": "unet", "depth": 6, "dataset": "shapes"})
    assert RunSpec.parse({"family": "unet", "depth": 5, "dataset": "shapes"}).depth == 5


# ---------------------------------------------------------------- torchvision references


@pytest.mark.parametrize(
    ("depth", "exact"),
    [(18, 11_689_512), (34, 21_797_672), (50, 25_557_032), (121, 7_978_856)],
)
def test_torchvision_counts_equal_torchvision(depth: int, exact: int) -> None:
    assert count_params(get_model("torchvision", depth=depth, num_classes=1000)) == exact


@pytest.mark.parametrize("depth", [18, 121])
def test_torchvision_small_grayscale_inputs_run(depth: int) -> None:
    model = get_model("torchvision", depth=depth, num_classes=10, in_channels=1, image_size=8).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 1, 8, 8)).shape == (1, 10)


@pytest.mark.parametrize("in_channels", [1, 4])
def test_pretrained_stem_adaptation_keeps_rgb_filters(in_channels: int) -> None:
    net = torchvision.models.resnet18(weights=None)
    rgb = net.conv1.weight.detach().clone()
    _adapt_stem(net, in_channels, pretrained=True)
    w = net.conv1.weight
    assert w.shape[1] == in_channels
    expected = rgb.sum(1, keepdim=True) if in_channels == 1 else torch.cat([rgb, rgb[:, :1]], 1) * 0.75
    assert torch.allclose(w, expected)


def test_torchvision_probe_flags() -> None:
    flags = {layer.name: layer.skip for layer in get_model("torchvision", depth=18).probe_layers()}
    assert not flags["net.conv1"] and not flags["net.fc"]
    assert flags["net.layer1.0.conv1"] and flags["net.layer2.0.downsample.0"]
    flags = {layer.name: layer.skip for layer in get_model("torchvision", depth=121).probe_layers()}
    assert flags["net.features.denseblock1.denselayer1.conv1"]
    assert not flags["net.features.transition1.conv"] and not flags["net.classifier"]


def test_torchvision_depth_message() -> None:
    with pytest.raises(ModelConfigError, match=r"depth 18, 34, 50 \(resnet\) or 121 \(densenet\)"):
        get_model("torchvision", depth=101)


def test_torchvision_pretrained_offline_error(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    # An empty hub cache and a download that fails at once, so the test never waits on the network.
    def offline(*args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(ModelConfigError) as err:
        get_model("torchvision", depth=18, pretrained=True)
    assert (
        str(err.value)
        == "could not download torchvision weights for resnet18 (no network?); use pretrained=False"
    )
