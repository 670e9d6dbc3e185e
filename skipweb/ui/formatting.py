"""Text on the dashboard's pages: user text escaped for markdown, counts and durations, and the one line that
says what the runs on screen are."""

from __future__ import annotations


def escape_md(text: str) -> str:
    """User text (titles, tags, owners, reasons) shown inside markdown: every Markdown, HTML and Streamlit
    directive character (``:blue[...]``, ``$...$``) backslash-escaped and newlines flattened, so it stays
    text. The one escaping helper of the dashboard."""
    return "".join("\\" + c if c in _MD_SPECIAL else c for c in str(text).replace("\n", " "))


_MD_SPECIAL = frozenset("\\`*_{}[]()<>#+-.!|~:$&")


def fmt_count(n: int | None) -> str:
    if n is None:
        return "?"
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.2f}{unit}"
    return str(n)


def fmt_seconds(s: float | None) -> str:
    if s is None or s != s or s < 0:
        return ""
    s = int(s)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{sec:02d}s" if m else f"{sec}s")


def _one_or_range(values) -> str:
    vals = sorted(set(values))
    if not vals:
        return "?"
    return f"{vals[0]:g}" if len(vals) == 1 else f"{vals[0]:g}–{vals[-1]:g}"


def run_context(runs, exp=None) -> str:
    """One line saying what the runs on screen are: experiment, dataset, recipe (epochs, batch, lr), seeds
    and date, read from the runs' own specs (so a story view reading a 1-epoch experiment says 1 epoch)."""
    specs = [r.spec for r in runs]
    parts = [f"Experiment #{exp.id} «{escape_md(exp.title)}»"] if exp is not None else []
    if specs:
        parts.append(", ".join(sorted({str(s.get("dataset")) for s in specs})))
        epochs = _one_or_range(s.get("epochs", 0) for s in specs)
        parts.append(f"{epochs} epoch{'' if epochs == '1' else 's'}, batch "
                     f"{_one_or_range(s.get('batch_size', 0) for s in specs)}, lr "
                     f"{_one_or_range(s.get('lr', 0) for s in specs)}")  # fmt: skip
        seeds = sorted({int(s.get("seed", 0)) for s in specs})
        parts.append(f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}")
    when = [r.created_at for r in runs if r.created_at] or ([exp.created_at] if exp is not None else [])
    if when:
        parts.append(min(when).strftime("%Y-%m-%d"))
    return " · ".join(parts)
