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

from pathlib import Path
from typing import TYPE_CHECKING, Any

from skipweb.data.catalog import (
    AUGMENTS,
    IGNORE_INDEX,
    DatasetError,
    DatasetInfo,
    MissingData,
    entry,
    get_dataset_info,
    list_datasets,
    offline_names,
    register_dataset,
)

if TYPE_CHECKING:
    from skipweb.data._common import DataBundle, Split
    from skipweb.data.loader import DeviceLoader

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


def __getattr__(name: str) -> Any:
    """The tensor types need torch: imported when first asked for (the catalog above does not)."""
    if name in ("DataBundle", "Split"):
        from skipweb.data import _common

        return getattr(_common, name)
    if name == "DeviceLoader":
        from skipweb.data.loader import DeviceLoader

        return DeviceLoader
    raise AttributeError(f"module 'skipweb.data' has no attribute {name!r}")


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
    import torch

    from skipweb.data._common import DataBundle, balanced_order, channel_stats, holdout

    found = entry(name)
    try:
        pool, test = found.load(Path(data_dir), download)
    except MissingData as missing:
        reason = "could not be downloaded (no network?)" if missing.tried_download else "download=False"
        raise DatasetError(
            f"{name} is not in {missing.where} and {reason}; offline datasets: {offline_names()}"
        ) from missing.__cause__
    generator = torch.Generator().manual_seed(seed)
    train_idx, val_idx = holdout(pool.y, round(found.val_fraction * len(pool)), generator)
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
    return DataBundle(found.info, train, pool.take(val_idx), test, mean, std)


def check_available(name: str, *, data_dir: Path, subset: int | None = None) -> None:
    """Raise DatasetError (one line) unless ``name`` loads on this machine (on disk, bundled, generated or
    downloadable) and ``subset`` fits its training split: what a submission checks before it writes rows."""
    info = entry(name).info
    if subset is not None and not 1 <= subset <= info.train_size:
        raise DatasetError(
            f"subset={subset} is not possible: {name} has {info.train_size} training samples; choose 1..{info.train_size}"
        )
    if not info.offline:  # bundled or generated sets are always there; the others must load from disk
        load_dataset(name, data_dir=data_dir, subset=subset)
