"""The Launch form's fields as a person reads them, and the checks on its numbers (no Streamlit here)."""

from __future__ import annotations

from skipweb.facts import LANDSCAPE_GRID_MAX, LANDSCAPE_GRID_MIN
from skipweb.grid import split_list
from skipweb.spec import SpecError, bounds

# Every number the form takes, with its range: RunSpec's (its Field bounds), the landscape grid's skipweb.facts'.
# The widgets have no min/max of their own: Streamlit's only outlines an out-of-range entry red and keeps the old
# value, which then launched (lr -1 stored as 0.025). Here an out-of-range value is refused in one line naming
# the field and the range, and nothing is queued.
NUMBERS = {"epochs": "Epochs", "batch_size": "Batch size", "lr": "Learning rate", "probe_every": "Probe every N steps",
           "warmup_epochs": "Warm-up epochs"}  # fmt: skip
LIMITS = {**{key: (label, *bounds(key)) for key, label in NUMBERS.items()},
          "landscape_grid": ("Landscape grid", LANDSCAPE_GRID_MIN, LANDSCAPE_GRID_MAX, False)}  # fmt: skip
# the model options as the form names them (the spec's keys stay as they are)
OPTION_LABELS = {"no_skip": "no skip (the plain twin)", "zero_init_residual": "zero-init residual branch",
                 "gate_bias": "gate bias", "bc": "bottleneck + compression (BC)", "up": "upsampling",
                 "act": "activation", "norm": "normalisation", "init": "initialisation",
                 "skip": "long skips"}  # fmt: skip


def out_of_range(values: dict) -> str | None:
    """The one-line refusal of the first value outside its LIMITS range, or None."""
    for key, (label, lo, hi, excluded) in LIMITS.items():
        v = values.get(key)
        if v is None or ((lo is None or (lo < v if excluded else lo <= v)) and (hi is None or v <= hi)):
            continue
        if hi is None:
            allowed = f"at least {lo:g}"
        elif excluded:
            allowed = f"above {lo:g} and at most {hi:,g}"
        else:
            allowed = f"between {lo:g} and {hi:,g}"
        return f"{label} must be {allowed}; got {v:g}. Nothing was queued."
    return None


def parse_seeds(text: str) -> list[int]:
    """The Seeds field as ints; SpecError naming the field otherwise."""
    try:
        return split_list(text, int)
    except SpecError as e:
        raise SpecError(f"Seeds: {e} (comma-separated whole numbers, e.g. 0,1,2)") from None
