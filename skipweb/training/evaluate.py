"""Evaluation: loss and error for classification; pixel accuracy, mean IoU and Dice for segmentation."""

from __future__ import annotations

import torch
from torch import nn

from skipweb.data import IGNORE_INDEX


@torch.no_grad()
def evaluate(model: nn.Module, loader, *, task: str, num_classes: int, autocast) -> dict[str, float]:
    """One pass over ``loader`` in eval mode; a single host sync at the end."""
    was_training = model.training
    model.eval()
    dev = next(model.parameters()).device
    loss_sum = torch.zeros((), device=dev, dtype=torch.float64)
    wrong = torch.zeros((), device=dev, dtype=torch.float64)
    count = torch.zeros((), device=dev, dtype=torch.float64)
    conf = torch.zeros(num_classes * num_classes, device=dev, dtype=torch.float64)
    for x, y in loader:
        with autocast():
            logits = model(x)
        logits = logits.float()
        loss_sum += nn.functional.cross_entropy(logits, y, ignore_index=IGNORE_INDEX, reduction="sum")
        pred = logits.argmax(1)
        valid = y != IGNORE_INDEX
        wrong += ((pred != y) & valid).sum()
        count += valid.sum()
        if task == "segmentation":
            idx = y[valid] * num_classes + pred[valid]
            conf += torch.bincount(idx, minlength=num_classes * num_classes).double()
    model.train(was_training)
    n = max(1.0, count.item())
    out = {"loss": loss_sum.item() / n, "error": wrong.item() / n}
    if task == "segmentation":
        out.update(segmentation_scores(conf.view(num_classes, num_classes).cpu()))
    return out


def segmentation_scores(conf: torch.Tensor) -> dict[str, float]:
    """From a confusion matrix (rows truth, cols prediction): pixel accuracy, mean IoU, mean Dice.

    Classes absent from both truth and prediction are left out of the means (their IoU is undefined).
    """
    tp = conf.diag()
    fp = conf.sum(0) - tp
    fn = conf.sum(1) - tp
    present = (tp + fp + fn) > 0
    iou = tp[present] / (tp + fp + fn)[present]
    dice = 2 * tp[present] / (2 * tp + fp + fn)[present]
    total = conf.sum().clamp_min(1)
    return {"pixel_acc": float(tp.sum() / total), "miou": float(iou.mean()), "dice": float(dice.mean())}


def figure_ground_miou(masks: torch.Tensor, num_classes: int, ignore_index: int = 255) -> float:
    """The mean IoU that finding the objects but not telling them apart earns: background (class 0) separated
    perfectly, every object pixel given one of the other classes uniformly at random (expected counts).

    On ``shapes`` (4 classes, 87% background) it is 0.40: a segmenter below it has not learned the kinds."""
    counts = torch.bincount(masks[masks != ignore_index].flatten().long(), minlength=num_classes).double()
    objects, k = counts[1:].sum(), num_classes - 1
    ious = [1.0] + [float((n / k) / (n + objects / k - n / k)) for n in counts[1:] if n > 0]
    return sum(ious) / len(ious)


def predict_examples(spec_json: str, checkpoint_dir: str, data_dir, n: int = 4, run=None):
    """The first ``n`` test images of a run with its truths and its last checkpoint's predictions, on the
    CPU: ``(images (n, H, W, 3) float in [0, 1], truths, predictions, epoch)``. The model and the input
    normalisation are the trainer's own (RunSpec.build_model, DeviceLoader). ``run`` (id, status,
    steps_done): refuse a checkpoint older than the run (checkpoint.load_current)."""
    from pathlib import Path

    import numpy as np

    from skipweb.data import DeviceLoader, load_dataset
    from skipweb.spec import RunSpec
    from skipweb.training import checkpoint

    spec = RunSpec.parse(spec_json)
    if run is not None:
        state = checkpoint.load_current(Path(checkpoint_dir), run[2], run[0], run[1])
    elif (state := checkpoint.load(Path(checkpoint_dir))) is None:
        raise FileNotFoundError(f"no checkpoint in {checkpoint_dir}")
    data = load_dataset(spec.dataset, data_dir=data_dir, seed=spec.seed, download=False)
    model = spec.build_model(data.info)
    model.load_state_dict(state["model"])
    model.eval()
    split = data.test.take(torch.arange(min(n, len(data.test))))
    (x, y), = DeviceLoader(split, batch_size=n, mean=data.mean, std=data.std)
    with torch.no_grad():
        pred = model(x).argmax(1)
    raw = split.x.float() / (255.0 if split.x.dtype == torch.uint8 else 1.0)
    images = raw.clamp(0, 1).permute(0, 2, 3, 1).numpy()
    if images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    return images, y.numpy(), pred.numpy(), int(state.get("epoch", 0))
