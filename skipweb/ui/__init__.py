"""The Streamlit dashboard's pages (routed by app.py) and their shared helpers (common.py)."""
