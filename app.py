"""skipweb's dashboard, as the design names it: a thin entry for ``streamlit run app.py`` in a checkout. The
router lives in the package (skipweb/ui/app.py), which is what ``skipweb up`` serves from an installed wheel."""

from skipweb.ui.app import main

main()
