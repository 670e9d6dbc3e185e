"""The Streamlit dashboard's pages (routed by app.py) and their shared helpers: sign-in (auth.py), links and
query params (links.py), text (formatting.py), charts on a page (figures.py), segmentation masks (masks.py)."""
