"""What can be trained on, as data without torch: each dataset's description and where its loader lives.

The CLI, the spec validator and the Launch form read only this (``skipweb.data`` re-exports it), so a
command that loads no data never imports torch; ``Entry.load`` imports the loader's module when data is
first loaded. Offline sets are registered first: they work everywhere, so they lead every list of choices.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skipweb.errors import DatasetError

# Mask value for pixels that carry no label: the border a padded random crop adds to segmentation masks.
# Trainers pass it as ``ignore_index`` to the loss and skip it in metrics.
IGNORE_INDEX = 255
AUGMENTS = ("none", "crop", "flip", "crop+flip")
PETS_SIZE = 64  # Oxford-IIIT Pet images and trimaps are resized to this square


class MissingData(Exception):
    """Raised by a loader when the files are absent and could not be fetched; ``load_dataset`` turns it into a
    one-line :class:`DatasetError` that lists the offline datasets."""

    def __init__(self, where: str, tried_download: bool) -> None:
        super().__init__(where)
        self.where = where
        self.tried_download = tried_download


@dataclass(frozen=True)
class DatasetInfo:
    """What a dataset is, as the CLI, the spec validator and the dashboard describe it."""

    name: str
    task: str  # "classification" | "segmentation"
    num_classes: int
    in_channels: int
    image_size: int  # square images after our preprocessing
    offline: bool  # True when it needs no network (bundled or generated)
    augment: str  # the standard augmentation the papers use for it: "crop+flip", "crop" or "none"
    summary: str
    train_size: int = 0  # samples in the training split (after the validation holdout): what subset may be


# (data_dir, download) -> (training pool, test); or "module:function[:first argument]", imported on first load
Loader = Callable[[Path, bool], tuple[Any, Any]] | str


@dataclass(frozen=True)
class Entry:
    info: DatasetInfo
    loader: Loader
    val_fraction: float  # of the training pool, held out as the validation split

    def load(self, data_dir: Path, download: bool) -> tuple[Any, Any]:
        if callable(self.loader):
            return self.loader(data_dir, download)
        module, name, *first = self.loader.split(":")
        return getattr(importlib.import_module(module), name)(*first, data_dir, download)


_REGISTRY: dict[str, Entry] = {}


def register_dataset(info: DatasetInfo, load: Loader, *, val_fraction: float) -> None:
    """Add a dataset. A name can be registered once: a second registration is a bug, not an override."""
    if info.name in _REGISTRY:
        raise ValueError(f"dataset '{info.name}' is already registered")
    if info.task not in ("classification", "segmentation") or info.augment not in AUGMENTS:
        raise ValueError(f"dataset '{info.name}': bad task '{info.task}' or augment '{info.augment}'")
    _REGISTRY[info.name] = Entry(info, load, val_fraction)


def list_datasets() -> list[str]:
    """Registered dataset names, in registration order (offline ones first)."""
    return list(_REGISTRY)


def get_dataset_info(name: str) -> DatasetInfo:
    """The description of ``name``; :class:`DatasetError` naming the choices if there is no such dataset."""
    return entry(name).info


def entry(name: str) -> Entry:
    if name not in _REGISTRY:
        raise DatasetError(f"unknown dataset '{name}'; choose one of: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def offline_names() -> str:
    return ", ".join(n for n, e in _REGISTRY.items() if e.info.offline)


def _info(
    name: str, task: str, classes: int, channels: int, size: int, augment: str, summary: str, train_size: int
) -> DatasetInfo:
    return DatasetInfo(name, task, classes, channels, size, name in _OFFLINE, augment, summary, train_size)


_OFFLINE = ("digits", "shapes", "shapes-cls")
_SEG_NOTE = f"Crops pad masks with {IGNORE_INDEX} (IGNORE_INDEX: no label)."

# Offline sets first: they are what works everywhere, so they lead every list of choices.
register_dataset(
    _info("digits", "classification", 10, 1, 8, "none",
          "1,797 real 8x8 handwritten digits bundled with scikit-learn (UCI); 1,077/360/360 split.", 1077),
    "skipweb.data.offline:load_digits", val_fraction=360 / 1437,
)  # fmt: skip
register_dataset(
    _info("shapes", "segmentation", 4, 3, 32, "none",
          "Generated 32x32 scenes of 1-3 circles, squares and triangles, many only a few pixels wide, on noisy "
          f"backgrounds; classes background/circle/square/triangle; 2,000/400/400. {_SEG_NOTE}", 2000),
    "skipweb.data.offline:load_shapes", val_fraction=1 / 6,
)  # fmt: skip
register_dataset(
    _info("shapes-cls", "classification", 3, 3, 32, "none",
          "Generated 32x32 images of one circle, square or triangle of varied size, angle and colour on a noisy "
          "background; label = the shape; 2,000/400/400.", 2000),
    "skipweb.data.offline:load_shapes_cls", val_fraction=1 / 6,
)  # fmt: skip

# Downloaded by torchvision. Validation = 10% of the official training set (5,000 for CIFAR, as He et al.).
# Augmentation follows the papers: pad-4 crop + flip for CIFAR (He et al. 2015); none for the digit sets
# (a flipped digit is another symbol) and SVHN (Huang et al. 2017 train DenseNet on it without augmentation).
_VISION = [
    ("cifar10", "classification", 10, 3, 32, "crop+flip",
     "CIFAR-10: 60,000 32x32 colour photos in 10 classes; 45,000/5,000/10,000. The ResNet/DenseNet benchmark.", 45_000),
    ("cifar100", "classification", 100, 3, 32, "crop+flip",
     "CIFAR-100: 60,000 32x32 colour photos in 100 classes; 45,000/5,000/10,000.", 45_000),
    ("mnist", "classification", 10, 1, 28, "none",
     "MNIST: 70,000 28x28 handwritten digits; 54,000/6,000/10,000.", 54_000),
    ("fashion-mnist", "classification", 10, 1, 28, "none",
     "Fashion-MNIST: 70,000 28x28 clothing images in 10 classes; 54,000/6,000/10,000.", 54_000),
    ("svhn", "classification", 10, 3, 32, "none",
     "SVHN: 99,289 32x32 house-number digits from Street View (no 'extra' set); 65,931/7,326/26,032.", 65_931),
    ("oxford-pets", "segmentation", 3, 3, PETS_SIZE, "crop+flip",
     "Oxford-IIIT Pet: 7,349 cat and dog photos resized to 64x64 with trimaps; classes pet/background/border; "
     f"3,312/368/3,669. {_SEG_NOTE}", 3_312),
]  # fmt: skip
for _name, *_rest in _VISION:
    register_dataset(_info(_name, *_rest), f"skipweb.data.vision:load_vision:{_name}", val_fraction=0.1)
