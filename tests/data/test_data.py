"""The dataset registry, the offline datasets and the device-resident loader (torchvision sets: test_data_torchvision)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from skipweb.data import (
    IGNORE_INDEX,
    DataBundle,
    DatasetError,
    DeviceLoader,
    Split,
    get_dataset_info,
    list_datasets,
    load_dataset,
    register_dataset,
)
from skipweb.data._common import holdout
from skipweb.data.loader import window
from skipweb.data.offline import make_shapes, make_shapes_cls


def load(name: str, **kw) -> DataBundle:
    """Offline datasets never touch ``data_dir``: a path that does not exist proves it."""
    return load_dataset(name, data_dir=Path("/nonexistent/skipweb-data"), **kw)


def rows(x: torch.Tensor) -> set[bytes]:
    return {r.numpy().tobytes() for r in x.reshape(len(x), -1)}


@pytest.fixture(scope="module")
def digits():
    return load("digits", seed=0)


@pytest.fixture(scope="module")
def shapes():
    return load("shapes", seed=0)


# --- registry -------------------------------------------------------------------------------------------------


def test_registry_lists_every_dataset_with_consistent_info() -> None:
    names = list_datasets()
    assert names[:3] == ["digits", "shapes", "shapes-cls"]
    assert {"cifar10", "cifar100", "mnist", "fashion-mnist", "svhn", "oxford-pets"} <= set(names)
    for name in names:
        info = get_dataset_info(name)
        assert info.name == name and info.task in ("classification", "segmentation")
        assert info.augment in ("crop+flip", "crop", "none") and info.summary
        assert info.offline == (name in ("digits", "shapes", "shapes-cls"))
    assert get_dataset_info("cifar10").augment == "crop+flip"
    assert get_dataset_info("oxford-pets").task == "segmentation"


def test_a_name_registers_once() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_dataset(get_dataset_info("digits"), lambda d, dl: (None, None), val_fraction=0.1)


def test_unknown_dataset_error_lists_choices() -> None:
    with pytest.raises(
        DatasetError, match=r"unknown dataset 'imagenet'; choose one of: digits, shapes"
    ) as err:
        get_dataset_info("imagenet")
    assert "\n" not in str(err.value)
    with pytest.raises(DatasetError, match="choose one of"):
        load("imagenet")


# --- digits ---------------------------------------------------------------------------------------------------


def test_digits_shapes_ranges_and_disjoint_stratified_splits(digits) -> None:
    info = digits.info
    assert (info.num_classes, info.in_channels, info.image_size, info.offline) == (10, 1, 8, True)
    assert [len(s) for s in (digits.train, digits.val, digits.test)] == [1077, 360, 360]
    all_y = torch.cat([digits.train.y, digits.val.y, digits.test.y])
    for split in (digits.train, digits.val, digits.test):
        assert split.x.dtype == torch.float32 and split.x.shape[1:] == (1, 8, 8)
        assert split.y.dtype == torch.long and split.x.min() >= 0 and split.x.max() <= 1
        expected = torch.bincount(all_y) * len(split) / len(all_y)  # stratified: classes in proportion
        assert (torch.bincount(split.y, minlength=10) - expected).abs().max() <= 1.5
    train, val, test = (
        rows(digits.train.x),
        rows(digits.val.x),
        rows(digits.test.x),
    )  # digits has no duplicates
    assert len(train | val | test) == 1797
    assert digits.mean[0] == pytest.approx(digits.train.x.mean().item(), abs=1e-6)
    assert digits.std[0] == pytest.approx(digits.train.x.std().item(), rel=1e-3)


def test_digits_same_seed_same_tensors_other_seed_other_split(digits) -> None:
    again, other = load("digits", seed=0), load("digits", seed=1)
    for a, b in ((digits.train, again.train), (digits.val, again.val), (digits.test, again.test)):
        assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    assert not torch.equal(digits.val.x, other.val.x)
    assert torch.equal(digits.test.x, other.test.x)  # the test split is fixed, like an official one


def test_digits_subset_is_seeded_balanced_and_nested(digits) -> None:
    small, large = load("digits", seed=0, subset=100), load("digits", seed=0, subset=300)
    assert len(small.train) == 100 and len(large.train) == 300
    assert torch.equal(small.val.x, digits.val.x) and torch.equal(small.test.x, digits.test.x)
    assert small.mean == digits.mean and small.std == digits.std  # statistics of the full training split
    assert torch.bincount(small.train.y, minlength=10).tolist() == [10] * 10
    assert rows(small.train.x) <= rows(large.train.x) <= rows(digits.train.x)
    assert torch.equal(load("digits", seed=0, subset=100).train.x, small.train.x)
    assert not torch.equal(load("digits", seed=1, subset=100).train.x, small.train.x)


@pytest.mark.parametrize("subset", [0, -3, 1078, 5000])
def test_bad_subset_is_a_one_line_error(subset: int) -> None:
    with pytest.raises(DatasetError, match=r"subset=.*1077 training samples; choose 1\.\.1077") as err:
        load("digits", subset=subset)
    assert "\n" not in str(err.value)


def test_holdout_partitions_indices() -> None:
    y = torch.arange(103) % 7
    rest, held = holdout(y, 21, torch.Generator().manual_seed(3))
    assert len(held) == 21 and torch.equal(torch.cat([rest, held]).sort().values, torch.arange(103))
    assert torch.bincount(y[held], minlength=7).tolist() == [3] * 7


# --- shapes ---------------------------------------------------------------------------------------------------


def test_shapes_splits_masks_and_determinism(shapes) -> None:
    assert (shapes.info.task, shapes.info.num_classes, shapes.info.image_size) == ("segmentation", 4, 32)
    assert [len(s) for s in (shapes.train, shapes.val, shapes.test)] == [2000, 400, 400]
    for split in (shapes.train, shapes.val, shapes.test):
        assert split.x.dtype == torch.uint8 and split.x.shape[1:] == (3, 32, 32)
        assert split.y.dtype == torch.long and split.y.shape[1:] == (32, 32)
        assert split.y.min() >= 0 and split.y.max() <= 3
        assert (split.y.flatten(1) > 0).any(1).all()  # every image shows a shape
    assert torch.bincount(shapes.train.y.flatten(), minlength=4)[1:].min() > 0.03 * shapes.train.y.numel()
    assert len(rows(shapes.train.x) | rows(shapes.val.x) | rows(shapes.test.x)) == 2800
    again, other = load("shapes", seed=0), load("shapes", seed=1)
    assert torch.equal(again.train.x, shapes.train.x) and torch.equal(again.train.y, shapes.train.y)
    assert not torch.equal(other.val.x, shapes.val.x) and torch.equal(other.test.y, shapes.test.y)


def test_shapes_masks_align_with_images() -> None:
    """The mask says which pixels are painted: shape pixels are far in colour from the background's."""
    split = make_shapes(200, seed=7)
    x, shape = split.x.float(), split.y > 0
    bg_colour = (x * ~shape.unsqueeze(1)).sum((2, 3)) / (~shape).sum((1, 2)).unsqueeze(1)
    dist = (x - bg_colour[:, :, None, None]).abs().sum(1)  # L1 over RGB, per pixel
    assert (
        dist[shape] > 100
    ).float().mean() > 0.95  # shape colours sit >= 64 per channel from the background
    assert (dist[~shape] < 100).float().mean() > 0.95  # background: only noise (sigma 18 per channel)


def test_shapes_kinds_have_their_geometry() -> None:
    """Farthest pixel from the centroid over sqrt(area / pi): ~1 for a circle, 1.25 for a square, 1.56 for an
    equilateral triangle, whatever the rotation. A mask drawn by the wrong test would break the order."""
    masks = make_shapes(800, seed=2, max_shapes=1).y
    fg = masks > 0
    area = fg.sum((1, 2))
    inner = ~(
        fg[:, 0].any(1) | fg[:, -1].any(1) | fg[:, :, 0].any(1) | fg[:, :, -1].any(1)
    )  # not cut by the border
    grid = torch.stack(torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij"))  # (2, 32, 32)
    centroid = (grid * fg.unsqueeze(1)).sum((2, 3)) / area.unsqueeze(1)
    dist = ((grid - centroid[:, :, None, None]) ** 2).sum(1).sqrt() * fg
    ratio = dist.flatten(1).max(1).values / (area / torch.pi).sqrt()
    kind = masks.flatten(1).max(1).values
    medians = [ratio[inner & (area >= 40) & (kind == k)].median().item() for k in (1, 2, 3)]
    assert medians[0] < 1.12 < medians[1] < 1.4 < medians[2], medians


def test_shapes_cls_is_balanced_and_deterministic() -> None:
    data = load("shapes-cls", seed=0)
    assert (data.info.task, data.info.num_classes) == ("classification", 3)
    assert [len(s) for s in (data.train, data.val, data.test)] == [2000, 400, 400]
    assert data.train.y.shape == (2000,) and torch.bincount(data.train.y).min() >= 660
    assert torch.equal(load("shapes-cls", seed=0).val.x, data.val.x)
    assert torch.equal(make_shapes_cls(50, seed=3).x, make_shapes_cls(50, seed=3).x)


# --- DeviceLoader ---------------------------------------------------------------------------------------------


def dot_split(n: int = 256, row: int = 10, col: int = 12, masks: bool = False) -> Split:
    x = torch.zeros(n, 1, 32, 32, dtype=torch.uint8)
    x[:, 0, row, col] = 255
    y = (x[:, 0] > 0).long() if masks else torch.arange(n)
    return Split(x, y)


def test_batches_cover_the_split_once() -> None:
    split = Split(torch.zeros(10, 1, 4, 4), torch.arange(10))
    loader = DeviceLoader(split, batch_size=4, mean=[0.0], std=[1.0], shuffle=True)
    assert len(loader) == 3 and [len(y) for _, y in loader] == [4, 4, 2]
    assert sorted(torch.cat([y for _, y in loader]).tolist()) == list(range(10))
    dropped = DeviceLoader(split, batch_size=4, mean=[0.0], std=[1.0], drop_last=True)
    assert len(dropped) == 2 and [len(y) for _, y in dropped] == [4, 4]


def test_normalised_epoch_has_zero_mean_unit_std(shapes) -> None:
    loader = DeviceLoader(shapes.train, batch_size=512, mean=shapes.mean, std=shapes.std, channels_last=True)
    batches = list(loader)
    x = torch.cat([b[0] for b in batches])
    assert batches[0][0].dtype == torch.float32 and batches[0][1].dtype == torch.long
    assert batches[0][0].is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(x.mean((0, 2, 3)), torch.zeros(3), atol=1e-4)
    assert torch.allclose(x.std((0, 2, 3)), torch.ones(3), atol=1e-3)
    assert torch.equal(torch.cat([b[1] for b in batches]), shapes.train.y)  # no shuffle: split order


def test_crop_shifts_content_by_at_most_pad() -> None:
    loader = DeviceLoader(
        dot_split(), batch_size=64, mean=[0], std=[1], augment="crop", generator=torch.Generator()
    )
    x = torch.cat([b[0] for b in loader])
    assert x.shape == (256, 1, 32, 32) and torch.equal(
        x.flatten(1).sum(1), torch.ones(256)
    )  # dot kept, no blur
    where = x[:, 0].nonzero()[:, 1:]  # (row, col) of the dot per sample
    shift = where - torch.tensor([10, 12])
    assert shift.abs().max() == 4 and {-4, 0, 4} <= set(
        shift[:, 0].tolist()
    )  # pad = 32 // 8, all offsets used


def test_flip_mirrors_about_half_the_images() -> None:
    loader = DeviceLoader(dot_split(col=3), batch_size=100, mean=[0], std=[1], augment="flip")
    cols = torch.cat([b[0] for b in loader])[:, 0].sum(1).argmax(1)
    assert set(cols.tolist()) == {3, 28} and 80 < (cols == 28).sum() < 176


def test_same_generator_state_replays_the_epoch(shapes) -> None:
    g = torch.Generator().manual_seed(11)
    kw = dict(
        batch_size=300, mean=shapes.mean, std=shapes.std, shuffle=True, augment="crop+flip", generator=g
    )
    loader = DeviceLoader(shapes.val, **kw)
    state = g.get_state()
    first, second = list(loader), list(loader)
    g.set_state(state)
    replay = list(loader)
    assert all(
        torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(first, replay, strict=True)
    )
    assert not torch.equal(first[0][0], second[0][0])  # the next epoch is a different one
    g.set_state(state)
    resumed = list(loader.iter_from(1))  # resume after the first batch
    assert len(resumed) == 1 and torch.equal(resumed[0][0], first[1][0])
    plain = torch.cat(
        [b[0] for b in DeviceLoader(shapes.val, batch_size=400, mean=shapes.mean, std=shapes.std)]
    )
    augmented = torch.cat([b[0] for b in first])
    assert augmented.shape == plain.shape and not torch.equal(augmented.sort(0).values, plain.sort(0).values)


def test_masks_are_cropped_and_flipped_with_their_images() -> None:
    split = make_shapes(300, seed=5)
    split = Split((split.y * 60).to(torch.uint8).unsqueeze(1), split.y)  # the image *is* the mask, scaled
    loader = DeviceLoader(split, batch_size=128, mean=[0], std=[1], shuffle=True, augment="crop+flip")
    for x, y in loader:
        assert y.shape == (len(x), 32, 32) and y.dtype == torch.long
        ignored = y == IGNORE_INDEX
        assert ignored.any() and torch.equal((x[:, 0] * 255).round().long()[~ignored], y[~ignored] * 60)
        assert (x[:, 0][ignored] == 0).all()  # the zero padding of the image lies under the ignored border


def test_window_matches_slicing_and_flipping() -> None:
    source = torch.randn(5, 2, 12, 14)
    offsets = torch.tensor([[0, 0], [4, 6], [2, 3], [4, 0], [1, 5]])
    rows, cols = offsets[:, :1] + torch.arange(8), offsets[:, 1:] + torch.arange(8)
    out, flipped = window(source, rows, cols), window(source, rows, cols.flip(1))
    for i, (r, c) in enumerate(offsets.tolist()):
        assert torch.equal(out[i], source[i, :, r : r + 8, c : c + 8])
        assert torch.equal(flipped[i], source[i, :, r : r + 8, c : c + 8].flip(-1))


def test_loader_rejects_bad_arguments() -> None:
    split = Split(torch.zeros(4, 3, 8, 8), torch.zeros(4, dtype=torch.long))
    with pytest.raises(DatasetError, match="unknown augment 'rotate'; choose one of: none, crop, flip, crop"):
        DeviceLoader(split, batch_size=2, mean=[0] * 3, std=[1] * 3, augment="rotate")
    with pytest.raises(DatasetError, match="3 values"):
        DeviceLoader(split, batch_size=2, mean=[0], std=[1])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_loader_on_cuda_matches_cpu(shapes) -> None:
    kw = dict(batch_size=128, mean=shapes.mean, std=shapes.std, shuffle=True, augment="crop+flip")
    cpu = list(DeviceLoader(shapes.val, generator=torch.Generator().manual_seed(1), **kw))
    gpu = list(DeviceLoader(shapes.val, generator=torch.Generator().manual_seed(1), device="cuda", **kw))
    assert gpu[0][0].device.type == "cuda"
    assert all(
        torch.allclose(a[0], b[0].cpu()) and torch.equal(a[1], b[1].cpu())
        for a, b in zip(cpu, gpu, strict=True)
    )


@pytest.mark.parametrize("name", ["digits", "shapes", "shapes-cls"])
def test_the_catalog_knows_each_training_split_size(name: str, tmp_path) -> None:
    """submit checks --subset against DatasetInfo.train_size without loading (or importing torch)."""
    assert len(load_dataset(name, data_dir=tmp_path).train) == get_dataset_info(name).train_size
