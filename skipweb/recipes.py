"""Default training recipes, one per dataset: the one place the CLI, the Launch form, the story presets
and ``RunSpec`` take batch size, learning rate, warm-up, schedule and epochs from.

A recipe is a claim about how to train, so each one says where it comes from:

* **He et al. 2015** (arXiv 1512.03385, Sec. 4.2): SGD, momentum 0.9, weight decay 1e-4, lr 0.1 at batch
  128, divided by 10 at 50% and 75% of training (32k and 48k of 64k iterations).
* **Linear scaling** (Goyal et al. 2017, arXiv 1706.02677): lr = 0.1 × batch / 128 when the batch changes.
* **Warm-up**: He et al. start ResNet-110 at lr 0.01 until training error falls below 80% (about 400
  iterations) because 0.1 is "slightly too large to start converging"; Goyal et al. ramp linearly. Every
  recipe here ramps linearly over its first epoch, so that 56- and 110-layer nets start like shallow ones.

The small bundled sets (``digits``: 1,077 training images) use batch 32 so that an epoch is 34 steps, not
9: with 10 epochs the nets get 340 updates. Measured over 3 seeds for every family at its shallowest and
deepest offered depth in ``bench/recipes.py`` (table in bench/RESULTS.md).

    >>> recipe_for("digits").fields()
    {'epochs': 10, 'batch_size': 32, 'lr': 0.025, 'warmup_epochs': 1.0, 'schedule': 'multistep', ...}
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

HE_LR, HE_BATCH = 0.1, 128  # He et al. 2015's CIFAR recipe, the anchor of linear scaling


def scaled_lr(batch_size: int, base_lr: float = HE_LR, base_batch: int = HE_BATCH) -> float:
    """The linear-scaling rule: He et al.'s lr 0.1 at batch 128, scaled to ``batch_size``."""
    return round(base_lr * batch_size / base_batch, 6)


@dataclass(frozen=True)
class Recipe:
    epochs: int
    batch_size: int
    lr: float
    warmup_epochs: float = 1.0
    schedule: str = "multistep"
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 1e-4
    source: str = "He et al. 2015 (lr 0.1 at batch 128, linearly scaled; /10 at 50% and 75%), 1-epoch warm-up"

    def fields(self) -> dict:
        """The RunSpec fields this recipe sets."""
        d = asdict(self)
        d.pop("source")
        return d

    def describe(self) -> str:
        """One line for the Launch form and the CLI's help."""
        warm = f", {self.warmup_epochs:g}-epoch linear warm-up" if self.warmup_epochs else ""
        return (f"{self.optimizer} lr {self.lr:g} (momentum {self.momentum:g}, wd {self.weight_decay:g}), batch "
                f"{self.batch_size}, {self.epochs} epochs, {self.schedule}{warm}. Source: {self.source}.")  # fmt: skip



RECIPE_FIELDS = tuple(f.name for f in fields(Recipe) if f.name != "source")  # what a recipe decides

def _he(epochs: int, batch_size: int, **kw) -> Recipe:
    return Recipe(epochs=epochs, batch_size=batch_size, lr=scaled_lr(batch_size), **kw)


RECIPES: dict[str, Recipe] = {
    # bundled, offline
    "digits": _he(10, 32),
    "shapes-cls": _he(10, 64),
    # 30 epochs: at 10 a U-Net finds the shapes but guesses their kind (test mIoU 0.39, the level of exactly
    # that); the kinds are learned after the first lr drop (unet-2: 0.63 ± 0.02 at 30, 3 seeds; bench/RESULTS.md)
    "shapes": _he(30, 32, source="He et al.'s SGD recipe linearly scaled to batch 32, 1-epoch warm-up, 30 epochs"),
    # downloaded: the papers' own budgets (He et al.: 64k iterations at batch 128 on 45k images = 182 epochs)
    "cifar10": _he(182, 128),
    "cifar100": _he(182, 128),
    "svhn": _he(40, 128, source="Huang et al. 2017 (DenseNet) train SVHN for 40 epochs; lr 0.1 at batch 128"),
    "mnist": _he(20, 128),
    "fashion-mnist": _he(20, 128),
    "oxford-pets": _he(40, 32, source="He et al.'s SGD recipe linearly scaled to batch 32, 40 epochs"),
}
FALLBACK = _he(10, 128)


def recipe_for(dataset: str) -> Recipe:
    """The dataset's default recipe (a dataset registered later gets He et al.'s, at batch 128)."""
    return RECIPES.get(dataset, FALLBACK)
