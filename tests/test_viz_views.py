"""Graph views as users read them: a legend for colours, shapes and line styles, the explained
path marking the user, what they bought and what is recommended, and the inline notebook view."""

from __future__ import annotations

import html
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from test_explain import _kg  # noqa: E402

from kgwb.viz.explain import explain_paths, paths_graph, paths_html  # noqa: E402
from kgwb.viz.graph import ROLE_STYLES, ego_graph, legend_html, notebook_view, vis_data  # noqa: E402


def test_ego_view_has_a_legend_of_what_it_shows():
    kg = _kg()
    g = ego_graph(kg, "item:R", hops=1, max_nodes=50)
    legend = legend_html(g)
    for t in ("item", "brand", "category", "value"):
        assert f"</span> {t}</span>" in legend
    for source in ("catalog", "dataset"):
        assert f"{source} edge" in legend
    assert "dashed" in legend or "dotted" in legend
    assert "bought (history)" not in legend  # roles only where the view has them


def test_explained_path_marks_user_bought_and_recommended(tmp_path):
    kg = _kg()
    paths = explain_paths(kg, ["A", "B"], "R", k=3)
    page = paths_html(kg, paths, user="U1", path=tmp_path / "why.html")
    for role in ("user", "history", "recommended"):
        assert ROLE_STYLES[role]["meaning"] in page
    nodes = {n["id"]: n for n in vis_data(paths_graph(kg, paths))["nodes"]}
    assert nodes["item:R"]["label"].startswith("recommended: ")
    assert nodes["item:A"]["label"].startswith("bought: ")
    assert "user:U1" in page and "bought" in page


def test_notebook_view_is_sandboxed_and_links_its_file(tmp_path, monkeypatch):
    monkeypatch.setenv("KGWB_NOTEBOOK_DIR", str(tmp_path))
    evil = '<script>alert(1)</script>"'
    out = notebook_view(f"<html><body>{evil}</body></html>", path=tmp_path / "v.html")
    markup = out.data
    assert 'sandbox="allow-scripts"' in markup and "allow-same-origin" not in markup
    assert evil not in markup and html.escape(evil, quote=True) in markup
    assert 'href="v.html"' in markup


def test_learning_curves_without_trained_models():
    import pandas as pd

    from kgwb.viz import plots

    fig = plots.learning_curves(pd.DataFrame())  # e.g. MODELS = "pop" in 03_train
    assert "no trained model" in fig.layout.title.text and not fig.data


def test_embedding_map_never_repeats_a_colour():
    import numpy as np
    import pandas as pd

    from kgwb.viz import plots

    for n_groups in (4, 13, 30):
        labels = pd.DataFrame({"title": "t", "category": [f"c{i % n_groups}" for i in range(90)]})
        fig = plots.embedding_map(np.random.default_rng(0).random((90, 8)), labels)
        colours = [t.marker.color for t in fig.data]
        assert len(colours) == len(set(colours)) == min(n_groups, 24)
