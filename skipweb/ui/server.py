"""The dashboard's server process as `skipweb up` starts it: ``python -m skipweb.ui.server run app.py ...``.

It is Streamlit's own command line (the same arguments as ``streamlit run``), with the pages and what they
import (pandas, plotly, the stories, the database layer) loaded before the server takes its first viewer.
Otherwise that viewer's first script run waits for them: about 1 s of a cold page on a 2-core machine
(bench/page_speed.py, "cold").
"""

from __future__ import annotations

import importlib
import logging
import sys


def warm() -> None:
    """Import every page module. Each ``@st.cache_data`` checks its parameters when it is applied and logs
    "No runtime found" outside a running server: harmless (the caches themselves are made on first call,
    in the runtime), so that one logger is quiet meanwhile."""
    from streamlit.runtime.caching import cache_data_api  # first: importing it sets its logger's level

    from skipweb.ui.links import PAGE_MODULES

    log = logging.getLogger(cache_data_api.__name__)
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        for module, _ in PAGE_MODULES.values():
            importlib.import_module(f"skipweb.ui.{module}")
    finally:
        log.setLevel(level)


if __name__ == "__main__":
    from streamlit.web.cli import main

    warm()
    sys.exit(main())
