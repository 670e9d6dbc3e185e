"""Datasets: a registry of what can be trained on, loading into whole tensors, and a device-resident loader.

    >>> from skipweb.data import load_dataset, DeviceLoader
    >>> data = load_dataset("digits", data_dir=settings.datasets_dir, seed=0)
    >>> train = DeviceLoader(data.train, batch_size=128, mean=data.mean, std=data.std, shuffle=True,
    ...                      augment=data.info.augment, generator=torch.Generator().manual_seed(0))

Splits: ``test`` is fixed (the official test set, or a fixed-seed holdout where there is none); ``val`` is a
stratified holdout of the training pool chosen by ``seed``; ``subset`` keeps a seeded, class-balanced part of
``train``. ``mean``/``std`` come from the whole training split, so a subset does not shift normalisation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch

from skipweb.data import offline, vision
from skipweb.data._common import (
    IGNORE_INDEX,
    DataBundle,
    DatasetError,
    DatasetInfo,
    MissingData,
    Split,
    balanced_order,
    channel_stats,
    holdout,
)
from skipweb.data.loader import AUGMENTS, DeviceLoader

__all__ = [
    "check_available",
    "AUGMENTS",
    "IGNORE_INDEX",
    "DataBundle",
    "DatasetError",
    "DatasetInfo",
    "DeviceLoader",
    "Split",
    "get_dataset_info",
    "list_datasets",
    "load_dataset",
    "register_dataset",
]

Loader = Callable[[Path, bool], tuple[Split, Split]]  # (data_dir, download) -> (training pool, test)


@dataclass(frozen=True)
class _Entry:
    info: DatasetInfo
    load: Loader
    val_fraction: float  # of the training pool, held out as the validation split


_REGISTRY: dict[str, _Entry] = {}


def register_dataset(info: DatasetInfo, load: Loader, *, val_fraction: float) -> None:
    """Add a dataset. A name can be registered once: a second registration is a bug, not an override."""
    if info.name in _REGISTRY:
        raise ValueError(f"dataset '{info.name}' is already registered")
    if info.task not in ("classification", "segmentation") or info.augment not in AUGMENTS:
        raise ValueError(f"dataset '{info.name}': bad task '{info.task}' or augment '{info.augment}'")
    _REGISTRY[info.name] = _Entry(info, load, val_fraction)


def list_datasets() -> list[str]:
    """Registered dataset names, in registration order (offline ones first)."""
    return list(_REGISTRY)


def get_dataset_info(name: str) -> DatasetInfo:
    """The description of ``name``; :class:`DatasetError` naming the choices if there is no such dataset."""
    return _entry(name).info


def load_dataset(
    name: str, *, data_dir: Path, seed: int = 0, subset: int | None = None, download: bool = True
) -> DataBundle:
    """Load ``name`` as whole tensors split into train/val/test; the same arguments give identical tensors.

    Args:
        name: one of :func:`list_datasets`.
        data_dir: where torchvision keeps downloads and we keep converted caches (unused by offline sets).
        seed: chooses the validation holdout and the subset.
        subset: keep only this many training samples (class-balanced); val and test are unchanged.
        download: fetch missing files; with ``False`` a missing dataset is an error.
    """
    entry = _entry(name)
    try:
        pool, test = entry.load(Path(data_dir), download)
    except MissingData as missing:
        offline_names = ", ".join(n for n, e in _REGISTRY.items() if e.info.offline)
        reason = "could not be downloaded (no network?)" if missing.tried_download else "download=False"
        raise DatasetError(
            f"{name} is not in {missing.where} and {reason}; offline datasets: {offline_names}"
        ) from missing.__cause__
    generator = torch.Generator().manual_seed(seed)
    train_idx, val_idx = holdout(pool.y, round(entry.val_fraction * len(pool)), generator)
    train = pool.take(train_idx)
    mean, std = channel_stats(train.x)
    if subset is not None:
        if not 1 <= subset <= len(train):
            raise DatasetError(
                f"subset={subset} is not possible: {name} has {len(train)} training samples; choose 1..{len(train)}"
            )
        # Drawn after the holdout from the same generator; a prefix of one balanced order, so with one seed a
        # smaller subset is part of a larger one (a data-size sweep adds samples, never swaps them).
        train = train.take(balanced_order(train.y, generator)[:subset].sort().values)
    return DataBundle(entry.info, train, pool.take(val_idx), test, mean, std)


def check_available(name: str, *, data_dir: Path, subset: int | None = None) -> None:
    """Raise DatasetError (one line) unless ``name`` loads on this machine (on disk, bundled, generated or
    downloadable) and ``subset`` fits its training split: what a submission checks before it writes rows."""
    if subset is None and _entry(name).info.offline:
        return  # bundled or generated: always there
    load_dataset(name, data_dir=data_dir, subset=subset)


def _entry(name: str) -> _Entry:
    if name not in _REGISTRY:
        raise DatasetError(f"unknown dataset '{name}'; choose one of: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def _info(
    name: str, task: str, classes: int, channels: int, size: int, augment: str, summary: str
) -> DatasetInfo:
    return DatasetInfo(name, task, classes, channels, size, name in _OFFLINE, augment, summary)


_OFFLINE = ("digits", "shapes", "shapes-cls")
_SEG_NOTE = f"Crops pad masks with {IGNORE_INDEX} (IGNORE_INDEX: no label)."

# Offline sets first: they are what works everywhere, so they lead every list of choices.
register_dataset(
    _info("digits", "classification", 10, 1, 8, "none",
          "1,797 real 8x8 handwritten digits bundled with scikit-learn (UCI); 1,077/360/360 split."),
    offline.load_digits, val_fraction=360 / 1437,
)  # fmt: skip
register_dataset(
    _info("shapes", "segmentation", 4, 3, 32, "none",
          "Generated 32x32 scenes of 1-3 circles, squares and triangles, many only a few pixels wide, on noisy "
          f"backgrounds; classes background/circle/square/triangle; 2,000/400/400. {_SEG_NOTE}"),
    offline.load_shapes, val_fraction=1 / 6,
)  # fmt: skip
register_dataset(
    _info("shapes-cls", "classification", 3, 3, 32, "none",
          "Generated 32x32 images of one circle, square or triangle of varied size, angle and colour on a noisy "
          "background; label = the shape; 2,000/400/400."),
    offline.load_shapes_cls, val_fraction=1 / 6,
)  # fmt: skip

# Downloaded by torchvision. Validation = 10% of the official training set (5,000 for CIFAR, as He et al.).
# Augmentation follows the papers: pad-4 crop + flip for CIFAR (He et al. 2015); none for the digit sets
# (a flipped digit is another symbol) and SVHN (Huang et al. 2017 train DenseNet on it without augmentation).
_VISION = [
    ("cifar10", "classification", 10, 3, 32, "crop+flip",
     "CIFAR-10: 60,000 32x32 colour photos in 10 classes; 45,000/5,000/10,000. The ResNet/DenseNet benchmark."),
    ("cifar100", "classification", 100, 3, 32, "crop+flip",
     "CIFAR-100: 60,000 32x32 colour photos in 100 classes; 45,000/5,000/10,000."),
    ("mnist", "classification", 10, 1, 28, "none",
     "MNIST: 70,000 28x28 handwritten digits; 54,000/6,000/10,000."),
    ("fashion-mnist", "classification", 10, 1, 28, "none",
     "Fashion-MNIST: 70,000 28x28 clothing images in 10 classes; 54,000/6,000/10,000."),
    ("svhn", "classification", 10, 3, 32, "none",
     "SVHN: 99,289 32x32 house-number digits from Street View (no 'extra' set); 65,931/7,326/26,032."),
    ("oxford-pets", "segmentation", 3, 3, vision.PETS_SIZE, "crop+flip",
     "Oxford-IIIT Pet: 7,349 cat and dog photos resized to 64x64 with trimaps; classes pet/background/border; "
     f"3,312/368/3,669. {_SEG_NOTE}"),
]  # fmt: skip
for _name, *_rest in _VISION:
    register_dataset(_info(_name, *_rest), partial(vision.load_vision, _name), val_fraction=0.1)
