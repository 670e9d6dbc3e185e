"""The house's layers (.importlinter): entry points → services → stories → db | ML modules, no cycles.

``lint-imports`` checks the contracts on the real import graph. grimp reads every import statement,
including those inside functions, so an import hidden in a function body cannot undo a layer: the second
test pins that.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import grimp

from tests import ROOT


def test_import_contracts_hold() -> None:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert exe, "import-linter is not installed (requirements-dev.txt)"
    out = subprocess.run([exe, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert "0 broken" in out.stdout


def test_function_local_imports_are_in_the_graph() -> None:
    graph = grimp.build_graph("skipweb", "db", "workers")
    # `skipweb worker` imports the broker inside the command's function body
    assert graph.direct_import_exists(importer="skipweb.cli.worker", imported="skipweb.services.broker")
    # and the sink imports nothing of db at module level that the graph would miss
    assert graph.direct_import_exists(importer="skipweb.services.sink", imported="db.metrics")


def test_db_never_imports_torch_at_run_time() -> None:
    """The contract, observed: importing every db module loads no torch (a fresh interpreter)."""
    code = (
        "import pkgutil, importlib, sys, db\n"
        "for m in pkgutil.walk_packages(db.__path__, 'db.'):\n"
        "    if '.migrations' not in m.name: importlib.import_module(m.name)\n"
        "bad = sorted(k for k in sys.modules if k.split('.')[0] in ('torch', 'torchvision', 'streamlit', 'celery'))\n"
        "print(','.join(bad[:5]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "", f"db imported {out.stdout.strip()}"


def test_commands_that_train_nothing_load_no_torch(tmp_path) -> None:
    """`skipweb --help`, `db upgrade`, `status`, `cancel`, `export`, `models` and `submit` (good or bad input)
    read the registry and the database only: they import neither torch nor Streamlit (pinned by the modules
    loaded, not by a clock). The model and dataset registries are data; torch loads on the first build."""
    code = (
        "import sys\n"
        "from skipweb.cli import main\n"
        "try:\n"
        "    main(sys.argv[1:])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('LOADED', sorted(m for m in ('torch', 'torchvision', 'streamlit') if m in sys.modules))\n"
        "print('ARRAYS', sorted(m for m in ('numpy', 'pandas') if m in sys.modules))\n"
        "print('SPEC', sorted(m for m in ('skipweb.spec', 'skipweb.cli.core', 'alembic') if m in sys.modules))\n"
    )
    env = {**__import__("os").environ, "SKIPWEB_DATA_DIR": str(tmp_path)}
    for args in (["--help"], ["db", "upgrade"], ["status"], ["status", "exp:999"], ["cancel", "7"],
                 ["export", "7", "-o", str(tmp_path / "m.csv")], ["models"],
                 ["submit", "mlp", "--depth", "4", "--epochs", "1", "--subset", "64"],
                 ["submit", "resnet", "--depth", "21"], ["submit", "mlp", "--depth", "4", "--subset", "99999"],
                 ["train", "nope", "--depth", "20"]):  # fmt: skip
        out = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env=env, capture_output=True,
                             text=True, timeout=120)  # fmt: skip
        loaded = next(ln for ln in out.stdout.splitlines() if ln.startswith("LOADED"))
        assert loaded == "LOADED []", f"skipweb {' '.join(args)}: {loaded}\n{out.stderr[-1000:]}"
        if args[0] in ("status", "cancel", "--help"):  # a listing needs no array library either
            arrays = next(ln for ln in out.stdout.splitlines() if ln.startswith("ARRAYS"))
            assert arrays == "ARRAYS []", f"skipweb {' '.join(args)}: {arrays}"
            # nor the RunSpec behind train/submit's options, nor Alembic on a current schema (lazy.py)
            spec = next(ln for ln in out.stdout.splitlines() if ln.startswith("SPEC"))
            assert spec == "SPEC []", f"skipweb {' '.join(args)}: {spec}"
