"""Data sources -> one dataset view (ids, inputs, labels, names). No torch here.

`load(DataConfig)` is the public edge: it validates the config and the source and returns a
`Dataset`; `source_rows` reads a run's original rows back for export; `noise` injects and
evaluates synthetic label noise.
"""

from scoring.data.sources import (
    DATA_VERSION,
    Dataset,
    Split,
    image_columns,
    label_value,
    load,
    source_rows,
)

__all__ = [
    "DATA_VERSION",
    "Dataset",
    "Split",
    "image_columns",
    "label_value",
    "load",
    "source_rows",
]
