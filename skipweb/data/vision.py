"""Datasets that torchvision downloads: CIFAR-10/100, MNIST, Fashion-MNIST, SVHN and Oxford-IIIT Pet.

torchvision fetches and checks the files into ``data_dir`` the first time (its own download code). We then
convert each set once to whole uint8 NCHW tensors and keep them in one ``<name>.v1.pt`` file beside them, so
a later run loads in a fraction of a second instead of decoding pickles, .mat files or 7,000 JPEGs again.
Every loader returns ``(pool, test)``: the official training and test sets.
"""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import numpy as np
import torch
from filelock import FileLock  # a dependency of torch itself
from PIL import Image

from skipweb.data._common import MissingData, Split
from skipweb.data.catalog import PETS_SIZE

CACHE_VERSION = 1  # bump when the preprocessing below changes, so old caches are rebuilt
DOWNLOAD_TIMEOUT_S = 30.0

Reader = Callable[[Path, bool], tuple[Split, Split]]


def cache_path(name: str, data_dir: Path) -> Path:
    """Where the converted tensors of ``name`` live."""
    return Path(data_dir) / f"{name}.v{CACHE_VERSION}.pt"


def _datasets() -> ModuleType:
    """torchvision.datasets, imported on first use: it adds over a second to ``import skipweb.data``, which
    the dashboard does just to list and describe datasets."""
    from torchvision import datasets

    return datasets


def _read_mnist(class_name: str) -> Reader:
    def read(root: Path, download: bool) -> tuple[Split, Split]:
        def split(train: bool) -> Split:
            ds = getattr(_datasets(), class_name)(root, train=train, download=download)
            return Split(ds.data.unsqueeze(1).contiguous(), ds.targets.long())

        return split(True), split(False)

    return read


def _read_cifar(class_name: str) -> Reader:
    def read(root: Path, download: bool) -> tuple[Split, Split]:
        def split(train: bool) -> Split:
            ds = getattr(_datasets(), class_name)(root, train=train, download=download)
            x = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()  # stored HWC
            return Split(x, torch.tensor(ds.targets, dtype=torch.long))

        return split(True), split(False)

    return read


def _read_svhn(root: Path, download: bool) -> tuple[Split, Split]:
    def split(name: str) -> Split:
        ds = _datasets().SVHN(root / "svhn", split=name, download=download)  # already NCHW, label 10 -> 0
        return Split(torch.from_numpy(np.ascontiguousarray(ds.data)), torch.from_numpy(ds.labels).long())

    return split("train"), split("test")


def _read_pets(root: Path, download: bool) -> tuple[Split, Split]:
    """Images resized to 64x64 (bilinear) and trimaps to 64x64 (nearest, so no invented labels); the trimap's
    1 pet, 2 background, 3 boundary become classes 0, 1, 2."""

    def resize(pair: tuple[Image.Image, Image.Image]) -> tuple[np.ndarray, np.ndarray]:
        image, trimap = pair
        size = (PETS_SIZE, PETS_SIZE)
        return (
            np.asarray(image.resize(size, Image.Resampling.BILINEAR)),
            np.asarray(trimap.resize(size, Image.Resampling.NEAREST)),
        )

    def split(name: str) -> Split:
        ds = _datasets().OxfordIIITPet(root, split=name, target_types="segmentation", download=download)
        # PIL releases the GIL while decoding and resizing, so threads use every core.
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            pairs = list(pool.map(lambda i: resize(ds[i]), range(len(ds))))
        x = torch.from_numpy(np.stack([p[0] for p in pairs])).permute(0, 3, 1, 2).contiguous()
        y = torch.from_numpy(np.stack([p[1] for p in pairs]).astype(np.int64)) - 1
        if y.numel() and (y.min() < 0 or y.max() > 2):
            raise RuntimeError(
                f"unexpected trimap values in {name}: {sorted(set((y + 1).unique().tolist()))}"
            )
        return Split(x, y)

    return split("trainval"), split("test")


READERS: dict[str, Reader] = {
    "cifar10": _read_cifar("CIFAR10"),
    "cifar100": _read_cifar("CIFAR100"),
    "mnist": _read_mnist("MNIST"),
    "fashion-mnist": _read_mnist("FashionMNIST"),
    "svhn": _read_svhn,
    "oxford-pets": _read_pets,
}


def load_vision(name: str, data_dir: Path, download: bool) -> tuple[Split, Split]:
    """The official (train, test) splits of ``name``: from the cache, else read (and downloaded) by torchvision.

    Raises :class:`MissingData` when the files are absent and could not be downloaded.
    """
    data_dir = Path(data_dir)
    cached = _load_cache(name, data_dir)
    if cached is not None:
        return cached
    if not data_dir.is_dir():
        if not download:
            raise MissingData(str(data_dir), tried_download=False)
        data_dir.mkdir(parents=True, exist_ok=True)
    # Workers may start the same dataset at once: one downloads and converts, the others wait and reuse it.
    with FileLock(str(data_dir / f".{name}.lock")):
        cached = _load_cache(name, data_dir)
        if cached is not None:
            return cached
        try:
            with _socket_timeout(DOWNLOAD_TIMEOUT_S):
                train, test = READERS[name](data_dir, download)
        except (OSError, RuntimeError) as err:  # URLError is an OSError; torchvision raises RuntimeError
            raise MissingData(str(data_dir), tried_download=download) from err
        _save_cache(name, data_dir, train, test)
        return train, test


def _load_cache(name: str, data_dir: Path) -> tuple[Split, Split] | None:
    path = cache_path(name, data_dir)
    if not path.is_file():
        return None
    try:
        d = torch.load(path, weights_only=True)
        return Split(d["train_x"], d["train_y"]), Split(d["test_x"], d["test_y"])
    except Exception:  # a damaged cache is rebuilt from the raw files, not a reason to fail
        return None


def _save_cache(name: str, data_dir: Path, train: Split, test: Split) -> None:
    # Write to a temporary file and rename: a reader never sees half a cache.
    fd, tmp = tempfile.mkstemp(dir=data_dir, prefix=f".{name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save({"train_x": train.x, "train_y": train.y, "test_x": test.x, "test_y": test.y}, tmp)
        os.replace(tmp, cache_path(name, data_dir))
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@contextmanager
def _socket_timeout(seconds: float) -> Iterator[None]:
    """torchvision's urllib calls have no timeout: a stalled connection would hang a worker for ever. Bound them
    while we download (only when no process-wide timeout is already set), then restore."""
    previous = socket.getdefaulttimeout()
    if previous is None:
        socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)
