"""torchvision datasets from tiny fixtures written in torchvision's own on-disk formats.

Nothing is mocked except the md5 sums torchvision checks CIFAR and SVHN files against (a fixture cannot match
the real files' sums): the real torchvision readers parse these files, and our code converts and caches them.
"""

from __future__ import annotations

import hashlib
import pickle
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import datasets

from skipweb.data import DatasetError, load_dataset
from skipweb.data.vision import cache_path


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def pattern(n: int, shape: tuple[int, ...], start: int = 0) -> np.ndarray:
    """uint8 images whose every pixel is distinct by position and image (mod 256), to catch layout mistakes."""
    size = int(np.prod(shape))
    return (
        ((np.arange(n)[:, None] * 7 + start + np.arange(size)[None]) % 256)
        .astype(np.uint8)
        .reshape(n, *shape)
    )


def write_idx(path: Path, array: np.ndarray) -> None:
    """MNIST's idx format: magic (0, 0, type 0x08 = ubyte, ndim), big-endian int32 dims, then the bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def test_mnist_from_idx_files_is_converted_and_cached(tmp_path: Path) -> None:
    raw = tmp_path / "MNIST" / "raw"
    train_x, test_x = pattern(50, (28, 28)), pattern(20, (28, 28), start=3)
    write_idx(raw / "train-images-idx3-ubyte", train_x)
    write_idx(raw / "train-labels-idx1-ubyte", np.arange(50) % 10)
    write_idx(raw / "t10k-images-idx3-ubyte", test_x)
    write_idx(raw / "t10k-labels-idx1-ubyte", np.arange(20) % 10)

    data = load_dataset("mnist", data_dir=tmp_path, seed=0, download=False)
    assert [len(s) for s in (data.train, data.val, data.test)] == [45, 5, 20]
    assert data.train.x.shape == (45, 1, 28, 28) and data.train.x.dtype == torch.uint8
    assert (
        torch.equal(data.test.x[:, 0], torch.from_numpy(test_x))
        and data.test.y.tolist() == list(range(10)) * 2
    )
    assert sorted(torch.cat([data.train.y, data.val.y]).tolist()) == sorted(list(range(10)) * 5)
    assert cache_path("mnist", tmp_path).is_file()

    shutil.rmtree(tmp_path / "MNIST")  # the second load must come from the cache alone
    again = load_dataset("mnist", data_dir=tmp_path, seed=0, download=False)
    assert torch.equal(again.train.x, data.train.x) and torch.equal(again.test.y, data.test.y)
    assert again.mean == data.mean


def test_cifar10_from_python_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    batches = {f"data_batch_{i}": pattern(20, (3072,), start=i) for i in range(1, 6)}
    batches["test_batch"] = pattern(10, (3072,), start=99)
    for name, data in batches.items():  # CIFAR's format: row = 1024 R, then 1024 G, then 1024 B values
        entry = {"batch_label": name, "data": data, "labels": [i % 10 for i in range(len(data))]}
        (folder / name).write_bytes(pickle.dumps(entry, protocol=2))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": names}, protocol=2))
    monkeypatch.setattr(
        datasets.CIFAR10,
        "train_list",
        [[f"data_batch_{i}", md5(folder / f"data_batch_{i}")] for i in range(1, 6)],
    )
    monkeypatch.setattr(datasets.CIFAR10, "test_list", [["test_batch", md5(folder / "test_batch")]])
    monkeypatch.setattr(
        datasets.CIFAR10, "meta", {**datasets.CIFAR10.meta, "md5": md5(folder / "batches.meta")}
    )

    data = load_dataset("cifar10", data_dir=tmp_path, seed=0, download=True)  # present: no download attempted
    assert [len(s) for s in (data.train, data.val, data.test)] == [90, 10, 10]
    assert data.train.x.shape == (90, 3, 32, 32) and data.train.x.dtype == torch.uint8
    expected = torch.from_numpy(batches["test_batch"]).view(10, 3, 32, 32)  # NCHW, channel planes kept
    assert torch.equal(data.test.x, expected) and data.test.y.tolist() == list(range(10))
    assert torch.bincount(data.val.y).tolist() == [1] * 10  # the holdout is stratified
    assert len(data.mean) == 3 and all(0 < s < 1 for s in data.std)
    assert cache_path("cifar10", tmp_path).is_file()


def test_svhn_from_mat_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scipy_io = pytest.importorskip("scipy.io")
    root = tmp_path / "svhn"
    root.mkdir()
    split_list = {}
    for split, n in (("train", 30), ("test", 12)):
        images = pattern(n, (3, 32, 32), start=n)
        labels = np.arange(n) % 10 + 1  # SVHN labels digits 1..10, with 10 meaning 0
        path = root / f"{split}_32x32.mat"
        scipy_io.savemat(path, {"X": images.transpose(2, 3, 1, 0), "y": labels[:, None].astype(np.uint8)})
        url, filename, _ = datasets.SVHN.split_list[split]
        split_list[split] = [url, filename, md5(path)]
    monkeypatch.setattr(datasets.SVHN, "split_list", {**datasets.SVHN.split_list, **split_list})

    data = load_dataset("svhn", data_dir=tmp_path, seed=0, download=False)
    assert [len(s) for s in (data.train, data.val, data.test)] == [27, 3, 12]
    assert torch.equal(data.test.x, torch.from_numpy(pattern(12, (3, 32, 32), start=12)))
    assert data.test.y.tolist() == [(i + 1) % 10 for i in range(12)]
    assert cache_path("svhn", tmp_path).is_file()


def test_oxford_pets_resized_with_trimap_classes(tmp_path: Path) -> None:
    base = tmp_path / "oxford-iiit-pet"
    (base / "images").mkdir(parents=True)
    (base / "annotations" / "trimaps").mkdir(parents=True)
    ids = {"trainval": [f"Abyssinian_{i}" for i in range(1, 11)], "test": ["Abyssinian_20", "Abyssinian_21"]}
    for split, names in ids.items():
        for k, image_id in enumerate(names):
            colour = (20 * k, 100, 250 - 20 * k)
            Image.new("RGB", (90, 70), colour).save(base / "images" / f"{image_id}.jpg", quality=95)
            trimap = np.full((70, 90), 2, dtype=np.uint8)  # 2 = background
            trimap[:, :45] = 1  # left half: pet
            trimap[:, 44:46] = 3  # a boundary between them
            Image.fromarray(trimap).save(base / "annotations" / "trimaps" / f"{image_id}.png")
        lines = "".join(f"{image_id} 1 1 1\n" for image_id in names)
        (base / "annotations" / f"{split}.txt").write_text(lines)

    data = load_dataset("oxford-pets", data_dir=tmp_path, seed=0, download=False)
    assert data.info.task == "segmentation" and data.info.num_classes == 3
    assert [len(s) for s in (data.train, data.val, data.test)] == [9, 1, 2]
    assert data.test.x.shape == (2, 3, 64, 64) and data.test.x.dtype == torch.uint8
    assert data.test.y.shape == (2, 64, 64) and data.test.y.dtype == torch.long
    assert set(data.train.y.unique().tolist()) == {0, 1, 2}
    assert (data.test.y[:, :, :30] == 0).all() and (data.test.y[:, :, 34:] == 1).all()  # nearest keeps halves
    assert torch.allclose(data.test.x[1].float().mean((1, 2)), torch.tensor([20.0, 100, 230]), atol=3)
    assert cache_path("oxford-pets", tmp_path).is_file()


@pytest.mark.timeout(120)
def test_failed_download_is_a_fast_one_line_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The real download code runs; the URL's host is in the reserved .invalid domain, so this fails the same
    # way on a machine with network (instead of fetching 170 MB) as it does offline.
    monkeypatch.setattr(datasets.CIFAR10, "url", "https://skipweb-test.invalid/cifar-10-python.tar.gz")
    with pytest.raises(DatasetError) as err:
        load_dataset("cifar10", data_dir=tmp_path / "empty", download=True)
    message = str(err.value)
    assert "\n" not in message
    assert message == (
        f"cifar10 is not in {tmp_path / 'empty'} and could not be downloaded (no network?); "
        "offline datasets: digits, shapes, shapes-cls"
    )
    assert not cache_path("cifar10", tmp_path / "empty").exists()


def test_missing_dataset_without_download(tmp_path: Path) -> None:
    with pytest.raises(
        DatasetError, match=r"^mnist is not in .* and download=False; offline datasets: digits"
    ):
        load_dataset("mnist", data_dir=tmp_path, download=False)
