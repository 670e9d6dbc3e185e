"""skipweb's dashboard: the router. Streamlit runs this file (``skipweb up`` serves it from the installed
package); pages live beside it in skipweb/ui/. The checkout's top-level app.py runs :func:`main` too, for
``streamlit run app.py --server.address 127.0.0.1`` (any other address needs sign-in: the README's team
section)."""

import importlib

import streamlit as st

from db import SchemaError
from skipweb.services.schema import check
from skipweb.ui.auth import closed_door, sidebar_auth
from skipweb.ui.data import engine
from skipweb.ui.links import PAGE_MODULES, PAGES


def _route(module: str):
    def page() -> None:
        importlib.import_module(f"skipweb.ui.{module}").page()

    page.__name__ = f"{module}_page"
    return page


def home() -> None:
    """The root URL: go to Launch, so every page, Launch included, has its own address (/launch)."""
    st.switch_page(PAGES["launch"])


def main() -> None:
    """One script run: the door and schema checks, then the page the URL names."""
    st.set_page_config(layout="wide", page_title="skipweb")
    if why := closed_door():  # served to the network with no sign-in: show nothing else
        st.error(why)
        st.stop()
    try:
        check(engine())
    except SchemaError as e:
        st.error(str(e).splitlines()[0])
        st.stop()

    # Pages are callables, not files, so the router needs no path: it runs the same from a checkout or a wheel.
    PAGES.update({url: st.Page(_route(module), title=title, url_path=url) for url, (module, title) in PAGE_MODULES.items()})
    root = st.Page(home, title="skipweb", url_path="home", default=True, visibility="hidden")
    nav = st.navigation([root, *PAGES.values()])
    sidebar_auth()
    nav.run()


if __name__ == "__main__":  # as Streamlit runs it
    main()
