"""Figure and graph-view builders: they return plotly figures / HTML strings and write files only
when asked.  :func:`setup_notebook` picks a plotly renderer that works in JupyterLab and in the
pipeline's offline HTML reports alike; :mod:`kgwb.viz.graph` draws self-contained ego-graph views
and :mod:`kgwb.viz.explain` explains recommendations with KG paths.

plotly is imported only when a figure is asked for (``kgwb train`` on a machine without plotly
must still start), hence the lazy attribute below."""

from typing import Any

__all__ = ["setup_notebook"]


def __getattr__(name: str) -> Any:
    if name == "setup_notebook":
        from kgwb.viz.plots import setup_notebook

        return setup_notebook
    raise AttributeError(f"module 'kgwb.viz' has no attribute {name!r}")
