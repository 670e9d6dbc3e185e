"""Every reproduction story, measured: each preset with its 3 seeds through real `skipweb worker` processes
on a fresh embedded installation, then the story's findings as `skipweb story KEY --json` gives them.

    python bench/stories.py                         # all six stories, 2 workers × 1 thread
    python bench/stories.py --story degradation --layout 1x2

Prints one markdown row per finding: story, verdict, sentence (with its numbers), the story's wall time
and the workers' CPU time.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from demo import run_preset  # noqa: E402

from skipweb.stories import STORIES  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--story", action="append", choices=list(STORIES), help="only these stories (repeatable)")
    ap.add_argument("--layout", default="2x1", help="WORKERSxTHREADS (default 2x1)")
    a = ap.parse_args()
    workers, threads = (int(x) for x in a.layout.split("x"))
    print(f"{os.cpu_count()} cores, {a.layout}; load before {os.getloadavg()[0]:.2f}", flush=True)
    rows = []
    for key in a.story or list(STORIES):
        r = run_preset(key, workers, threads)
        print(f"{key}: {r['succeeded']}/{r['runs']} runs succeeded, {r['submit_to_finished_s']:.0f} s wall, "
              f"{r['worker_cpu_s']:.0f} s worker CPU", flush=True)  # fmt: skip
        for f in r["findings"]:
            print(f"    [{f['verdict']}] {f['text']}", flush=True)
            rows.append((key, f, r))
    print("\n| story | verdict | finding | runs | wall s | worker CPU s |\n|---|---|---|---|---|---|")
    for key, f, r in rows:
        text = f["text"].replace("|", "\\|")
        print(f"| {key} | {f['verdict']} | {text} | {r['succeeded']}/{r['runs']} | {r['submit_to_finished_s']:.0f} | "
              f"{r['worker_cpu_s']:.0f} |")  # fmt: skip
    print(f"\nload after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
