"""Winnow's scoring engine: train small models, record per-example dynamics, score, cache.

Importable with no Streamlit installed; the app talks to it through `scoring.store` and
`scoring.jobs`.
"""
