"""Data sources -> one dataset view (ids, inputs, labels, names). No torch here.

`load(DataConfig)` is the public edge: it validates the config and the source and returns a
`Dataset`; `source_rows` reads a run's original rows back for export. Modules: `sources`
(digits and the `TABLE_SOURCES` registry: a new kind of source is one class), `columns`
(column detection, label encoding), `rows` (held-out split, --limit), `decode` (texts,
images), `noise` (synthetic label noise and how well a score finds it), `annotators`
(several annotators' votes and their majority), `dawid_skene` (a votes-only consensus, the
comparison for CROWDLAB).
"""

from scoring.data.columns import image_columns, label_value
from scoring.data.sources import DATA_VERSION, TABLE_SOURCES, Dataset, Split, load, source_rows

__all__ = [
    "DATA_VERSION",
    "Dataset",
    "Split",
    "TABLE_SOURCES",
    "image_columns",
    "label_value",
    "load",
    "source_rows",
]
