"""Winnow's Streamlit app (placeholder until the app issue lands).

Run the engine from the command line for now: `python -m scoring score --dataset digits`.
"""

import streamlit as st

st.set_page_config(page_title="Winnow", layout="wide")
st.title("Winnow")
st.write("The app is being built. Score a dataset with `python -m scoring score --dataset digits`.")
