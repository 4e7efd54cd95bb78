"""Winnow: the Streamlit app, a router only (like Streamlit's own `hello` app).

`make run` serves it through `serve.py` (`streamlit run serve.py`), which also tells the
browser where the server's root is; `streamlit run app.py` works too, with two harmless 404s
in the console when a page's URL is opened directly.

Each page is a file in `app_pages/`; its title and icon are given here. The folder is not
called `pages/`: a `pages/` folder beside an app that calls `st.navigation` puts Streamlit in
a hybrid mode where opening a page's URL directly (a bookmark, a browser refresh) shows the
folder's files as a second, legacy navigation and skips this entry point.
"""

from __future__ import annotations

import streamlit as st

# The favicon is an emoji: Streamlit draws it as an inline SVG. A `:material/...:` page icon
# makes the browser fetch an SVG from fonts.gstatic.com instead (an error offline, and a
# request leaving the machine). Material icons inside the app come from Streamlit's bundled
# font and fetch nothing.
st.set_page_config(page_title="Winnow", page_icon="🌾", layout="wide")
PAGES = [
    st.Page("app_pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("app_pages/scores.py", title="Scores", icon=":material/bar_chart:"),
    st.Page("app_pages/correlations.py", title="Correlations", icon=":material/grid_on:"),
    st.Page("app_pages/examples.py", title="Examples", icon=":material/image:"),
    st.Page("app_pages/mislabeled.py", title="Mislabeled", icon=":material/flag:"),
    st.Page(
        "app_pages/duplicates.py", title="Duplicates & outliers", icon=":material/content_copy:"
    ),
    st.Page("app_pages/map.py", title="Map", icon=":material/scatter_plot:"),
    st.Page("app_pages/pruning.py", title="Pruning", icon=":material/content_cut:"),
    st.Page("app_pages/export.py", title="Export", icon=":material/download:"),
]
st.navigation(PAGES).run()
