"""Every registered family, checked the same way: shape, finiteness, gradients, probe layers, errors.

Families land in the registry as they are written; this module iterates whatever is registered.
"""

from __future__ import annotations

import pytest
import torch

from skipweb.models import ModelConfigError, count_params, get_info, get_model, list_models, register_model
from skipweb.models._common import ProbedModel

FAMILIES = list_models()
BATCH, CLASSES, SEG_CLASSES, SIZE = 2, 10, 2, 32


def _build(name: str, **opts) -> torch.nn.Module:
    info = get_info(name)
    classes = SEG_CLASSES if info.task == "segmentation" else CLASSES
    torch.manual_seed(0)
    return get_model(name, depth=info.example_depths[0], num_classes=classes, image_size=SIZE, **opts)


def _expected_shape(name: str) -> tuple[int, ...]:
    if get_info(name).task == "segmentation":
        return (BATCH, SEG_CLASSES, SIZE, SIZE)
    return (BATCH, CLASSES)


@pytest.mark.parametrize("name", FAMILIES)
def test_info_is_consistent(name: str) -> None:
    info = get_info(name)
    assert info.task in ("classification", "segmentation")
    assert info.summary and info.depth_rule and info.example_depths
    assert set(info.defaults) == set(info.options), "every option needs a default and vice versa"
    for option, allowed in info.options.items():
        assert info.defaults[option] in allowed, option
        if isinstance(info.defaults[option], bool):
            assert allowed == (False, True), f"bool option {option} must be declared as (False, True)"
    for depth in info.example_depths:
        assert info.check_depth(depth, dict(info.defaults)) is None, depth


@pytest.mark.parametrize("name", FAMILIES)
def test_forward_backward_and_probes(name: str) -> None:
    model = _build(name)
    assert isinstance(model, ProbedModel)
    out = model(torch.randn(BATCH, 3, SIZE, SIZE))
    assert out.shape == _expected_shape(name)
    assert torch.isfinite(out).all()

    # A random projection of the output, so that no parameter's gradient is zero by symmetry.
    (out * torch.randn_like(out)).sum().backward()
    for pname, param in model.named_parameters():
        assert param.grad is not None, f"{name}: {pname} received no gradient"
        assert torch.isfinite(param.grad).all(), f"{name}: {pname} has a non-finite gradient"

    layers = model.probe_layers()
    assert layers, f"{name} has no probe layers"
    assert [layer.index for layer in layers] == list(range(len(layers)))
    assert len({layer.name for layer in layers}) == len(layers)
    assert sum(layer.params for layer in layers) <= count_params(model)


@pytest.mark.parametrize("name", [n for n in FAMILIES if "no_skip" in get_info(n).options])
def test_no_skip_twin_is_the_same_class_without_skips(name: str) -> None:
    model, twin = _build(name), _build(name, no_skip=True)
    assert type(twin) is type(model)
    assert any(layer.skip for layer in model.probe_layers()), f"{name} marks no layer as skip-bridged"
    assert not any(layer.skip for layer in twin.probe_layers())
    out = twin(torch.randn(BATCH, 3, SIZE, SIZE))
    assert out.shape == _expected_shape(name)


def test_duplicate_registration_raises() -> None:
    info = get_info(FAMILIES[0])
    with pytest.raises(ValueError, match="already registered"):
        register_model(info)
    assert list_models() == FAMILIES


def test_unknown_family_names_the_choices() -> None:
    with pytest.raises(ModelConfigError) as err:
        get_model("no-such-net", depth=20)
    for name in FAMILIES:
        assert name in str(err.value)


@pytest.mark.parametrize("name", FAMILIES)
def test_bad_depth_and_unknown_option_raise(name: str) -> None:
    for depth in (0, -3):
        with pytest.raises(ModelConfigError, match=name) as err:
            get_model(name, depth=depth)
        assert "\n" not in str(err.value)
    with pytest.raises(ModelConfigError) as err:
        get_model(name, depth=get_info(name).example_depths[0], bogus_option=1)
    for option in get_info(name).options:
        assert option in str(err.value)


# A depth a worker could never train must be refused before anything is allocated (check_depth only:
# building it is the very thing to avoid).
@pytest.mark.parametrize("name", FAMILIES)
def test_absurd_depth_is_refused_without_building(name: str) -> None:
    info = get_info(name)
    assert info.check_depth(100_000, dict(info.defaults)) is not None


def test_bad_option_value_names_the_choices() -> None:
    with pytest.raises(ModelConfigError, match="choose one of: A, B"):
        get_model("resnet", depth=20, shortcut="C")
    with pytest.raises(ModelConfigError, match="batch, none"):
        get_model("plain", depth=20, norm="layer")


def test_bad_depth_message_gives_the_rule() -> None:
    with pytest.raises(ModelConfigError, match=r"6n\+2 .*\(20, 32, 44, 56, 110, \.\.\.\)"):
        get_model("resnet", depth=21)


@pytest.mark.parametrize("name", FAMILIES)
def test_flop_count_equals_torchs_flop_counter(name: str) -> None:
    """skipweb.describe.count_flops (forward hooks on convolutions and linear layers) gives what torch's own
    FLOP counter gives, for every family at two of its depths and with each option's other values."""
    from torch.utils.flop_counter import FlopCounterMode

    from skipweb.describe import count_flops

    info = get_info(name)
    classes = SEG_CLASSES if info.task == "segmentation" else CLASSES
    variants = [{}] + [
        {k: v} for k, values in info.options.items() for v in values if v != info.defaults.get(k)
    ]
    checked = 0
    for depth in info.example_depths[:2]:
        for opts in variants:
            if opts.get("pretrained"):  # the weights cannot be downloaded here
                continue
            try:
                model = get_model(name, depth=depth, num_classes=classes, image_size=SIZE, **opts)
            except ModelConfigError:  # e.g. an option this depth does not take
                continue
            model.eval()
            with torch.no_grad(), FlopCounterMode(display=False) as reference:
                model(torch.zeros(1, 3, SIZE, SIZE))
            assert count_flops(model, 3, SIZE) == reference.get_total_flops() > 0, (depth, opts)
            checked += 1
    assert checked >= 2
