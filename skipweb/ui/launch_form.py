"""The Launch form's fields as a person reads them, and the checks on its numbers (no Streamlit here)."""

from __future__ import annotations

from skipweb.grid import split_list
from skipweb.spec import SpecError

# Every number the form takes, with its range. The widgets have no min/max of their own: Streamlit's only
# outlines an out-of-range entry red and keeps the old value, which then launched (lr -1 stored as 0.025).
# Here an out-of-range value is refused in one line naming the field and the range, and nothing is queued.
LIMITS = {"epochs": ("Epochs", 1, 10_000), "batch_size": ("Batch size", 1, 65_536),
          "lr": ("Learning rate", 1e-6, 10.0), "probe_every": ("Probe every N steps", 1, 100_000),
          "warmup_epochs": ("Warm-up epochs", 0.0, 10_000.0), "landscape_grid": ("Landscape grid", 3, 101)}  # fmt: skip
# the model options as the form names them (the spec's keys stay as they are)
OPTION_LABELS = {"no_skip": "no skip (the plain twin)", "zero_init_residual": "zero-init residual branch",
                 "gate_bias": "gate bias", "bc": "bottleneck + compression (BC)", "up": "upsampling",
                 "act": "activation", "norm": "normalisation", "init": "initialisation",
                 "skip": "long skips"}  # fmt: skip


def out_of_range(values: dict) -> str | None:
    """The one-line refusal of the first value outside its LIMITS range, or None."""
    for key, (label, lo, hi) in LIMITS.items():
        v = values.get(key)
        if v is not None and not lo <= v <= hi:
            return f"{label} must be between {lo:g} and {hi:,g}; got {v:g}. Nothing was queued."
    return None


def parse_seeds(text: str) -> list[int]:
    """The Seeds field as ints; SpecError naming the field otherwise."""
    try:
        return split_list(text, int)
    except SpecError as e:
        raise SpecError(f"Seeds: {e} (comma-separated whole numbers, e.g. 0,1,2)") from None
