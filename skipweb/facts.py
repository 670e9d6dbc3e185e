"""One source for the names every layer shares: run and job statuses, metric keys, block statistics,
checkpoint names, queues and loss-landscape defaults.

This module imports nothing, so the database layer, the trainer, the workers and the UI can all use it
without pulling each other in. (Migrations keep their own frozen copies: history must not move when a
name is added here.)
"""

from __future__ import annotations

# ---- statuses -------------------------------------------------------------------------------------------
RUN_STATUSES = ("queued", "running", "succeeded", "failed", "diverged", "cancelled")
FINAL_STATUSES = ("succeeded", "failed", "diverged", "cancelled")
ACTIVE_STATUSES = ("queued", "running")
RETRYABLE_STATUSES = ("failed", "cancelled", "diverged")
LANDSCAPE_JOB_STATUSES = ("pending", "queued", "running", "succeeded", "failed")

# ---- ids ----------------------------------------------------------------------------------------------------
MAX_ID = 2**31 - 1  # ids are 32-bit integers in PostgreSQL; SQLite (64-bit) is held to the same range


# ---- metric keys (what the trainer writes; everything that reads metrics names them from here) -----------
class Metric:
    TRAIN_LOSS = "train/loss"  # per logged step
    TRAIN_ERROR = "train/error"
    LR = "lr"
    SAMPLES_PER_S = "samples_per_s"
    EPOCH_TRAIN_LOSS = "epoch/train_loss"  # per epoch: the mean over the epoch's batches
    EPOCH_TRAIN_ERROR = "epoch/train_error"
    EPOCH_TIME = "time/epoch_s"
    TEST_LOSS = "test/loss"  # per epoch, on the held-out split ("val/..." when a validation split is kept)
    TEST_ERROR = "test/error"
    VAL_ERROR = "val/error"
    TEST_MIOU = "test/miou"  # segmentation
    TEST_DICE = "test/dice"
    TEST_PIXEL_ACC = "test/pixel_acc"


def split_key(split: str, score: str) -> str:
    """The metric key of an evaluation score: ``split_key("test", "error") == "test/error"``."""
    return f"{split}/{score}"


# ---- what a person reads for each key: every chart title, axis, picker and table uses metric_name -------------
METRIC_NAMES = {
    Metric.TRAIN_LOSS: "training loss (per batch)",
    Metric.TRAIN_ERROR: "training error (per batch)",
    Metric.LR: "learning rate",
    Metric.SAMPLES_PER_S: "throughput (samples/s)",
    Metric.EPOCH_TRAIN_LOSS: "training loss (epoch mean)",
    Metric.EPOCH_TRAIN_ERROR: "training error (epoch mean)",
    Metric.EPOCH_TIME: "time per epoch (s)",
    "grad_norm": "gradient norm",
    "weight_norm": "weight norm",
    "update_ratio": "update/weight ratio",
}
SPLIT_NAMES = {"test": "test", "val": "validation", "train": "training"}
SCORE_NAMES = {"error": "error", "loss": "loss", "miou": "mIoU", "dice": "Dice", "pixel_acc": "pixel accuracy",
               "accuracy": "accuracy"}  # fmt: skip


def metric_name(key: str, *, final: bool = False) -> str:
    """``epoch/train_error`` → ``training error (epoch mean)``; ``final``: its value at the end of training,
    ``training error, last epoch``. An evaluation key ``<split>/<score>`` reads ``validation mIoU``; a key
    nobody named yet is shown as it is."""
    name = METRIC_NAMES.get(key)
    if name is None:
        split, _, score = key.partition("/")
        name = f"{SPLIT_NAMES[split]} {SCORE_NAMES[score]}" if split in SPLIT_NAMES and score in SCORE_NAMES else key
    if final:
        name = name.replace(" (epoch mean)", "").replace(" (per batch)", "") + ", last epoch"
    return name


# the held-out error a table shows for a run, in order of preference (classification, then validation)
ERROR_KEYS = (Metric.TEST_ERROR, Metric.VAL_ERROR)

# ---- per-block probe statistics (skipweb.training.probes computes them; db.tables.blocks stores them) ----
BLOCK_STATS = ("skip_grad", "branch_grad", "act_mean", "act_std", "act_dead", "gate")

# ---- files ------------------------------------------------------------------------------------------------
CHECKPOINT_NAME = "last.pt"  # in a run's checkpoint directory: the latest epoch's state

# ---- queues and tasks ---------------------------------------------------------------------------------------
# A run's queue follows from its device alone (skipweb.services.broker.route): ``auto`` runs go where any
# worker is free, ``cuda`` runs wait for a GPU worker, ``cpu`` runs never need one.
QUEUE_OF_DEVICE = {"auto": "any", "cuda": "gpu", "cpu": "cpu"}
QUEUES = ("gpu", "any", "cpu")
GPU_WORKER_QUEUES = ("gpu", "any")  # what a GPU worker consumes (also `--gpus` on a machine without CUDA)
CPU_WORKER_QUEUES = ("cpu", "any")


def queue_for(device: str | None) -> str:
    """The one routing rule: the queue of a run (and of work on its weights) that asks for ``device``.
    Anything but ``cpu`` or ``cuda`` (``auto``, a malformed spec) goes where any worker is free."""
    return QUEUE_OF_DEVICE.get(device or "auto", "any")
TASK_TRAIN = "skipweb.train_run"
TASK_LANDSCAPE = "skipweb.landscape"

# ---- loss-landscape defaults (the CLI, the Run detail button and a job row without values use these) --------
LANDSCAPE_GRID = 11
LANDSCAPE_RANGE = 1.0
LANDSCAPE_SUBSET = 512
LANDSCAPE_SEED = 0
LANDSCAPE_RANGE_MAX = 1000.0
LANDSCAPE_GRID_MIN = 3  # a 1×1 or 2×2 "surface" has no centre to compare against
LANDSCAPE_GRID_MAX = 201
