"""kgwb — a Jupyter research workbench for e-commerce knowledge graphs built with language models.

The package owns all logic; the numbered notebooks under ``notebooks/`` call one entry point per
stage.  Stage 1 (data) lives in :mod:`kgwb.data`.
"""

from kgwb.data.schema import Dataset, LoadReport
from kgwb.errors import DataError

__version__ = "0.1.0"

__all__ = ["Dataset", "DataError", "LoadReport", "__version__"]
