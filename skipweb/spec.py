"""RunSpec: the validated description of one training run.

The CLI, the dashboard and the workers all build and read this one object. A spec is stored as JSON in
the database; ``RunSpec.model_validate`` re-validates it when a worker reads it back, so a malformed
row fails with a readable reason instead of a traceback.
"""

from __future__ import annotations

import hashlib
import json
import typing
from typing import Any, Literal

from annotated_types import Ge, Gt, Le
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from skipweb.errors import SpecError  # noqa: F401  (re-exported: the error of a spec that cannot run)
from skipweb.recipes import recipe_for, scaled_lr

# The model registry and the datasets (and so torch) are imported where a spec is validated, not here:
# the CLI builds its options from these fields and must start without torch.


class RunSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # what to train
    family: str
    depth: int
    dataset: str
    options: dict[str, Any] = Field(default_factory=dict, description="family options, defaults filled in")
    # how long, on what
    epochs: int = Field(10, ge=1, le=10_000, description="training epochs")
    batch_size: int = Field(128, ge=1, le=65_536, description="batch size")
    subset: int | None = Field(None, ge=1, description="train on only N samples")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="32-bit, the same range in SQLite and PostgreSQL")
    augment: bool = Field(True, description="the dataset's standard augmentation (crop/flip)")
    # optimisation. A field left out takes the dataset's recipe (skipweb.recipes): He et al. 2015's CIFAR
    # recipe, its lr scaled linearly with the batch, with a 1-epoch warm-up. The defaults below are that
    # recipe at batch 128, for a dataset without one.
    optimizer: Literal["sgd", "adamw"] = Field("sgd", description="optimizer")
    lr: float = Field(0.1, gt=0, le=10, allow_inf_nan=False, description="peak learning rate; scaled with the batch size")
    momentum: float = Field(0.9, ge=0, lt=1)
    nesterov: bool = False
    weight_decay: float = Field(1e-4, ge=0, le=1, description="weight decay")
    schedule: Literal["multistep", "cosine", "onecycle", "constant"] = Field("multistep", description="lr schedule")
    milestones: tuple[float, ...] = Field((0.5, 0.75), description="multistep: fractions of training")
    gamma: float = Field(0.1, gt=0, le=1)
    warmup_epochs: float = Field(1.0, ge=0, le=10_000, allow_inf_nan=False, description="linear warm-up epochs")
    # instrumentation and hardware
    probe_every: int = Field(10, ge=1, description="probe gradient norms every N optimizer steps")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="where to train")
    amp: Literal["none", "bf16", "fp16"] = Field("none", description="mixed precision (CUDA)")
    channels_last: bool = Field(False, description="channels-last memory format (faster convolutions on GPUs)")
    compile: bool = Field(False, description="torch.compile the model")

    @model_validator(mode="before")
    @classmethod
    def _recipe(cls, data: Any) -> Any:
        """Fill the training fields the caller left out from the dataset's recipe."""
        if isinstance(data, dict) and isinstance(data.get("dataset"), str):
            recipe = recipe_for(data["dataset"]).fields()
            if "batch_size" in data and "lr" not in data and isinstance(data["batch_size"], int):
                recipe["lr"] = scaled_lr(data["batch_size"])  # linear scaling, as the recipe itself does
            return {**recipe, **data}
        return data

    @field_validator("milestones")
    @classmethod
    def _fractions(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if any(not 0 < m < 1 for m in v) or list(v) != sorted(v):
            raise ValueError("milestones are increasing fractions of training between 0 and 1")
        return v

    @model_validator(mode="after")
    def _check_registry(self) -> RunSpec:
        from skipweb.data import get_dataset_info
        from skipweb.models import get_info

        info = get_info(self.family)  # ModelConfigError names the valid families
        resolved = info.resolve(self.depth, dict(self.options))
        data = get_dataset_info(self.dataset)
        if data.task != info.task:
            raise ValueError(
                f"{self.family} is a {info.task} model but {self.dataset} is a {data.task} dataset; "
                f"choose a {info.task} dataset"
            )
        image_error = info.check_image and info.check_image(self.depth, data.image_size)
        if image_error:
            raise ValueError(f"{image_error} ({self.dataset}'s images are {data.image_size} px)")
        if (self.amp != "none" or self.compile) and self.device == "cpu":
            raise ValueError("amp and compile are CUDA paths; use device cuda or auto")
        object.__setattr__(self, "options", resolved)
        return self

    # ---- identity -------------------------------------------------------------------------------
    def canonical_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    def config_hash(self) -> str:
        """Same hash for the same configuration (seed included): used to skip already-succeeded runs."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()[:16]

    @property
    def label(self) -> str:
        """Short human name, e.g. ``resnet-56`` or ``unet-4 (add)``; the no-skip twin says so."""
        from skipweb.models import get_info

        name = f"{self.family}-{self.depth}"
        extras = [f"{k}={v}" for k, v in self.options.items() if k in _LABEL_OPTIONS and v != get_info(self.family).defaults.get(k)]
        return name + (f" ({', '.join(extras)})" if extras else "")

    def build_model(self, data_info):
        """The untrained model this spec describes, shaped for a dataset (a DatasetInfo)."""
        from skipweb.models import get_model

        return get_model(self.family, depth=self.depth, num_classes=data_info.num_classes,
                         in_channels=data_info.in_channels, image_size=data_info.image_size, **self.options)

    @classmethod
    def parse(cls, data: dict | str) -> RunSpec:
        """Validate a dict or JSON text; raise SpecError with one readable line."""
        try:
            if isinstance(data, str):
                return cls.model_validate_json(data)
            return cls.model_validate(data)
        except ValidationError as e:
            raise SpecError(one_line(e)) from None
        except ValueError as e:  # registry errors raised outside pydantic's wrapping
            raise SpecError(str(e)) from None


_LABEL_OPTIONS = ("shortcut", "block", "no_skip", "skip", "norm", "act", "init", "bc", "growth", "width", "up",
                  "zero_init_residual")


def choices(name: str) -> tuple:
    """The values RunSpec's Literal field ``name`` allows (``optimizer``: sgd, adamw); () for other fields.
    The CLI's options and the Launch form offer exactly these."""
    kind = RunSpec.model_fields[name].annotation
    return typing.get_args(kind) if typing.get_origin(kind) is Literal else ()


def bounds(name: str) -> tuple[float | None, float | None, bool]:
    """(low, high, low_excluded) of RunSpec's number field ``name`` (None: unbounded), from its ``Field``."""
    low = high = None
    excluded = False
    for m in RunSpec.model_fields[name].metadata:
        if isinstance(m, Ge | Gt):
            low, excluded = (m.ge, False) if isinstance(m, Ge) else (m.gt, True)
        elif isinstance(m, Le):
            high = m.le
    return low, high, excluded


def one_line(err: ValidationError) -> str:
    """First error of a pydantic ValidationError as one line: 'field: message'."""
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first.get("loc", ()) if p != "__root__")
    msg = first.get("msg", str(err)).removeprefix("Value error, ")
    if first.get("type") == "extra_forbidden":
        msg = f"unknown field; valid fields: {', '.join(RunSpec.model_fields)}"
    return f"{loc}: {msg}" if loc else msg
