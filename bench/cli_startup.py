"""CLI start-up (issue 13, item 1): each command's wall time against the floor its libraries set.

For every command, two kinds of fresh process, alternated, median of ``--repeat`` each:
  command   `python -m skipweb ...` on an empty embedded database (Python start-up included)
  floor     `python -c "import ..."` of exactly the third-party and standard-library modules that the
            command loaded (read from its `-X importtime` list), none of skipweb's own: what any program
            built on the same libraries (typer, pydantic-settings, SQLAlchemy, ...) pays before it runs
            a line of its own
"ours" = command - floor: skipweb's modules, its settings, the database connection and the query.
The ratio compares machines: the 0.5 s goal is absolute, the floor moves with the CPU.

Usage:  python bench/cli_startup.py [--repeat 7] [--db postgresql+psycopg://.../DB]   (default: embedded SQLite)
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMANDS = [["--help"], ["models"], ["recipes"], ["status"], ["cancel", "7"], ["export", "7"]]
OWN = ("skipweb", "db", "app", "__main__")


def loaded_modules(args: list[str], env: dict) -> list[str]:
    """Modules the command imports, in the order their imports finished, skipweb's own left out."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "skipweb", *args], env=env,
                         capture_output=True, text=True)  # fmt: skip
    names = []
    for line in out.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            if name and name != "imported package" and name.split(".")[0] not in OWN:
                names.append(name)
    return names


def wall(cmd: list[str], env: dict) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--db", help="a database URL (an empty or skipweb database); default: a new SQLite file")
    args = ap.parse_args()
    data = Path(tempfile.mkdtemp(prefix="skipweb-cli-"))
    env = {**os.environ, "SKIPWEB_DATA_DIR": str(data)}
    env.pop("SKIPWEB_DATABASE_URL", None)
    if args.db:
        env["SKIPWEB_DATABASE_URL"] = args.db
    subprocess.run([sys.executable, "-m", "skipweb", "db", "upgrade"], env=env, capture_output=True, check=True)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"{'database ' + args.db.split('@')[-1] if args.db else 'empty embedded database'}; load before: {os.getloadavg()[0]:.2f}")  # fmt: skip
    print(f"{'command':<18} {'wall (s)':>9} {'floor (s)':>10} {'ours (s)':>9} {'wall/floor':>11}  modules")
    for cmd in COMMANDS:
        mods = loaded_modules(cmd, env)
        floor_src = f"import importlib\nfor m in {mods!r}:\n    try:\n        importlib.import_module(m)\n" \
                    "    except Exception:\n        pass"
        runs: dict[str, list[float]] = {"wall": [], "floor": []}
        for _ in range(args.repeat):
            runs["wall"].append(wall([sys.executable, "-m", "skipweb", *cmd], env))
            runs["floor"].append(wall([sys.executable, "-c", floor_src], env))
        w, f = statistics.median(runs["wall"]), statistics.median(runs["floor"])
        print(f"{' '.join(cmd):<18} {w:>9.2f} {f:>10.2f} {w - f:>9.2f} {w / f:>11.2f}  {len(mods)}", flush=True)
    bare = statistics.median(wall([sys.executable, "-c", "pass"], env) for _ in range(args.repeat))
    print(f"bare `python -c pass`: {bare:.3f} s; load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
