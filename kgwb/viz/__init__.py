"""Figure and graph-view builders: they return plotly figures / HTML strings and write files only
when asked.  :func:`setup_notebook` picks a plotly renderer that works in JupyterLab and in the
pipeline's offline HTML reports alike; :mod:`kgwb.viz.graph` draws self-contained ego-graph views
and :mod:`kgwb.viz.explain` explains recommendations with KG paths."""

from kgwb.viz.plots import setup_notebook

__all__ = ["setup_notebook"]
